/**
 * The TypeScript client of labelwise, the active-learning query selection service: send
 * what your model says about an unlabeled pool, get back for each strategy the pool
 * indices to label next, best first, with their scores. Node.js, over gRPC (HTTP/2).
 */
import { create, getOption, hasOption, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { SecureContextOptions } from "node:tls";

import {
  CheckStoppingRequestSchema,
  ModelOutput,
  ModelSchema,
  ParamValueSchema,
  QuerySelectionService,
  SelectQueriesRequestSchema,
  SelectQueriesStreamRequestSchema,
  StoppingRule,
  UncertaintyAggregate,
  type Model as ModelMessage,
  type ParamValue as ParamMessage,
  type SelectQueriesRequest,
  type SelectQueriesResponse,
  type LabelQualityMethodInfo,
  type StrategyInfo,
} from "./gen/labelwise/v1/query_selection_pb.js";
import { ErrorReason } from "./gen/labelwise/v1/error_reason_pb.js";
import { LabelQualityService } from "./gen/labelwise/v1/label_quality_pb.js";
import {
  assessMessage,
  fromAssess,
  fromPlan,
  planMessage,
  type AssessRequest,
  type LabelAssessment,
  type LabelingPlan,
  type PlanRequest,
} from "./labels.js";
import { labeled_axis, pool_axis } from "./gen/labelwise/v1/options_pb.js";
import { LabelwiseError } from "./errors.js";
import { StreamSelectionService } from "./gen/labelwise/v1/stream_selection_pb.js";
import { StreamSelector, type StreamConfig } from "./stream.js";
import { fromFloat64Message, slice, tensor, toMessage, type Float64Tensor, type Tensor } from "./tensor.js";

export { LabelwiseError, type FieldViolation } from "./errors.js";
export { tensor, type Float64Tensor, type Tensor, type TensorData } from "./tensor.js";
export * as v1 from "./gen/labelwise/v1/query_selection_pb.js";
export { ErrorReason } from "./gen/labelwise/v1/error_reason_pb.js";
export { StreamSelector, type StreamConfig, type StreamDecisions, type StreamItems } from "./stream.js";
export * as history from "./gen/labelwise/v1/history_pb.js";
export * as labelQuality from "./gen/labelwise/v1/label_quality_pb.js";
export {
  MISSING,
  type AnnotatorEstimate,
  type AssessRequest,
  type LabelAssessment,
  type LabelingPlan,
  type LabelingTask,
  type PlanRequest,
} from "./labels.js";

/** A strategy parameter's value: integers travel as int64, other numbers as double. */
export type ParamValue = number | bigint | string | boolean;

/** A strategy by name, or by name with parameters. */
export type StrategyArg = string | { name: string; params?: Record<string, ParamValue> };

/** An ONNX model: its bytes, or the path (or file: URL) of a .onnx file. */
export type ModelArg = Uint8Array | string | URL;

/**
 * The ErrorInfo reason of a NOT_FOUND for a model sent by hash that the server does not hold:
 * the name of the proto's ErrorReason value, as every reason is.
 */
export const MODEL_NOT_CACHED: string = ErrorReason[ErrorReason.MODEL_NOT_CACHED];

/** One query selection; see proto/labelwise/v1/query_selection.proto for each field's rules. */
export interface SelectRequest {
  strategies: StrategyArg[];
  k: number;
  seed?: number | bigint;
  exclude?: readonly number[];
  clampK?: boolean;
  budget?: number;
  temperature?: number;
  probabilities?: Tensor; // [n, c]
  logits?: Tensor; // [n, c]
  committee?: Tensor; // [m, n, c]
  committeeLogits?: Tensor; // [m, n, c]
  embeddings?: Tensor; // [n, d]
  labeledEmbeddings?: Tensor; // [l, d]
  costs?: Tensor; // [n]
  multilabelProbabilities?: Tensor; // [n, L]
  multilabelLogits?: Tensor; // [n, L]
  multilabelCommittee?: Tensor; // [m, n, L]
  multilabelCommitteeLogits?: Tensor; // [m, n, L]
  labeledLabelCardinality?: number;
  regressionMean?: Tensor; // [n]
  regressionStd?: Tensor; // [n]
  regressionSamples?: Tensor; // [m, n]
  labeledTargets?: Tensor; // [l]
  structuredProbabilities?: Tensor; // [n, c, ...]
  structuredLogits?: Tensor; // [n, c, ...]
  structuredCommittee?: Tensor; // [m, n, c, ...]
  structuredCommitteeLogits?: Tensor; // [m, n, c, ...]
  structuredMask?: Tensor; // [n, ...]
  // Model mode: the server runs these ONNX models (several: an ensemble) on modelInputs (or,
  // without them, on embeddings). The settings below are sent only with models.
  models?: readonly ModelArg[];
  modelInputs?: Tensor; // [n, d]
  /** What the models' class output holds; default "probabilities" (rows checked to sum to 1). */
  modelOutput?: "probabilities" | "logits";
  /** Name of a second model output with embeddings [n, d'] for the embedding strategies. */
  embeddingsOutput?: string;
  /** m >= 2: run the one model m times with dropout on (MC dropout), seeded by seed. */
  mcDropoutSamples?: number;
  /** Rows per inference call; 0 or unset: the server picks (about 4 MiB of inputs). */
  inferenceBatchRows?: number;
  /** Cap on the server's time running the models, in milliseconds. */
  inferenceTimeoutMs?: number;
  /** The past rounds, oldest first, for the "auto" strategy (docs/strategy-selection.md). */
  history?: readonly Round[];
}

/**
 * One past labeling round (SelectionRound): the strategy that picked each item (aligned with
 * labels, or one name for all; "" for items no strategy picked, such as the seed set), the
 * class each received, and optionally the model's [labels.length, c] predictions for them
 * before labeling, flattened row-major.
 */
export interface Round {
  strategies: readonly string[];
  labels: readonly (number | bigint)[];
  probabilities?: readonly number[];
}

/** One candidate strategy of "auto": its picks in this result and its posterior. */
export interface AutoArm {
  name: string;
  picks: number;
  /** Share of the Thompson draws it won (the arms' weights sum to 1). */
  weight: number;
  expectedReward: number;
  evidence: number;
}

/** What "auto" reports: every arm, and the arm of each selected item (send back as Round.strategies). */
export interface AutoSelection {
  arms: AutoArm[];
  strategies: string[];
  reward: string;
  historyRounds: number;
  historyItems: number;
}

/** One strategy's ranking: pool indices best first, and their scores. */
export interface StrategyResult {
  name: string;
  /** Every parameter it ran with, defaults filled in. */
  params: Record<string, ParamValue>;
  indices: number[];
  scores: number[];
  totalCost: number;
  /** The candidates it chose among: n minus exclude, or what a pre-filter kept. */
  candidatesConsidered: number;
  /** deepfool with return_points: each selected item's adversarial point, [k, d] float64. */
  adversarialPoints?: Float64Tensor;
  /** deepfool: the method that ran, "gradient" or "decision" (absent for other strategies). */
  adversarialMethod?: string;
  /** "auto": which arm picked each selected item, and every arm's posterior weight. */
  autoSelection?: AutoSelection;
}

export interface SelectResponse {
  poolSize: number;
  /** One result per requested strategy, in request order. */
  results: StrategyResult[];
}

/** A CheckStopping request; see proto/labelwise/v1/query_selection.proto for defaults. */
export interface StoppingRequest {
  /** The last r rounds' predictions on a fixed stop set, oldest first: [r, s] int64/int32 labels or [r, s, c] probabilities. */
  stopSetPredictions?: Tensor;
  poolProbabilities?: Tensor; // [n, c], the current model on the pool
  kappaThreshold?: number;
  kappaWindow?: number;
  uncertaintyThreshold?: number;
  uncertaintyAggregate?: "mean" | "max";
  maxChangeFraction?: number;
  /** Stop when all evaluated criteria say so (the default) or when any does. */
  rule?: "all" | "any";
}

/** One stopping criterion's measured value, its threshold and its verdict. */
export interface StoppingCriterion {
  name: string;
  value: number;
  threshold: number;
  stop: boolean;
  /** False when the request had too few rounds for it; it then never says stop. */
  evaluated: boolean;
  detail: string;
}

export interface StoppingVerdict {
  stop: boolean;
  /** Each criterion the request had the inputs for, by name, in the server's order. */
  criteria: Record<string, StoppingCriterion>;
  /** Cohen's kappa of every pair of successive rounds (r - 1 of them). */
  kappas: number[];
}

export interface ClientOptions {
  /** Connect over TLS: true for the system roots, or Node TLS options (ca, cert, key...). */
  tls?: boolean | SecureContextOptions;
  /** Largest message sent or received; larger requests use the streaming call. */
  maxMessageBytes?: number;
  /** About how many bytes of pool rows each stream chunk carries; at most maxMessageBytes / 2. */
  chunkBytes?: number;
  /** Deadline of every call that sets none, in milliseconds. */
  defaultTimeoutMs?: number;
  interceptors?: Interceptor[];
}

export interface CallOptions {
  /** The call's deadline, in milliseconds from now. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;
// Kept free of tensor bytes in a unary request, for strategies, exclude and framing.
const HEADER_ROOM = 64 * 1024;

type TensorField = {
  [K in keyof SelectRequest & keyof SelectQueriesRequest]-?: SelectRequest[K] extends Tensor | undefined ? K : never;
}[keyof SelectRequest & keyof SelectQueriesRequest];
// The axis a stream splits each tensor along, from the proto's pool_axis and labeled_axis
// field options (labelwise/v1/options.proto) in the generated descriptors: the pool tensors,
// then the labeled-set tensors, streamed after the pool's.
const splitAxes = (option: typeof pool_axis): [TensorField, number][] =>
  SelectQueriesRequestSchema.fields
    .filter((field) => hasOption(field, option))
    .map((field) => [field.localName as TensorField, getOption(field, option)]);
const POOL_TENSORS = splitAxes(pool_axis);
const LABELED_TENSORS = splitAxes(labeled_axis);
const MODEL_OUTPUTS = { probabilities: ModelOutput.PROBABILITIES, logits: ModelOutput.LOGITS };
const AGGREGATES = { mean: UncertaintyAggregate.MEAN, max: UncertaintyAggregate.MAX };
const RULES = { all: StoppingRule.ALL, any: StoppingRule.ANY };

/** A labelwise client over one HTTP/2 connection, reused across calls. */
export class LabelwiseClient {
  private readonly client: Client<typeof QuerySelectionService>;
  private readonly streams: Client<typeof StreamSelectionService>;
  private readonly labels: Client<typeof LabelQualityService>;
  private readonly maxMessageBytes: number;
  private readonly chunkBytes: number;
  // SHA-256 of models this client has sent in full: later calls send only the hash. Updated
  // only after a call's answer, so concurrent calls at worst send bytes twice.
  private readonly sentModels = new Set<string>();

  /** target: "host:port". */
  constructor(target: string, options: ClientOptions = {}) {
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    // Every stream chunk must itself fit in a message, with room for the header fields.
    this.chunkBytes = Math.max(
      1,
      Math.min(options.chunkBytes ?? DEFAULT_CHUNK_BYTES, Math.floor(this.maxMessageBytes / 2)),
    );
    const secure = options.tls !== undefined && options.tls !== false;
    const transport = createGrpcTransport({
      baseUrl: `${secure ? "https" : "http"}://${target}`,
      nodeOptions: typeof options.tls === "object" ? options.tls : undefined,
      readMaxBytes: this.maxMessageBytes,
      writeMaxBytes: this.maxMessageBytes,
      defaultTimeoutMs: options.defaultTimeoutMs,
      interceptors: options.interceptors,
    });
    this.client = createClient(QuerySelectionService, transport);
    this.streams = createClient(StreamSelectionService, transport);
    this.labels = createClient(LabelQualityService, transport);
  }

  /** A stream's decisions (StreamSelectionService) carrying its token; token resumes a stream. */
  streamSelector(config: StreamConfig, token?: Uint8Array): StreamSelector {
    return new StreamSelector(this.streams, config, token);
  }

  /**
   * Consensus labels and quality scores of labels from several annotators (CROWDLAB,
   * Dawid-Skene or Bayes EM). Throws LabelwiseError.
   */
  async assessLabels(request: AssessRequest, call: CallOptions = {}): Promise<LabelAssessment> {
    const message = assessMessage(request);
    try {
      return fromAssess(await this.labels.assessLabels(message, call));
    } catch (reason) {
      throw reason instanceof ConnectError ? new LabelwiseError(reason) : reason;
    }
  }

  /**
   * Which items to label again, which to label first, and by whom, within the budget
   * (ActiveLab; interval estimates of the annotators). Throws LabelwiseError.
   */
  async planLabeling(request: PlanRequest, call: CallOptions = {}): Promise<LabelingPlan> {
    const message = planMessage(request);
    try {
      return fromPlan(await this.labels.planLabeling(message, call));
    } catch (reason) {
      throw reason instanceof ConnectError ? new LabelwiseError(reason) : reason;
    }
  }

  /**
   * Ranks the pool with every requested strategy. Throws LabelwiseError; for a rejected
   * request its violations (and field) name the request fields at fault.
   *
   * Model mode: the first call with a model sends its bytes, later calls only its SHA-256;
   * if the server no longer holds it (NOT_FOUND, reason MODEL_NOT_CACHED) the call is
   * repeated once with the bytes.
   */
  async selectQueries(request: SelectRequest, call: CallOptions = {}): Promise<SelectResponse> {
    const blobs = await Promise.all((request.models ?? []).map(modelBytes));
    const digests = blobs.map((blob) => createHash("sha256").update(blob).digest("hex"));
    let byHash = digests.map((digest) => this.sentModels.has(digest));
    for (let attempt = 0; ; attempt++) {
      const models = blobs.map((onnx, i) =>
        create(ModelSchema, {
          source: byHash[i] ? { case: "sha256", value: digests[i] } : { case: "onnx", value: onnx },
        }),
      );
      let response: SelectQueriesResponse | undefined;
      try {
        response = await this.call(request, models, call);
      } catch (reason) {
        const error = reason instanceof ConnectError ? new LabelwiseError(reason) : reason;
        const stale =
          attempt === 0 &&
          byHash.some(Boolean) &&
          error instanceof LabelwiseError &&
          error.code === Code.NotFound &&
          error.reason === MODEL_NOT_CACHED;
        if (!stale) throw error;
        for (const digest of digests) this.sentModels.delete(digest);
        byHash = byHash.map(() => false);
        continue;
      }
      for (const digest of digests) this.sentModels.add(digest);
      return fromMessage(response);
    }
  }

  /**
   * Should labeling stop? From the last rounds' predictions on a fixed stop set and
   * optionally the pool's probabilities. Throws LabelwiseError.
   */
  async checkStopping(request: StoppingRequest, call: CallOptions = {}): Promise<StoppingVerdict> {
    const message = create(CheckStoppingRequestSchema, {
      stopSetPredictions: request.stopSetPredictions && toMessage(request.stopSetPredictions),
      poolProbabilities: request.poolProbabilities && toMessage(request.poolProbabilities),
      kappaThreshold: request.kappaThreshold,
      kappaWindow: request.kappaWindow === undefined ? undefined : BigInt(request.kappaWindow),
      uncertaintyThreshold: request.uncertaintyThreshold,
      uncertaintyAggregate: choice(AGGREGATES, request.uncertaintyAggregate, "uncertaintyAggregate"),
      maxChangeFraction: request.maxChangeFraction,
      rule: choice(RULES, request.rule, "rule"),
    });
    try {
      const response = await this.client.checkStopping(message, call);
      const criteria: Record<string, StoppingCriterion> = {};
      for (const c of response.criteria) {
        const { name, value, threshold, stop, evaluated, detail } = c;
        criteria[name] = { name, value, threshold, stop, evaluated, detail };
      }
      return { stop: response.stop, criteria, kappas: [...response.kappas] };
    } catch (reason) {
      throw reason instanceof ConnectError ? new LabelwiseError(reason) : reason;
    }
  }

  /** One SelectQueries call, or the stream when the request would not fit one message. */
  private async call(
    request: SelectRequest,
    models: ModelMessage[],
    call: CallOptions,
  ): Promise<SelectQueriesResponse | undefined> {
    const header = headerMessage(request);
    let tensorBytes = 0;
    for (const [name] of [...POOL_TENSORS, ...LABELED_TENSORS]) tensorBytes += request[name]?.raw.byteLength ?? 0;
    // A model costs its bytes plus a few of framing; the header is measured without them.
    const modelBytes = models.reduce((sum, m) => sum + 16 + (m.source.value?.length ?? 0), 0);
    const size = toBinary(SelectQueriesRequestSchema, header).byteLength + modelBytes + tensorBytes;
    header.models = models; // in the header, so in a stream's first chunk
    if (size <= this.maxMessageBytes - HEADER_ROOM) {
      return this.client.selectQueries(withTensors(header, request), call);
    }
    return (await this.client.selectQueriesStream(this.chunks(header, request), call)).response;
  }

  /** Every strategy the server offers, with its parameters and needed inputs. */
  async listStrategies(call: CallOptions = {}): Promise<StrategyInfo[]> {
    try {
      return (await this.client.listStrategies({}, call)).strategies;
    } catch (reason) {
      throw reason instanceof ConnectError ? new LabelwiseError(reason) : reason;
    }
  }

  /**
   * The methods of LabelQualityService (assessLabels, planLabeling): crowdlab, dawid_skene,
   * bayes_em, activelab and interval_estimation, each with the request fields that tune it as
   * params.
   */
  async labelQualityMethods(call: CallOptions = {}): Promise<LabelQualityMethodInfo[]> {
    try {
      return (await this.client.listStrategies({}, call)).labelQualityMethods;
    } catch (reason) {
      throw reason instanceof ConnectError ? new LabelwiseError(reason) : reason;
    }
  }

  /**
   * The first chunk carries the header; then exclude in blocks (the server concatenates exclude
   * lists, which may be long), then blocks of pool rows, then of labeled rows. Exclude goes
   * before the rows, so a server scoring rows as they arrive skips the excluded ones.
   */
  private async *chunks(header: SelectQueriesRequest, request: SelectRequest) {
    const exclude = header.exclude;
    header.exclude = [];
    let first: SelectQueriesRequest | undefined = header;
    const next = () => {
      const chunk = first ?? create(SelectQueriesRequestSchema);
      first = undefined;
      return chunk;
    };
    const excludeStep = Math.max(1, Math.floor(this.chunkBytes / 10)); // an int64 varint takes at most 10 bytes
    for (let start = 0; start < exclude.length; start += excludeStep) {
      const chunk = next();
      chunk.exclude = exclude.slice(start, start + excludeStep);
      yield create(SelectQueriesStreamRequestSchema, { chunk });
    }
    const pool = POOL_TENSORS.flatMap(([name, axis]) => {
      const t = request[name];
      return t ? [{ name, axis, t, whole: t.shape.length <= axis }] : [];
    });
    if (pool.length > 0) {
      const n = pool[0].whole ? 1 : pool[0].t.shape[pool[0].axis];
      const rowBytes = pool.reduce(
        (sum, { axis, t, whole }) => sum + (!whole && t.shape[axis] > 0 ? t.raw.byteLength / t.shape[axis] : 0),
        0,
      );
      const step = Math.max(1, Math.floor(this.chunkBytes / Math.max(rowBytes, 1)));
      for (let start = 0; start < Math.max(n, 1); start += step) {
        const chunk = next();
        for (const { name, axis, t, whole } of pool) {
          if (whole) {
            if (start === 0) chunk[name] = toMessage(t); // a scalar: sent once, for the server to judge
            continue;
          }
          const size = t.shape[axis];
          chunk[name] = toMessage(slice(t, axis, Math.min(start, size), Math.min(start + step, size)));
        }
        yield create(SelectQueriesStreamRequestSchema, { chunk });
      }
    }
    for (const [name, axis] of LABELED_TENSORS) {
      const labeled = request[name];
      if (!labeled) continue;
      if (labeled.shape.length <= axis) {
        const chunk = next();
        chunk[name] = toMessage(labeled);
        yield create(SelectQueriesStreamRequestSchema, { chunk });
        continue;
      }
      const l = labeled.shape[axis];
      const rowBytes = labeled.raw.byteLength / Math.max(l, 1);
      const step = Math.max(1, Math.floor(this.chunkBytes / Math.max(rowBytes, 1)));
      for (let start = 0; start < Math.max(l, 1); start += step) {
        const chunk = next();
        chunk[name] = toMessage(slice(labeled, axis, Math.min(start, l), Math.min(start + step, l)));
        yield create(SelectQueriesStreamRequestSchema, { chunk });
      }
    }
    if (first) yield create(SelectQueriesStreamRequestSchema, { chunk: next() });
  }
}

function toParam(value: ParamValue): ParamMessage {
  if (typeof value === "boolean") return create(ParamValueSchema, { kind: { case: "boolValue", value } });
  if (typeof value === "bigint") return create(ParamValueSchema, { kind: { case: "intValue", value } });
  if (typeof value === "string") return create(ParamValueSchema, { kind: { case: "stringValue", value } });
  return Number.isInteger(value)
    ? create(ParamValueSchema, { kind: { case: "intValue", value: BigInt(value) } })
    : create(ParamValueSchema, { kind: { case: "doubleValue", value } });
}

function fromParam(value: ParamMessage): ParamValue | undefined {
  const kind = value.kind;
  if (kind.case === "intValue") return Number(kind.value);
  return kind.case === undefined ? undefined : kind.value;
}

function headerMessage(request: SelectRequest): SelectQueriesRequest {
  return create(SelectQueriesRequestSchema, {
    strategies: request.strategies.map((s) => {
      const spec = typeof s === "string" ? { name: s, params: {} } : s;
      const params: Record<string, ParamMessage> = {};
      for (const [name, value] of Object.entries(spec.params ?? {})) params[name] = toParam(value);
      return { name: spec.name, params };
    }),
    k: BigInt(request.k),
    seed: BigInt(request.seed ?? 0),
    exclude: (request.exclude ?? []).map(BigInt),
    clampK: request.clampK ?? false,
    budget: request.budget,
    temperature: request.temperature,
    labeledLabelCardinality: request.labeledLabelCardinality,
    history: (request.history ?? []).map((round) => ({
      strategies: [...round.strategies],
      labels: round.labels.map(BigInt),
      probabilities: [...(round.probabilities ?? [])],
    })),
    ...(request.models?.length ? modelSettings(request) : {}),
  });
}

function modelSettings(request: SelectRequest) {
  const timeout = request.inferenceTimeoutMs;
  return {
    modelOutput: choice(MODEL_OUTPUTS, request.modelOutput ?? "probabilities", "modelOutput"),
    embeddingsOutput: request.embeddingsOutput ?? "",
    mcDropoutSamples: request.mcDropoutSamples ?? 0,
    inferenceBatchRows: BigInt(request.inferenceBatchRows ?? 0),
    inferenceTimeoutSeconds: timeout === undefined ? undefined : timeout / 1000,
  };
}

/** The enum value of an option given by name; undefined stays unset (the server's default). */
function choice<V>(values: Record<string, V>, name: string | undefined, option: string): V | undefined {
  if (name === undefined) return undefined;
  if (!Object.hasOwn(values, name)) {
    throw new RangeError(`${option} must be one of ${Object.keys(values).join(", ")}; got ${name}`);
  }
  return values[name];
}

async function modelBytes(model: ModelArg): Promise<Uint8Array> {
  return model instanceof Uint8Array ? model : readFile(model);
}

function withTensors(header: SelectQueriesRequest, request: SelectRequest): SelectQueriesRequest {
  const whole = header; // tensors are added to the header, which is used once
  for (const [name] of [...POOL_TENSORS, ...LABELED_TENSORS]) {
    const t = request[name];
    if (t) whole[name] = toMessage(t);
  }
  return whole;
}

function fromMessage(response: SelectQueriesResponse | undefined): SelectResponse {
  return {
    poolSize: Number(response?.poolSize ?? 0n),
    results: (response?.results ?? []).map((r, i) => {
      const params: Record<string, ParamValue> = {};
      for (const [name, value] of Object.entries(r.params)) {
        const v = fromParam(value);
        if (v !== undefined) params[name] = v;
      }
      return {
        name: r.name,
        params,
        indices: r.indices.map(Number),
        scores: [...r.scores],
        totalCost: r.totalCost,
        candidatesConsidered: Number(r.candidatesConsidered),
        ...(r.adversarialPoints && {
          adversarialPoints: fromFloat64Message(r.adversarialPoints, `results[${i}].adversarial_points`),
        }),
        ...(r.adversarialMethod && { adversarialMethod: r.adversarialMethod }),
        ...(r.autoSelection && {
          autoSelection: {
            arms: r.autoSelection.arms.map((a) => ({
              name: a.name,
              picks: Number(a.picks),
              weight: a.weight,
              expectedReward: a.expectedReward,
              evidence: a.evidence,
            })),
            strategies: [...r.autoSelection.strategies],
            reward: r.autoSelection.reward,
            historyRounds: Number(r.autoSelection.historyRounds),
            historyItems: Number(r.autoSelection.historyItems),
          },
        }),
      };
    }),
  };
}

/** Shorthand: a tensor of probabilities [n, c] from rows of numbers. */
export function float32Matrix(rows: readonly (readonly number[])[]): Tensor {
  const c = rows[0]?.length ?? 0;
  return tensor(Float32Array.from(rows.flat()), [rows.length, c]);
}

/** Shorthand: an int64 tensor of class labels [r, s] (checkStopping) from rows of integers. */
export function int64Matrix(rows: readonly (readonly (number | bigint)[])[]): Tensor {
  const s = rows[0]?.length ?? 0;
  return tensor(BigInt64Array.from(rows.flat(), (v) => BigInt(v)), [rows.length, s]);
}
