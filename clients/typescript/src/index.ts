/**
 * The TypeScript client of labelwise, the active-learning query selection service: send
 * what your model says about an unlabeled pool, get back for each strategy the pool
 * indices to label next, best first, with their scores. Node.js, over gRPC (HTTP/2).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { SecureContextOptions } from "node:tls";

import {
  ParamValueSchema,
  QuerySelectionService,
  SelectQueriesRequestSchema,
  SelectQueriesStreamRequestSchema,
  type ParamValue as ParamMessage,
  type SelectQueriesRequest,
  type SelectQueriesResponse,
  type StrategyInfo,
} from "./gen/labelwise/v1/query_selection_pb.js";
import { LabelwiseError } from "./errors.js";
import { slice, tensor, toMessage, type Tensor } from "./tensor.js";

export { LabelwiseError, type FieldViolation } from "./errors.js";
export { tensor, type Tensor } from "./tensor.js";
export * as v1 from "./gen/labelwise/v1/query_selection_pb.js";

/** A strategy parameter's value: integers travel as int64, other numbers as double. */
export type ParamValue = number | bigint | string | boolean;

/** A strategy by name, or by name with parameters. */
export type StrategyArg = string | { name: string; params?: Record<string, ParamValue> };

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
}

/** One strategy's ranking: pool indices best first, and their scores. */
export interface StrategyResult {
  name: string;
  /** Every parameter it ran with, defaults filled in. */
  params: Record<string, ParamValue>;
  indices: number[];
  scores: number[];
  totalCost: number;
}

export interface SelectResponse {
  poolSize: number;
  /** One result per requested strategy, in request order. */
  results: StrategyResult[];
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
// Each pool tensor with its pool axis, along which a stream splits it.
const POOL_TENSORS: [TensorField, 0 | 1][] = [
  ["probabilities", 0],
  ["logits", 0],
  ["committee", 1],
  ["committeeLogits", 1],
  ["embeddings", 0],
  ["costs", 0],
  ["multilabelProbabilities", 0],
  ["multilabelLogits", 0],
  ["multilabelCommittee", 1],
  ["multilabelCommitteeLogits", 1],
  ["regressionMean", 0],
  ["regressionStd", 0],
  ["regressionSamples", 1],
  ["structuredProbabilities", 0],
  ["structuredLogits", 0],
  ["structuredCommittee", 1],
  ["structuredCommitteeLogits", 1],
  ["structuredMask", 0],
];
// The labeled-set tensors, streamed after the pool's, along axis 0.
const LABELED_TENSORS: TensorField[] = ["labeledEmbeddings", "labeledTargets"];

/** A labelwise client over one HTTP/2 connection, reused across calls. */
export class LabelwiseClient {
  private readonly client: Client<typeof QuerySelectionService>;
  private readonly maxMessageBytes: number;
  private readonly chunkBytes: number;

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
  }

  /**
   * Ranks the pool with every requested strategy. Throws LabelwiseError; for a rejected
   * request its violations (and field) name the request fields at fault.
   */
  async selectQueries(request: SelectRequest, call: CallOptions = {}): Promise<SelectResponse> {
    const header = headerMessage(request);
    let tensorBytes = 0;
    for (const [name] of POOL_TENSORS) tensorBytes += request[name]?.raw.byteLength ?? 0;
    for (const name of LABELED_TENSORS) tensorBytes += request[name]?.raw.byteLength ?? 0;
    const size = toBinary(SelectQueriesRequestSchema, header).byteLength + tensorBytes;
    try {
      let response: SelectQueriesResponse | undefined;
      if (size <= this.maxMessageBytes - HEADER_ROOM) {
        const whole = withTensors(header, request);
        response = await this.client.selectQueries(whole, call);
      } else {
        const streamed = await this.client.selectQueriesStream(this.chunks(header, request), call);
        response = streamed.response;
      }
      return fromMessage(response);
    } catch (reason) {
      throw reason instanceof ConnectError ? new LabelwiseError(reason) : reason;
    }
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
   * The first chunk carries the header; then blocks of pool rows, then of labeled rows, then
   * exclude in blocks (the server concatenates exclude lists, which may be long).
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
    for (const name of LABELED_TENSORS) {
      const labeled = request[name];
      if (!labeled) continue;
      if (labeled.shape.length === 0) {
        const chunk = next();
        chunk[name] = toMessage(labeled);
        yield create(SelectQueriesStreamRequestSchema, { chunk });
        continue;
      }
      const l = labeled.shape[0];
      const rowBytes = labeled.raw.byteLength / Math.max(l, 1);
      const step = Math.max(1, Math.floor(this.chunkBytes / Math.max(rowBytes, 1)));
      for (let start = 0; start < Math.max(l, 1); start += step) {
        const chunk = next();
        chunk[name] = toMessage(slice(labeled, 0, Math.min(start, l), Math.min(start + step, l)));
        yield create(SelectQueriesStreamRequestSchema, { chunk });
      }
    }
    if (first) yield create(SelectQueriesStreamRequestSchema, { chunk: next() });
    const step = Math.max(1, Math.floor(this.chunkBytes / 10)); // an int64 varint takes at most 10 bytes
    for (let start = 0; start < exclude.length; start += step) {
      const chunk = create(SelectQueriesRequestSchema, { exclude: exclude.slice(start, start + step) });
      yield create(SelectQueriesStreamRequestSchema, { chunk });
    }
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
  });
}

function withTensors(header: SelectQueriesRequest, request: SelectRequest): SelectQueriesRequest {
  const whole = header; // tensors are added to the header, which is used once
  for (const name of [...POOL_TENSORS.map(([name]) => name), ...LABELED_TENSORS]) {
    const t = request[name];
    if (t) whole[name] = toMessage(t);
  }
  return whole;
}

function fromMessage(response: SelectQueriesResponse | undefined): SelectResponse {
  return {
    poolSize: Number(response?.poolSize ?? 0n),
    results: (response?.results ?? []).map((r) => {
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
      };
    }),
  };
}

/** Shorthand: a tensor of probabilities [n, c] from rows of numbers. */
export function float32Matrix(rows: readonly (readonly number[])[]): Tensor {
  const c = rows[0]?.length ?? 0;
  return tensor(Float32Array.from(rows.flat()), [rows.length, c]);
}
