// Calls a method of xlstm.v1.Inference with raw request bytes (for tests of what the server does
// with bytes no well-behaved client sends), and the service's method names from its descriptor
// (so that a test over "every RPC" covers an RPC added to the .proto without being edited).
#ifndef XLSTM_TESTS_SERVER_RAW_CALL_H_
#define XLSTM_TESTS_SERVER_RAW_CALL_H_

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "xlstm/v1/inference.pb.h"

namespace xlstm::testing {

inline std::vector<std::string> InferenceMethods() {
  const google::protobuf::ServiceDescriptor* service =
      v1::GenerateRequest::descriptor()->file()->FindServiceByName("Inference");
  std::vector<std::string> names;
  for (int i = 0; service != nullptr && i < service->method_count(); ++i) {
    names.push_back(service->method(i)->name());
  }
  return names;
}

// Sends `bytes` as the request message of `method` and returns the call's status.
inline grpc::Status CallWithRawBytes(grpc::Channel* channel, const std::string& method,
                                     const std::string& bytes,
                                     const std::string& authorization = "") {
  grpc::GenericStub stub(channel->shared_from_this());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!authorization.empty()) context.AddMetadata("authorization", authorization);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status status) {
                   std::lock_guard<std::mutex> lock(mu);
                   result = std::move(status);
                   done = true;
                   cv.notify_one();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  return result;
}

}  // namespace xlstm::testing

#endif  // XLSTM_TESTS_SERVER_RAW_CALL_H_
