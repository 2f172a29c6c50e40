package dev.labelwise.client;

import java.util.List;
import java.util.Optional;

/**
 * The answer to one {@link StoppingRequest}.
 *
 * @param stop the combined verdict by the request's rule over the evaluated criteria; false
 *     when none could be evaluated
 * @param criteria one per criterion whose input the request carried, in the order
 *     stabilizing_predictions, overall_uncertainty, classification_change
 * @param kappas Cohen's kappa between each pair of successive rounds (r - 1 values, oldest pair
 *     first)
 */
public record StoppingVerdict(boolean stop, List<StoppingCriterion> criteria, double[] kappas) {
  public StoppingVerdict {
    criteria = List.copyOf(criteria);
  }

  /** The criterion with this name, when the request carried its input. */
  public Optional<StoppingCriterion> criterion(String name) {
    return criteria.stream().filter(c -> c.name().equals(name)).findFirst();
  }
}
