package dev.labelwise.client;

import dev.labelwise.v1.LabelQualityMethod;

/**
 * The answer to one {@link AssessRequest}: per labeled item (l entries) and per annotator (a
 * entries); see the proto's AssessLabelsResponse.
 *
 * @param annotatorWeights CROWDLAB's annotator weights, empty for the other methods
 * @param modelWeight CROWDLAB's model weight, 0 for the other methods
 * @param iterations the EM iterations of Dawid-Skene and Bayes EM, 0 for CROWDLAB
 * @param confusion Dawid-Skene's confusion matrices [a, c, c], null for the other methods
 * @param classPriors Dawid-Skene's class priors; Bayes EM's mean posterior (c entries)
 * @param modelTemperature Bayes EM with labeled probabilities: the fitted temperature of the
 *     model's prior; 0 otherwise
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
    double[] classPriors,
    double modelTemperature) {}
