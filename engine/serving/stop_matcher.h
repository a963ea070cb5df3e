// Stop strings on streamed text. Text that could be the beginning of a stop string is held back
// until it either completes the stop string (the stream ends there) or cannot any more (it is
// released), so a stop string never leaks partially into the stream.
//
// Threading: one per request sample; not thread-safe.
#ifndef XLSTM_ENGINE_SERVING_STOP_MATCHER_H_
#define XLSTM_ENGINE_SERVING_STOP_MATCHER_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace xlstm::engine {

class StopStringMatcher {
 public:
  // Empty strings in `stops` are ignored.
  StopStringMatcher(std::vector<std::string> stops, bool include_stop_in_output);

  struct Result {
    std::string emit;      // text that may be sent now
    bool stopped = false;  // a stop string completed; nothing more may be emitted
  };
  // Adds a text delta. After a stop, further calls return nothing.
  Result Add(absl::string_view delta);
  // The held-back text, for a stream that ends for another reason.
  std::string Flush();

 private:
  std::vector<std::string> stops_;
  bool include_stop_;
  bool stopped_ = false;
  std::string held_;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_SERVING_STOP_MATCHER_H_
