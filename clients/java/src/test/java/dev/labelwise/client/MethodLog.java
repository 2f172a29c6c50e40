package dev.labelwise.client;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.MethodDescriptor;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** Records the full method name of every call made through a client. */
final class MethodLog implements ClientInterceptor {
  static final String UNARY = "labelwise.v1.QuerySelectionService/SelectQueries";
  static final String STREAM = "labelwise.v1.QuerySelectionService/SelectQueriesStream";

  final List<String> names = new CopyOnWriteArrayList<>();

  @Override
  public <Q, R> ClientCall<Q, R> interceptCall(
      MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
    names.add(method.getFullMethodName());
    return next.newCall(method, options);
  }
}
