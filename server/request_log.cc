#include "server/request_log.h"

#include <chrono>
#include <cstdio>

namespace xlstm::server {

// Placeholder until the logging module lands: one plain line on stderr.
void LogRequestEnd(const RequestLogRecord& r) {
  std::fprintf(stderr, "request rpc=%s id=%s status=%d prompt=%d generated=%d finish=%s\n", r.rpc,
               r.request_id.c_str(), static_cast<int>(r.status.code()), r.prompt_tokens,
               r.generated_tokens, r.finish_reason.c_str());
}

}  // namespace xlstm::server
