#include "server/checked_request.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/support/proto_buffer_reader.h"

namespace xlstm::server {

absl::Status ParseRequestBytes(grpc::ByteBuffer* buffer, google::protobuf::MessageLite* message) {
  if (buffer == nullptr || !buffer->Valid()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the call carried no ", message->GetTypeName(), " message"));
  }
  bool parsed = false;
  {
    grpc::ProtoBufferReader reader(buffer);
    parsed = reader.status().ok() && message->ParseFromZeroCopyStream(&reader);
  }
  const size_t length = buffer->Length();
  buffer->Clear();
  if (!parsed) {
    message->Clear();
    return absl::InvalidArgumentError(
        absl::StrCat("the request (", length, " bytes) is not a valid ", message->GetTypeName(),
                     " message: truncated or malformed protobuf encoding"));
  }
  return absl::OkStatus();
}

}  // namespace xlstm::server
