// Request messages parsed by our own deserializer, so that unparsable bytes get an answer.
//
// With the generated callback service, a request that protobuf cannot parse never reaches our
// code: gRPC 1.51's callback server then answers UNIMPLEMENTED with an empty message. The
// service instead registers its methods with `CheckedRequest<M>` as the request type: its
// SerializationTraits below always hand the call to us, with `parse_status` saying whether the
// bytes were a valid M (INVALID_ARGUMENT naming the message type when not). Request messages
// have no proto3 `string` fields (request ids and texts are `bytes`, checked for UTF-8 by
// request validation), so protobuf never rejects or logs a request for its UTF-8.
//
// Thread safety: a CheckedRequest is written once by gRPC before the method handler runs and is
// read-only afterwards; it lives until the call is done, as gRPC's own request messages do.
#ifndef XLSTM_SERVER_CHECKED_REQUEST_H_
#define XLSTM_SERVER_CHECKED_REQUEST_H_

#include "absl/status/status.h"
#include "google/protobuf/message_lite.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/impl/codegen/serialization_traits.h"
#include "grpcpp/support/byte_buffer.h"

namespace xlstm::server {

template <class Message>
struct CheckedRequest {
  Message message;
  absl::Status parse_status;  // OK when `message` holds the parsed request
};

// Parses `buffer` into `message`: OK, or INVALID_ARGUMENT "request is not a valid
// xlstm.v1.GenerateRequest ...". Consumes (clears) `buffer`, as gRPC's deserializers do.
absl::Status ParseRequestBytes(grpc::ByteBuffer* buffer, google::protobuf::MessageLite* message);

}  // namespace xlstm::server

namespace grpc {

template <class Message>
class SerializationTraits<xlstm::server::CheckedRequest<Message>, void> {
 public:
  // Only the client side serializes requests; kept for completeness of the traits.
  static Status Serialize(const xlstm::server::CheckedRequest<Message>& request, ByteBuffer* buffer,
                          bool* own_buffer) {
    return GenericSerialize<ProtoBufferWriter, Message>(request.message, buffer, own_buffer);
  }
  // Never fails: a parse failure is recorded for the method handler to answer.
  static Status Deserialize(ByteBuffer* buffer, xlstm::server::CheckedRequest<Message>* request) {
    request->parse_status = xlstm::server::ParseRequestBytes(buffer, &request->message);
    return Status::OK;
  }
};

}  // namespace grpc

#endif  // XLSTM_SERVER_CHECKED_REQUEST_H_
