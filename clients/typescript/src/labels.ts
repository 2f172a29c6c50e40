/**
 * LabelQualityService in the TypeScript client: labels from several noisy annotators.
 * See proto/labelwise/v1/label_quality.proto for every field's rules.
 */
import { create } from "@bufbuild/protobuf";

import {
  AccuracyBound,
  AssessLabelsRequestSchema,
  LabelingKind,
  LabelQualityMethod,
  PlanLabelingRequestSchema,
  type AssessLabelsRequest,
  type AssessLabelsResponse,
  type PlanLabelingRequest,
  type PlanLabelingResponse,
} from "./gen/labelwise/v1/label_quality_pb.js";
import { fromFloat64Message, toMessage, type Float64Tensor, type Tensor } from "./tensor.js";

/** The missing-annotation marker of an annotations matrix [l, a]. */
export const MISSING = -1;

/** An AssessLabels request. */
export interface AssessRequest {
  /** [l, a] int32/int64 classes; MISSING (-1) where annotator j did not label item i. */
  annotations: Tensor;
  /** [l, c] out-of-sample probabilities; required by "crowdlab", the prior of "bayes_em". */
  labeledProbabilities?: Tensor;
  method?: "crowdlab" | "dawid_skene" | "bayes_em";
  /** c, when labeledProbabilities is absent (Dawid-Skene, Bayes EM). */
  numClasses?: number;
  /** Dawid-Skene, Bayes EM: the most EM iterations (default 100). */
  maxIterations?: number;
  /** Dawid-Skene, Bayes EM: the EM stopping tolerance (default 1e-5). */
  tolerance?: number;
  /**
   * Bayes EM: pseudo-labels at the pooled accuracy each annotator's accuracy starts from, in
   * [0, 1e6] (default 10).
   */
  accuracyPriorStrength?: number;
}

/** AssessLabels' answer: per labeled item [l] and per annotator [a]. */
export interface LabelAssessment {
  method: "crowdlab" | "dawid_skene" | "bayes_em";
  consensusLabels: number[];
  consensusQuality: number[];
  itemAgreement: number[];
  annotatorQuality: number[];
  annotatorAgreement: number[];
  annotatorLabelCounts: number[];
  majorityVoteLabels: number[];
  annotatorWeights: number[]; // CROWDLAB; empty for the others
  modelWeight: number; // CROWDLAB; 0 for the others
  iterations: number; // Dawid-Skene, Bayes EM; 0 for CROWDLAB
  confusion?: Float64Tensor; // Dawid-Skene [a, c, c]
  classPriors: number[]; // Dawid-Skene; Bayes EM's mean posterior [c]
  /** Bayes EM with labeledProbabilities: the fitted temperature of the model's prior; 0 otherwise. */
  modelTemperature: number;
}

/** A PlanLabeling request. */
export interface PlanRequest {
  annotations: Tensor; // [l, a]
  labeledProbabilities: Tensor; // [l, c] out-of-sample
  poolProbabilities?: Tensor; // [n, c]
  annotatorCosts?: Tensor; // [a]
  budget?: number;
  k: number;
  clampK?: boolean;
  /** "" or "activelab" (default), "least_confidence", "margin", "ratio", "entropy". */
  poolStrategy?: string;
  accuracyBound?: "upper" | "mean" | "lower";
  alpha?: number;
  epsilon?: number;
  maxTasksPerAnnotator?: number;
  excludeLabeled?: readonly number[];
  excludePool?: readonly number[];
}

/** One planned label: "relabel" (index: a row of annotations) or "label_first" (a pool row). */
export interface LabelingTask {
  kind: "relabel" | "label_first";
  index: number;
  score: number;
  annotator: number;
  expectedAccuracy: number;
  cost: number;
}

export interface AnnotatorEstimate {
  accuracyMean: number;
  accuracyLower: number;
  accuracyUpper: number;
  observations: number;
  quality: number;
  eligible: boolean;
  cost: number;
  tasks: number;
}

/** PlanLabeling's answer: the tasks best first, what it knows of each annotator. */
export interface LabelingPlan {
  tasks: LabelingTask[];
  totalCost: number;
  annotators: AnnotatorEstimate[];
  temperature: number;
  candidatesConsidered: number;
  consensusLabels: number[];
}

const METHODS = {
  crowdlab: LabelQualityMethod.CROWDLAB,
  dawid_skene: LabelQualityMethod.DAWID_SKENE,
  bayes_em: LabelQualityMethod.BAYES_EM,
};
const BOUNDS = { upper: AccuracyBound.UPPER, mean: AccuracyBound.MEAN, lower: AccuracyBound.LOWER };

function pick<V>(values: Record<string, V>, name: string | undefined, option: string): V | undefined {
  if (name === undefined) return undefined;
  if (!Object.hasOwn(values, name)) {
    throw new RangeError(`${option} must be one of ${Object.keys(values).join(", ")}; got ${name}`);
  }
  return values[name];
}

const big = (v: number | undefined): bigint | undefined => (v === undefined ? undefined : BigInt(v));

export function assessMessage(request: AssessRequest): AssessLabelsRequest {
  return create(AssessLabelsRequestSchema, {
    annotations: toMessage(request.annotations),
    labeledProbabilities: request.labeledProbabilities && toMessage(request.labeledProbabilities),
    method: pick(METHODS, request.method, "method") ?? LabelQualityMethod.UNSPECIFIED,
    numClasses: big(request.numClasses),
    maxIterations: big(request.maxIterations),
    tolerance: request.tolerance,
    accuracyPriorStrength: request.accuracyPriorStrength,
  });
}

export function fromAssess(r: AssessLabelsResponse): LabelAssessment {
  return {
    method:
      r.method === LabelQualityMethod.DAWID_SKENE
        ? "dawid_skene"
        : r.method === LabelQualityMethod.BAYES_EM
          ? "bayes_em"
          : "crowdlab",
    consensusLabels: r.consensusLabels.map(Number),
    consensusQuality: [...r.consensusQuality],
    itemAgreement: [...r.itemAgreement],
    annotatorQuality: [...r.annotatorQuality],
    annotatorAgreement: [...r.annotatorAgreement],
    annotatorLabelCounts: r.annotatorLabelCounts.map(Number),
    majorityVoteLabels: r.majorityVoteLabels.map(Number),
    annotatorWeights: [...r.annotatorWeights],
    modelWeight: r.modelWeight,
    iterations: Number(r.iterations),
    ...(r.confusion && { confusion: fromFloat64Message(r.confusion, "confusion") }),
    classPriors: [...r.classPriors],
    modelTemperature: r.modelTemperature,
  };
}

export function planMessage(request: PlanRequest): PlanLabelingRequest {
  return create(PlanLabelingRequestSchema, {
    annotations: toMessage(request.annotations),
    labeledProbabilities: toMessage(request.labeledProbabilities),
    poolProbabilities: request.poolProbabilities && toMessage(request.poolProbabilities),
    annotatorCosts: request.annotatorCosts && toMessage(request.annotatorCosts),
    budget: request.budget,
    k: BigInt(request.k),
    clampK: request.clampK ?? false,
    poolStrategy: request.poolStrategy ?? "",
    accuracyBound: pick(BOUNDS, request.accuracyBound, "accuracyBound") ?? AccuracyBound.UNSPECIFIED,
    alpha: request.alpha,
    epsilon: request.epsilon,
    maxTasksPerAnnotator: big(request.maxTasksPerAnnotator),
    excludeLabeled: (request.excludeLabeled ?? []).map((i) => BigInt(i)),
    excludePool: (request.excludePool ?? []).map((i) => BigInt(i)),
  });
}

export function fromPlan(r: PlanLabelingResponse): LabelingPlan {
  return {
    tasks: r.tasks.map((t) => ({
      kind: t.kind === LabelingKind.RELABEL ? "relabel" : "label_first",
      index: Number(t.index),
      score: t.score,
      annotator: Number(t.annotator),
      expectedAccuracy: t.expectedAccuracy,
      cost: t.cost,
    })),
    totalCost: r.totalCost,
    annotators: r.annotators.map((e) => ({
      accuracyMean: e.accuracyMean,
      accuracyLower: e.accuracyLower,
      accuracyUpper: e.accuracyUpper,
      observations: Number(e.observations),
      quality: e.quality,
      eligible: e.eligible,
      cost: e.cost,
      tasks: Number(e.tasks),
    })),
    temperature: r.temperature,
    candidatesConsidered: Number(r.candidatesConsidered),
    consensusLabels: r.consensusLabels.map(Number),
  };
}
