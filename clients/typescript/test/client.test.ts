// Replays tests/vectors/*.json and covers errors, deadlines and streaming against a real
// `labelwise serve --port 0` started here ($LABELWISE_PYTHON, else python3).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { createSecureServer } from "node:http2";
import type { AddressInfo } from "node:net";

import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { QuerySelectionService } from "../src/gen/labelwise/v1/query_selection_pb.js";
import {
  LabelwiseClient,
  LabelwiseError,
  tensor,
  type ClientOptions,
  type ParamValue,
  type SelectRequest,
  type SelectResponse,
  type Tensor,
} from "../src/index.js";

const root = fileURLToPath(new URL("../../../../", import.meta.url));
const testDir = join(root, "clients", "typescript", "test");
let server: ChildProcess | undefined;
let address = "";
let tempDir = "";

before(async () => {
  tempDir = mkdtempSync(join(tmpdir(), "labelwise-ts-test-"));
  const portFile = join(tempDir, "port");
  const python = process.env.LABELWISE_PYTHON ?? "python3";
  server = spawn(
    python,
    ["-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1", "--port", "0",
     "--metrics-port", "0", "--compute-threads", "1", "--grace-seconds", "1",
     "--port-file", portFile],
    {
      env: { ...process.env, PYTHONPATH: `${join(root, "service")}:${join(root, "clients/python/src")}` },
      stdio: ["ignore", "inherit", "inherit"],
    },
  );
  const deadline = Date.now() + 60_000;
  while (!existsSync(portFile)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error("the server did not start");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  address = `127.0.0.1:${readFileSync(portFile, "utf8").trim()}`;
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once("exit", resolve));
    server.kill("SIGTERM");
    const timer = setTimeout(() => server!.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
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
  labeled_embeddings: "labeledEmbeddings", costs: "costs",
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
    // 5,001 excluded indices follow in chunks of their own.
    const exclude = [299_999, ...Array.from({ length: 5_000 }, (_, i) => 60 * i + 1)];
    const request: SelectRequest = {
      strategies: ["margin", "entropy"], k: 50, exclude, probabilities: largePool(300_000, 4),
    };
    const unary = methodLog();
    const whole = await client({ interceptors: [unary.interceptor] }).selectQueries(request, { timeoutMs: 60_000 });
    const streamed = methodLog();
    const chunked = await client({
      interceptors: [streamed.interceptor], maxMessageBytes: 1 << 20, chunkBytes: 256 << 10,
    }).selectQueries(request, { timeoutMs: 60_000 });
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

  it("encodes tensors little-endian and checks shapes", () => {
    assert.deepEqual([...tensor(new Float32Array([1, -2]), [2]).raw], [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
    assert.throws(() => tensor(new Float32Array(3), [2, 2]), RangeError);
  });
});
