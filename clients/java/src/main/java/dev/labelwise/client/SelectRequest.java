package dev.labelwise.client;

import com.google.protobuf.ByteString;
import com.google.protobuf.DescriptorProtos.FieldOptions;
import com.google.protobuf.Descriptors.FieldDescriptor;
import dev.labelwise.v1.Model;
import dev.labelwise.v1.ModelOutput;
import dev.labelwise.v1.OptionsProto;
import dev.labelwise.v1.ParamValue;
import dev.labelwise.v1.SelectQueriesRequest;
import dev.labelwise.v1.SelectionRound;
import dev.labelwise.v1.StrategySpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

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
 *
 * <p>Model mode: instead of the model's outputs, send the ONNX model itself and the pool's
 * inputs, and the server runs it.
 *
 * <pre>{@code
 * SelectRequest request = SelectRequest.builder()
 *     .strategy("entropy")
 *     .strategy("deepfool", Map.of("return_points", true))
 *     .k(20)
 *     .model(Path.of("classifier.onnx")) // once per model; several form an ensemble
 *     .modelInputs(Tensor.float32(features, n, d))
 *     .build();
 * }</pre>
 */
public final class SelectRequest {
  /**
   * Every tensor field, each the SelectQueriesRequest field of its lowercase name, with the
   * axis along which a stream splits it: the proto's pool_axis option, or labeled_axis for the
   * labeled-set tensors (not the pool's; they stream after it), read from the descriptors.
   */
  enum Input {
    PROBABILITIES,
    LOGITS,
    COMMITTEE,
    COMMITTEE_LOGITS,
    EMBEDDINGS,
    COSTS,
    ITEM_WEIGHTS,
    MODEL_INPUTS,
    MULTILABEL_PROBABILITIES,
    MULTILABEL_LOGITS,
    MULTILABEL_COMMITTEE,
    MULTILABEL_COMMITTEE_LOGITS,
    REGRESSION_MEAN,
    REGRESSION_STD,
    REGRESSION_SAMPLES,
    STRUCTURED_PROBABILITIES,
    STRUCTURED_LOGITS,
    STRUCTURED_COMMITTEE,
    STRUCTURED_COMMITTEE_LOGITS,
    STRUCTURED_MASK,
    LABELED_EMBEDDINGS,
    LABELED_TARGETS;

    final FieldDescriptor field;
    final int axis;
    final boolean labeled;

    Input() {
      field = SelectQueriesRequest.getDescriptor().findFieldByName(name().toLowerCase(Locale.ROOT));
      FieldOptions options = field.getOptions();
      labeled = options.hasExtension(OptionsProto.labeledAxis);
      if (!labeled && !options.hasExtension(OptionsProto.poolAxis)) {
        throw new IllegalStateException(field.getName() + " declares no pool_axis or labeled_axis");
      }
      axis = labeled ? options.getExtension(OptionsProto.labeledAxis) : options.getExtension(OptionsProto.poolAxis);
    }

    void set(SelectQueriesRequest.Builder message, Tensor tensor) {
      message.setField(field, tensor.toMessage());
    }
  }

  /** An ONNX model's bytes and their SHA-256 (lowercase hex), by which it is sent once cached. */
  record OnnxModel(ByteString onnx, String sha256) {
    static OnnxModel of(byte[] onnx) {
      try {
        String digest = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(onnx));
        return new OnnxModel(ByteString.copyFrom(onnx), digest);
      } catch (NoSuchAlgorithmException impossible) {
        throw new IllegalStateException("every Java platform has SHA-256", impossible);
      }
    }

    Model bytes() {
      return Model.newBuilder().setOnnx(onnx).build();
    }

    Model hash() {
      return Model.newBuilder().setSha256(sha256).build();
    }
  }

  private final SelectQueriesRequest header;
  private final Map<Input, Tensor> tensors;
  private final List<OnnxModel> models;

  private SelectRequest(SelectQueriesRequest header, Map<Input, Tensor> tensors, List<OnnxModel> models) {
    this.header = header;
    this.tensors = Collections.unmodifiableMap(new EnumMap<>(tensors));
    this.models = List.copyOf(models);
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Every field but the tensors and the models. */
  SelectQueriesRequest header() {
    return header;
  }

  /** Every field but the tensors, with model i as its hash when hashed.get(i), else its bytes. */
  SelectQueriesRequest header(List<Boolean> hashed) {
    SelectQueriesRequest.Builder message = header.toBuilder();
    for (int i = 0; i < models.size(); i++) {
      message.addModels(hashed.get(i) ? models.get(i).hash() : models.get(i).bytes());
    }
    return message.build();
  }

  /** The models, in the order added (empty: no model mode). */
  List<OnnxModel> models() {
    return models;
  }

  /** The tensors given, in field order. */
  Map<Input, Tensor> tensors() {
    return tensors;
  }

  /**
   * The whole request as one message, every model as its bytes (the tensors' and models' bytes
   * are shared, not copied).
   */
  public SelectQueriesRequest toMessage() {
    SelectQueriesRequest.Builder message = header.toBuilder();
    models.forEach(model -> message.addModels(model.bytes()));
    tensors.forEach((input, tensor) -> input.set(message, tensor));
    return message.build();
  }

  /** Builds a {@link SelectRequest}; every setter returns this builder. */
  public static final class Builder {
    private final SelectQueriesRequest.Builder header = SelectQueriesRequest.newBuilder();
    private final Map<Input, Tensor> tensors = new EnumMap<>(Input.class);
    private final List<OnnxModel> models = new ArrayList<>();

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

    /**
     * Adds a past labeling round, after the earlier ones, for the {@code auto} strategy (see
     * docs/strategy-selection.md): the strategy that picked each item (aligned with labels, or
     * one name for all; "" for items no strategy picked, such as the seed set), the class each
     * received, and optionally (null or empty: none) the model's [labels.length, c]
     * predictions for them before labeling, flattened row-major.
     */
    public Builder round(List<String> strategies, long[] labels, double[] probabilities) {
      SelectionRound.Builder round = SelectionRound.newBuilder().addAllStrategies(strategies);
      for (long label : labels) {
        round.addLabels(label);
      }
      if (probabilities != null) {
        for (double p : probabilities) {
          round.addProbabilities(p);
        }
      }
      header.addHistory(round);
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

    /**
     * How many items each pool row stands for [n] (>= 0), read by {@code badge} only: it then
     * seeds weighted k-means++, as a sharded client's final merge does.
     */
    public Builder itemWeights(Tensor tensor) {
      return put(Input.ITEM_WEIGHTS, tensor);
    }

    /** Multi-label per-label probabilities (sigmoid outputs) [n, L]. */
    public Builder multilabelProbabilities(Tensor tensor) {
      return put(Input.MULTILABEL_PROBABILITIES, tensor);
    }

    /** Multi-label logits [n, L], sigmoid at temperature. */
    public Builder multilabelLogits(Tensor tensor) {
      return put(Input.MULTILABEL_LOGITS, tensor);
    }

    /** Multi-label committee (or MC-dropout) probabilities [m, n, L]. */
    public Builder multilabelCommittee(Tensor tensor) {
      return put(Input.MULTILABEL_COMMITTEE, tensor);
    }

    /** Multi-label committee (or MC-dropout) logits [m, n, L]. */
    public Builder multilabelCommitteeLogits(Tensor tensor) {
      return put(Input.MULTILABEL_COMMITTEE_LOGITS, tensor);
    }

    /** The labeled set's mean number of positive labels per item. */
    public Builder labeledLabelCardinality(double cardinality) {
      header.setLabeledLabelCardinality(cardinality);
      return this;
    }

    /** Regression: the predictive mean on the pool [n]. */
    public Builder regressionMean(Tensor tensor) {
      return put(Input.REGRESSION_MEAN, tensor);
    }

    /** Regression: the predictive standard deviation [n]. */
    public Builder regressionStd(Tensor tensor) {
      return put(Input.REGRESSION_STD, tensor);
    }

    /** Regression: m predictions per pool item (committee or MC-dropout) [m, n]. */
    public Builder regressionSamples(Tensor tensor) {
      return put(Input.REGRESSION_SAMPLES, tensor);
    }

    /** Regression: the labeled items' targets [l]. */
    public Builder labeledTargets(Tensor tensor) {
      return put(Input.LABELED_TARGETS, tensor);
    }

    /** Structured per-element class probabilities [n, c, ...]. */
    public Builder structuredProbabilities(Tensor tensor) {
      return put(Input.STRUCTURED_PROBABILITIES, tensor);
    }

    /** Structured logits [n, c, ...], softmax over axis 1 at temperature. */
    public Builder structuredLogits(Tensor tensor) {
      return put(Input.STRUCTURED_LOGITS, tensor);
    }

    /** Structured committee (or MC-dropout) probabilities [m, n, c, ...]. */
    public Builder structuredCommittee(Tensor tensor) {
      return put(Input.STRUCTURED_COMMITTEE, tensor);
    }

    /** Structured committee (or MC-dropout) logits [m, n, c, ...]. */
    public Builder structuredCommitteeLogits(Tensor tensor) {
      return put(Input.STRUCTURED_COMMITTEE_LOGITS, tensor);
    }

    /** Which elements are real (1) or padding (0), [n, ...]; unset: all real. */
    public Builder structuredMask(Tensor tensor) {
      return put(Input.STRUCTURED_MASK, tensor);
    }

    /**
     * Model mode: adds an ONNX model (its serialized ModelProto) for the server to run on
     * {@link #modelInputs} (or, without them, on {@link #embeddings}). One model gives the
     * pool's probabilities; two or more form an ensemble whose members give the committee.
     * The client sends a model's bytes on its first call and only its SHA-256 afterwards (see
     * {@link LabelwiseClient#select(SelectRequest)}). The bytes are copied.
     */
    public Builder model(byte[] onnx) {
      models.add(OnnxModel.of(Objects.requireNonNull(onnx)));
      return this;
    }

    /** Model mode: adds the ONNX model in this file, as {@link #model(byte[])}. */
    public Builder model(Path onnxFile) {
      try {
        return model(Files.readAllBytes(onnxFile));
      } catch (IOException unreadable) {
        throw new UncheckedIOException(unreadable);
      }
    }

    /**
     * What the models' class output holds: {@code MODEL_OUTPUT_PROBABILITIES} (the default,
     * whose rows are checked to sum to 1) or {@code MODEL_OUTPUT_LOGITS} (softmax at
     * temperature).
     */
    public Builder modelOutput(ModelOutput output) {
      header.setModelOutput(Objects.requireNonNull(output));
      return this;
    }

    /** The name of a second model output holding penultimate-layer embeddings [n, d']. */
    public Builder embeddingsOutput(String outputName) {
      header.setEmbeddingsOutput(Objects.requireNonNull(outputName));
      return this;
    }

    /** MC dropout: run the one model this many times (2 to 64) with dropout on; 0 runs it once. */
    public Builder mcDropoutSamples(int samples) {
      header.setMcDropoutSamples(samples);
      return this;
    }

    /** The models' input [n, d]: the pool's raw features, or whatever the models take. */
    public Builder modelInputs(Tensor tensor) {
      return put(Input.MODEL_INPUTS, tensor);
    }

    /** Pool rows per inference call; 0 (the default) lets the server choose. */
    public Builder inferenceBatchRows(long rows) {
      header.setInferenceBatchRows(rows);
      return this;
    }

    /** A limit on the time the server spends running the models (DEADLINE_EXCEEDED past it). */
    public Builder inferenceTimeout(Duration timeout) {
      header.setInferenceTimeoutSeconds(timeout.toNanos() / 1e9);
      return this;
    }

    public SelectRequest build() {
      return new SelectRequest(header.build(), tensors, models);
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
