#include "server/request_log.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "spdlog/formatter.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace xlstm::server {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};

spdlog::level::level_enum SpdlogLevel(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarning:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

absl::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warning";
    default:
      return "error";
  }
}

// RFC 3339 UTC with milliseconds: sorts as text and every log collector parses it.
std::string Timestamp(spdlog::log_clock::time_point time) {
  const auto since_epoch = time.time_since_epoch();
  const std::time_t seconds = static_cast<std::time_t>(
      std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count());
  const int millis = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
  return absl::StrFormat("%s.%03dZ", buffer, millis);
}

// Frames the payload that Fields built: a text line "<time> <level> <payload>", or a JSON
// object {"time":...,"level":...,<payload>}.
class LineFormatter : public spdlog::formatter {
 public:
  explicit LineFormatter(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string line =
        format_ == LogFormat::kJson
            ? absl::StrCat("{\"time\":\"", Timestamp(msg.time), "\",\"level\":\"",
                           LevelName(msg.level), "\",",
                           absl::string_view(msg.payload.data(), msg.payload.size()), "}\n")
            : absl::StrCat(Timestamp(msg.time), " ", LevelName(msg.level), " ",
                           absl::string_view(msg.payload.data(), msg.payload.size()), "\n");
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(format_);
  }

 private:
  const LogFormat format_;
};

spdlog::logger* NewLogger(const char* name, spdlog::sink_ptr sink) {
  auto* logger = new spdlog::logger(name, std::move(sink));
  logger->set_formatter(std::make_unique<LineFormatter>(LogFormat::kText));
  logger->set_level(spdlog::level::info);
  // Every line is flushed: a log collector (or a test) sees a request's line when it ends.
  logger->flush_on(spdlog::level::trace);
  return logger;
}

// stderr: requests, stats, warnings, errors.
spdlog::logger& Logger() {
  static spdlog::logger* const logger =
      NewLogger("xlstm", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  return *logger;
}

// stdout: the start-up printout and the lifecycle lines.
spdlog::logger& LifecycleLogger() {
  static spdlog::logger* const logger =
      NewLogger("xlstm-lifecycle", std::make_shared<spdlog::sinks::stdout_sink_mt>());
  return *logger;
}

// An event's fields, rendered for the configured format: text "event key=value ..." (values
// quoted when they contain spaces, quotes or control characters), or JSON members
// "event":"...","key":value,... Client-supplied text (request ids, error messages) is escaped
// either way, so it cannot forge log lines.
class Fields {
 public:
  explicit Fields(absl::string_view event) : json_(g_format.load() == LogFormat::kJson) {
    if (json_) {
      absl::StrAppend(&out_, "\"event\":", Quote(event));
    } else {
      out_ = std::string(event);
    }
  }

  Fields& Text(absl::string_view key, absl::string_view value) {
    if (json_) return Raw(key, Quote(value));
    const bool plain = !value.empty() && value.find_first_of(" \"=\\") == absl::string_view::npos &&
                       std::all_of(value.begin(), value.end(),
                                   [](char c) { return static_cast<unsigned char>(c) >= 0x20; });
    return Raw(key, plain ? std::string(value) : Quote(value));
  }
  Fields& Int(absl::string_view key, int64_t value) { return Raw(key, absl::StrCat(value)); }
  Fields& Seconds(absl::string_view key, double value) {
    return Raw(key, absl::StrFormat("%.6f", value));
  }
  Fields& Number(absl::string_view key, double value) {
    return Raw(key, absl::StrFormat("%.1f", value));
  }
  // A value that is absent (null in JSON, left out of text lines).
  Fields& Null(absl::string_view key) {
    if (json_) return Raw(key, "null");
    return *this;
  }

  const std::string& str() const { return out_; }

 private:
  static std::string Quote(absl::string_view text) {
    return nlohmann::json(std::string(text))
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  Fields& Raw(absl::string_view key, absl::string_view value) {
    if (json_) {
      absl::StrAppend(&out_, ",\"", key, "\":", value);
    } else {
      absl::StrAppend(&out_, " ", key, "=", value);
    }
    return *this;
  }

  const bool json_;
  std::string out_;
};

double SecondsBetween(engine::Clock::time_point from, engine::Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

void ConfigureLogging(LogFormat format, LogLevel level) {
  g_format.store(format);
  Logger().set_formatter(std::make_unique<LineFormatter>(format));
  Logger().set_level(SpdlogLevel(level));
  LifecycleLogger().set_formatter(std::make_unique<LineFormatter>(format));
}

void LogLifecycle(absl::string_view message) {
  if (g_format.load() == LogFormat::kJson) {
    LifecycleLogger().info(Fields("lifecycle").Text("msg", message).str());
  } else {
    LifecycleLogger().info(std::string(message));
  }
}

void LogConfiguration(absl::string_view text,
                      const std::vector<std::pair<std::string, std::string>>& options) {
  if (g_format.load() == LogFormat::kJson) {
    nlohmann::ordered_json values = nlohmann::ordered_json::object();
    for (const auto& [name, value] : options) values[name] = value;
    LifecycleLogger().info(
        absl::StrCat("\"event\":\"configuration\",\"options\":",
                     values.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  } else {
    LifecycleLogger().info(absl::StrCat("configuration:\n", absl::StripSuffix(text, "\n")));
  }
}

void LogMessage(LogLevel level, absl::string_view message) {
  const spdlog::level::level_enum spd = SpdlogLevel(level);
  if (!Logger().should_log(spd)) return;
  if (g_format.load() == LogFormat::kJson) {
    Logger().log(spd, Fields("message").Text("msg", message).str());
  } else {
    Logger().log(spd, std::string(message));
  }
}

void LogRequestEnd(const RequestLogRecord& r) {
  // Server faults are errors; a client's mistakes, cancels and deadlines are ordinary traffic.
  const absl::StatusCode code = r.status.code();
  const bool server_fault = code == absl::StatusCode::kInternal ||
                            code == absl::StatusCode::kUnknown ||
                            code == absl::StatusCode::kDataLoss;
  const spdlog::level::level_enum level = server_fault ? spdlog::level::err : spdlog::level::info;
  if (!Logger().should_log(level)) return;
  const engine::RequestTimings& t = r.timings;
  Fields fields("request");
  fields.Text("rpc", r.rpc)
      .Text("id", r.request_id)
      .Int("engine_id", static_cast<int64_t>(r.engine_id))
      .Text("status", absl::StatusCodeToString(code));
  if (!r.status.ok()) fields.Text("error", r.status.message());
  if (!r.finish_reason.empty()) {
    fields.Text("finish_reason", r.finish_reason);
  } else {
    fields.Null("finish_reason");
  }
  fields.Int("prompt_tokens", r.prompt_tokens).Int("generated_tokens", r.generated_tokens);
  // A request that never reached the engine has no timings.
  if (r.engine_id != 0) {
    // Never admitted: it waited in the queue for all of its life.
    fields.Seconds("queue_s", SecondsBetween(t.arrival, t.was_admitted ? t.admitted : t.done));
    if (t.has_first_token) {
      fields.Seconds("ttft_s", SecondsBetween(t.arrival, t.first_token));
    } else {
      fields.Null("ttft_s");
    }
    fields.Seconds("total_s", SecondsBetween(t.arrival, t.done));
  }
  Logger().log(level, fields.str());
}

void LogStats(const StatsLogRecord& s) {
  if (!Logger().should_log(spdlog::level::info)) return;
  Logger().log(spdlog::level::info, Fields("stats")
                                        .Int("running", s.running)
                                        .Int("waiting", s.waiting)
                                        .Int("slots_used", s.slots_used)
                                        .Int("slots_total", s.slots_total)
                                        .Number("tokens_per_s", s.tokens_per_second)
                                        .Number("steps_per_s", s.steps_per_second)
                                        .str());
}

}  // namespace xlstm::server
