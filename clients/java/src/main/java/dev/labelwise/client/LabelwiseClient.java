package dev.labelwise.client;

import dev.labelwise.v1.AssessLabelsResponse;
import dev.labelwise.v1.CheckStoppingResponse;
import dev.labelwise.v1.LabelQualityServiceGrpc;
import dev.labelwise.v1.PlanLabelingResponse;
import dev.labelwise.v1.ErrorReason;
import dev.labelwise.v1.ListStrategiesRequest;
import dev.labelwise.v1.ParamValue;
import dev.labelwise.v1.QuerySelectionServiceGrpc;
import dev.labelwise.v1.SelectQueriesRequest;
import dev.labelwise.v1.SelectQueriesResponse;
import dev.labelwise.v1.SelectQueriesStreamRequest;
import dev.labelwise.v1.SelectQueriesStreamResponse;
import dev.labelwise.v1.LabelQualityMethodInfo;
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
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
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
 *
 * <p>Model mode: the first call with a model sends its bytes; later calls on this client send
 * only its SHA-256, and when the server no longer holds the model (NOT_FOUND with reason
 * {@link #MODEL_NOT_CACHED}: evicted, restarted, another replica) the call is repeated once
 * with the bytes.
 */
public final class LabelwiseClient implements AutoCloseable {
  /** The largest message sent or received by default: the server's default, 256 MiB. */
  public static final int DEFAULT_MAX_MESSAGE_BYTES = 256 << 20;
  /** About how many bytes of rows each stream chunk carries by default. */
  public static final int DEFAULT_CHUNK_BYTES = 4 << 20;
  /**
   * The ErrorInfo reason of a model sent by hash that the server does not hold: the name of
   * the proto's {@link ErrorReason} value, as every reason is.
   */
  public static final String MODEL_NOT_CACHED = ErrorReason.MODEL_NOT_CACHED.name();
  // Kept free of tensor bytes in a unary request, for framing and headers.
  private static final int HEADER_ROOM = 64 << 10;

  private final ManagedChannel channel;
  private final QuerySelectionServiceGrpc.QuerySelectionServiceBlockingStub blocking;
  private final QuerySelectionServiceGrpc.QuerySelectionServiceStub async;
  private final LabelQualityServiceGrpc.LabelQualityServiceBlockingStub labels;
  private final Duration defaultDeadline;
  private final int maxMessageBytes;
  private final int chunkBytes;
  // SHA-256 of the models this client has sent the server in full: later calls send the hash.
  private final Set<String> sentModels = ConcurrentHashMap.newKeySet();

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
    labels = LabelQualityServiceGrpc.newBlockingStub(channel)
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
    SelectQueriesResponse response = callWithModels(request, deadline);
    List<Selection> selections = new ArrayList<>(response.getResultsCount());
    for (StrategyResult result : response.getResultsList()) {
      selections.add(new Selection(result.getName(),
          result.getIndicesList().stream().mapToLong(Long::longValue).toArray(),
          result.getScoresList().stream().mapToDouble(Double::doubleValue).toArray(),
          fromParams(result.getParamsMap()), result.getTotalCost(),
          result.hasAdversarialPoints() ? Tensor.fromMessage(result.getAdversarialPoints()) : null,
          result.getCandidatesConsidered(),
          result.hasAutoSelection() ? result.getAutoSelection() : null,
          result.getAdversarialMethod()));
    }
    return new SelectResponse(response.getPoolSize(), selections);
  }

  /** Should labeling stop? Within the default deadline; see {@link StoppingRequest}. */
  public StoppingVerdict checkStopping(StoppingRequest request) {
    return checkStopping(request, defaultDeadline);
  }

  /**
   * Should labeling stop? Every criterion whose input the request carries, and the combined
   * verdict; {@code deadline} null for none.
   *
   * @throws LabelwiseException when the call fails; for a rejected request its violations
   *     name the fields at fault
   */
  public StoppingVerdict checkStopping(StoppingRequest request, Duration deadline) {
    CheckStoppingResponse response;
    try {
      response = withDeadline(blocking, deadline).checkStopping(request.toMessage());
    } catch (StatusRuntimeException error) {
      throw LabelwiseException.from(error);
    }
    List<StoppingCriterion> criteria = new ArrayList<>(response.getCriteriaCount());
    for (dev.labelwise.v1.StoppingCriterion c : response.getCriteriaList()) {
      criteria.add(new StoppingCriterion(c.getName(), c.getValue(), c.getThreshold(), c.getStop(),
          c.getEvaluated(), c.getDetail()));
    }
    return new StoppingVerdict(response.getStop(), criteria,
        response.getKappasList().stream().mapToDouble(Double::doubleValue).toArray());
  }

  /** Consensus labels and quality scores, within the default deadline; see {@link AssessRequest}. */
  public LabelAssessment assessLabels(AssessRequest request) {
    return assessLabels(request, defaultDeadline);
  }

  /**
   * Consensus labels and quality scores of labels from several annotators (CROWDLAB,
   * Dawid-Skene or Bayes EM); {@code deadline} null for none.
   *
   * @throws LabelwiseException when the call fails; for a rejected request its violations
   *     name the fields at fault
   */
  public LabelAssessment assessLabels(AssessRequest request, Duration deadline) {
    AssessLabelsResponse r;
    try {
      r = withDeadline(labels, deadline).assessLabels(request.toMessage());
    } catch (StatusRuntimeException error) {
      throw LabelwiseException.from(error);
    }
    return new LabelAssessment(r.getMethod(), longs(r.getConsensusLabelsList()),
        doubles(r.getConsensusQualityList()), doubles(r.getItemAgreementList()),
        doubles(r.getAnnotatorQualityList()), doubles(r.getAnnotatorAgreementList()),
        longs(r.getAnnotatorLabelCountsList()), longs(r.getMajorityVoteLabelsList()),
        doubles(r.getAnnotatorWeightsList()), r.getModelWeight(), r.getIterations(),
        r.hasConfusion() ? Tensor.fromMessage(r.getConfusion()) : null,
        doubles(r.getClassPriorsList()), r.getModelTemperature());
  }

  /** Who labels what next, within the default deadline; see {@link PlanRequest}. */
  public LabelingPlan planLabeling(PlanRequest request) {
    return planLabeling(request, defaultDeadline);
  }

  /**
   * Which items to label again, which to label first, and by whom, within the budget;
   * {@code deadline} null for none.
   *
   * @throws LabelwiseException when the call fails; for a rejected request its violations
   *     name the fields at fault
   */
  public LabelingPlan planLabeling(PlanRequest request, Duration deadline) {
    PlanLabelingResponse r;
    try {
      r = withDeadline(labels, deadline).planLabeling(request.toMessage());
    } catch (StatusRuntimeException error) {
      throw LabelwiseException.from(error);
    }
    List<LabelingTask> tasks = new ArrayList<>(r.getTasksCount());
    for (dev.labelwise.v1.LabelingTask t : r.getTasksList()) {
      tasks.add(new LabelingTask(t.getKind(), t.getIndex(), t.getScore(), t.getAnnotator(),
          t.getExpectedAccuracy(), t.getCost()));
    }
    return new LabelingPlan(tasks, r.getTotalCost(), r.getAnnotatorsList(), r.getTemperature(),
        r.getCandidatesConsidered(), longs(r.getConsensusLabelsList()));
  }

  private static long[] longs(List<Long> values) {
    return values.stream().mapToLong(Long::longValue).toArray();
  }

  private static double[] doubles(List<Double> values) {
    return values.stream().mapToDouble(Double::doubleValue).toArray();
  }

  /** Sends models the server has seen by hash; on MODEL_NOT_CACHED, once more with bytes. */
  private SelectQueriesResponse callWithModels(SelectRequest request, Duration deadline) {
    List<SelectRequest.OnnxModel> models = request.models();
    List<Boolean> hashed = new ArrayList<>(models.size());
    for (SelectRequest.OnnxModel model : models) {
      hashed.add(sentModels.contains(model.sha256()));
    }
    SelectQueriesResponse response;
    try {
      response = call(request, hashed, deadline);
    } catch (LabelwiseException error) {
      boolean stale = hashed.contains(true) && error.code() == Status.Code.NOT_FOUND
          && MODEL_NOT_CACHED.equals(error.reason());
      if (!stale) {
        throw error;
      }
      models.forEach(model -> sentModels.remove(model.sha256()));
      response = call(request, Collections.nCopies(models.size(), false), deadline);
    }
    models.forEach(model -> sentModels.add(model.sha256()));
    return response;
  }

  /** One call, unary or streamed by size; models.get(i) goes as its hash when hashed.get(i). */
  private SelectQueriesResponse call(SelectRequest request, List<Boolean> hashed, Duration deadline) {
    SelectQueriesRequest first = request.header(hashed);
    SelectQueriesRequest.Builder whole = first.toBuilder();
    request.tensors().forEach((input, tensor) -> input.set(whole, tensor));
    SelectQueriesRequest message = whole.build();
    try {
      if (message.getSerializedSize() <= (long) maxMessageBytes - HEADER_ROOM) {
        return withDeadline(blocking, deadline).selectQueries(message);
      }
      return stream(new Chunks(first, request.tensors(), chunkBytes), deadline);
    } catch (StatusRuntimeException error) {
      throw LabelwiseException.from(error);
    }
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

  /**
   * The methods of LabelQualityService (assessLabels, planLabeling): crowdlab, dawid_skene,
   * bayes_em, activelab and interval_estimation, each with the request fields that tune it as
   * params.
   */
  public List<LabelQualityMethodInfo> labelQualityMethods() {
    return labelQualityMethods(defaultDeadline);
  }

  /** The methods of LabelQualityService; {@code deadline} null for none. */
  public List<LabelQualityMethodInfo> labelQualityMethods(Duration deadline) {
    try {
      return withDeadline(blocking, deadline)
          .listStrategies(ListStrategiesRequest.getDefaultInstance())
          .getLabelQualityMethodsList();
    } catch (StatusRuntimeException error) {
      throw LabelwiseException.from(error);
    }
  }

  /**
   * A stream's decisions (StreamSelectionService) carrying its token between calls, within the
   * default deadline per call; {@code token} null starts a new stream.
   */
  public StreamSelector streamSelector(StreamSelector.Config config, byte[] token) {
    return new StreamSelector(channel, config, token, defaultDeadline);
  }

  /** A new stream's decisions; see {@link #streamSelector(StreamSelector.Config, byte[])}. */
  public StreamSelector streamSelector(StreamSelector.Config config) {
    return streamSelector(config, null);
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
   * header (strategies, k, seed, models, ...) and either the first block of exclude or, when
   * there is none, the first block of pool rows (none when its models make the header alone
   * larger than chunkBytes); then the rest of exclude in blocks (the server concatenates exclude
   * lists), then more pool rows, then blocks of each labeled-set tensor's rows. Exclude goes
   * before the rows, so a server scoring rows as they arrive skips the excluded ones.
   */
  static final class Chunks implements Iterator<SelectQueriesRequest> {
    private final SelectQueriesRequest header;
    private final Map<SelectRequest.Input, Tensor> tensors;
    private final boolean headerAlone;
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

    /** The chunks of a request whose models all go as their bytes. */
    Chunks(SelectRequest request, long chunkBytes) {
      this(request.header(Collections.nCopies(request.models().size(), false)), request.tensors(), chunkBytes);
    }

    /** The chunks of header (every field but the tensors, models included) and tensors. */
    Chunks(SelectQueriesRequest header, Map<SelectRequest.Input, Tensor> tensors, long chunkBytes) {
      this.header = header;
      this.tensors = tensors;
      this.chunkBytes = chunkBytes;
      // Models may be megabytes: a header whose models outgrow a chunk goes without rows.
      this.headerAlone = header.getModelsCount() > 0 && header.getSerializedSize() > chunkBytes;
      long rowBytes = 0;
      long size = 0;
      for (Map.Entry<SelectRequest.Input, Tensor> entry : tensors.entrySet()) {
        SelectRequest.Input input = entry.getKey();
        Tensor tensor = entry.getValue();
        if (input.labeled) {
          labeled.add(input);
          continue;
        }
        if (pool.isEmpty()) {
          size = splittable(input, tensor) ? tensor.size(input.axis) : 1;
        }
        pool.add(input);
        if (splittable(input, tensor) && tensor.size(input.axis) > 0) {
          rowBytes += tensor.rawData().size() / tensor.size(input.axis);
        }
      }
      n = pool.isEmpty() ? 0 : Math.max(size, 1);
      poolStep = step(rowBytes);
      exclude = header.getExcludeList();
      excludeStep = (int) Math.max(1, Math.min(Integer.MAX_VALUE, chunkBytes / 10)); // <= 10 bytes a varint
    }

    private long step(long rowBytes) {
      return Math.max(1, chunkBytes / Math.max(rowBytes, 1));
    }

    private static boolean splittable(SelectRequest.Input input, Tensor tensor) {
      return tensor.rank() > input.axis;
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
          ? header.toBuilder().clearExclude()
          : SelectQueriesRequest.newBuilder();
      boolean rowsToo = !(first && headerAlone);
      first = false;
      if (excludeStart < exclude.size()) {
        int end = (int) Math.min((long) excludeStart + excludeStep, exclude.size());
        chunk.addAllExclude(exclude.subList(excludeStart, end));
        excludeStart = end;
        return chunk.build();
      }
      if (!rowsToo) {
        return chunk.build();
      }
      if (poolStart < n) {
        long end = poolStart + poolStep;
        for (SelectRequest.Input input : pool) {
          Tensor tensor = tensors.get(input);
          if (!splittable(input, tensor)) {
            if (poolStart == 0) {
              input.set(chunk, tensor); // a scalar: sent whole, once, for the server to judge
            }
            continue;
          }
          long rows = tensor.size(input.axis);
          input.set(chunk, tensor.slice(input.axis, Math.min(poolStart, rows), Math.min(end, rows)));
        }
        poolStart = end;
      } else if (labeledIndex < labeled.size()) {
        SelectRequest.Input input = labeled.get(labeledIndex);
        Tensor tensor = tensors.get(input);
        if (tensor.rank() <= input.axis) {
          input.set(chunk, tensor);
          labeledIndex++;
        } else {
          long rows = tensor.size(input.axis);
          long step = step(tensor.rawData().size() / Math.max(rows, 1));
          input.set(chunk, tensor.slice(input.axis, Math.min(labeledStart, rows), Math.min(labeledStart + step, rows)));
          labeledStart += step;
          if (labeledStart >= rows) {
            labeledIndex++;
            labeledStart = 0;
          }
        }
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
