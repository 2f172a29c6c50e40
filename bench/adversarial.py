"""deepfool's accuracy per model and method, against references, over seeds.

For each seed: fit scikit-learn models on make_classification data, export them with skl2onnx
(zipmap=False), and run deepfool the way a request does (inference._model_access: the
gradient pass checked against ONNX Runtime, ONNX Runtime for every prediction) on the first
ITEMS pool rows, by the gradient method (where the model has one) and by the decision
method at several query budgets. Each item's distance is divided by its reference:
  - LogisticRegression (multiclass) and LinearSVC: the closed form;
  - SVC (rbf) and MLPClassifier: DeepFool in float64 on scikit-learn's own parameters;
  - RandomForest (2-D) and GradientBoosting (3-D): a brute-force grid search (201² or 41³
    points over the cube of half-width the found distance around the item, through ONNX
    Runtime): the nearest point of the grid the model puts in another class;
  - the CNN head (8×8 input): the gradient method's own distance (no independent reference;
    the decision method is compared with it).
A ratio of 1 is exact; above 1, the distance found is longer than the reference (the
boundary was not reached as closely). Per seed the median, 90th percentile and maximum over
items; the table gives the mean over seeds with the [min, max] over seeds.

Usage: python bench/adversarial.py [--seeds 5] [--items 40]
         (writes bench/adversarial/results.json, then renders)
       python bench/adversarial.py --render
         (the tables of the committed results into docs/adversarial.md)
"""

import argparse
import json
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labelwise_server.inference import _model_access  # noqa: E402
from labelwise_server.onnx_runner import ModelLimits, load_model, run_models  # noqa: E402
from labelwise_server.request import ModelRun, ModelSource  # noqa: E402
from labelwise_server.strategies._types import Pool  # noqa: E402
from labelwise_server.strategies.adversarial import _deepfool_run  # noqa: E402
from tests import onnx_models as om  # noqa: E402
from tests.adversarial_references import (  # noqa: E402
    grid_distance,
    linear_closed_form,
    mlp_reference,
    rbf_svc_reference,
)

RESULTS = ROOT / "bench" / "adversarial" / "results.json"
MODEL_MODE = ROOT / "bench" / "adversarial" / "model_mode.json"
DOC = ROOT / "docs" / "adversarial.md"
BUDGETS = (300, 1000, 3000)
LIMITS = ModelLimits(max_bytes=64 << 20, intra_op_threads=1)


def _data(d: int, classes: int, seed: int, n: int = 200) -> tuple[Any, Any]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n, d, n_informative=d, n_redundant=0, n_classes=classes, n_clusters_per_class=1,
        random_state=seed,
    )  # fmt: skip
    return x.astype(np.float32), y


def _export(clf: Any, x: npt.NDArray[np.float32]) -> bytes:
    from skl2onnx import to_onnx
    from sklearn.svm import LinearSVC

    options = {} if isinstance(clf, LinearSVC) else {"zipmap": False}
    return to_onnx(clf, x[:1], options={id(clf): options}).SerializeToString()  # type: ignore[no-any-return]


def _distances(
    blob: bytes, x: npt.NDArray[np.float32], logits: bool, method: str, items: int,
    max_queries: int, seed: int,
) -> tuple[npt.NDArray[np.float64], float, float]:  # fmt: skip
    """deepfool's distances for the first items rows, the seconds, and evaluations per item
    (ONNX Runtime rows for the decision method, Jacobian passes for the gradient method)."""
    model = load_model(blob, LIMITS, "models[0]")
    run = ModelRun(models=(ModelSource(blob, None, "models[0]"),), inputs=x,
                   input_field="model_inputs", embeddings_output="", mc_samples=0, seed=seed,
                   batch_rows=0, timeout=None, logits=logits, temperature=1.0,
                   needs_model=True)  # fmt: skip
    scores = run_models([model], ["models[0]"], x, embeddings_output="", mc_samples=0, seed=0,
                        batch_rows=0, stop=lambda: None, deadline=None).scores  # fmt: skip
    access = _model_access(run, model, scores, lambda: None, None)
    count = [0]

    def predict(v: Any) -> Any:
        count[0] += v.shape[0]
        return access.predict(v)

    def jacobian(v: Any) -> Any:
        count[0] += v.shape[0]  # one float64 forward-and-reverse pass a row
        return access.logits_jacobian(v)

    pool = Pool(n=x.shape[0], model=replace(access, predict=predict, logits_jacobian=jacobian))
    params = {"method": method, "max_iter": 50, "overshoot": 0.02, "max_queries": max_queries,
              "return_points": False}  # fmt: skip
    started = time.perf_counter()
    distance, _ = _deepfool_run(pool, np.arange(items), params, seed)
    return distance, time.perf_counter() - started, count[0] / items


def _summary(ratio: npt.NDArray[np.float64]) -> dict[str, float]:
    finite = ratio[np.isfinite(ratio)]  # items with no boundary (inf / inf) left out
    return {"median": float(np.median(finite)), "p90": float(np.quantile(finite, 0.9)),
            "max": float(finite.max()), "resolved": float(finite.size / ratio.size)}  # fmt: skip


def measure(seeds: int, items: int) -> dict[str, Any]:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC, LinearSVC

    rows: dict[str, dict[str, list[dict[str, float]]]] = {}

    def add(model: str, method: str, ratio: npt.NDArray[np.float64], evals: float,
            seconds: float) -> None:  # fmt: skip
        entry = _summary(ratio) | {"evaluations_per_item": evals, "seconds": seconds}
        rows.setdefault(model, {}).setdefault(method, []).append(entry)

    for seed in range(seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x10, y10 = _data(10, 3, seed)
            x5, y5 = _data(5, 2, seed)
            x2, y2 = _data(2, 2, seed)
            x3, y3 = _data(3, 3, seed)
            lr = LogisticRegression().fit(x10, y10)
            lsvc = LinearSVC().fit(x10, y10)
            svc = SVC(kernel="rbf", gamma=0.3).fit(x5, y5)
            mlp = MLPClassifier(hidden_layer_sizes=(16,), max_iter=400, random_state=seed)
            mlp.fit(x10, y10)
            rf = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=seed)
            rf.fit(x2, y2)
            gb = GradientBoostingClassifier(n_estimators=20, random_state=seed).fit(x3, y3)
        x64 = x10.astype(np.float64)[:items]
        smooth = [
            ("LogisticRegression, d = 10, 3 classes", _export(lr, x10), x10, False,
             linear_closed_form(lr.decision_function, lr.coef_, x64)),
            ("LinearSVC, d = 10, 3 classes", _export(lsvc, x10), x10, True,
             linear_closed_form(lsvc.decision_function, lsvc.coef_, x64)),
            ("SVC (rbf), d = 5, binary", _export(svc, x5), x5, True,
             rbf_svc_reference(svc, x5.astype(np.float64)[:items])),
            ("MLPClassifier (16 ReLU), d = 10, 3 classes", _export(mlp, x10), x10, False,
             mlp_reference(mlp, x64)),
        ]  # fmt: skip
        for name, blob, x, logits, reference in smooth:
            distance, seconds, evals = _distances(blob, x, logits, "gradient", items, 1000, seed)
            add(name, "gradient", distance / reference, evals, seconds)
            for budget in BUDGETS:
                distance, seconds, evals = _distances(blob, x, logits, "decision", items, budget,
                                                      seed)  # fmt: skip
                add(name, f"decision, {budget}", distance / reference, evals, seconds)
        for name, clf, x, steps in (
            ("RandomForest (20 trees), d = 2", rf, x2, 201),
            ("GradientBoosting (20 × 3 trees), d = 3, 3 classes", gb, x3, 41),
        ):
            blob = _export(clf, x)
            for budget in BUDGETS:
                distance, seconds, evals = _distances(blob, x, False, "decision", items, budget,
                                                      seed)  # fmt: skip
                grid = grid_distance(blob, x[:items], distance, steps)
                add(name, f"decision, {budget}", distance / grid, evals, seconds)
        cnn = om.Cnn.random(np.random.default_rng(seed))
        xc = np.random.default_rng(seed + 100).normal(size=(200, 64)).astype(np.float32)
        reference, seconds, evals = _distances(cnn.onnx(), xc, True, "gradient", items, 1000,
                                               seed)  # fmt: skip
        add("CNN head, 8×8 input (vs its gradient method)", "gradient", reference / reference,
            evals, seconds)  # fmt: skip
        for budget in BUDGETS:
            distance, seconds, evals = _distances(cnn.onnx(), xc, True, "decision", items, budget,
                                                  seed)  # fmt: skip
            add("CNN head, 8×8 input (vs its gradient method)", f"decision, {budget}",
                distance / reference, evals, seconds)  # fmt: skip
        print(f"seed {seed} done", file=sys.stderr)
    return {"settings": {"seeds": seeds, "items": items, "budgets": list(BUDGETS)}, "rows": rows}


def _cell(values: list[float], digits: str = ".3f") -> str:
    mean = float(np.mean(values))
    return f"{mean:{digits}} [{min(values):{digits}}, {max(values):{digits}}]"


def render(results: dict[str, Any], model_mode: dict[str, Any] | None) -> str:
    settings = results["settings"]
    lines = [
        f"Distance found ÷ reference distance, {settings['items']} items per model and seed; "
        f"mean over {settings['seeds']} seeds [min, max over seeds] of the per-seed median, "
        "90th percentile and maximum. Evaluations per item: ONNX Runtime rows (decision) or "
        "float64 forward-and-reverse passes (gradient; the points' check adds one ONNX Runtime "
        "row per returned point). Generated by "
        "`python bench/adversarial.py --render` from `bench/adversarial/results.json`.",
        "",
        "| model | method (, query budget) | median | 90th percentile | max | evaluations per "
        "item |",
        "|---|---|---|---|---|---:|",
    ]
    for model, methods in results["rows"].items():
        for method, runs in methods.items():
            evals = float(np.mean([r["evaluations_per_item"] for r in runs]))
            lines.append(
                f"| {model} | {method} | {_cell([r['median'] for r in runs])} | "
                f"{_cell([r['p90'] for r in runs])} | {_cell([r['max'] for r in runs])} | "
                f"{evals:.0f} |"
            )
    if model_mode is not None:
        lines += [
            "",
            f"Speed, `python bench/model_mode.py --deepfool-only --out "
            f"bench/adversarial/model_mode.json` ({model_mode['settings']['cores']} shared "
            f"cores, median of {model_mode['settings']['repeats']} repeats), deepfool as a "
            "request runs it:",
            "",
            "| model | method | items | items/s | Jacobian passes per item | ONNX Runtime rows "
            "per item | mean ‖r‖ |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in model_mode["rows"]:
            lines.append(
                f"| {r['model']} | {r['method']} | {r['items']} | {r['items_per_second']:,.0f} | "
                f"{r['jacobian_rows_per_item']:.2f} | {r['ort_rows_per_item']:.0f} | "
                f"{r['mean_distance']:.3g} |"
            )
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- BEGIN bench/adversarial.py -->", "<!-- END bench/adversarial.py -->"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args()
    if not args.render:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(measure(args.seeds, args.items), indent=1) + "\n")
    results = json.loads(RESULTS.read_text())
    model_mode = json.loads(MODEL_MODE.read_text()) if MODEL_MODE.exists() else None
    table = render(results, model_mode)
    print(table)
    doc = DOC.read_text()
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(f"{head}{BEGIN}\n{table}{END}{tail}")


if __name__ == "__main__":
    main()
