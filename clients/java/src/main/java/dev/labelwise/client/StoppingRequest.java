package dev.labelwise.client;

import dev.labelwise.v1.CheckStoppingRequest;
import dev.labelwise.v1.StoppingRule;
import dev.labelwise.v1.UncertaintyAggregate;
import java.util.Objects;

/**
 * One CheckStopping question: the last rounds' predictions on a fixed stop set (and,
 * optionally, the current model's probabilities on the pool), with the thresholds. Every
 * threshold left out takes the default of the paper that proposed the criterion (see
 * {@code proto/labelwise/v1/query_selection.proto}). Immutable.
 *
 * <pre>{@code
 * StoppingRequest request = StoppingRequest.builder()
 *     .stopSetPredictions(Tensor.int64(labels, rounds, s)) // oldest round first
 *     .poolProbabilities(Tensor.float32(p, n, c))
 *     .build();
 * }</pre>
 */
public final class StoppingRequest {
  private final CheckStoppingRequest message;

  private StoppingRequest(CheckStoppingRequest message) {
    this.message = message;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** The request as its wire message (the tensors' bytes are shared, not copied). */
  public CheckStoppingRequest toMessage() {
    return message;
  }

  /** Builds a {@link StoppingRequest}; every setter returns this builder. */
  public static final class Builder {
    private final CheckStoppingRequest.Builder message = CheckStoppingRequest.newBuilder();

    private Builder() {}

    /**
     * The predictions of the last r rounds' models on one fixed stop set of s items, oldest
     * first: class labels [r, s] ({@link Tensor#int64}) or class probabilities [r, s, c].
     */
    public Builder stopSetPredictions(Tensor predictions) {
      message.setStopSetPredictions(predictions.toMessage());
      return this;
    }

    /** The current model's class probabilities on the unlabeled pool [n, c]. */
    public Builder poolProbabilities(Tensor probabilities) {
      message.setPoolProbabilities(probabilities.toMessage());
      return this;
    }

    /** The mean kappa over the window that says stop, in (0, 1]; default 0.99. */
    public Builder kappaThreshold(double threshold) {
      message.setKappaThreshold(threshold);
      return this;
    }

    /** How many of the most recent kappas are averaged, >= 1; default 3. */
    public Builder kappaWindow(long window) {
      message.setKappaWindow(window);
      return this;
    }

    /** The entropy (nats) at or below which overall_uncertainty says stop; default 0.01. */
    public Builder uncertaintyThreshold(double threshold) {
      message.setUncertaintyThreshold(threshold);
      return this;
    }

    /** How per-item entropies combine: {@code UNCERTAINTY_AGGREGATE_MEAN} (default) or {@code _MAX}. */
    public Builder uncertaintyAggregate(UncertaintyAggregate aggregate) {
      message.setUncertaintyAggregate(Objects.requireNonNull(aggregate));
      return this;
    }

    /** The largest fraction of changed stop-set labels that still counts as no change; default 0. */
    public Builder maxChangeFraction(double fraction) {
      message.setMaxChangeFraction(fraction);
      return this;
    }

    /** How the verdicts combine: {@code STOPPING_RULE_ALL} (default) or {@code STOPPING_RULE_ANY}. */
    public Builder rule(StoppingRule rule) {
      message.setRule(Objects.requireNonNull(rule));
      return this;
    }

    public StoppingRequest build() {
      return new StoppingRequest(message.build());
    }
  }
}
