/** Stream selection through the TypeScript client: the shared stream vectors, DecideStream
 * equal to Decide, and a tampered token refused naming its field. */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { LabelwiseClient, LabelwiseError, tensor, type StreamConfig, type StreamItems, type Tensor } from "../src/index.js";

const root = fileURLToPath(new URL("../../../../", import.meta.url));
let server: ChildProcess | undefined;
let address = "";
let tempDir = "";

before(async () => {
  tempDir = mkdtempSync(join(tmpdir(), "labelwise-ts-stream-"));
  const portFile = join(tempDir, "port");
  server = spawn(
    process.env.LABELWISE_PYTHON ?? "python3",
    ["-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0",
     "--compute-threads", "1", "--grace-seconds", "1", "--port-file", portFile],
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
  if (server !== undefined && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once("exit", resolve));
    server.kill("SIGTERM");
    await exited;
  }
  rmSync(tempDir, { recursive: true, force: true });
});

interface VectorTensor { dtype: "float32" | "float64"; shape: number[]; data: number[] }
interface StreamVector {
  strategy: { name: string; params: Record<string, Record<string, number | string | boolean>> };
  budget: number | null;
  window_cap: { window_items: number; max_labels: number } | null;
  seed: number;
  steps: {
    tensors: Record<string, VectorTensor>;
    temperature: number | null;
    response: {
      label: boolean[]; utilities: number[]; label_probabilities: number[];
      items_seen: number; items_labeled: number; token: string;
    };
  }[];
}

const FIELDS: Record<string, keyof StreamItems> = {
  probabilities: "probabilities", logits: "logits", committee: "committee",
  committee_logits: "committeeLogits", utilities: "utilities", frequencies: "frequencies",
};

function config(v: StreamVector): StreamConfig {
  return {
    strategy: v.strategy.name,
    params: Object.fromEntries(Object.entries(v.strategy.params).map(([k, p]) => [k, Object.values(p)[0]])),
    budget: v.budget ?? undefined,
    windowItems: v.window_cap?.window_items,
    maxLabels: v.window_cap?.max_labels,
    seed: v.seed,
  };
}

function items(step: StreamVector["steps"][number]): StreamItems {
  const out: StreamItems = { temperature: step.temperature ?? undefined };
  for (const [name, t] of Object.entries(step.tensors)) {
    const field = FIELDS[name];
    assert.ok(field, `stream vector tensor ${name} is not an item field this client knows`);
    const data = t.dtype === "float32" ? Float32Array.from(t.data) : Float64Array.from(t.data);
    (out as Record<string, Tensor | number | undefined>)[field] = tensor(data, t.shape);
  }
  return out;
}

function close(got: number, want: number): boolean {
  return got === want || Math.abs(got - want) <= 1e-6 * Math.max(Math.abs(got), Math.abs(want));
}

const streamDir = join(root, "tests", "vectors", "stream");
const files = readdirSync(streamDir).filter((f) => f.endsWith(".json")).sort();
const load = (f: string): StreamVector => JSON.parse(readFileSync(join(streamDir, f), "utf8"));

describe("stream vectors", () => {
  it("has vectors to replay", () => assert.ok(files.length >= 5));
  for (const file of files) {
    it(`replays ${file}`, async () => {
      const v = load(file);
      const selector = new LabelwiseClient(address).streamSelector(config(v));
      for (const [i, step] of v.steps.entries()) {
        const got = await selector.decide(items(step), { timeoutMs: 20_000 });
        const want = step.response;
        assert.deepEqual(got.label, want.label, `step ${i}`);
        got.utilities.forEach((u, j) => assert.ok(close(u, want.utilities[j]), `utility ${i}.${j}`));
        got.labelProbabilities.forEach((p, j) => assert.ok(close(p, want.label_probabilities[j])));
        assert.equal(got.itemsSeen, want.items_seen);
        assert.equal(got.itemsLabeled, want.items_labeled);
        assert.equal(Buffer.from(got.token).toString("base64"), want.token);
        assert.equal(Buffer.from(selector.token).toString("base64"), want.token);
      }
    });
  }

  it("answers DecideStream as Decide", async () => {
    const v = load("stream_split_logits_window_cap.json");
    const selector = new LabelwiseClient(address).streamSelector(config(v));
    const answers = await selector.decideStream(v.steps.map(items), { timeoutMs: 20_000 });
    assert.deepEqual(answers.map((a) => Buffer.from(a.token).toString("base64")), v.steps.map((s) => s.response.token));
  });

  it("refuses an altered token naming the field", async () => {
    const selector = new LabelwiseClient(address).streamSelector({ strategy: "quantile_filter" });
    const utilities = tensor(Float64Array.from([0.1, 0.9, 0.5]), [3]);
    await selector.decide({ utilities });
    selector.token = Uint8Array.from(selector.token);
    selector.token[selector.token.length - 1] ^= 1;
    await assert.rejects(selector.decide({ utilities }), (error: unknown) => {
      assert.ok(error instanceof LabelwiseError);
      assert.equal(error.field, "token");
      return true;
    });
  });
});
