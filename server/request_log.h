// One log line per finished request (Generate or Score), written when the request ends on the
// gRPC side. The line carries the client's request id, token counts, finish reason and the
// request's queue time, time to first token and total time; `--log-format json` makes it one JSON
// object per line for log collectors.
//
// Thread safety: LogRequestEnd may be called from any thread.
#ifndef XLSTM_SERVER_REQUEST_LOG_H_
#define XLSTM_SERVER_REQUEST_LOG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "engine/serving/request.h"

namespace xlstm::server {

struct RequestLogRecord {
  const char* rpc = "";      // "generate" | "score"
  std::string request_id;    // the client's id (already bounded by validation), may be empty
  uint64_t engine_id = 0;    // the engine's id for the request (0 when it never reached it)
  absl::Status status;       // how the RPC ended
  std::string finish_reason; // "length", "stop_sequence", "eos_token", "cancelled", or ""
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
  engine::RequestTimings timings;
};

void LogRequestEnd(const RequestLogRecord& record);

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_REQUEST_LOG_H_
