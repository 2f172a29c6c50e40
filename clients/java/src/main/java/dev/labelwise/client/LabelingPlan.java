package dev.labelwise.client;

import dev.labelwise.v1.AnnotatorEstimate;
import java.util.List;

/**
 * The answer to one {@link PlanRequest}: the tasks best first, and what the plan knows of each
 * annotator (in the order of the annotations' columns).
 */
public record LabelingPlan(
    List<LabelingTask> tasks,
    double totalCost,
    List<AnnotatorEstimate> annotators,
    double temperature,
    long candidatesConsidered,
    long[] consensusLabels) {
  public LabelingPlan {
    tasks = List.copyOf(tasks);
    annotators = List.copyOf(annotators);
  }
}
