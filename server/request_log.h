// One log line per finished request (Generate or Score), written when the request ends on the
// gRPC side. The line carries the client's request id, token counts, finish reason and the
// request's queue time, time to first token and total time; `--log-format json` makes it one JSON
// object per line for log collectors.
//
// Thread safety: LogRequestEnd may be called from any thread.
#ifndef XLSTM_SERVER_REQUEST_LOG_H_
#define XLSTM_SERVER_REQUEST_LOG_H_

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/serving/request.h"

namespace xlstm::server {

struct RequestLogRecord {
  const char* rpc = "";       // "generate" | "score"
  std::string request_id;     // the client's id (already bounded by validation), may be empty
  uint64_t engine_id = 0;     // the engine's id for the request (0 when it never reached it)
  absl::Status status;        // how the RPC ended
  std::string finish_reason;  // "length", "stop_sequence", "eos_token", "cancelled", or ""
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
  engine::RequestTimings timings;
};

void LogRequestEnd(const RequestLogRecord& record);

// ---- The server's log (spdlog). Lines about requests, stats, warnings and errors go to stderr;
// the start-up printout and the lifecycle lines (listening, ready, draining, stopped) go to
// stdout, in the same format, and are written at every level: scripts and tests search stdout
// for "ready grpc_port=N metrics_port=M", which both formats keep verbatim in the line.

enum class LogFormat { kText, kJson };
enum class LogLevel { kDebug, kInfo, kWarning, kError };

inline constexpr std::array<std::pair<absl::string_view, LogFormat>, 2> kLogFormatNames = {{
    {"text", LogFormat::kText},
    {"json", LogFormat::kJson},
}};
inline constexpr std::array<std::pair<absl::string_view, LogLevel>, 4> kLogLevelNames = {{
    {"debug", LogLevel::kDebug},
    {"info", LogLevel::kInfo},
    {"warning", LogLevel::kWarning},
    {"error", LogLevel::kError},
}};

// Text lines: "2026-12-01T11:08:26.123Z info request id=... prompt_tokens=5 ...".
// JSON lines: {"time":"2026-12-01T11:08:26.123Z","level":"info","event":"request","id":...}.
// Call once, before other threads log; until then lines are text at level info.
void ConfigureLogging(LogFormat format, LogLevel level);

// A free-form line on stderr ("event":"message" with "msg" in JSON).
void LogMessage(LogLevel level, absl::string_view message);

// A lifecycle line on stdout ("event":"lifecycle" with "msg" in JSON).
void LogLifecycle(absl::string_view message);

// The options in effect, on stdout: `text` (a multi-line printout) in text format, one
// {"event":"configuration","options":{name: value, ...}} object in JSON.
void LogConfiguration(absl::string_view text,
                      const std::vector<std::pair<std::string, std::string>>& options);

// The periodic line while the engine is busy.
struct StatsLogRecord {
  int32_t running = 0;
  int32_t waiting = 0;
  int32_t slots_used = 0;
  int32_t slots_total = 0;
  double tokens_per_second =
      0;  // tokens fed to the model (prompt and generated) since the last line
  double steps_per_second = 0;
};
void LogStats(const StatsLogRecord& record);

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_REQUEST_LOG_H_
