package dev.labelwise.client;

import dev.labelwise.v1.AccuracyBound;
import dev.labelwise.v1.PlanLabelingRequest;
import java.util.Arrays;
import java.util.Objects;

/**
 * One PlanLabeling question: which items to label again, which to label first, and by whom,
 * within a budget (see {@code proto/labelwise/v1/label_quality.proto}). Immutable.
 *
 * <pre>{@code
 * PlanRequest request = PlanRequest.builder()
 *     .annotations(Tensor.int64(labels, l, a))
 *     .labeledProbabilities(Tensor.float32(p, l, c))
 *     .poolProbabilities(Tensor.float32(pool, n, c))
 *     .annotatorCosts(Tensor.float64(new double[] {3, 2, 1.5, 1}, 4))
 *     .budget(50).k(100).clampK(true)
 *     .build();
 * }</pre>
 */
public final class PlanRequest {
  private final PlanLabelingRequest message;

  private PlanRequest(PlanLabelingRequest message) {
    this.message = message;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** The request as its wire message. */
  public PlanLabelingRequest toMessage() {
    return message;
  }

  /** Builds a {@link PlanRequest}; every setter returns this builder. */
  public static final class Builder {
    private final PlanLabelingRequest.Builder message = PlanLabelingRequest.newBuilder();

    private Builder() {}

    /** Classes per annotator [l, a], -1 where not labeled. */
    public Builder annotations(Tensor annotations) {
      message.setAnnotations(annotations.toMessage());
      return this;
    }

    /** The model's out-of-sample probabilities on the labeled items [l, c]. */
    public Builder labeledProbabilities(Tensor probabilities) {
      message.setLabeledProbabilities(probabilities.toMessage());
      return this;
    }

    /** The model's probabilities on the unlabeled pool [n, c]; without them, re-labels only. */
    public Builder poolProbabilities(Tensor probabilities) {
      message.setPoolProbabilities(probabilities.toMessage());
      return this;
    }

    /** The price of one label from each annotator [a]; default 1 each. */
    public Builder annotatorCosts(Tensor costs) {
      message.setAnnotatorCosts(costs.toMessage());
      return this;
    }

    /** The plan's total cost stays within this. */
    public Builder budget(double budget) {
      message.setBudget(budget);
      return this;
    }

    /** The most tasks, >= 1. */
    public Builder k(long k) {
      message.setK(k);
      return this;
    }

    /** Lower a k above the number of candidates instead of refusing it. */
    public Builder clampK(boolean clamp) {
      message.setClampK(clamp);
      return this;
    }

    /** "" or "activelab" (default), "least_confidence", "margin", "ratio" or "entropy". */
    public Builder poolStrategy(String strategy) {
      message.setPoolStrategy(Objects.requireNonNull(strategy));
      return this;
    }

    /** Which end of each annotator's accuracy interval to use; default the upper. */
    public Builder accuracyBound(AccuracyBound bound) {
      message.setAccuracyBound(Objects.requireNonNull(bound));
      return this;
    }

    /** The accuracy intervals' level is 1 - alpha; default 0.05. */
    public Builder alpha(double alpha) {
      message.setAlpha(alpha);
      return this;
    }

    /** IEThresh's threshold on the accuracies, relative to the best; default 0.9. */
    public Builder epsilon(double epsilon) {
      message.setEpsilon(epsilon);
      return this;
    }

    /** The most tasks per annotator. */
    public Builder maxTasksPerAnnotator(long tasks) {
      message.setMaxTasksPerAnnotator(tasks);
      return this;
    }

    /** Rows of annotations not to plan. */
    public Builder excludeLabeled(long... rows) {
      message.addAllExcludeLabeled(Arrays.stream(rows).boxed().toList());
      return this;
    }

    /** Rows of the pool not to plan. */
    public Builder excludePool(long... rows) {
      message.addAllExcludePool(Arrays.stream(rows).boxed().toList());
      return this;
    }

    public PlanRequest build() {
      return new PlanRequest(message.build());
    }
  }
}
