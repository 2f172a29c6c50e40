// A C++ client built from proto/ and third_party/googleapis by tests/test_cpp_client.py: one
// call that succeeds, then one with an unknown strategy whose INVALID_ARGUMENT status it decodes
// from grpc-status-details-bin into google.rpc.Status, BadRequest and ErrorInfo. It prints one
// "key=value" fact a line for the test to compare with what the Python client sees.
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "google/rpc/code.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "labelwise/v1/error_reason.pb.h"
#include "labelwise/v1/query_selection.grpc.pb.h"

namespace v1 = labelwise::v1;

static v1::SelectQueriesRequest Request(const std::string& strategy) {
  // Four items, two classes, float32 little-endian in C order (the Tensor convention).
  const float probabilities[4][2] = {{0.9f, 0.1f}, {0.5f, 0.5f}, {0.6f, 0.4f}, {0.99f, 0.01f}};
  v1::SelectQueriesRequest request;
  v1::Tensor* tensor = request.mutable_probabilities();
  tensor->set_dtype(v1::DATA_TYPE_FLOAT32);
  tensor->add_shape(4);
  tensor->add_shape(2);
  tensor->set_raw_data(std::string(reinterpret_cast<const char*>(probabilities),
                                   sizeof probabilities));
  request.add_strategies()->set_name(strategy);
  request.set_k(2);
  return request;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: client HOST:PORT UNKNOWN_STRATEGY_NAME\n";
    return 2;
  }
  auto stub = v1::QuerySelectionService::NewStub(
      grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials()));

  {
    grpc::ClientContext context;
    v1::SelectQueriesResponse response;
    grpc::Status status = stub->SelectQueries(&context, Request("entropy"), &response);
    if (!status.ok()) {
      std::cerr << "entropy failed: " << status.error_code() << " " << status.error_message() << "\n";
      return 1;
    }
    std::cout << "ok.indices=";
    for (int i = 0; i < response.results(0).indices_size(); ++i) {
      std::cout << (i ? "," : "") << response.results(0).indices(i);
    }
    std::cout << "\n";
  }

  grpc::ClientContext context;
  v1::SelectQueriesResponse response;
  grpc::Status status = stub->SelectQueries(&context, Request(argv[2]), &response);
  std::cout << "grpc.code=" << status.error_code() << "\n";
  // grpc::Status::error_details() is the grpc-status-details-bin trailer: a google.rpc.Status.
  google::rpc::Status detail;
  if (!detail.ParseFromString(status.error_details())) {
    std::cerr << "grpc-status-details-bin is not a google.rpc.Status\n";
    return 1;
  }
  std::cout << "status.code=" << google::rpc::Code_Name(detail.code()) << "\n";
  std::cout << "status.message=" << detail.message() << "\n";
  for (const google::protobuf::Any& any : detail.details()) {
    google::rpc::BadRequest bad_request;
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&bad_request)) {
      for (const auto& violation : bad_request.field_violations()) {
        std::cout << "violation.field=" << violation.field() << "\n";
        std::cout << "violation.reason=" << violation.reason() << "\n";
        std::cout << "violation.description=" << violation.description() << "\n";
      }
    } else if (any.UnpackTo(&info)) {
      std::cout << "info.reason=" << info.reason() << "\n";
      std::cout << "info.domain=" << info.domain() << "\n";
      v1::ErrorReason reason;
      // The reason is an ErrorReason value name (proto/labelwise/v1/error_reason.proto).
      std::cout << "info.reason_known=" << v1::ErrorReason_Parse(info.reason(), &reason) << "\n";
    } else {
      std::cout << "other=" << any.type_url() << "\n";
    }
  }
  return 0;
}
