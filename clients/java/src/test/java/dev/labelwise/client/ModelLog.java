package dev.labelwise.client;

import dev.labelwise.v1.Model;
import dev.labelwise.v1.SelectQueriesRequest;
import dev.labelwise.v1.SelectQueriesStreamRequest;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.MethodDescriptor;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Records, for every select call made through a client, how each model went: as its bytes
 * (ONNX) or its hash (SHA256), read from the request or the stream's first chunk.
 */
final class ModelLog implements ClientInterceptor {
  final List<List<Model.SourceCase>> calls = new CopyOnWriteArrayList<>();
  final List<List<String>> digests = new CopyOnWriteArrayList<>();

  @Override
  public <Q, R> ClientCall<Q, R> interceptCall(
      MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
    return new ForwardingClientCall.SimpleForwardingClientCall<Q, R>(next.newCall(method, options)) {
      private boolean first = true;

      @Override
      public void sendMessage(Q message) {
        SelectQueriesRequest request = null;
        if (message instanceof SelectQueriesRequest unary) {
          request = unary;
        } else if (message instanceof SelectQueriesStreamRequest chunk) {
          request = chunk.getChunk();
        }
        if (first && request != null) {
          calls.add(request.getModelsList().stream().map(Model::getSourceCase).toList());
          digests.add(request.getModelsList().stream().map(Model::getSha256).toList());
        }
        first = false;
        super.sendMessage(message);
      }
    };
  }
}
