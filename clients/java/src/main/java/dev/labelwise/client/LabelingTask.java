package dev.labelwise.client;

import dev.labelwise.v1.LabelingKind;

/**
 * One planned label.
 *
 * @param kind {@code LABELING_KIND_RELABEL} (index is a row of annotations) or
 *     {@code LABELING_KIND_LABEL_FIRST} (a row of the pool)
 * @param score the item's priority, 1 - its ActiveLab score; higher means label first
 */
public record LabelingTask(
    LabelingKind kind, long index, double score, long annotator, double expectedAccuracy,
    double cost) {}
