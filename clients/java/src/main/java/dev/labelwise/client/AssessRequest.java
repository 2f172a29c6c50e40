package dev.labelwise.client;

import dev.labelwise.v1.AssessLabelsRequest;
import dev.labelwise.v1.LabelQualityMethod;
import java.util.Objects;

/**
 * One AssessLabels question: labels from several annotators (and the model's out-of-sample
 * probabilities), for consensus labels and quality scores (see
 * {@code proto/labelwise/v1/label_quality.proto}). Immutable.
 *
 * <pre>{@code
 * AssessRequest request = AssessRequest.builder()
 *     .annotations(Tensor.int64(labels, l, a)) // -1 where annotator j did not label item i
 *     .labeledProbabilities(Tensor.float32(p, l, c))
 *     .build();
 * }</pre>
 */
public final class AssessRequest {
  /** The missing-annotation marker of an annotations matrix [l, a]. */
  public static final long MISSING = -1;

  private final AssessLabelsRequest message;

  private AssessRequest(AssessLabelsRequest message) {
    this.message = message;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** The request as its wire message. */
  public AssessLabelsRequest toMessage() {
    return message;
  }

  /** Builds an {@link AssessRequest}; every setter returns this builder. */
  public static final class Builder {
    private final AssessLabelsRequest.Builder message = AssessLabelsRequest.newBuilder();

    private Builder() {}

    /** Classes per annotator [l, a] ({@link Tensor#int64}), {@link #MISSING} where not labeled. */
    public Builder annotations(Tensor annotations) {
      message.setAnnotations(annotations.toMessage());
      return this;
    }

    /**
     * The model's out-of-sample probabilities on the labeled items [l, c]; CROWDLAB needs them,
     * Bayes EM takes them as its prior.
     */
    public Builder labeledProbabilities(Tensor probabilities) {
      message.setLabeledProbabilities(probabilities.toMessage());
      return this;
    }

    /** {@code LABEL_QUALITY_METHOD_CROWDLAB} (default), {@code _DAWID_SKENE} or {@code _BAYES_EM}. */
    public Builder method(LabelQualityMethod method) {
      message.setMethod(Objects.requireNonNull(method));
      return this;
    }

    /** The number of classes c, when labeledProbabilities is absent (Dawid-Skene, Bayes EM). */
    public Builder numClasses(long classes) {
      message.setNumClasses(classes);
      return this;
    }

    /** Dawid-Skene's and Bayes EM's most EM iterations; default 100. */
    public Builder maxIterations(long iterations) {
      message.setMaxIterations(iterations);
      return this;
    }

    /**
     * Dawid-Skene's and Bayes EM's stopping gain of the evidence lower bound per annotation;
     * default 1e-5.
     */
    public Builder tolerance(double tolerance) {
      message.setTolerance(tolerance);
      return this;
    }

    /**
     * Bayes EM: how many pseudo-labels at the crowd's pooled accuracy each annotator's accuracy
     * starts from, in [0, 1e6]; default 10.
     */
    public Builder accuracyPriorStrength(double strength) {
      message.setAccuracyPriorStrength(strength);
      return this;
    }

    public AssessRequest build() {
      return new AssessRequest(message.build());
    }
  }
}
