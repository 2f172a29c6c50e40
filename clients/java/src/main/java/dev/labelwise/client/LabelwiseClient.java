package dev.labelwise.client;

import dev.labelwise.v1.ListStrategiesRequest;
import dev.labelwise.v1.ParamValue;
import dev.labelwise.v1.QuerySelectionServiceGrpc;
import dev.labelwise.v1.SelectQueriesRequest;
import dev.labelwise.v1.SelectQueriesResponse;
import dev.labelwise.v1.SelectQueriesStreamRequest;
import dev.labelwise.v1.SelectQueriesStreamResponse;
import dev.labelwise.v1.StrategyInfo;
import dev.labelwise.v1.StrategyResult;
import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.Deadline;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.AbstractStub;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * A labelwise client over one gRPC channel; safe for concurrent use. Close it to close the
 * channel.
 *
 * <pre>{@code
 * try (LabelwiseClient client = LabelwiseClient.builder("localhost:50051")
 *     .defaultDeadline(Duration.ofSeconds(5)).build()) {
 *   SelectResponse response = client.select(request);
 * }
 * }</pre>
 *
 * <p>A request whose message would exceed the maximum message size goes through the
 * streaming call, split along the pool axis; both calls give the same answer.
 */
public final class LabelwiseClient implements AutoCloseable {
  /** The largest message sent or received by default: the server's default, 256 MiB. */
  public static final int DEFAULT_MAX_MESSAGE_BYTES = 256 << 20;
  /** About how many bytes of rows each stream chunk carries by default. */
  public static final int DEFAULT_CHUNK_BYTES = 4 << 20;
  // Kept free of tensor bytes in a unary request, for framing and headers.
  private static final int HEADER_ROOM = 64 << 10;

  private final ManagedChannel channel;
  private final QuerySelectionServiceGrpc.QuerySelectionServiceBlockingStub blocking;
  private final QuerySelectionServiceGrpc.QuerySelectionServiceStub async;
  private final Duration defaultDeadline;
  private final int maxMessageBytes;
  private final int chunkBytes;

  private LabelwiseClient(Builder builder) {
    ManagedChannelBuilder<?> channelBuilder = Grpc.newChannelBuilder(builder.target, builder.credentials())
        .maxInboundMessageSize(builder.maxMessageBytes)
        .intercept(builder.interceptors);
    if (builder.authority != null) {
      channelBuilder.overrideAuthority(builder.authority);
    }
    channel = channelBuilder.build();
    blocking = QuerySelectionServiceGrpc.newBlockingStub(channel)
        .withMaxOutboundMessageSize(builder.maxMessageBytes);
    async = QuerySelectionServiceGrpc.newStub(channel)
        .withMaxOutboundMessageSize(builder.maxMessageBytes);
    defaultDeadline = builder.defaultDeadline;
    maxMessageBytes = builder.maxMessageBytes;
    // Every stream chunk must itself fit in a message, with room for the header fields.
    chunkBytes = Math.max(1, Math.min(builder.chunkBytes, builder.maxMessageBytes / 2));
  }

  /** A builder for a client of {@code target}: "host:port" or any gRPC target URI. */
  public static Builder builder(String target) {
    return new Builder(target);
  }

  /** Ranks the pool with every requested strategy, within the default deadline. */
  public SelectResponse select(SelectRequest request) {
    return select(request, defaultDeadline);
  }

  /**
   * Ranks the pool with every requested strategy; {@code deadline} is how long the call may
   * take (null: no deadline).
   *
   * @throws LabelwiseException when the call fails; for a rejected request its violations
   *     name the fields at fault
   */
  public SelectResponse select(SelectRequest request, Duration deadline) {
    SelectQueriesRequest whole = request.toMessage();
    SelectQueriesResponse response;
    try {
      if (whole.getSerializedSize() <= (long) maxMessageBytes - HEADER_ROOM) {
        response = withDeadline(blocking, deadline).selectQueries(whole);
      } else {
        response = stream(new Chunks(request, chunkBytes), deadline);
      }
    } catch (StatusRuntimeException error) {
      throw LabelwiseException.from(error);
    }
    List<Selection> selections = new ArrayList<>(response.getResultsCount());
    for (StrategyResult result : response.getResultsList()) {
      selections.add(new Selection(result.getName(),
          result.getIndicesList().stream().mapToLong(Long::longValue).toArray(),
          result.getScoresList().stream().mapToDouble(Double::doubleValue).toArray(),
          fromParams(result.getParamsMap()), result.getTotalCost()));
    }
    return new SelectResponse(response.getPoolSize(), selections);
  }

  /** Every strategy the server offers, with its parameters and needed inputs. */
  public List<StrategyInfo> listStrategies() {
    return listStrategies(defaultDeadline);
  }

  /** Every strategy the server offers; {@code deadline} null for none. */
  public List<StrategyInfo> listStrategies(Duration deadline) {
    try {
      return withDeadline(blocking, deadline)
          .listStrategies(ListStrategiesRequest.getDefaultInstance()).getStrategiesList();
    } catch (StatusRuntimeException error) {
      throw LabelwiseException.from(error);
    }
  }

  /** The channel, for the generated stubs ({@code dev.labelwise.v1}) or health checks. */
  public ManagedChannel channel() {
    return channel;
  }

  /** Closes the channel, waiting up to 5 s for calls in flight. */
  @Override
  public void close() {
    channel.shutdown();
    try {
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException interrupted) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  private static <S extends AbstractStub<S>> S withDeadline(S stub, Duration deadline) {
    return deadline == null ? stub : stub.withDeadline(Deadline.after(deadline.toNanos(), TimeUnit.NANOSECONDS));
  }

  /** Sends the chunks as the channel has room for them (flow control), then waits. */
  private SelectQueriesResponse stream(Iterator<SelectQueriesRequest> chunks, Duration deadline) {
    CompletableFuture<SelectQueriesStreamResponse> answer = new CompletableFuture<>();
    CompletableFuture<ClientCallStreamObserver<SelectQueriesStreamRequest>> call = new CompletableFuture<>();
    withDeadline(async, deadline).selectQueriesStream(
        new ClientResponseObserver<SelectQueriesStreamRequest, SelectQueriesStreamResponse>() {
          private boolean sentAll;

          @Override
          public void beforeStart(ClientCallStreamObserver<SelectQueriesStreamRequest> requests) {
            call.complete(requests);
            // Called on one thread at a time, whenever the transport can take more.
            requests.setOnReadyHandler(() -> {
              try {
                while (!sentAll && requests.isReady()) {
                  if (chunks.hasNext()) {
                    requests.onNext(SelectQueriesStreamRequest.newBuilder().setChunk(chunks.next()).build());
                  } else {
                    sentAll = true;
                    requests.onCompleted();
                  }
                }
              } catch (RuntimeException failed) {
                sentAll = true;
                requests.onError(failed); // cancels the call, which ends the wait below
                answer.completeExceptionally(failed);
              }
            });
          }

          @Override
          public void onNext(SelectQueriesStreamResponse response) {
            answer.complete(response);
          }

          @Override
          public void onError(Throwable error) {
            answer.completeExceptionally(error);
          }

          @Override
          public void onCompleted() {
            answer.completeExceptionally(Status.INTERNAL
                .withDescription("the stream closed without a response").asRuntimeException());
          }
        });
    try {
      return answer.get().getResponse();
    } catch (ExecutionException failed) {
      Throwable cause = failed.getCause();
      if (!(cause instanceof StatusRuntimeException || cause instanceof io.grpc.StatusException)
          && cause instanceof RuntimeException local) {
        throw local; // the request could not be chunked; the call was cancelled
      }
      throw LabelwiseException.from(cause);
    } catch (InterruptedException interrupted) {
      call.join().cancel("the calling thread was interrupted", interrupted);
      Thread.currentThread().interrupt();
      throw new LabelwiseException(Status.Code.CANCELLED, "interrupted", List.of(), null, interrupted);
    }
  }

  private static Map<String, Object> fromParams(Map<String, ParamValue> params) {
    Map<String, Object> out = new LinkedHashMap<>();
    params.forEach((name, value) -> {
      switch (value.getKindCase()) {
        case INT_VALUE -> out.put(name, value.getIntValue());
        case DOUBLE_VALUE -> out.put(name, value.getDoubleValue());
        case STRING_VALUE -> out.put(name, value.getStringValue());
        case BOOL_VALUE -> out.put(name, value.getBoolValue());
        default -> { }
      }
    });
    return Map.copyOf(out);
  }

  /**
   * The request as stream chunks of about chunkBytes of rows each: the first carries the
   * header (strategies, k, seed, ...) and the first block of pool rows; then more pool rows,
   * then blocks of each labeled-set tensor's rows, then exclude in blocks (the server
   * concatenates exclude lists).
   */
  static final class Chunks implements Iterator<SelectQueriesRequest> {
    private final SelectRequest request;
    private final List<SelectRequest.Input> pool = new ArrayList<>();
    private final long n;
    private final long poolStep;
    private final List<SelectRequest.Input> labeled = new ArrayList<>();
    private final long chunkBytes;
    private final List<Long> exclude;
    private final int excludeStep;
    private long poolStart;
    private int labeledIndex;
    private long labeledStart;
    private int excludeStart;
    private boolean first = true;

    Chunks(SelectRequest request, long chunkBytes) {
      this.request = request;
      this.chunkBytes = chunkBytes;
      long rowBytes = 0;
      long size = 0;
      for (Map.Entry<SelectRequest.Input, Tensor> entry : request.tensors().entrySet()) {
        SelectRequest.Input input = entry.getKey();
        Tensor tensor = entry.getValue();
        if (input.labeled) {
          labeled.add(input);
          continue;
        }
        if (pool.isEmpty()) {
          size = splittable(input, tensor) ? tensor.size(input.poolAxis) : 1;
        }
        pool.add(input);
        if (splittable(input, tensor) && tensor.size(input.poolAxis) > 0) {
          rowBytes += tensor.rawData().size() / tensor.size(input.poolAxis);
        }
      }
      n = pool.isEmpty() ? 0 : Math.max(size, 1);
      poolStep = step(rowBytes);
      exclude = request.header().getExcludeList();
      excludeStep = (int) Math.max(1, Math.min(Integer.MAX_VALUE, chunkBytes / 10)); // <= 10 bytes a varint
    }

    private long step(long rowBytes) {
      return Math.max(1, chunkBytes / Math.max(rowBytes, 1));
    }

    private static boolean splittable(SelectRequest.Input input, Tensor tensor) {
      return tensor.rank() > input.poolAxis;
    }

    @Override
    public boolean hasNext() {
      return first || poolStart < n || labeledIndex < labeled.size() || excludeStart < exclude.size();
    }

    @Override
    public SelectQueriesRequest next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      SelectQueriesRequest.Builder chunk = first
          ? request.header().toBuilder().clearExclude()
          : SelectQueriesRequest.newBuilder();
      first = false;
      if (poolStart < n) {
        long end = poolStart + poolStep;
        for (SelectRequest.Input input : pool) {
          Tensor tensor = request.tensors().get(input);
          if (!splittable(input, tensor)) {
            if (poolStart == 0) {
              input.set(chunk, tensor); // a scalar: sent whole, once, for the server to judge
            }
            continue;
          }
          long rows = tensor.size(input.poolAxis);
          input.set(chunk, tensor.slice(input.poolAxis, Math.min(poolStart, rows), Math.min(end, rows)));
        }
        poolStart = end;
      } else if (labeledIndex < labeled.size()) {
        SelectRequest.Input input = labeled.get(labeledIndex);
        Tensor tensor = request.tensors().get(input);
        if (tensor.rank() == 0) {
          input.set(chunk, tensor);
          labeledIndex++;
        } else {
          long rows = tensor.size(0);
          long step = step(tensor.rawData().size() / Math.max(rows, 1));
          input.set(chunk, tensor.slice(0, Math.min(labeledStart, rows), Math.min(labeledStart + step, rows)));
          labeledStart += step;
          if (labeledStart >= rows) {
            labeledIndex++;
            labeledStart = 0;
          }
        }
      } else if (excludeStart < exclude.size()) {
        int end = (int) Math.min((long) excludeStart + excludeStep, exclude.size());
        chunk.addAllExclude(exclude.subList(excludeStart, end));
        excludeStart = end;
      }
      return chunk.build();
    }
  }

  /** Configures a {@link LabelwiseClient}; every setter returns this builder. */
  public static final class Builder {
    private final String target;
    private ChannelCredentials credentials = InsecureChannelCredentials.create();
    private String authority;
    private Duration defaultDeadline;
    private int maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES;
    private int chunkBytes = DEFAULT_CHUNK_BYTES;
    private final List<ClientInterceptor> interceptors = new ArrayList<>();

    private Builder(String target) {
      this.target = Objects.requireNonNull(target);
    }

    /** Connect over TLS, trusting the system's root certificates. Plaintext without it. */
    public Builder tls() {
      credentials = TlsChannelCredentials.create();
      return this;
    }

    /** Connect over TLS, trusting the CA certificates in a PEM file. */
    public Builder trustCertificates(Path pemFile) {
      try {
        credentials = TlsChannelCredentials.newBuilder().trustManager(pemFile.toFile()).build();
      } catch (IOException unreadable) {
        throw new UncheckedIOException(unreadable);
      }
      return this;
    }

    /** Any channel credentials, for example TLS with a client certificate. */
    public Builder credentials(ChannelCredentials credentials) {
      this.credentials = Objects.requireNonNull(credentials);
      return this;
    }

    /** The authority (host name) to verify the server's certificate against. */
    public Builder overrideAuthority(String authority) {
      this.authority = authority;
      return this;
    }

    /** The deadline of every call that sets none; without it, calls have none. */
    public Builder defaultDeadline(Duration deadline) {
      this.defaultDeadline = deadline;
      return this;
    }

    /** The largest message sent or received; larger requests use the streaming call. */
    public Builder maxMessageBytes(int bytes) {
      if (bytes <= 0) {
        throw new IllegalArgumentException("maxMessageBytes must be > 0; got " + bytes);
      }
      this.maxMessageBytes = bytes;
      return this;
    }

    /** About how many bytes of rows each stream chunk carries (at most maxMessageBytes / 2). */
    public Builder chunkBytes(int bytes) {
      if (bytes <= 0) {
        throw new IllegalArgumentException("chunkBytes must be > 0; got " + bytes);
      }
      this.chunkBytes = bytes;
      return this;
    }

    /** Adds client interceptors (metadata, tracing, logging...). */
    public Builder intercept(ClientInterceptor... interceptors) {
      this.interceptors.addAll(List.of(interceptors));
      return this;
    }

    public LabelwiseClient build() {
      return new LabelwiseClient(this);
    }

    private ChannelCredentials credentials() {
      return credentials;
    }
  }
}
