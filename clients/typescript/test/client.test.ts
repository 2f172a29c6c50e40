// Replays tests/vectors/*.json (and the model/ and stopping/ ones) and covers errors,
// deadlines, streaming and model mode's hash-first protocol against a real
// `labelwise serve --port 0` started here ($LABELWISE_PYTHON, else python3).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { createSecureServer } from "node:http2";
import type { AddressInfo } from "node:net";

import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  QuerySelectionService,
  type SelectQueriesRequest,
  type SelectQueriesStreamRequest,
} from "../src/gen/labelwise/v1/query_selection_pb.js";
import {
  LabelwiseClient,
  LabelwiseError,
  int64Matrix,
  tensor,
  type ClientOptions,
  type ParamValue,
  type SelectRequest,
  type SelectResponse,
  type StoppingRequest,
  type Tensor,
} from "../src/index.js";

const root = fileURLToPath(new URL("../../../../", import.meta.url));
const testDir = join(root, "clients", "typescript", "test");
const servers: ChildProcess[] = [];
let address = "";
let tempDir = "";

/** Starts `labelwise serve` on a free port with the extra flags; returns its address. */
async function startServer(name: string, flags: string[] = []): Promise<string> {
  const portFile = join(tempDir, `${name}.port`);
  const python = process.env.LABELWISE_PYTHON ?? "python3";
  const server = spawn(
    python,
    ["-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1", "--port", "0",
     "--metrics-port", "0", "--compute-threads", "1", "--grace-seconds", "1",
     "--port-file", portFile, ...flags],
    {
      env: { ...process.env, PYTHONPATH: `${join(root, "service")}:${join(root, "clients/python/src")}` },
      stdio: ["ignore", "inherit", "inherit"],
    },
  );
  servers.push(server);
  const deadline = Date.now() + 60_000;
  while (!existsSync(portFile)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error("the server did not start");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return `127.0.0.1:${readFileSync(portFile, "utf8").trim()}`;
}

before(async () => {
  tempDir = mkdtempSync(join(tmpdir(), "labelwise-ts-test-"));
  address = await startServer("main");
});

after(async () => {
  await Promise.all(servers.map(async (server) => {
    if (server.exitCode !== null) return;
    const exited = new Promise((resolve) => server.once("exit", resolve));
    server.kill("SIGTERM");
    const timer = setTimeout(() => server.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }));
  rmSync(tempDir, { recursive: true, force: true });
});

/** Records the method name of every call a client makes. */
function methodLog(): { names: string[]; interceptor: Interceptor } {
  const names: string[] = [];
  return { names, interceptor: (next) => async (req) => { names.push(req.method.name); return next(req); } };
}

function client(options: ClientOptions = {}): LabelwiseClient {
  return new LabelwiseClient(address, options);
}

interface VectorTensor { dtype: "float32" | "float64"; shape: number[]; data: number[] }
type VectorParams = Record<string, Record<string, ParamValue>>;
interface Vector {
  request: {
    strategies: { name: string; params: VectorParams }[];
    k: number; seed: number; exclude: number[]; clamp_k: boolean;
    budget: number | null; temperature: number | null;
    tensors: Record<string, VectorTensor>;
  };
  response: {
    pool_size: number;
    results: { name: string; params: VectorParams; indices: number[]; scores: number[]; total_cost: number }[];
  };
}

function params(p: VectorParams): Record<string, ParamValue> {
  // {"int": 3} / {"double": 0.5} / {"string": "max"} / {"bool": true}
  return Object.fromEntries(Object.entries(p).map(([name, v]) => [name, Object.values(v)[0]]));
}

const TENSOR_FIELDS: Record<string, keyof SelectRequest> = {
  probabilities: "probabilities", logits: "logits", committee: "committee",
  committee_logits: "committeeLogits", embeddings: "embeddings",
  labeled_embeddings: "labeledEmbeddings", model_inputs: "modelInputs", costs: "costs",
  multilabel_probabilities: "multilabelProbabilities", multilabel_logits: "multilabelLogits",
  multilabel_committee: "multilabelCommittee", multilabel_committee_logits: "multilabelCommitteeLogits",
  regression_mean: "regressionMean", regression_std: "regressionStd",
  regression_samples: "regressionSamples", labeled_targets: "labeledTargets",
  structured_probabilities: "structuredProbabilities", structured_logits: "structuredLogits",
  structured_committee: "structuredCommittee", structured_committee_logits: "structuredCommitteeLogits",
  structured_mask: "structuredMask",
};

function vectorRequest(v: Vector): SelectRequest {
  const r = v.request;
  const request: SelectRequest = {
    strategies: r.strategies.map((s) => ({ name: s.name, params: params(s.params) })),
    k: r.k, seed: r.seed, exclude: r.exclude, clampK: r.clamp_k,
    budget: r.budget ?? undefined, temperature: r.temperature ?? undefined,
  };
  for (const [name, t] of Object.entries(r.tensors)) {
    const field = TENSOR_FIELDS[name];
    assert.ok(field, `vector tensor ${name} is not a request field this client knows`);
    const data = t.dtype === "float32" ? Float32Array.from(t.data) : Float64Array.from(t.data);
    (request as unknown as Record<string, Tensor>)[field] = tensor(data, t.shape);
  }
  return request;
}

function closeRelative(got: number, want: number): boolean {
  return got === want || Math.abs(got - want) <= 1e-6 * Math.max(Math.abs(got), Math.abs(want));
}

function assertMatches(got: SelectResponse, v: Vector): void {
  assert.equal(got.poolSize, v.response.pool_size);
  assert.equal(got.results.length, v.response.results.length);
  v.response.results.forEach((want, i) => {
    const r = got.results[i];
    assert.equal(r.name, want.name);
    assert.deepEqual(r.params, params(want.params));
    assert.deepEqual(r.indices, want.indices, `${want.name} indices`);
    assert.equal(r.scores.length, want.scores.length);
    r.scores.forEach((s, j) => assert.ok(closeRelative(s, want.scores[j]), `${want.name} score ${j}: ${s} vs ${want.scores[j]}`));
    assert.ok(closeRelative(r.totalCost, want.total_cost));
  });
}

const vectorDir = join(root, "tests", "vectors");
const vectorFiles = readdirSync(vectorDir).filter((f) => f.endsWith(".json")).sort();

describe("shared vectors", () => {
  it("has vectors to replay", () => assert.ok(vectorFiles.length > 0));
  for (const file of vectorFiles) {
    it(file, async () => {
      const v = JSON.parse(readFileSync(join(vectorDir, file), "utf8")) as Vector;
      const unary = methodLog();
      assertMatches(await client({ interceptors: [unary.interceptor] }).selectQueries(vectorRequest(v)), v);
      assert.deepEqual(unary.names, ["SelectQueries"]);
      // A tiny message limit sends the vector through the stream, in several chunks.
      const streamed = methodLog();
      const small = client({ interceptors: [streamed.interceptor], maxMessageBytes: 64 * 1024 + 1, chunkBytes: 256 });
      assertMatches(await small.selectQueries(vectorRequest(v)), v);
      assert.deepEqual(streamed.names, ["SelectQueriesStream"]);
    });
  }
});

// Model mode (tests/vectors/model): the vector format plus the models and their settings.
interface ModelVector extends Vector {
  request: Vector["request"] & {
    models: string[]; // base64 ONNX bytes
    model_output: "probabilities" | "logits";
    embeddings_output: string;
    mc_dropout_samples: number;
  };
  response: {
    pool_size: number;
    results: (Vector["response"]["results"][number] & {
      adversarial_points: VectorTensor | null;
      candidates_considered: number;
      adversarial_method: string;
    })[];
  };
}

function readVector<V>(...path: string[]): V {
  return JSON.parse(readFileSync(join(vectorDir, ...path), "utf8")) as V;
}

function modelRequest(v: ModelVector): SelectRequest {
  const r = v.request;
  return {
    ...vectorRequest(v),
    models: r.models.map((blob) => new Uint8Array(Buffer.from(blob, "base64"))),
    modelOutput: r.model_output,
    embeddingsOutput: r.embeddings_output,
    mcDropoutSamples: r.mc_dropout_samples,
  };
}

function assertModelMatches(got: SelectResponse, v: ModelVector): void {
  assertMatches(got, v);
  v.response.results.forEach((want, i) => {
    const r = got.results[i];
    assert.equal(r.candidatesConsidered, want.candidates_considered, `${want.name} candidates_considered`);
    assert.equal(r.adversarialMethod ?? "", want.adversarial_method, `${want.name} adversarial_method`);
    const points = want.adversarial_points;
    if (points === null) {
      assert.equal(r.adversarialPoints, undefined, `${want.name} adversarial_points`);
      return;
    }
    assert.ok(r.adversarialPoints, `${want.name} has no adversarial_points`);
    assert.deepEqual(r.adversarialPoints.shape, points.shape);
    assert.equal(r.adversarialPoints.data.length, points.data.length);
    r.adversarialPoints.data.forEach((x, j) => {
      const y = points.data[j];
      assert.ok(Math.abs(x - y) <= 1e-6 * Math.max(Math.abs(x), Math.abs(y)) + 1e-9, `${want.name} point ${j}: ${x} vs ${y}`);
    });
  });
}

const modelFiles = readdirSync(join(vectorDir, "model")).filter((f) => f.endsWith(".json")).sort();

describe("model-mode vectors", () => {
  it("has vectors to replay", () => assert.ok(modelFiles.length > 0));
  for (const file of modelFiles) {
    it(file, async () => {
      const v = readVector<ModelVector>("model", file);
      const unary = methodLog();
      assertModelMatches(await client({ interceptors: [unary.interceptor] }).selectQueries(modelRequest(v), { timeoutMs: 30_000 }), v);
      assert.deepEqual(unary.names, ["SelectQueries"]);
      const streamed = methodLog();
      const small = client({ interceptors: [streamed.interceptor], maxMessageBytes: 64 * 1024 + 1, chunkBytes: 256 });
      assertModelMatches(await small.selectQueries(modelRequest(v), { timeoutMs: 30_000 }), v);
      assert.deepEqual(streamed.names, ["SelectQueriesStream"]);
    });
  }
});

// History (tests/vectors/history): the vector format plus the past rounds for "auto", and
// auto's report in each result.
interface HistoryVector extends Vector {
  request: Vector["request"] & {
    history: { strategies: string[]; labels: number[]; probabilities: number[] }[];
  };
  response: {
    pool_size: number;
    results: (Vector["response"]["results"][number] & {
      auto_selection: {
        arms: { name: string; picks: number; weight: number; expected_reward: number; evidence: number }[];
        strategies: string[];
        reward: string;
        history_rounds: number;
        history_items: number;
      } | null;
    })[];
  };
}

function historyRequest(v: HistoryVector): SelectRequest {
  return { ...vectorRequest(v), history: v.request.history };
}

function assertHistoryMatches(got: SelectResponse, v: HistoryVector): void {
  assertMatches(got, v);
  v.response.results.forEach((want, i) => {
    const report = got.results[i].autoSelection;
    const expected = want.auto_selection;
    if (expected === null) {
      assert.equal(report, undefined, `${want.name} auto_selection`);
      return;
    }
    assert.ok(report, `${want.name} has no auto_selection`);
    assert.deepEqual(report.strategies, expected.strategies);
    assert.deepEqual([report.reward, report.historyRounds, report.historyItems],
      [expected.reward, expected.history_rounds, expected.history_items]);
    assert.equal(report.arms.length, expected.arms.length);
    expected.arms.forEach((arm, j) => {
      const ours = report.arms[j];
      assert.deepEqual([ours.name, ours.picks], [arm.name, arm.picks]);
      assert.ok(closeRelative(ours.weight, arm.weight), `${arm.name} weight`);
      assert.ok(closeRelative(ours.expectedReward, arm.expected_reward), `${arm.name} expected reward`);
      assert.ok(closeRelative(ours.evidence, arm.evidence), `${arm.name} evidence`);
    });
  });
}

const historyFiles = readdirSync(join(vectorDir, "history")).filter((f) => f.endsWith(".json")).sort();

describe("history vectors", () => {
  it("has vectors to replay", () => assert.ok(historyFiles.length > 0));
  for (const file of historyFiles) {
    it(file, async () => {
      const v = readVector<HistoryVector>("history", file);
      assertHistoryMatches(await client().selectQueries(historyRequest(v)), v);
      const streamed = methodLog();
      const small = client({ interceptors: [streamed.interceptor], maxMessageBytes: 64 * 1024 + 1, chunkBytes: 256 });
      assertHistoryMatches(await small.selectQueries(historyRequest(v)), v);
      assert.deepEqual(streamed.names, ["SelectQueriesStream"]);
    });
  }
});

interface StoppingVector {
  request: {
    stop_set_predictions: (Omit<VectorTensor, "dtype"> & { dtype: VectorTensor["dtype"] | "int64" }) | null;
    pool_probabilities: VectorTensor | null;
    kappa_threshold: number | null;
    kappa_window: number | null;
    uncertainty_threshold: number | null;
    max_change_fraction: number | null;
    uncertainty_aggregate: "mean" | "max" | null;
    rule: "all" | "any" | null;
  };
  response: {
    stop: boolean;
    criteria: { name: string; value: number; threshold: number; stop: boolean; evaluated: boolean; detail: string }[];
    kappas: number[];
  };
}

function vectorTensor(t: Omit<VectorTensor, "dtype"> & { dtype: string }): Tensor {
  if (t.dtype === "int64") return tensor(BigInt64Array.from(t.data, (x) => BigInt(x)), t.shape);
  return tensor(t.dtype === "float32" ? Float32Array.from(t.data) : Float64Array.from(t.data), t.shape);
}

const stoppingFiles = readdirSync(join(vectorDir, "stopping")).filter((f) => f.endsWith(".json")).sort();

describe("stopping vectors", () => {
  it("has vectors to replay", () => assert.ok(stoppingFiles.length > 0));
  for (const file of stoppingFiles) {
    it(file, async () => {
      const { request: r, response: want } = readVector<StoppingVector>("stopping", file);
      const request: StoppingRequest = {
        stopSetPredictions: r.stop_set_predictions ? vectorTensor(r.stop_set_predictions) : undefined,
        poolProbabilities: r.pool_probabilities ? vectorTensor(r.pool_probabilities) : undefined,
        kappaThreshold: r.kappa_threshold ?? undefined,
        kappaWindow: r.kappa_window ?? undefined,
        uncertaintyThreshold: r.uncertainty_threshold ?? undefined,
        maxChangeFraction: r.max_change_fraction ?? undefined,
        uncertaintyAggregate: r.uncertainty_aggregate ?? undefined,
        rule: r.rule ?? undefined,
      };
      const verdict = await client().checkStopping(request, { timeoutMs: 10_000 });
      assert.equal(verdict.stop, want.stop);
      assert.deepEqual(Object.keys(verdict.criteria), want.criteria.map((c) => c.name));
      for (const c of want.criteria) {
        const ours = verdict.criteria[c.name];
        assert.deepEqual([ours.name, ours.stop, ours.evaluated, ours.detail], [c.name, c.stop, c.evaluated, c.detail]);
        assert.ok(closeRelative(ours.value, c.value), `${c.name} value ${ours.value} vs ${c.value}`);
        assert.ok(closeRelative(ours.threshold, c.threshold), `${c.name} threshold`);
      }
      assert.equal(verdict.kappas.length, want.kappas.length);
      verdict.kappas.forEach((k, i) => assert.ok(closeRelative(k, want.kappas[i]), `kappa ${i}: ${k} vs ${want.kappas[i]}`));
    });
  }
});

/**
 * Records how each SelectQueries call sends its models ("onnx" or "sha256"), from the unary
 * message or the stream's first chunk, and checks later chunks carry none.
 */
function modelLog(): { sent: string[][]; methods: string[]; interceptor: Interceptor } {
  const sent: string[][] = [];
  const methods: string[] = [];
  const sources = (m: SelectQueriesRequest) => m.models.map((model) => model.source.case ?? "none");
  const interceptor: Interceptor = (next) => async (req) => {
    methods.push(req.method.name);
    if (!req.stream) {
      sent.push(sources(req.message as SelectQueriesRequest));
      return next(req);
    }
    const chunks = req.message as AsyncIterable<SelectQueriesStreamRequest>;
    async function* tap() {
      let first = true;
      for await (const message of chunks) {
        const models = message.chunk ? sources(message.chunk) : [];
        if (first) sent.push(models);
        else assert.deepEqual(models, [], "models after the first chunk");
        first = false;
        yield message;
      }
    }
    return next({ ...req, message: tap() } as typeof req);
  };
  return { sent, methods, interceptor };
}

describe("model mode: the hash-first protocol and the settings", () => {
  // One worker caching at most 700 bytes of models: model_linear's (305 bytes) fits, and
  // model_embeddings_output's (674) then evicts it.
  let tiny = "";
  before(async () => {
    tiny = await startServer("tiny-cache", ["--workers", "1", "--model-cache-bytes", "700"]);
  });
  const linear = () => modelRequest(readVector<ModelVector>("model", "model_linear.json"));
  const other = () => modelRequest(readVector<ModelVector>("model", "model_embeddings_output.json"));

  it("sends bytes first, then the hash, and resends the bytes once the server forgot them", async () => {
    const log = modelLog();
    const lw = new LabelwiseClient(tiny, { interceptors: [log.interceptor] });
    const path = join(tempDir, "linear.onnx");
    writeFileSync(path, linear().models![0] as Uint8Array);
    const first = await lw.selectQueries({ ...linear(), models: [path] }, { timeoutMs: 30_000 }); // a file path
    const second = await lw.selectQueries(linear(), { timeoutMs: 30_000 }); // the same bytes: by hash
    await lw.selectQueries(other(), { timeoutMs: 30_000 }); // evicts the linear model
    const third = await lw.selectQueries(linear(), { timeoutMs: 30_000 }); // hash misses, bytes again
    assert.deepEqual(log.sent, [["onnx"], ["sha256"], ["onnx"], ["sha256"], ["onnx"]]);
    assert.deepEqual(second, first);
    assert.deepEqual(third, first);
  });

  it("puts the models in a stream's first chunk and retries a miss through the stream too", async () => {
    const log = modelLog();
    const streaming = new LabelwiseClient(tiny, {
      interceptors: [log.interceptor], maxMessageBytes: 64 * 1024 + 1, chunkBytes: 256,
    });
    const first = await streaming.selectQueries(linear(), { timeoutMs: 30_000 });
    await new LabelwiseClient(tiny).selectQueries(other(), { timeoutMs: 30_000 }); // another client evicts it
    const second = await streaming.selectQueries(linear(), { timeoutMs: 30_000 });
    assert.deepEqual(log.methods, ["SelectQueriesStream", "SelectQueriesStream", "SelectQueriesStream"]);
    assert.deepEqual(log.sent, [["onnx"], ["sha256"], ["onnx"]]);
    assert.deepEqual(second, first);
  });

  it("sends the inference settings, which the server checks", async () => {
    for (const [settings, field] of [
      [{ inferenceBatchRows: -1 }, "inference_batch_rows"],
      [{ inferenceTimeoutMs: -5 }, "inference_timeout_seconds"],
      [{ mcDropoutSamples: 1 }, "mc_dropout_samples"],
    ] as const) {
      const error = await client()
        .selectQueries({ ...linear(), ...settings }, { timeoutMs: 30_000 })
        .then(() => assert.fail(`${field} was not checked`), (e: unknown) => e);
      assert.ok(error instanceof LabelwiseError, String(error));
      assert.equal(error.code, Code.InvalidArgument);
      assert.equal(error.field, field);
    }
    const ok = await client().selectQueries({ ...linear(), inferenceBatchRows: 7, inferenceTimeoutMs: 20_000 });
    assert.deepEqual(ok.results[0].indices, readVector<ModelVector>("model", "model_linear.json").response.results[0].indices);
  });

  it("fails a refused model once, with its reason and field", async () => {
    // Bytes were sent, so there is nothing to retry.
    const log = modelLog();
    const error = await new LabelwiseClient(tiny, { interceptors: [log.interceptor] })
      .selectQueries({ ...linear(), models: [new Uint8Array([1, 2, 3])] }, { timeoutMs: 30_000 })
      .then(() => assert.fail("garbage bytes were taken for a model"), (e: unknown) => e);
    assert.ok(error instanceof LabelwiseError, String(error));
    assert.equal(error.code, Code.InvalidArgument);
    assert.equal(error.reason, "MODEL_MALFORMED");
    assert.match(error.field ?? "", /^models\[0\]/);
    assert.deepEqual(log.sent, [["onnx"]]);
  });
});

describe("checkStopping errors", () => {
  const labels = int64Matrix([[0, 1, 1, 2], [0, 1, 2, 2]]);

  it("names an out-of-range threshold", async () => {
    const error = await client()
      .checkStopping({ stopSetPredictions: labels, kappaThreshold: 2 }, { timeoutMs: 10_000 })
      .then(() => assert.fail("kappa_threshold 2 was accepted"), (e: unknown) => e);
    assert.ok(error instanceof LabelwiseError, String(error));
    assert.equal(error.code, Code.InvalidArgument);
    assert.equal(error.field, "kappa_threshold");
    assert.match(error.violations[0].description, /2/);
  });

  it("names negative class labels", async () => {
    const error = await client()
      .checkStopping({ stopSetPredictions: int64Matrix([[0, -1], [1, 1]]) }, { timeoutMs: 10_000 })
      .then(() => assert.fail("a negative label was accepted"), (e: unknown) => e);
    assert.ok(error instanceof LabelwiseError, String(error));
    assert.equal(error.field, "stop_set_predictions");
  });

  it("refuses an unknown rule before sending", async () => {
    await assert.rejects(
      client().checkStopping({ stopSetPredictions: labels, rule: "some" as "any" }),
      (e: unknown) => e instanceof RangeError && /rule must be one of all, any/.test(e.message),
    );
  });
});

/** n rows of c float32 probabilities that differ row by row. */
function largePool(n: number, c: number): Tensor {
  const data = new Float32Array(n * c);
  for (let i = 0; i < n; i++) {
    const top = Math.fround(0.5 + (0.49 * ((i * 7919) % n)) / n);
    data[i * c] = top;
    for (let j = 1; j < c; j++) data[i * c + j] = (1 - top) / (c - 1);
  }
  return tensor(data, [n, c]);
}

describe("the client", () => {
  it("streams a pool larger than one message, with the unary call's answer", async () => {
    // 300,000 x 4 float32 is 4.8 MB: over a 1 MiB limit, so it goes in ~256 KiB chunks; the
    // 5,001 excluded indices go first, in chunks of their own.
    const exclude = [299_999, ...Array.from({ length: 5_000 }, (_, i) => 60 * i + 1)];
    const request: SelectRequest = {
      strategies: ["margin", "entropy"], k: 50, exclude, probabilities: largePool(300_000, 4),
    };
    const unary = methodLog();
    const whole = await client({ interceptors: [unary.interceptor] }).selectQueries(request, { timeoutMs: 60_000 });
    const streamed = methodLog();
    // What each chunk carries, in order: "x" exclude, "r" rows.
    const kinds: string[] = [];
    const order: Interceptor = (next) => async (req) => {
      if (!req.stream) return next(req);
      const chunks = req.message as AsyncIterable<SelectQueriesStreamRequest>;
      async function* tap() {
        for await (const message of chunks) {
          if (message.chunk?.exclude.length) kinds.push("x");
          if (message.chunk?.probabilities) kinds.push("r");
          yield message;
        }
      }
      return next({ ...req, message: tap() } as typeof req);
    };
    const chunked = await client({
      interceptors: [streamed.interceptor, order], maxMessageBytes: 1 << 20, chunkBytes: 256 << 10,
    }).selectQueries(request, { timeoutMs: 60_000 });
    // Exclude precedes the rows, so a server scoring rows as they arrive skips the excluded ones.
    assert.ok(kinds.indexOf("r") > kinds.lastIndexOf("x"), `chunk order ${kinds.join("")}`);
    assert.ok(kinds.includes("x") && kinds.includes("r"), `chunk order ${kinds.join("")}`);
    assert.deepEqual(unary.names, ["SelectQueries"]);
    assert.deepEqual(streamed.names, ["SelectQueriesStream"]);
    assert.equal(whole.poolSize, 300_000);
    assert.equal(whole.results[0].indices.length, 50);
    assert.deepEqual(chunked, whole);
    const excluded = new Set(exclude);
    for (const i of whole.results[1].indices) assert.ok(!excluded.has(i), `excluded index ${i} selected`);
  });

  it("streams multi-label, regression and structured inputs with the unary call's answer", async () => {
    // n = 40 items; every kind of pool tensor, split along axis 0 or 1, plus both labeled-set
    // tensors, through 256-byte chunks.
    const [n, m, labels, tokens, d, l] = [40, 3, 4, 5, 3, 6];
    let state = 7;
    const uniform = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
    const f32 = (size: number, draw: () => number) => Float32Array.from({ length: size }, draw);
    const structured = new Float32Array(m * n * 2 * tokens); // [m, n, c=2, T]
    for (let member = 0; member < m; member++) {
      for (let item = 0; item < n; item++) {
        for (let t = 0; t < tokens; t++) {
          const p = 0.05 + 0.9 * uniform();
          const base = (member * n + item) * 2 * tokens + t;
          structured[base] = p;
          structured[base + tokens] = 1 - p;
        }
      }
    }
    const mask = Float32Array.from({ length: n * tokens }, (_, i) => (i % tokens < 1 + (Math.floor(i / tokens) % tokens) ? 1 : 0));
    const request: SelectRequest = {
      strategies: ["multilabel_entropy", "label_cardinality_inconsistency", "multilabel_bald",
        "regression_variance", "igs", "structured_bald", "structured_mean_std"],
      k: 5, exclude: [0, 39], labeledLabelCardinality: 1.5,
      multilabelProbabilities: tensor(f32(n * labels, uniform), [n, labels]),
      multilabelCommittee: tensor(f32(m * n * labels, uniform), [m, n, labels]),
      regressionSamples: tensor(Float64Array.from({ length: m * n }, normal), [m, n]),
      embeddings: tensor(f32(n * d, normal), [n, d]),
      labeledEmbeddings: tensor(f32(l * d, normal), [l, d]),
      labeledTargets: tensor(Float64Array.from({ length: l }, normal), [l]),
      structuredCommittee: tensor(structured, [m, n, 2, tokens]),
      structuredMask: tensor(mask, [n, tokens]),
    };
    const whole = await client().selectQueries(request, { timeoutMs: 30_000 });
    const streamed = methodLog();
    const chunked = await client({ interceptors: [streamed.interceptor], maxMessageBytes: 64 * 1024 + 1, chunkBytes: 256 })
      .selectQueries(request, { timeoutMs: 30_000 });
    assert.deepEqual(streamed.names, ["SelectQueriesStream"]);
    assert.equal(whole.poolSize, n);
    for (const r of whole.results) assert.equal(r.indices.length, 5, r.name);
    assert.deepEqual(chunked, whole);
  });

  it("keeps stream chunks under a max message size set alone", async () => {
    // The default 4 MiB chunks would not fit a 1 MiB message; the client shrinks them.
    const calls = methodLog();
    const response = await client({ interceptors: [calls.interceptor], maxMessageBytes: 1 << 20 })
      .selectQueries({ strategies: ["least_confidence"], k: 3, probabilities: largePool(200_000, 4) }, { timeoutMs: 60_000 });
    assert.deepEqual(calls.names, ["SelectQueriesStream"]);
    assert.equal(response.results[0].indices.length, 3);
  });

  it("connects over TLS with a given CA", async () => {
    // A TLS server in this process (test/tls: a self-signed localhost certificate for tests
    // only), since `labelwise serve` itself speaks plaintext behind a mesh or proxy.
    const cert = readFileSync(join(testDir, "tls", "server.pem"));
    const key = readFileSync(join(testDir, "tls", "server.key"));
    const handler = connectNodeAdapter({
      grpc: true,
      routes: (router) => router.service(QuerySelectionService, { listStrategies: () => ({ strategies: [{ name: "random" }] }) }),
    });
    const server = createSecureServer({ cert, key }, handler);
    const sessions = new Set<{ destroy(): void }>();
    server.on("session", (session) => sessions.add(session));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const target = `localhost:${(server.address() as AddressInfo).port}`;
    try {
      const names = (await new LabelwiseClient(target, { tls: { ca: cert } }).listStrategies()).map((s) => s.name);
      assert.deepEqual(names, ["random"]);
      // The system roots do not trust this certificate.
      const error = await new LabelwiseClient(target, { tls: true })
        .listStrategies({ timeoutMs: 10_000 })
        .then(() => assert.fail("an untrusted certificate was accepted"), (e: unknown) => e);
      assert.ok(error instanceof LabelwiseError, String(error));
      assert.match(error.message, /certificate/i);
    } finally {
      // close() waits for open sessions, and the clients keep theirs: end them.
      for (const session of sessions) session.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("surfaces BadRequest field violations", async () => {
    const error = await client()
      .selectQueries({ strategies: ["entropy"], k: 1, temperature: -1, logits: tensor(new Float32Array([1, 2, 3, 4]), [2, 2]) })
      .then(() => assert.fail("a negative temperature was accepted"), (e: unknown) => e);
    assert.ok(error instanceof LabelwiseError, String(error));
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, Code.InvalidArgument);
    assert.equal(error.field, "temperature");
    assert.match(error.violations[0].description, /-1/);
    assert.match(error.message, /temperature/);
  });

  it("names a bad parameter's path", async () => {
    const error = await client()
      .selectQueries({
        strategies: ["entropy", { name: "bald", params: { nope: 1 } }], k: 1,
        probabilities: tensor(new Float32Array([0.5, 0.5, 0.9, 0.1]), [2, 2]),
      })
      .then(() => assert.fail("an unknown parameter was accepted"), (e: unknown) => e);
    assert.ok(error instanceof LabelwiseError);
    assert.match(error.field ?? "", /^strategies\[1\]/);
  });

  it("enforces the deadline", async () => {
    const error = await client()
      .selectQueries({ strategies: ["entropy"], k: 10, probabilities: largePool(200_000, 4) }, { timeoutMs: 1 })
      .then(() => assert.fail("the call beat a 1 ms deadline"), (e: unknown) => e);
    assert.ok(error instanceof LabelwiseError);
    assert.equal(error.code, Code.DeadlineExceeded);
  });

  it("lists the strategies", async () => {
    const names = (await client().listStrategies()).map((s) => s.name);
    for (const name of ["random", "entropy", "margin", "bald"]) assert.ok(names.includes(name), name);
  });

  it("lists the label-quality methods", async () => {
    const methods = await client().labelQualityMethods();
    assert.deepEqual(
      methods.map((m) => m.name),
      ["crowdlab", "dawid_skene", "bayes_em", "activelab", "interval_estimation"],
    );
    assert.deepEqual(methods[1].params.map((p) => p.name), ["max_iterations", "tolerance"]);
    assert.deepEqual(methods[1].rpcs, ["AssessLabels"]);
    assert.deepEqual(methods[2].params.map((p) => p.name), ["max_iterations", "tolerance", "accuracy_prior_strength"]);
  });

  it("encodes tensors little-endian and checks shapes", () => {
    assert.deepEqual([...tensor(new Float32Array([1, -2]), [2]).raw], [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
    assert.deepEqual([...int64Matrix([[1, -2n]]).raw], [1, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert.deepEqual([...tensor(new Int32Array([258]), [1, 1]).raw], [2, 1, 0, 0]);
    assert.throws(() => tensor(new Float32Array(3), [2, 2]), RangeError);
  });
});

interface LabelVector {
  request: {
    annotations: Omit<VectorTensor, "dtype"> & { dtype: string };
    labeled_probabilities: VectorTensor | null;
    pool_probabilities?: VectorTensor | null;
    annotator_costs?: VectorTensor | null;
    method?: "crowdlab" | "dawid_skene" | "bayes_em";
    num_classes?: number | null;
    accuracy_prior_strength?: number | null;
    budget?: number | null;
    k?: number;
    clamp_k?: boolean;
    pool_strategy?: string;
    exclude_labeled?: number[];
    exclude_pool?: number[];
  };
  response: {
    method?: string;
    consensus_labels?: number[];
    consensus_quality?: number[];
    annotator_quality?: number[];
    majority_vote_labels?: number[];
    model_temperature?: number;
    tasks?: { kind: string; index: number; score: number; annotator: number; expected_accuracy: number; cost: number }[];
    total_cost?: number;
    temperature?: number;
    candidates_considered?: number;
  };
}

const labelFiles = readdirSync(join(vectorDir, "labels")).filter((f) => f.endsWith(".json")).sort();

function assertClose(got: number[], want: number[], what: string): void {
  assert.equal(got.length, want.length, what);
  got.forEach((g, i) => assert.ok(closeRelative(g, want[i]) || Math.abs(g - want[i]) <= 1e-9, `${what}[${i}]: ${g} vs ${want[i]}`));
}

describe("label quality vectors", () => {
  it("has assess and plan vectors", () =>
    assert.deepEqual(new Set(labelFiles.map((f) => f.split("_")[0])), new Set(["assess", "plan"])));
  for (const file of labelFiles) {
    it(file, async () => {
      const { request: r, response: want } = readVector<LabelVector>("labels", file);
      const opt = (t: VectorTensor | null | undefined) => (t ? vectorTensor(t) : undefined);
      if (file.startsWith("assess")) {
        const got = await client().assessLabels(
          {
            annotations: vectorTensor(r.annotations),
            labeledProbabilities: opt(r.labeled_probabilities),
            method: r.method,
            numClasses: r.num_classes ?? undefined,
            accuracyPriorStrength: r.accuracy_prior_strength ?? undefined,
          },
          { timeoutMs: 30_000 },
        );
        assert.equal(got.method, want.method);
        assert.deepEqual(got.consensusLabels, want.consensus_labels);
        assert.deepEqual(got.majorityVoteLabels, want.majority_vote_labels);
        assertClose(got.consensusQuality, want.consensus_quality ?? [], "consensus quality");
        assertClose(got.annotatorQuality, want.annotator_quality ?? [], "annotator quality");
        assert.equal(typeof want.model_temperature, "number", "the vector gives model_temperature");
        assertClose([got.modelTemperature], [want.model_temperature as number], "model temperature");
        return;
      }
      const plan = await client().planLabeling(
        {
          annotations: vectorTensor(r.annotations),
          labeledProbabilities: vectorTensor(r.labeled_probabilities as VectorTensor),
          poolProbabilities: opt(r.pool_probabilities),
          annotatorCosts: opt(r.annotator_costs),
          budget: r.budget ?? undefined,
          k: r.k ?? 1,
          clampK: r.clamp_k,
          poolStrategy: r.pool_strategy,
          excludeLabeled: r.exclude_labeled,
          excludePool: r.exclude_pool,
        },
        { timeoutMs: 30_000 },
      );
      const tasks = want.tasks ?? [];
      assert.deepEqual(
        plan.tasks.map((t) => [t.kind, t.index, t.annotator]),
        tasks.map((t) => [t.kind, t.index, t.annotator]),
      );
      assertClose(plan.tasks.map((t) => t.score), tasks.map((t) => t.score), "scores");
      assertClose(plan.tasks.map((t) => t.cost), tasks.map((t) => t.cost), "costs");
      assertClose(plan.tasks.map((t) => t.expectedAccuracy), tasks.map((t) => t.expected_accuracy), "accuracy");
      assertClose([plan.totalCost, plan.temperature], [want.total_cost ?? 0, want.temperature ?? 0], "total");
      assert.equal(plan.candidatesConsidered, want.candidates_considered);
    });
  }
});

describe("bayes_em without a model", () => {
  it("takes c from numClasses and sends accuracyPriorStrength", async () => {
    const annotations = int64Matrix([[0, 0, -1], [1, 1, 2], [2, -1, 2], [0, 1, 0]]);
    const got = await client().assessLabels(
      { annotations, method: "bayes_em", numClasses: 3, accuracyPriorStrength: 2 },
      { timeoutMs: 10_000 },
    );
    assert.equal(got.method, "bayes_em");
    assert.equal(got.consensusLabels.length, 4);
    assert.equal(got.consensusLabels[0], 0);
    assert.equal(got.consensusLabels[2], 2);
    assert.equal(got.classPriors.length, 3);
    assert.ok(got.iterations >= 1);
    assert.equal(got.modelTemperature, 0);
    assert.equal(got.confusion, undefined);
    assert.deepEqual(got.annotatorWeights, []);
    const error = await client()
      .assessLabels({ annotations, method: "bayes_em", numClasses: 3, accuracyPriorStrength: -1 }, { timeoutMs: 10_000 })
      .catch((e: unknown) => e);
    assert.ok(error instanceof LabelwiseError);
    assert.equal(error.field, "accuracy_prior_strength");
  });
});

describe("label quality errors", () => {
  it("names the field", async () => {
    const annotations = int64Matrix([[0, 1], [1, -1]]);
    const p = tensor(Float64Array.from([0.5, 0.5, 0.2, 0.8]), [2, 2]);
    const error = await client()
      .planLabeling({ annotations, labeledProbabilities: p, k: 0 }, { timeoutMs: 10_000 })
      .catch((e: unknown) => e);
    assert.ok(error instanceof LabelwiseError);
    assert.equal(error.code, Code.InvalidArgument);
    assert.equal(error.field, "k");
    await assert.rejects(client().assessLabels({ annotations, method: "majority" as "crowdlab" }), RangeError);
  });
});
