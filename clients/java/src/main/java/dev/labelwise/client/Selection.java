package dev.labelwise.client;

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
 */
public record Selection(
    String name, long[] indices, double[] scores, Map<String, Object> params, double totalCost) {}
