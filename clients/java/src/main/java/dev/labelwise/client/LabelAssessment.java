package dev.labelwise.client;

import dev.labelwise.v1.LabelQualityMethod;

/**
 * The answer to one {@link AssessRequest}: per labeled item (l entries) and per annotator (a
 * entries); see the proto's AssessLabelsResponse.
 *
 * @param confusion Dawid-Skene's confusion matrices [a, c, c], null for CROWDLAB
 */
public record LabelAssessment(
    LabelQualityMethod method,
    long[] consensusLabels,
    double[] consensusQuality,
    double[] itemAgreement,
    double[] annotatorQuality,
    double[] annotatorAgreement,
    long[] annotatorLabelCounts,
    long[] majorityVoteLabels,
    double[] annotatorWeights,
    double modelWeight,
    long iterations,
    Tensor confusion,
    double[] classPriors) {}
