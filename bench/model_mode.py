"""Model-mode benchmark: inference throughput and DeepFool time, against NumPy.

Side by side in one run, interleaved repeat by repeat, on 100,000 × 768 float32 rows:
  - a 768→10 linear softmax model and a 768→256→10 MLP (Gemm, Relu, MatMul, Softmax),
    run the way the server runs them (labelwise_server.onnx_runner.run_models: chunks of
    about 4 MiB of input, the session options the server uses, intra-op threads = cores);
  - the NumPy forward pass of the same float32 weights over the whole array at once
    (x W + b, softmax), the floor a caller computing probabilities itself would pay;
  - end to end through a server started in this process: the model-mode request (inputs
    streamed, the model sent by hash) run in the server's work processes (the default), the
    same on in-process threads (--no-sandbox, how every request ran before work processes),
    and sending the NumPy probabilities instead, entropy top-100.
Then deepfool per 1,000 items through each model (its NumPy float64 Jacobian).

Then deepfool the way a request runs it (inference._model_access: the gradient pass checked
against ONNX Runtime, ONNX Runtime for every prediction), per model and method: the two
models above, a CNN head (Conv, Gelu, MaxPool, LayerNormalization, AveragePool, Gemm) on the
gradient, and skl2onnx RandomForest and GradientBoosting exports on the decision method:
items per second and model evaluations per item (Jacobian passes, ONNX Runtime rows).
`--deepfool-only` runs just that table; `--out FILE` also writes its rows as JSON (the
committed bench/adversarial/model_mode.json, rendered into docs/adversarial.md by
bench/adversarial.py --render).

Usage: python bench/model_mode.py [--repeats 5] [--rows 100000] [--deepfool-only] [--out FILE]
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labelwise import Client  # noqa: E402
from labelwise_server.config import Config, available_cores  # noqa: E402
from labelwise_server.inference import _model_access  # noqa: E402
from labelwise_server.onnx_runner import ModelLimits, load_model, run_models  # noqa: E402
from labelwise_server.request import ModelRun, ModelSource  # noqa: E402
from labelwise_server.strategies._types import Pool  # noqa: E402
from labelwise_server.strategies.adversarial import _deepfool_run, deepfool  # noqa: E402
from tests import onnx_models as om  # noqa: E402

D, C, H, K = 768, 10, 256, 100


def softmax(z: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def numpy_linear(model: om.Linear) -> Callable[[npt.NDArray[np.float32]], Any]:
    return lambda x: softmax(x @ model.w + model.b)


def numpy_mlp(model: om.Mlp) -> Callable[[npt.NDArray[np.float32]], Any]:
    return lambda x: softmax(np.maximum(x @ model.w1 + model.b1, 0) @ model.w2 + model.b2)


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


class Server:
    def __init__(self, sandbox: bool) -> None:
        from prometheus_client import CollectorRegistry

        from labelwise_server.grpc.server import start_server

        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        config = Config(host="127.0.0.1", port=0, metrics_port=0, sandbox=sandbox,
                        max_deadline_seconds=0)  # fmt: skip
        future = asyncio.run_coroutine_threadsafe(start_server(config, CollectorRegistry()),
                                                  self.loop)  # fmt: skip
        self.running = future.result(60)
        self.address = f"127.0.0.1:{self.running.port}"


def _sklearn(kind: str, d: int, classes: int) -> tuple[bytes, npt.NDArray[np.float32]]:
    from skl2onnx import to_onnx
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    x, y = make_classification(4000, d, n_informative=d // 2, n_classes=classes, random_state=0)
    x = x.astype(np.float32)
    clf: Any = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0)
    if kind == "rf":
        clf = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0)
    clf.fit(x, y)
    onx = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}})
    return onx.SerializeToString(), x


def deepfool_rows(items: int, repeats: int, limits: ModelLimits) -> list[dict[str, Any]]:
    """deepfool as a request runs it, per model: items/s and evaluations per item."""
    rng = np.random.default_rng(1)
    x768 = rng.normal(size=(items, D)).astype(np.float32)
    cnn = om.Cnn.random(rng, side=16, k=8, c=10)
    x256 = rng.normal(size=(items, 256)).astype(np.float32)
    rf, x_rf = _sklearn("rf", 20, 2)
    gb, x_gb = _sklearn("gb", 20, 3)
    tree_items = max(1, items // 5)
    cases = [
        ("768→10 linear", om.Linear.random(rng, D, C).onnx(), x768, False, "auto", items),
        ("768→256→10 MLP", om.Mlp.random(rng, D, H, C, activation="Relu").onnx(embeddings=False),
         x768, False, "auto", items),
        ("CNN 1×16×16→10 (Conv, Gelu, MaxPool, LayerNorm, AvgPool, Gemm)", cnn.onnx(), x256,
         True, "auto", items),
        ("RandomForest, 100 trees, d = 20 (skl2onnx)", rf, x_rf, False, "auto", tree_items),
        ("GradientBoosting, 100 × 3 trees, d = 20 (skl2onnx)", gb, x_gb, False, "auto",
         tree_items),
        ("768→256→10 MLP, decision method", om.Mlp.random(rng, D, H, C, activation="Relu")
         .onnx(embeddings=False), x768, False, "decision", tree_items),
    ]  # fmt: skip
    rows = []
    for name, blob, pool_x, logits, method, n_items in cases:
        model = load_model(blob, limits, "models[0]")
        run = ModelRun(models=(ModelSource(blob, None, "models[0]"),), inputs=pool_x,
                       input_field="model_inputs", embeddings_output="", mc_samples=0, seed=0,
                       batch_rows=0, timeout=None, logits=logits, temperature=1.0,
                       needs_model=True)  # fmt: skip
        scores = run_models(
            [model],
            ["models[0]"],
            pool_x,
            embeddings_output="",
            mc_samples=0,
            seed=0,
            batch_rows=0,
            stop=lambda: None,
            deadline=None,
        ).scores
        access = _model_access(run, model, scores, lambda: None, None)
        counts = {"jacobian": 0, "ort": 0}

        def jac(v: Any, a: Any = access, c: dict[str, int] = counts) -> Any:
            c["jacobian"] += v.shape[0]
            return a.logits_jacobian(v)

        def predict(v: Any, a: Any = access, c: dict[str, int] = counts) -> Any:
            c["ort"] += v.shape[0]
            return a.predict(v)

        from dataclasses import replace

        pool = Pool(n=pool_x.shape[0], model=replace(access, logits_jacobian=jac, predict=predict))
        params = {"method": method, "max_iter": 50, "overshoot": 0.02, "max_queries": 1000,
                  "return_points": False}  # fmt: skip
        chosen = np.arange(n_items)
        times, distances = [], np.empty(0)
        for _ in range(repeats):
            counts.update(jacobian=0, ort=0)
            started = time.perf_counter()
            distances, _ = _deepfool_run(pool, chosen, params, 0)
            times.append(time.perf_counter() - started)
        used = (
            "gradient"
            if method == "gradient" or (method == "auto" and access.differentiable)
            else "decision"
        )
        seconds = statistics.median(times)
        rows.append({
            "model": name, "method": used, "items": n_items, "seconds": seconds,
            "items_per_second": n_items / seconds,
            "jacobian_rows_per_item": counts["jacobian"] / n_items,
            "ort_rows_per_item": counts["ort"] / n_items,
            "mean_distance": float(np.mean(distances[np.isfinite(distances)])),
        })  # fmt: skip
    return rows


def print_deepfool(rows: list[dict[str, Any]]) -> None:
    print("| model | method | items | items/s | Jacobian passes per item | ONNX Runtime rows "
          "per item | mean ‖r‖ |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['method']} | {r['items']} | {r['items_per_second']:,.0f} | "
              f"{r['jacobian_rows_per_item']:.2f} | {r['ort_rows_per_item']:.0f} | "
              f"{r['mean_distance']:.3g} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--deepfool-only", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.deepfool_only:
        limits = ModelLimits(max_bytes=64 << 20, intra_op_threads=available_cores())
        rows = deepfool_rows(1000, max(1, args.repeats // 2), limits)
        print(f"deepfool as a request runs it; {available_cores()} cores; median of "
              f"{max(1, args.repeats // 2)} repeats")  # fmt: skip
        print()
        print_deepfool(rows)
        if args.out is not None:
            settings = {"cores": available_cores(), "repeats": max(1, args.repeats // 2)}
            args.out.write_text(json.dumps({"settings": settings, "rows": rows}, indent=1) + "\n")
        return
    n = args.rows
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, D)).astype(np.float32)
    linear = om.Linear.random(rng, D, C)
    mlp = om.Mlp.random(rng, D, H, C, activation="Relu")
    limits = ModelLimits(max_bytes=64 << 20, intra_op_threads=available_cores())
    models = {
        "768→10 linear": (linear.onnx(), numpy_linear(linear)),
        "768→256→10 MLP": (mlp.onnx(embeddings=False), numpy_mlp(mlp)),
    }
    loaded = {name: load_model(blob, limits, "models[0]") for name, (blob, _) in models.items()}

    def onnx_run(name: str) -> Any:
        return run_models([loaded[name]], ["models[0]"], x, embeddings_output="", mc_samples=0,
                          seed=0, batch_rows=0, stop=lambda: None, deadline=None)  # fmt: skip

    for name, (_, forward) in models.items():  # warm up, and check both agree
        ours = onnx_run(name).scores
        np.testing.assert_allclose(ours, forward(x), rtol=1e-3, atol=1e-5)

    server = Server(sandbox=True)  # the default: work processes
    client = Client(server.address)
    threads_server = Server(sandbox=False)  # --no-sandbox: the in-process figure of before
    threads_client = Client(threads_server.address)
    times: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for name, (blob, forward) in models.items():
            times.setdefault(f"{name}|onnx", []).append(timed(lambda n=name: onnx_run(n)))
            times.setdefault(f"{name}|numpy", []).append(timed(lambda f=forward: f(x)))

            def via_model(b: bytes = blob) -> Any:
                return client.select(strategies=["entropy"], k=K, model=b, model_inputs=x)

            def via_probabilities(f: Any = forward) -> Any:
                return client.select(strategies=["entropy"], k=K, probabilities=f(x))

            def via_threads(b: bytes = blob) -> Any:
                return threads_client.select(strategies=["entropy"], k=K, model=b, model_inputs=x)

            times.setdefault(f"{name}|e2e-model", []).append(timed(via_model))
            times.setdefault(f"{name}|e2e-threads", []).append(timed(via_threads))
            times.setdefault(f"{name}|e2e-probs", []).append(timed(via_probabilities))

    print(f"{n:,} × {D} float32 rows; {available_cores()} cores; ONNX Runtime intra-op threads "
          f"= {limits.intra_op_threads}; median of {args.repeats} interleaved repeats; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}")  # fmt: skip
    print()
    print(
        "| model | ONNX Runtime, chunked (server path) | NumPy forward, one pass | ratio | "
        "rows/s (ORT) | end to end: model mode (work process) | end to end: model mode "
        "(in-process threads, --no-sandbox) | work process / in-process | end to end: "
        "NumPy probs sent |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in models:
        ort_s = statistics.median(times[f"{name}|onnx"])
        np_s = statistics.median(times[f"{name}|numpy"])
        e2e_m = statistics.median(times[f"{name}|e2e-model"])
        e2e_p = statistics.median(times[f"{name}|e2e-probs"])
        e2e_t = statistics.median(times[f"{name}|e2e-threads"])
        cells = [
            f"{ort_s * 1e3:.0f} ms",
            f"{np_s * 1e3:.0f} ms",
            f"{ort_s / np_s:.2f}×",
            f"{n / ort_s / 1e6:.2f} M",
            f"{e2e_m * 1e3:.0f} ms",
            f"{e2e_t * 1e3:.0f} ms",
            f"{e2e_m / e2e_t:.2f}×",
            f"{e2e_p * 1e3:.0f} ms",
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")

    print()
    print("| model | deepfool per 1,000 items | mean steps | mean ‖r‖ |")
    print("|---|---|---|---|")
    sample = x[:1000].astype(np.float64)
    for name in models:
        gradient = loaded[name].gradient("models[0]", loaded[name].outputs[0], True)
        steps: list[int] = []

        def counted(rows: Any, g: Any = gradient, seen: list[int] = steps) -> Any:
            seen.append(rows.shape[0])
            return g(rows)

        chunk = gradient.chunk_rows(D, C)
        runs = []
        distances = np.empty(0)
        for _ in range(max(1, args.repeats // 2)):
            steps.clear()
            started = time.perf_counter()
            parts = [deepfool(counted, sample[i : i + chunk])[0] for i in range(0, 1000, chunk)]
            runs.append(time.perf_counter() - started)
            distances = np.concatenate(parts)
        mean_steps = (sum(steps) - 1000) / 1000  # evaluations after the first, per item
        print(f"| {name} | {statistics.median(runs) * 1e3:.0f} ms | {mean_steps:.2f} | "
              f"{distances.mean():.3g} |")  # fmt: skip
    print()
    print_deepfool(deepfool_rows(1000, max(1, args.repeats // 2), limits))
    client.close()
    threads_client.close()


if __name__ == "__main__":
    main()
