"""Label quality against the peers, measured: agreement (Spearman) and speed, in one run.

    .venv/bin/python bench/label_quality.py [--docs docs/label-quality.md]

For random crowds (annotators of 55-95 % accuracy, Dirichlet-ish model probabilities) and
for real data (scikit-learn's breast_cancer and digits, a logistic regression's 5-fold
out-of-sample probabilities, 4 simulated annotators of 60-90 % accuracy labeling each item
1-3 times), it compares labelwise's strategies/annotators.py with
- cleanlab's CROWDLAB (get_label_quality_multiannotator): consensus agreement, Spearman of
  consensus quality and annotator quality;
- cleanlab's ActiveLab (get_active_learning_scores): Spearman of labelwise's priority with
  -cleanlab's score, labeled, pool and both together, at labelwise's own temperature and at
  cleanlab's (whose search misplaces vote fractions, docs/label-quality.md);
- crowd-kit's DawidSkene: consensus agreement and the largest posterior difference;
- crowd-kit's OneCoinDawidSkene against Bayes EM without the model and with
  accuracy_prior_strength 0 (the same method): the same two figures; Bayes EM with the model
  (no peer has it) is timed alone;
and times each pair (median of 3 runs, same process, side by side). Writes results.json and
the Markdown tables; --docs rewrites the tables' generated block in that file.
"""

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cleanlab.internal.multiannotator_utils import find_best_temp_scaler
from cleanlab.multiannotator import get_active_learning_scores, get_label_quality_multiannotator
from crowdkit.aggregation import DawidSkene, OneCoinDawidSkene
from scipy.stats import spearmanr
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import StandardScaler

from labelwise_server.strategies import annotators as ann

BEGIN = "<!-- BEGIN generated: bench/label_quality.py --docs -->"
END = "<!-- END generated -->"


def random_case(seed: int, items: int, a: int, c: int, pool: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, c, items)
    accuracy = rng.uniform(0.55, 0.95, a)
    labels = np.full((items, a), -1)
    for i in range(items):
        mask = rng.random(a) < 0.4
        if not mask.any():
            mask[rng.integers(a)] = True
        for j in np.flatnonzero(mask):
            labels[i, j] = truth[i] if rng.random() < accuracy[j] else rng.integers(0, c)
    logits = rng.normal(size=(items + pool, c))
    logits[np.arange(items), truth] += 1.5
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return {
        "name": f"random {items}x{a}, c={c}",
        "annotations": labels,
        "p": p[:items],
        "pool": p[items:],
    }


def real_case(name: str, seed: int) -> dict[str, Any]:
    loader = {"breast_cancer": load_breast_cancer, "digits": load_digits}[name]
    x, y = loader(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    labeled, pool = order[: len(y) // 2], order[len(y) // 2 :]
    c, accuracy = int(y.max()) + 1, np.array([0.9, 0.8, 0.7, 0.6])
    labels = np.full((len(labeled), 4), -1)
    for r, i in enumerate(labeled):
        for j in rng.choice(4, size=rng.integers(1, 4), replace=False):
            right = rng.random() < accuracy[j]
            labels[r, j] = y[i] if right else rng.choice([k for k in range(c) if k != y[i]])
    first = np.array([np.bincount(row[row >= 0], minlength=c).argmax() for row in labels])
    model = LogisticRegression(max_iter=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = cross_val_predict(model, x[labeled], first, cv=5, method="predict_proba")
        p_pool = model.fit(x[labeled], first).predict_proba(x[pool])
    return {"name": f"{name} (real)", "annotations": labels, "p": p, "pool": p_pool}


def _timed(run: Callable[[], Any]) -> tuple[Any, float]:
    times, out = [], None
    for _ in range(3):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    return out, float(np.median(times))


def measure(case: dict[str, Any]) -> dict[str, Any]:
    labels, p, pool = case["annotations"], case["p"], case["pool"]
    nan_labels = np.where(labels < 0, np.nan, labels).astype(float)
    c = p.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, t_ref = _timed(
            lambda: get_label_quality_multiannotator(
                nan_labels, p, return_weights=True, verbose=False
            )
        )
        ours, t_ours = _timed(lambda: ann.crowdlab(labels, p))
        al_ref, t_al_ref = _timed(lambda: get_active_learning_scores(nan_labels, p, pool))
        al, t_al = _timed(lambda: ann.activelab_priorities(labels, p, pool))
        t_theirs = find_best_temp_scaler(nan_labels, p)
        al_at = ann.activelab_priorities(labels, p, pool, temperature=t_theirs)
        item, worker = np.nonzero(labels >= 0)
        frame = pd.DataFrame({"task": item, "worker": worker, "label": labels[item, worker]})
        ds_ref, t_ds_ref = _timed(lambda: DawidSkene(n_iter=100, tol=1e-5).fit(frame))
        ds, t_ds = _timed(lambda: ann.dawid_skene(labels, c))
        oc_ref, t_oc_ref = _timed(lambda: OneCoinDawidSkene(n_iter=100, tol=1e-5).fit(frame))
        oc, t_oc = _timed(lambda: ann.bayes_em(labels, c, prior_strength=0.0))
        _, t_em = _timed(lambda: ann.bayes_em(labels, c, p))
    quality = ref["label_quality"]
    stats = ref["annotator_stats"].sort_index()
    both_ref = -np.concatenate([al_ref[0], al_ref[1]])
    observed = sorted(ds_ref.probas_.columns)
    probas = ds_ref.probas_.sort_index()[observed].to_numpy()
    oc_observed = sorted(oc_ref.probas_.columns)
    oc_probas = oc_ref.probas_.sort_index()[oc_observed].to_numpy()
    return {
        "case": case["name"],
        "items": int(labels.shape[0]),
        "annotators": int(labels.shape[1]),
        "classes": c,
        "pool": int(pool.shape[0]),
        "crowdlab_consensus_agreement": float(
            np.mean(ours.consensus == quality["consensus_label"])
        ),
        "crowdlab_quality_spearman": float(
            spearmanr(ours.quality, quality["consensus_quality_score"])[0]
        ),
        "crowdlab_annotator_spearman": float(
            spearmanr(ours.annotator_quality, stats["annotator_quality"])[0]
        ),
        "temperature_ours": al.temperature,
        "temperature_cleanlab": float(t_theirs),
        "activelab_spearman_labeled": float(spearmanr(al.labeled, -al_ref[0])[0]),
        "activelab_spearman_pool": float(spearmanr(al.pool, -al_ref[1])[0]),
        "activelab_spearman_both": float(
            spearmanr(np.concatenate([al.labeled, al.pool]), both_ref)[0]
        ),
        "activelab_at_cleanlab_temperature_spearman_both": float(
            spearmanr(np.concatenate([al_at.labeled, al_at.pool]), both_ref)[0]
        ),
        "activelab_top10pct_overlap": _top_overlap(
            np.concatenate([al.labeled, al.pool]), both_ref, 0.1
        ),
        "dawid_skene_consensus_agreement": float(
            np.mean(ds.consensus == ds_ref.labels_.sort_index().to_numpy())
        ),
        "dawid_skene_max_posterior_difference": float(
            np.abs(ds.posterior[:, observed] - probas).max()
        )
        if len(observed) == c
        else None,
        "one_coin_consensus_agreement": float(
            np.mean(oc.consensus == oc_ref.labels_.sort_index().to_numpy())
        ),
        "one_coin_max_posterior_difference": float(
            np.abs(oc.posterior[:, oc_observed] - oc_probas).max()
        )
        if len(oc_observed) == c
        else None,
        "seconds": {
            "crowdlab": [t_ours, t_ref],
            "activelab": [t_al, t_al_ref],
            "dawid_skene": [t_ds, t_ds_ref],
            "one_coin": [t_oc, t_oc_ref],
            "bayes_em": [t_em],
        },
    }


def _top_overlap(ours: np.ndarray, theirs: np.ndarray, share: float) -> float:
    k = max(1, int(share * len(ours)))
    top_ours = set(np.argsort(-ours, kind="stable")[:k])
    top_theirs = set(np.argsort(-theirs, kind="stable")[:k])
    return len(top_ours & top_theirs) / k


def table(results: dict[str, Any]) -> str:
    rows = results["cases"]
    lines = [
        "| inputs | l × a, c, n | CROWDLAB consensus = cleanlab | CROWDLAB quality ρ | "
        "annotator quality ρ | ActiveLab ρ (both) | ρ labeled / pool | top-10 % overlap | "
        "ρ at cleanlab's T | T ours / cleanlab | Dawid-Skene = crowd-kit | "
        "Bayes EM one-coin = crowd-kit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['items']} × {r['annotators']}, {r['classes']}, {r['pool']} | "
            f"{100 * r['crowdlab_consensus_agreement']:.1f} % | "
            f"{r['crowdlab_quality_spearman']:.4f} | {r['crowdlab_annotator_spearman']:.4f} | "
            f"{r['activelab_spearman_both']:.3f} | {r['activelab_spearman_labeled']:.3f} / "
            f"{r['activelab_spearman_pool']:.3f} | {100 * r['activelab_top10pct_overlap']:.0f} % | "
            f"{r['activelab_at_cleanlab_temperature_spearman_both']:.4f} | "
            f"{r['temperature_ours']:g} / {r['temperature_cleanlab']:g} | "
            f"{100 * r['dawid_skene_consensus_agreement']:.1f} % | "
            f"{100 * r['one_coin_consensus_agreement']:.1f} % |"
        )
    lines += [
        "",
        "Seconds (median of 3, one process; labelwise / peer, and the ratio):",
        "",
        "| inputs | CROWDLAB | ActiveLab | Dawid-Skene | Bayes EM one-coin | Bayes EM with "
        "the model (no peer) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = []
        for key in ("crowdlab", "activelab", "dawid_skene", "one_coin"):
            ours, theirs = r["seconds"][key]
            cells.append(f"{ours:.4f} / {theirs:.4f} ({theirs / ours:.0f}×)")
        cells.append(f"{r['seconds']['bayes_em'][0]:.4f}")
        lines.append(f"| {r['case']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_docs(results: dict[str, Any], docs: Path) -> None:
    text = docs.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    docs.write_text(f"{head}{BEGIN}\n{table(results)}{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/label_quality"))
    parser.add_argument("--docs", type=Path, default=None)
    parser.add_argument("--tables-only", action="store_true")
    args = parser.parse_args()
    if args.tables_only:
        write_docs(json.loads((args.out / "results.json").read_text()), args.docs)
        return
    cases = [random_case(s, 300, 5, 4, 200) for s in range(3)]
    cases += [random_case(10, 1000, 10, 3, 1000), random_case(11, 2000, 4, 10, 1000)]
    cases += [real_case("breast_cancer", 0), real_case("digits", 0)]
    results = {"cases": [measure(case) for case in cases]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "results.md").write_text(table(results))
    if args.docs is not None:
        write_docs(results, args.docs)
    print(table(results))


if __name__ == "__main__":
    main()
