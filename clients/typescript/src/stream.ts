/**
 * Stream selection (StreamSelectionService): should each arriving item be labeled, at a target
 * rate, from any replica. A StreamSelector carries the stream's token from each answer to the
 * next call; the service keeps nothing between calls.
 */
import { create } from "@bufbuild/protobuf";
import { ConnectError, type Client } from "@connectrpc/connect";

import { ParamValueSchema, StrategySpecSchema, type ParamValue as ParamMessage } from "./gen/labelwise/v1/query_selection_pb.js";
import {
  DecideRequestSchema,
  DecideStreamRequestSchema,
  StreamWindowCapSchema,
  type DecideRequest,
  type DecideResponse,
  type StreamSelectionService,
} from "./gen/labelwise/v1/stream_selection_pb.js";
import { LabelwiseError } from "./errors.js";
import { toMessage, type Tensor } from "./tensor.js";

/** A stream's configuration, fixed for the stream (the service refuses a token issued under another). */
export interface StreamConfig {
  /** A strategy of family "stream", such as "variable_uncertainty". */
  strategy: string;
  params?: Record<string, number | bigint | string | boolean>;
  /** Target labeling rate in (0, 1]; default 0.1. */
  budget?: number;
  /** With maxLabels: at most maxLabels labels per tumbling window of windowItems items. */
  windowItems?: number;
  maxLabels?: number;
  /** A new stream's seed (randomised strategies). */
  seed?: number | bigint;
}

/** One batch of items: exactly one of the tensors. */
export interface StreamItems {
  probabilities?: Tensor;
  logits?: Tensor;
  committee?: Tensor;
  committeeLogits?: Tensor;
  utilities?: Tensor;
  /** Kernel frequency estimates [n, c], for "pal" only. */
  frequencies?: Tensor;
  temperature?: number;
}

/** One batch's answer: item i's decision, utility and labeling probability at index i. */
export interface StreamDecisions {
  label: boolean[];
  utilities: number[];
  labelProbabilities: number[];
  token: Uint8Array;
  itemsSeen: number;
  itemsLabeled: number;
}

function param(value: number | bigint | string | boolean): ParamMessage {
  if (typeof value === "boolean") return create(ParamValueSchema, { kind: { case: "boolValue", value } });
  if (typeof value === "bigint") return create(ParamValueSchema, { kind: { case: "intValue", value } });
  if (typeof value === "string") return create(ParamValueSchema, { kind: { case: "stringValue", value } });
  return Number.isInteger(value)
    ? create(ParamValueSchema, { kind: { case: "intValue", value: BigInt(value) } })
    : create(ParamValueSchema, { kind: { case: "doubleValue", value } });
}

function decisions(r: DecideResponse): StreamDecisions {
  return {
    label: [...r.label],
    utilities: [...r.utilities],
    labelProbabilities: [...r.labelProbabilities],
    token: r.token,
    itemsSeen: Number(r.itemsSeen),
    itemsLabeled: Number(r.itemsLabeled),
  };
}

function rethrow(reason: unknown): never {
  throw reason instanceof ConnectError ? new LabelwiseError(reason) : reason;
}

/** One stream's decisions; `token` is its state after the last answer (save it to resume). */
export class StreamSelector {
  constructor(
    private readonly client: Client<typeof StreamSelectionService>,
    private readonly config: StreamConfig,
    public token: Uint8Array = new Uint8Array(),
  ) {}

  /** The DecideRequest for items with the current token. */
  request(items: StreamItems): DecideRequest {
    const c = this.config;
    const message = create(DecideRequestSchema, {
      strategy: create(StrategySpecSchema, {
        name: c.strategy,
        params: Object.fromEntries(Object.entries(c.params ?? {}).map(([k, v]) => [k, param(v)])),
      }),
      budget: c.budget,
      token: this.token,
      seed: BigInt(c.seed ?? 0),
      temperature: items.temperature,
      probabilities: items.probabilities && toMessage(items.probabilities),
      logits: items.logits && toMessage(items.logits),
      committee: items.committee && toMessage(items.committee),
      committeeLogits: items.committeeLogits && toMessage(items.committeeLogits),
      utilities: items.utilities && toMessage(items.utilities),
      frequencies: items.frequencies && toMessage(items.frequencies),
    });
    if (c.windowItems !== undefined || c.maxLabels !== undefined) {
      message.windowCap = create(StreamWindowCapSchema, {
        windowItems: BigInt(c.windowItems ?? 0),
        maxLabels: BigInt(c.maxLabels ?? 0),
      });
    }
    return message;
  }

  /** Decisions for one batch; the token moves on to the answer's. Throws LabelwiseError. */
  async decide(items: StreamItems, call: { timeoutMs?: number } = {}): Promise<StreamDecisions> {
    try {
      const response = await this.client.decide(this.request(items), call);
      this.token = response.token;
      return decisions(response);
    } catch (reason) {
      return rethrow(reason);
    }
  }

  /**
   * Every batch over one DecideStream call, each sent after the previous answer; the answers
   * in order, the token moving on with each. Throws LabelwiseError.
   */
  async decideStream(batches: StreamItems[], call: { timeoutMs?: number } = {}): Promise<StreamDecisions[]> {
    const out: StreamDecisions[] = [];
    let answered: () => void = () => {};
    const self = this;
    async function* requests() {
      for (const [i, items] of batches.entries()) {
        const request = self.request(items);
        if (i > 0) request.token = new Uint8Array(); // the call carries the state on
        const next = new Promise<void>((resolve) => (answered = resolve));
        yield create(DecideStreamRequestSchema, { request });
        await next;
      }
    }
    try {
      for await (const answer of this.client.decideStream(requests(), call)) {
        const response = answer.response;
        if (response === undefined) throw new Error("DecideStream answered without a response");
        this.token = response.token;
        out.push(decisions(response));
        answered();
      }
    } catch (reason) {
      return rethrow(reason);
    }
    return out;
  }
}
