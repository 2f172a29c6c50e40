package dev.labelwise.client;

/**
 * One stopping criterion's measurement and verdict.
 *
 * @param name {@code stabilizing_predictions}, {@code overall_uncertainty} or
 *     {@code classification_change}
 * @param value the measured value: the mean kappa over the window, the mean (or max) entropy
 *     in nats, or the fraction of changed labels
 * @param threshold the threshold the value was compared with
 * @param stop whether this criterion says stop
 * @param evaluated false when the request carries too few rounds to evaluate it (stop is then
 *     false)
 * @param detail a sentence saying what was compared, or what is missing
 */
public record StoppingCriterion(
    String name, double value, double threshold, boolean stop, boolean evaluated, String detail) {}
