package dev.labelwise.client;

import dev.labelwise.v1.AutoSelection;
import java.util.Map;

/**
 * One strategy's answer.
 *
 * @param name the strategy's registry name
 * @param indices the selected pool indices, best first
 * @param scores the score of each selected item, aligned with indices; higher means label first
 * @param params every parameter the strategy ran with, defaults filled in (Long, Double, String
 *     or Boolean values)
 * @param totalCost the summed cost of the selected items (their count without costs)
 * @param adversarialPoints for {@code deepfool} with {@code return_points}: the adversarial point
 *     of each selected item, float64 [indices.length, d] aligned with indices (read it with
 *     {@link Tensor#toDoubleArray()}); null otherwise
 * @param candidatesConsidered how many candidate items the strategy chose among (n minus the
 *     excluded items, or fewer after a batch strategy's pre-filter)
 * @param autoSelection for {@code auto}: the arm that picked each selected item (aligned with
 *     indices; send them back as the round's strategies, see {@link SelectRequest.Builder#round})
 *     and every arm's posterior weight; null otherwise
 * @param adversarialMethod for {@code deepfool}: the method that ran, {@code "gradient"} or
 *     {@code "decision"}; empty otherwise
 */
public record Selection(
    String name, long[] indices, double[] scores, Map<String, Object> params, double totalCost,
    Tensor adversarialPoints, long candidatesConsidered, AutoSelection autoSelection,
    String adversarialMethod) {
  /** A selection whose strategy reports no adversarial method. */
  public Selection(String name, long[] indices, double[] scores, Map<String, Object> params, double totalCost,
      Tensor adversarialPoints, long candidatesConsidered, AutoSelection autoSelection) {
    this(name, indices, scores, params, totalCost, adversarialPoints, candidatesConsidered, autoSelection, "");
  }

  /** A selection without an auto report. */
  public Selection(String name, long[] indices, double[] scores, Map<String, Object> params, double totalCost,
      Tensor adversarialPoints, long candidatesConsidered) {
    this(name, indices, scores, params, totalCost, adversarialPoints, candidatesConsidered, null);
  }

  /** A selection without adversarial points whose candidate count is unknown (0). */
  public Selection(String name, long[] indices, double[] scores, Map<String, Object> params, double totalCost) {
    this(name, indices, scores, params, totalCost, null, 0);
  }
}
