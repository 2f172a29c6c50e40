package dev.labelwise.client;

import com.google.protobuf.ByteString;
import dev.labelwise.v1.DecideRequest;
import dev.labelwise.v1.DecideResponse;
import dev.labelwise.v1.DecideStreamRequest;
import dev.labelwise.v1.DecideStreamResponse;
import dev.labelwise.v1.ParamValue;
import dev.labelwise.v1.StrategySpec;
import dev.labelwise.v1.StreamSelectionServiceGrpc;
import dev.labelwise.v1.StreamWindowCap;
import io.grpc.Channel;
import io.grpc.Deadline;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * One stream's decisions (StreamSelectionService): should each arriving item be labeled, at a
 * target rate, from any replica. It carries the stream's token from each answer to the next
 * call; {@link #token()} saves it to resume the stream later, on any replica.
 *
 * <pre>{@code
 * StreamSelector stream = client.streamSelector(
 *     StreamSelector.config("variable_uncertainty").budget(0.05));
 * StreamSelector.Decisions d = stream.decide(StreamSelector.Items.probabilities(batch));
 * }</pre>
 */
public final class StreamSelector {
  /** A stream's configuration, fixed for the stream. */
  public static final class Config {
    private final String strategy;
    private final Map<String, Object> params = new LinkedHashMap<>();
    private Double budget;
    private long windowItems;
    private long maxLabels;
    private boolean capped;
    private long seed;

    private Config(String strategy) {
      this.strategy = strategy;
    }

    /** A parameter of the strategy: Integer/Long, Double/Float, String or Boolean. */
    public Config param(String name, Object value) {
      params.put(name, value);
      return this;
    }

    /** Target labeling rate in (0, 1]; unset: 0.1. */
    public Config budget(double budget) {
      this.budget = budget;
      return this;
    }

    /** At most maxLabels labels per tumbling window of windowItems items. */
    public Config windowCap(long windowItems, long maxLabels) {
      this.windowItems = windowItems;
      this.maxLabels = maxLabels;
      this.capped = true;
      return this;
    }

    /** A new stream's seed (randomised strategies). */
    public Config seed(long seed) {
      this.seed = seed;
      return this;
    }
  }

  /** One batch of items: exactly one tensor, and the temperature of logits. */
  public static final class Items {
    private final String field;
    private final Tensor tensor;
    private Double temperature;

    private Items(String field, Tensor tensor) {
      this.field = field;
      this.tensor = tensor;
    }

    public static Items probabilities(Tensor t) {
      return new Items("probabilities", t);
    }

    public static Items logits(Tensor t) {
      return new Items("logits", t);
    }

    public static Items committee(Tensor t) {
      return new Items("committee", t);
    }

    public static Items committeeLogits(Tensor t) {
      return new Items("committee_logits", t);
    }

    public static Items utilities(Tensor t) {
      return new Items("utilities", t);
    }

    /** Kernel frequency estimates [n, c], for "pal" only. */
    public static Items frequencies(Tensor t) {
      return new Items("frequencies", t);
    }

    public Items temperature(double temperature) {
      this.temperature = temperature;
      return this;
    }
  }

  /** One batch's answer: item i's decision, utility and labeling probability at index i. */
  public record Decisions(boolean[] label, double[] utilities, double[] labelProbabilities,
      byte[] token, long itemsSeen, long itemsLabeled) {
    static Decisions from(DecideResponse r) {
      boolean[] label = new boolean[r.getLabelCount()];
      for (int i = 0; i < label.length; i++) {
        label[i] = r.getLabel(i);
      }
      return new Decisions(label,
          r.getUtilitiesList().stream().mapToDouble(Double::doubleValue).toArray(),
          r.getLabelProbabilitiesList().stream().mapToDouble(Double::doubleValue).toArray(),
          r.getToken().toByteArray(), r.getItemsSeen(), r.getItemsLabeled());
    }
  }

  public static Config config(String strategy) {
    return new Config(strategy);
  }

  private final StreamSelectionServiceGrpc.StreamSelectionServiceBlockingStub blocking;
  private final StreamSelectionServiceGrpc.StreamSelectionServiceStub async;
  private final Config config;
  private final Duration deadline;
  private ByteString token;

  StreamSelector(Channel channel, Config config, byte[] token, Duration deadline) {
    this.blocking = StreamSelectionServiceGrpc.newBlockingStub(channel);
    this.async = StreamSelectionServiceGrpc.newStub(channel);
    this.config = config;
    this.token = token == null ? ByteString.EMPTY : ByteString.copyFrom(token);
    this.deadline = deadline;
  }

  /** The stream's state after the last answer (empty: a new stream). */
  public byte[] token() {
    return token.toByteArray();
  }

  /** Replaces the token, for example with one saved earlier. */
  public void token(byte[] token) {
    this.token = ByteString.copyFrom(token);
  }

  /** The DecideRequest for items with the current token. */
  public DecideRequest request(Items items) {
    StrategySpec.Builder spec = StrategySpec.newBuilder().setName(config.strategy);
    config.params.forEach((name, value) -> spec.putParams(name, param(name, value)));
    DecideRequest.Builder b = DecideRequest.newBuilder().setStrategy(spec).setToken(token)
        .setSeed(config.seed);
    if (config.budget != null) {
      b.setBudget(config.budget);
    }
    if (config.capped) {
      b.setWindowCap(StreamWindowCap.newBuilder().setWindowItems(config.windowItems)
          .setMaxLabels(config.maxLabels));
    }
    if (items.temperature != null) {
      b.setTemperature(items.temperature);
    }
    dev.labelwise.v1.Tensor t = items.tensor.toMessage();
    switch (items.field) {
      case "probabilities" -> b.setProbabilities(t);
      case "logits" -> b.setLogits(t);
      case "committee" -> b.setCommittee(t);
      case "committee_logits" -> b.setCommitteeLogits(t);
      case "frequencies" -> b.setFrequencies(t);
      default -> b.setUtilities(t);
    }
    return b.build();
  }

  /**
   * Decisions for one batch; the token moves on to the answer's.
   *
   * @throws LabelwiseException when the call fails; a refused token names the field "token"
   */
  public Decisions decide(Items items) {
    DecideResponse response;
    try {
      StreamSelectionServiceGrpc.StreamSelectionServiceBlockingStub stub = blocking;
      if (deadline != null) {
        stub = stub.withDeadline(Deadline.after(deadline.toNanos(), TimeUnit.NANOSECONDS));
      }
      response = stub.decide(request(items));
    } catch (StatusRuntimeException error) {
      throw LabelwiseException.from(error);
    }
    token = response.getToken();
    return Decisions.from(response);
  }

  /**
   * Every batch over one DecideStream call, each sent after the previous answer; the answers
   * in order, the token moving on with each.
   */
  public List<Decisions> decideStream(List<Items> batches) {
    BlockingQueue<Object> answers = new LinkedBlockingQueue<>();
    StreamObserver<DecideStreamResponse> observer = new StreamObserver<>() {
      @Override
      public void onNext(DecideStreamResponse value) {
        answers.add(value);
      }

      @Override
      public void onError(Throwable error) {
        answers.add(error);
      }

      @Override
      public void onCompleted() {}
    };
    StreamSelectionServiceGrpc.StreamSelectionServiceStub stub = async;
    if (deadline != null) {
      stub = stub.withDeadline(Deadline.after(deadline.toNanos(), TimeUnit.NANOSECONDS));
    }
    StreamObserver<DecideStreamRequest> requests = stub.decideStream(observer);
    List<Decisions> out = new ArrayList<>();
    try {
      for (int i = 0; i < batches.size(); i++) {
        DecideRequest request = request(batches.get(i));
        if (i > 0) {
          request = request.toBuilder().setToken(ByteString.EMPTY).build(); // the call carries it on
        }
        requests.onNext(DecideStreamRequest.newBuilder().setRequest(request).build());
        Object answer = answers.take();
        if (answer instanceof Throwable error) {
          throw LabelwiseException.from(error);
        }
        DecideResponse response = ((DecideStreamResponse) answer).getResponse();
        token = response.getToken();
        out.add(Decisions.from(response));
      }
      requests.onCompleted();
    } catch (InterruptedException interrupted) {
      requests.onError(interrupted);
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting for DecideStream", interrupted);
    }
    return out;
  }

  private static ParamValue param(String name, Object value) {
    if (value instanceof Boolean b) {
      return ParamValue.newBuilder().setBoolValue(b).build();
    }
    if (value instanceof Integer || value instanceof Long) {
      return ParamValue.newBuilder().setIntValue(((Number) value).longValue()).build();
    }
    if (value instanceof Double || value instanceof Float) {
      return ParamValue.newBuilder().setDoubleValue(((Number) value).doubleValue()).build();
    }
    if (value instanceof String s) {
      return ParamValue.newBuilder().setStringValue(s).build();
    }
    throw new IllegalArgumentException("parameter " + name + " must be a Long, Double, String "
        + "or Boolean; got " + (value == null ? "null" : value.getClass().getSimpleName()));
  }
}
