// The README's examples, run against a real `labelwise serve --port 0` started here
// ($LABELWISE_PYTHON, else python3). scripts/docs copies each region between
// "// docs:start NAME" and "// docs:end NAME" (a name's regions joined) into README.md,
// showing serverAddress() as "localhost:50051" and the import as "@labelwise/client".
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, it } from "node:test";
import assert from "node:assert/strict";

// docs:start select
import { LabelwiseClient, LabelwiseError, tensor } from "../src/index.js";
// docs:end select
// docs:start stopping
import { int64Matrix } from "../src/index.js";
// docs:end stopping

const root = fileURLToPath(new URL("../../../../", import.meta.url));
let server: ChildProcess | undefined;
let address = "";
let tempDir = "";
const serverAddress = () => address;

before(async () => {
  tempDir = mkdtempSync(join(tmpdir(), "labelwise-ts-examples-"));
  const portFile = join(tempDir, "port");
  server = spawn(
    process.env.LABELWISE_PYTHON ?? "python3",
    ["-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1", "--port", "0",
     "--metrics-port", "0", "--workers", "1", "--grace-seconds", "1", "--port-file", portFile],
    {
      env: { ...process.env, PYTHONPATH: `${join(root, "service")}:${join(root, "clients/python/src")}` },
      stdio: ["ignore", "inherit", "inherit"],
    },
  );
  const deadline = Date.now() + 60_000;
  while (!existsSync(portFile) || readFileSync(portFile, "utf8").trim() === "") {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error("the server did not start");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  address = `127.0.0.1:${readFileSync(portFile, "utf8").trim()}`;
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once("exit", resolve));
    server.kill("SIGTERM");
    await exited;
  }
  rmSync(tempDir, { recursive: true, force: true });
});

it("selects with margin and entropy", async () => {
  // docs:start select
  const client = new LabelwiseClient(serverAddress()); // { tls: true } or { tls: { ca } } for TLS
  const probs = tensor(new Float32Array([0.9, 0.1, 0.55, 0.45, 0.7, 0.3]), [3, 2]); // [n=3, c=2]
  try {
    const { results } = await client.selectQueries(
      { strategies: ["margin", { name: "entropy" }], k: 2, probabilities: probs },
      { timeoutMs: 5000 }, // the call's deadline
    );
    for (const r of results) console.log(r.name, r.indices, r.scores); // margin [1, 2] ...
  } catch (e) {
    if (e instanceof LabelwiseError) console.error(e.code, e.field, e.violations);
    else throw e;
  }
  // docs:end select
  const { results } = await client.selectQueries(
    { strategies: ["margin"], k: 2, probabilities: probs },
    { timeoutMs: 5000 },
  );
  assert.deepEqual([...results[0].indices].map(Number), [1, 2]);
});

it("runs a model: entropy and deepfool", async () => {
  // The softmax-linear model of tests/vectors/model/model_linear.json (6 inputs), as a file.
  const vector = JSON.parse(
    readFileSync(join(root, "tests/vectors/model/model_linear.json"), "utf8"),
  ) as { request: { models: string[] } };
  process.chdir(tempDir);
  writeFileSync("classifier.onnx", Buffer.from(vector.request.models[0], "base64"));
  const client = new LabelwiseClient(serverAddress());
  // docs:start model
  const n = 200, d = 6; // what the model takes: [n, d] float32 rows
  const features = tensor(Float32Array.from({ length: n * d }, (_, i) => Math.sin(i)), [n, d]);
  const { results } = await client.selectQueries(
    {
      strategies: ["entropy", { name: "deepfool", params: { return_points: true } }],
      k: 20,
      models: ["classifier.onnx"], // or its bytes (Uint8Array)
      modelInputs: features,
    },
    { timeoutMs: 30_000 },
  );
  const points = results[1].adversarialPoints; // [20, d] float64: points.shape, points.data
  console.log(results[1].indices, results[1].candidatesConsidered, points?.shape);
  // docs:end model
  assert.deepEqual(points?.shape, [20, 6]);
  assert.equal(results[1].indices.length, 20);
});

it("checks stopping", async () => {
  const client = new LabelwiseClient(serverAddress());
  // docs:start stopping
  // The labels the last 4 models predicted on the same 6 stop-set items, oldest first.
  const lastRoundsLabels = [
    [0, 1, 2, 0, 1, 1],
    [0, 1, 2, 0, 1, 2],
    [0, 1, 2, 0, 1, 2],
    [0, 1, 2, 0, 1, 2],
  ];
  const verdict = await client.checkStopping(
    { stopSetPredictions: int64Matrix(lastRoundsLabels), kappaWindow: 2, rule: "any" },
    { timeoutMs: 5000 },
  );
  console.log(verdict.stop); // the combined verdict
  console.log(verdict.criteria["stabilizing_predictions"]); // { name, value, threshold, stop, evaluated, detail }
  console.log(verdict.kappas); // Cohen's kappa of each pair of successive rounds
  // docs:end stopping
  assert.equal(verdict.stop, true);
  assert.deepEqual(verdict.kappas.map((k) => Math.round(k * 100) / 100), [0.75, 1, 1]);
});
