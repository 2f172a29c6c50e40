package dev.labelwise.client;

import dev.labelwise.v1.ParamValue;
import dev.labelwise.v1.SelectQueriesRequest;
import dev.labelwise.v1.StrategySpec;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.BiConsumer;

/**
 * One query selection: the strategies to run, k, and the pool inputs they need. Immutable;
 * see {@code proto/labelwise/v1/query_selection.proto} for each field's rules.
 *
 * <pre>{@code
 * SelectRequest request = SelectRequest.builder()
 *     .strategy("entropy")
 *     .strategy("core_set", Map.of("metric", "cosine"))
 *     .k(20)
 *     .probabilities(Tensor.float32(p, n, c))
 *     .embeddings(Tensor.float32(e, n, d))
 *     .exclude(3, 17)
 *     .build();
 * }</pre>
 */
public final class SelectRequest {
  /** Every tensor field, with its pool axis (along which a stream splits it). */
  enum Input {
    PROBABILITIES(0, SelectQueriesRequest.Builder::setProbabilities),
    LOGITS(0, SelectQueriesRequest.Builder::setLogits),
    COMMITTEE(1, SelectQueriesRequest.Builder::setCommittee),
    COMMITTEE_LOGITS(1, SelectQueriesRequest.Builder::setCommitteeLogits),
    EMBEDDINGS(0, SelectQueriesRequest.Builder::setEmbeddings),
    COSTS(0, SelectQueriesRequest.Builder::setCosts),
    // Not a pool tensor: its rows are the labeled items, streamed after the pool's.
    LABELED_EMBEDDINGS(0, SelectQueriesRequest.Builder::setLabeledEmbeddings);

    final int poolAxis;
    private final BiConsumer<SelectQueriesRequest.Builder, dev.labelwise.v1.Tensor> setter;

    Input(int poolAxis, BiConsumer<SelectQueriesRequest.Builder, dev.labelwise.v1.Tensor> setter) {
      this.poolAxis = poolAxis;
      this.setter = setter;
    }

    void set(SelectQueriesRequest.Builder message, Tensor tensor) {
      setter.accept(message, tensor.toMessage());
    }
  }

  private final SelectQueriesRequest header;
  private final Map<Input, Tensor> tensors;

  private SelectRequest(SelectQueriesRequest header, Map<Input, Tensor> tensors) {
    this.header = header;
    this.tensors = Collections.unmodifiableMap(new EnumMap<>(tensors));
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Every field but the tensors. */
  SelectQueriesRequest header() {
    return header;
  }

  /** The tensors given, in field order. */
  Map<Input, Tensor> tensors() {
    return tensors;
  }

  /** The whole request as one message (the tensors' bytes are shared, not copied). */
  public SelectQueriesRequest toMessage() {
    SelectQueriesRequest.Builder message = header.toBuilder();
    tensors.forEach((input, tensor) -> input.set(message, tensor));
    return message.build();
  }

  /** Builds a {@link SelectRequest}; every setter returns this builder. */
  public static final class Builder {
    private final SelectQueriesRequest.Builder header = SelectQueriesRequest.newBuilder();
    private final Map<Input, Tensor> tensors = new EnumMap<>(Input.class);

    private Builder() {}

    /** Adds a strategy by its registry name (see ListStrategies), with default parameters. */
    public Builder strategy(String name) {
      return strategy(name, Map.of());
    }

    /**
     * Adds a strategy with parameters; a value is an Integer or Long (int), a Float or
     * Double (float), a String or a Boolean. Results come back in the order added.
     */
    public Builder strategy(String name, Map<String, ?> params) {
      StrategySpec.Builder spec = StrategySpec.newBuilder().setName(Objects.requireNonNull(name));
      params.forEach((param, value) -> spec.putParams(param, toParam(name, param, value)));
      header.addStrategies(spec);
      return this;
    }

    /** How many pool items to select per strategy. */
    public Builder k(long k) {
      header.setK(k);
      return this;
    }

    /** Seed of the seeded strategies (an unsigned 64-bit value); 0 when unset. */
    public Builder seed(long seed) {
      header.setSeed(seed);
      return this;
    }

    /** Adds pool indices that must not be selected. */
    public Builder exclude(long... indices) {
      for (long index : indices) {
        header.addExclude(index);
      }
      return this;
    }

    /** Lower a k larger than the candidates to their number instead of failing. */
    public Builder clampK(boolean clampK) {
      header.setClampK(clampK);
      return this;
    }

    /** The labeling budget, in the unit of costs (every item costs 1 without costs). */
    public Builder budget(double budget) {
      header.setBudget(budget);
      return this;
    }

    /** Softmax temperature for logits and committee logits; 1 when unset. */
    public Builder temperature(double temperature) {
      header.setTemperature(temperature);
      return this;
    }

    /** Class probabilities [n, c]. */
    public Builder probabilities(Tensor tensor) {
      return put(Input.PROBABILITIES, tensor);
    }

    /** Unnormalised class scores [n, c], turned into probabilities at temperature. */
    public Builder logits(Tensor tensor) {
      return put(Input.LOGITS, tensor);
    }

    /** Committee member (or MC-dropout sample) probabilities [m, n, c]. */
    public Builder committee(Tensor tensor) {
      return put(Input.COMMITTEE, tensor);
    }

    /** Committee member (or MC-dropout sample) logits [m, n, c]. */
    public Builder committeeLogits(Tensor tensor) {
      return put(Input.COMMITTEE_LOGITS, tensor);
    }

    /** Pool embeddings [n, d]. */
    public Builder embeddings(Tensor tensor) {
      return put(Input.EMBEDDINGS, tensor);
    }

    /** Embeddings of the already labeled items [l, d]. */
    public Builder labeledEmbeddings(Tensor tensor) {
      return put(Input.LABELED_EMBEDDINGS, tensor);
    }

    /** Labeling cost of each pool item [n], used with budget. */
    public Builder costs(Tensor tensor) {
      return put(Input.COSTS, tensor);
    }

    public SelectRequest build() {
      return new SelectRequest(header.build(), tensors);
    }

    private Builder put(Input input, Tensor tensor) {
      tensors.put(input, Objects.requireNonNull(tensor));
      return this;
    }

    private static ParamValue toParam(String strategy, String param, Object value) {
      if (value instanceof Boolean b) {
        return ParamValue.newBuilder().setBoolValue(b).build();
      }
      if (value instanceof Integer || value instanceof Long || value instanceof Short
          || value instanceof Byte) {
        return ParamValue.newBuilder().setIntValue(((Number) value).longValue()).build();
      }
      if (value instanceof Double || value instanceof Float) {
        return ParamValue.newBuilder().setDoubleValue(((Number) value).doubleValue()).build();
      }
      if (value instanceof String s) {
        return ParamValue.newBuilder().setStringValue(s).build();
      }
      throw new IllegalArgumentException("strategy " + strategy + " parameter " + param
          + " must be an Integer, Long, Float, Double, String or Boolean; got "
          + (value == null ? "null" : value.getClass().getName()));
    }
  }
}
