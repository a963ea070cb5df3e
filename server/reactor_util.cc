#include "server/reactor_util.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "server/inference_service.h"
#include "server/request_log.h"

namespace xlstm::server {

using engine::Clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

v1::FinishReason ToProto(engine::FinishReason reason) {
  switch (reason) {
    case engine::FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case engine::FinishReason::kStopSequence:
      return v1::FINISH_REASON_STOP_SEQUENCE;
    case engine::FinishReason::kEosToken:
      return v1::FINISH_REASON_EOS_TOKEN;
    case engine::FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

std::optional<Clock::time_point> SteadyDeadline(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline >= std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    return std::nullopt;
  }
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(deadline - std::chrono::system_clock::now());
}

absl::Status MapCancelAtDeadline(absl::Status status,
                                 const std::optional<Clock::time_point>& deadline) {
  if (status.code() == absl::StatusCode::kCancelled && deadline && Clock::now() >= *deadline) {
    return absl::DeadlineExceededError("deadline exceeded");
  }
  return status;
}

ValidationContext MakeValidation(const InferenceService& s) {
  return {&s.options(), &s.engine()->config(), s.engine()->num_slots(), s.codec()};
}

std::string LoggedRequestId(absl::string_view request_id) {
  if (request_id.size() <= kLoggedRequestIdBytes) return std::string(request_id);
  return absl::StrCat(request_id.substr(0, kLoggedRequestIdBytes), "...(", request_id.size(),
                      " bytes)");
}

void LogRefusedCall(const char* rpc, absl::string_view request_id, const grpc::Status& status,
                    engine::Clock::time_point arrival) {
  RequestLogRecord record;
  record.rpc = rpc;
  record.request_id = LoggedRequestId(request_id);
  record.status =
      absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  record.timings.arrival = arrival;
  record.timings.done = engine::Clock::now();
  LogRequestEnd(record);
}

}  // namespace xlstm::server
