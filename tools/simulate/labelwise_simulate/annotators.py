"""`labelwise-simulate annotators`: several noisy annotators of different price; is a second
label worth more than a first one?

Each annotator has an accuracy (on "hard" items, those nearest the decision boundary of a
model fit on the whole pool, it falls halfway to chance) and a price per label. A wrong label
is one of the other classes at random, and an annotator gives an item the same label in every
policy of a seed (common random numbers). Every policy starts from the same initial labels
(per class, items labeled once by a random annotator) and spends the same dollars per round:

- always_new: PlanLabeling with every labeled item excluded (first labels only; ActiveLab's
  pool order, annotators by expected accuracy per dollar).
- activelab: PlanLabeling over labeled and pool items: re-labels and first labels mixed by
  ActiveLab (Goh & Mueller 2023).
- random: a random pool item to a random annotator.
- new_random_annotators: always_new's items (ActiveLab's pool order, first labels only) sent
  to annotators drawn at random: against always_new it isolates the annotator choice, since
  the two buy first labels of the same kind of items.

The model (logistic regression) is trained each round on the consensus labels the service
returns (Bayes EM by AssessLabels, the model's out-of-sample probabilities as its prior) and
tested on held-out data; its probabilities on the labeled items are out-of-sample (5-fold).
Recorded per round: dollars spent, test accuracy, and the accuracy against the truth of the
labeled items' consensus by Bayes EM, CROWDLAB (once an item has two labels), the majority
vote and Dawid-Skene on the same annotations, over all labeled items and over the items with
two labels or more.
"""

import argparse
import json
import math
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from labelwise import Client, LabelwiseError
from labelwise_simulate.data import DataSource, Split, initial_labeled, load, split

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
PROG = "labelwise-simulate annotators"
POLICIES = ("activelab", "always_new", "random", "new_random_annotators")
DEFAULT_DATA = ("breast_cancer", "digits", "synthetic")
MISSING = -1
CONSENSUS = ("bayes_em", "crowdlab", "majority", "dawid_skene")  # bayes_em: what trains
BEGIN = "<!-- BEGIN generated: labelwise-simulate annotators --docs -->"
END = "<!-- END generated -->"


@dataclass(frozen=True)
class Setup:
    accuracies: tuple[float, ...] = (0.9, 0.8, 0.7, 0.6)
    costs: tuple[float, ...] = (3.0, 2.0, 1.5, 1.0)
    hard_fraction: float = 0.3
    rounds: int = 25
    labels_per_round: int = 10  # the round's dollars: this many labels at the mean price
    initial_per_class: int = 2
    test_fraction: float = 0.3
    folds: int = 5
    max_iter: int = 1000

    @property
    def round_budget(self) -> float:
        return self.labels_per_round * float(np.mean(self.costs))


@dataclass
class Curve:
    dataset: str
    policy: str
    seed: int
    spent: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)  # the model's, on the test set
    # Each consensus against the truth over all labeled items (CROWDLAB: the majority vote
    # while no item has two labels).
    bayes_em: list[float] = field(default_factory=list)  # the labels the model trains on
    crowdlab: list[float] = field(default_factory=list)
    majority: list[float] = field(default_factory=list)
    dawid_skene: list[float] = field(default_factory=list)
    # The same on the items with >= 2 labels only (None while there is none).
    multi_bayes_em: list[float | None] = field(default_factory=list)
    multi_crowdlab: list[float | None] = field(default_factory=list)
    multi_majority: list[float | None] = field(default_factory=list)
    multi_dawid_skene: list[float | None] = field(default_factory=list)
    multi_items: list[int] = field(default_factory=list)  # items with >= 2 labels
    label_accuracy: list[float] = field(default_factory=list)  # of all labels bought, vs truth
    labeled: list[int] = field(default_factory=list)  # distinct items with a label
    annotations: list[int] = field(default_factory=list)  # labels bought in all
    relabels: list[int] = field(default_factory=list)  # of them, second or later labels


class Crowd:
    """The simulated annotators of one seed: who says what about each pool item."""

    def __init__(self, split: Split, setup: Setup, seed: int) -> None:
        self.truth = split.pool_y
        self.classes = split.n_classes
        self.accuracy = np.asarray(setup.accuracies)
        model = _fit(split.pool_x, split.pool_y, setup.max_iter)
        p = np.sort(model.predict_proba(split.pool_x), axis=1)
        margin = p[:, -1] - p[:, -2]
        hard = round(setup.hard_fraction * len(margin))
        self.hard = np.zeros(len(margin), dtype=bool)
        self.hard[np.argsort(margin, kind="stable")[:hard]] = True
        self.seed = seed

    def label(self, item: int, annotator: int) -> int:
        """The annotator's label of the item: the same in every policy of a seed (common random
        numbers), so policies differ only in what they ask."""
        rng = np.random.default_rng([self.seed, item, annotator])
        accuracy = self.accuracy[annotator]
        if self.hard[item]:
            accuracy = 1 / self.classes + (accuracy - 1 / self.classes) / 2
        if rng.random() < accuracy:
            return int(self.truth[item])
        others = [c for c in range(self.classes) if c != self.truth[item]]
        return int(rng.choice(others))


def _fit(x: FloatArray, y: IntArray, max_iter: int) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(max_iter=max_iter).fit(x, y)


def _proba(model: LogisticRegression, x: FloatArray, classes: int) -> FloatArray:
    full = np.zeros((len(x), classes))
    full[:, model.classes_] = model.predict_proba(x)
    return full


def _smoothed(p: FloatArray) -> FloatArray:
    """A single-class fold predicts one class with certainty; keep every row a distribution
    with some mass everywhere so the temperature search sees no log 0."""
    mixed = 0.999 * p + 0.001 / p.shape[1]
    return np.asarray(mixed / mixed.sum(axis=1, keepdims=True), dtype=np.float64)


def out_of_sample(x: FloatArray, y: IntArray, classes: int, setup: Setup, seed: int) -> FloatArray:
    """Each labeled item's probabilities from a model fit on the other folds."""
    out = np.zeros((len(y), classes))
    folds = min(setup.folds, len(y))
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(x):
        if len(np.unique(y[train])) < 2:
            out[test] = np.bincount(y[train], minlength=classes) / len(train)
            continue
        out[test] = _proba(_fit(x[train], y[train], setup.max_iter), x[test], classes)
    return _smoothed(out)


def run_policy(
    client: Client, source: str, split: Split, setup: Setup, policy: str, seed: int
) -> Curve:
    rng = np.random.default_rng([seed, POLICIES.index(policy)])
    crowd = Crowd(split, setup, seed)
    initial = np.random.default_rng([seed, 7])  # the initial annotators: the same in every policy
    a, classes = len(setup.costs), split.n_classes
    costs = np.asarray(setup.costs)
    start = initial_labeled(split.pool_y, setup.initial_per_class, np.random.default_rng(seed))
    rows: dict[int, dict[int, int]] = {}  # pool item -> annotator -> label
    spent = 0.0
    bought = relabels = right = 0
    for item in start:
        j = int(initial.integers(a))
        rows[int(item)] = {j: crowd.label(int(item), j)}
        spent += costs[j]
        bought += 1
        right += rows[int(item)][j] == int(split.pool_y[item])
    curve = Curve(source, policy, seed)
    for _ in range(setup.rounds + 1):
        items = np.array(sorted(rows), dtype=np.int64)
        annotations = np.full((len(items), a), MISSING, dtype=np.int64)
        for r, item in enumerate(items):
            for j, label in rows[int(item)].items():
                annotations[r, j] = label
        x = split.pool_x[items]
        votes = np.array(
            [
                np.bincount(annotations[r][annotations[r] >= 0], minlength=classes)
                for r in range(len(items))
            ]
        )
        first = votes.argmax(axis=1)
        p_labeled = out_of_sample(x, first, classes, setup, seed)
        unlabeled = np.setdiff1d(np.arange(len(split.pool_y)), items)
        multi = (annotations >= 0).sum(axis=1) > 1
        em = client.assess_labels(
            annotations, labeled_probabilities=p_labeled, method="bayes_em", deadline=120
        )
        labels = {"bayes_em": em.consensus_labels, "majority": em.majority_vote_labels}
        labels["crowdlab"] = (
            client.assess_labels(
                annotations, labeled_probabilities=p_labeled, deadline=120
            ).consensus_labels
            if multi.any()
            else em.majority_vote_labels
        )
        labels["dawid_skene"] = client.assess_labels(
            annotations, method="dawid_skene", num_classes=classes, deadline=120
        ).consensus_labels
        consensus = labels["bayes_em"]
        truth = split.pool_y[items]
        model = _fit(x, consensus, setup.max_iter) if len(np.unique(consensus)) > 1 else None
        accuracy = (
            float(model.score(split.test_x, split.test_y))
            if model is not None
            else float(np.mean(split.test_y == consensus[0]))
        )
        curve.spent.append(float(spent))
        curve.accuracy.append(accuracy)
        for name in CONSENSUS:
            getattr(curve, name).append(float(np.mean(labels[name] == truth)))
            share = float(np.mean(labels[name][multi] == truth[multi])) if multi.any() else None
            getattr(curve, f"multi_{name}").append(share)
        curve.multi_items.append(int(multi.sum()))
        curve.label_accuracy.append(right / bought)
        curve.labeled.append(len(items))
        curve.annotations.append(bought)
        curve.relabels.append(relabels)
        if len(curve.spent) > setup.rounds or len(unlabeled) == 0:
            break
        tasks: list[tuple[str, int, int]] = []  # (kind, pool item, annotator)
        if policy == "random":
            budget = setup.round_budget
            for item in rng.permutation(unlabeled):
                j = int(rng.integers(a))
                if costs[j] > budget:
                    break
                budget -= costs[j]
                tasks.append(("label_first", int(item), j))
        elif policy == "new_random_annotators":
            # always_new's order of the pool (the annotators of the plan are ignored).
            ranked = client.plan_labeling(
                annotations,
                p_labeled,
                k=len(unlabeled),
                clamp_k=True,
                pool_probabilities=_pool_probabilities(model, split, unlabeled, classes),
                exclude_labeled=list(range(len(items))),
                deadline=120,
            )
            budget = setup.round_budget
            for task in ranked.tasks:
                j = int(rng.integers(a))
                if costs[j] > budget:
                    break
                budget -= costs[j]
                tasks.append(("label_first", int(unlabeled[task.index]), j))
        else:
            p_pool = _pool_probabilities(model, split, unlabeled, classes)
            plan = client.plan_labeling(
                annotations,
                p_labeled,
                k=len(items) + len(unlabeled),
                clamp_k=True,
                pool_probabilities=p_pool,
                annotator_costs=costs,
                budget=setup.round_budget,
                exclude_labeled=list(range(len(items))) if policy == "always_new" else [],
                deadline=120,
            )
            for task in plan.tasks:
                item = int(items[task.index] if task.kind == "relabel" else unlabeled[task.index])
                tasks.append((task.kind, item, task.annotator))
        for kind, item, j in tasks:
            rows.setdefault(item, {})[j] = crowd.label(item, j)
            spent += costs[j]
            bought += 1
            right += rows[item][j] == int(split.pool_y[item])
            relabels += kind == "relabel"
    return curve


def _pool_probabilities(
    model: LogisticRegression | None, split: Split, unlabeled: IntArray, classes: int
) -> FloatArray:
    if model is None:
        return np.full((len(unlabeled), classes), 1 / classes)
    return _smoothed(_proba(model, split.pool_x[unlabeled], classes))


def mean_interval(values: FloatArray) -> tuple[float, float, float]:
    """Mean and 95 % Student-t interval over seeds (axis 0)."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def at_spend(curve: dict[str, Any], dollars: float) -> float:
    """The test accuracy once dollars were spent: the last round at or below them."""
    spent = np.asarray(curve["spent"])
    index = int(np.searchsorted(spent, dollars + 1e-9, side="right")) - 1
    return float(curve["accuracy"][max(index, 0)])


def aulc(curve: dict[str, Any], upto: float) -> float:
    """Mean test accuracy per dollar over [start, upto]: the area under accuracy vs dollars
    (steps: a round's accuracy holds until the next), divided by the dollars."""
    spent = np.asarray(curve["spent"])
    accuracy = np.asarray(curve["accuracy"])
    edges = np.clip(np.append(spent, upto), spent[0], upto)
    return float(np.sum(accuracy * np.diff(edges)) / (upto - spent[0]))


def summarise(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per data set and policy: accuracy at three spends, AULC, the paired difference of
    activelab and random to always_new, and label accuracy, each with a 95 % interval."""
    rows = []
    curves = results["curves"]
    for dataset in results["datasets"]:
        mine = [c for c in curves if c["dataset"] == dataset]
        upto = min(c["spent"][-1] for c in mine)
        start = max(c["spent"][0] for c in mine)
        spends = [start + (upto - start) * f for f in (0.25, 0.5, 1.0)]
        by_policy = {
            p: sorted((c for c in mine if c["policy"] == p), key=lambda c: c["seed"])
            for p in POLICIES
        }
        for policy, runs in by_policy.items():
            row: dict[str, Any] = {
                "dataset": dataset,
                "policy": policy,
                "seeds": len(runs),
                "spends": spends,
            }
            row["accuracy"] = [
                mean_interval(np.array([at_spend(c, s) for c in runs])) for s in spends
            ]
            row["aulc"] = mean_interval(np.array([aulc(c, upto) for c in runs]))
            base = by_policy["always_new"]
            row["aulc_minus_always_new"] = mean_interval(
                np.array([aulc(c, upto) - aulc(b, upto) for c, b in zip(runs, base, strict=True)])
            )
            row["final_minus_always_new"] = mean_interval(
                np.array(
                    [at_spend(c, upto) - at_spend(b, upto) for c, b in zip(runs, base, strict=True)]
                )
            )
            last = [int(np.searchsorted(np.asarray(c["spent"]), upto + 1e-9) - 1) for c in runs]
            for name in CONSENSUS:
                row[name] = mean_interval(
                    np.array([c[name][i] for c, i in zip(runs, last, strict=True)])
                )
            for name in ("bayes_em", "crowdlab"):
                row[f"{name}_minus_majority"] = mean_interval(
                    np.array(
                        [c[name][i] - c["majority"][i] for c, i in zip(runs, last, strict=True)]
                    )
                )
            row["label_accuracy"] = mean_interval(
                np.array([c["label_accuracy"][i] for c, i in zip(runs, last, strict=True)])
            )
            _multi(row, runs, last)
            row["relabel_share"] = mean_interval(
                np.array(
                    [
                        c["relabels"][i] / max(c["annotations"][i], 1)
                        for c, i in zip(runs, last, strict=True)
                    ]
                )
            )
            rows.append(row)
    return rows


def _multi(row: dict[str, Any], runs: list[dict[str, Any]], last: list[int]) -> None:
    """Each consensus on the items with >= 2 labels at the common spend, and Bayes EM's and
    CROWDLAB's gain over the majority vote there and averaged over the rounds up to it (the
    curve), each paired by seed over the seeds that have such items."""
    at_end = [(c, i) for c, i in zip(runs, last, strict=True) if c["multi_majority"][i] is not None]
    row["multi_seeds"] = len(at_end)
    row["multi_items"] = mean_interval(np.array([c["multi_items"][i] for c, i in at_end] or [0]))
    for name in CONSENSUS:
        row[f"multi_{name}"] = mean_interval(
            np.array([c[f"multi_{name}"][i] for c, i in at_end] or [np.nan])
        )
    for name in ("bayes_em", "crowdlab"):
        row[f"multi_{name}_minus_majority"] = mean_interval(
            np.array(
                [c[f"multi_{name}"][i] - c["multi_majority"][i] for c, i in at_end] or [np.nan]
            )
        )
        over_curve = []
        for c, i in zip(runs, last, strict=True):
            gaps = [
                c[f"multi_{name}"][r] - c["multi_majority"][r]
                for r in range(i + 1)
                if c["multi_majority"][r] is not None
            ]
            if gaps:
                over_curve.append(float(np.mean(gaps)))
        row[f"curve_{name}_minus_majority"] = mean_interval(np.array(over_curve or [np.nan]))


def _cell(stat: Sequence[float], scale: float = 100.0, signed: bool = False) -> str:
    if not np.isfinite(stat[0]):
        return "—"
    mean, low, high = (scale * v for v in stat)
    sign = "+" if signed else ""
    return f"{mean:{sign}.1f} [{low:{sign}.1f}, {high:{sign}.1f}]"


def _paired(
    results: dict[str, Any], dataset: str, policy: str, base: str
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """policy − base by seed: (AULC, accuracy at the common spend), each mean and interval."""
    mine = [c for c in results["curves"] if c["dataset"] == dataset]
    upto = min(c["spent"][-1] for c in mine)
    runs = {p: {c["seed"]: c for c in mine if c["policy"] == p} for p in (policy, base)}
    seeds = sorted(set(runs[policy]) & set(runs[base]))
    pairs = [(runs[policy][s], runs[base][s]) for s in seeds]
    return (
        mean_interval(np.array([aulc(c, upto) - aulc(b, upto) for c, b in pairs])),
        mean_interval(np.array([at_spend(c, upto) - at_spend(b, upto) for c, b in pairs])),
    )


def _verdict(stat: Sequence[float]) -> str:
    return "ahead" if stat[1] > 0 else "behind" if stat[2] < 0 else "unresolved"


def _clauses(verdicts: dict[str, str]) -> str:
    """ "paid on a, b (interval above 0); lost on c (...); ..." for the verdicts that occur."""
    words = {
        "ahead": "paid on {} (interval above 0)",
        "behind": "lost on {} (interval below 0)",
        "unresolved": "no difference shown on {} (interval includes 0)",
    }
    parts = []
    for verdict, text in words.items():
        names = [d for d, v in verdicts.items() if v == verdict]
        if names:
            parts.append(text.format(", ".join(names)))
    return "; ".join(parts)


def summary(results: dict[str, Any]) -> str:
    """The short table (copied into README.md by scripts/docs) and what it says, in words
    chosen by the intervals: per data set, AULC of re-labeling by ActiveLab, always-new and
    random, and the paired differences."""
    rows = {(r["dataset"], r["policy"]): r for r in summarise(results)}
    lines = [
        "| data (seeds) | AULC: re-label / always new / random | re-label − always new: AULC | "
        "re-label − always new: final | re-label − random: AULC |",
        "|---|---|---|---|---|",
    ]
    against_new: dict[str, str] = {}
    against_random: dict[str, str] = {}
    for dataset in results["datasets"]:
        means = " / ".join(
            f"{100 * rows[(dataset, p)]['aulc'][0]:.1f}"
            for p in ("activelab", "always_new", "random")
        )
        new_aulc, new_final = _paired(results, dataset, "activelab", "always_new")
        random_aulc, _ = _paired(results, dataset, "activelab", "random")
        against_new[dataset] = _verdict(new_aulc)
        against_random[dataset] = _verdict(random_aulc)
        lines.append(
            f"| {dataset} ({rows[(dataset, 'activelab')]['seeds']}) | {means} | "
            f"{_cell(new_aulc, signed=True)} | "
            f"{_cell(new_final, signed=True)} | {_cell(random_aulc, signed=True)} |"
        )
    lines += [
        "",
        f"Re-labeling by ActiveLab against always labeling new items (AULC): "
        f"{_clauses(against_new)}. Against random items sent to random annotators: "
        f"{_clauses(against_random)}.",
    ]
    relabeling = {r["dataset"]: r for r in summarise(results) if r["policy"] == "activelab"}
    every = {d: _verdict(r["bayes_em_minus_majority"]) for d, r in relabeling.items()}
    multi = {d: _verdict(r["multi_bayes_em_minus_majority"]) for d, r in relabeling.items()}
    lines += [
        "",
        "The consensus the model trains on (Bayes EM) against the majority vote, when "
        f"re-labeling, at the common spend: over all labeled items {_words(every)}; over the "
        f"items with two labels or more {_words(multi)}.",
    ]
    return "\n".join(lines) + "\n"


def _words(verdicts: dict[str, str]) -> str:
    """ "more accurate on a, b; less accurate on c; no difference shown on d" by intervals."""
    words = {"ahead": "more accurate on {}", "behind": "less accurate on {}",
             "unresolved": "no difference shown on {}"}  # fmt: skip
    parts = []
    for verdict, text in words.items():
        names = [d for d, v in verdicts.items() if v == verdict]
        if names:
            parts.append(text.format(", ".join(names)))
    return "; ".join(parts) + " (95 % intervals)"


def table(results: dict[str, Any]) -> str:
    """The Markdown tables of docs/label-quality.md, from a results.json."""
    setup = results["setup"]
    rows = summarise(results)
    lines = [
        f"Annotators: accuracies {setup['accuracies']}, prices {setup['costs']} per label; "
        f"{int(100 * setup['hard_fraction'])} % of items hard (accuracy halfway to chance). "
        f"{setup['rounds']} rounds of ${setup['labels_per_round'] * np.mean(setup['costs']):g} "
        f"each; {results['seeds']} seeds or more; mean and 95 % t-interval over seeds (differences "
        "paired by seed). Test accuracy in %; AULC = mean test accuracy per dollar over the "
        "common spend; re-label = ActiveLab's mix of re-labels and first labels.",
        "",
        summary(results),
        "Every policy (labels right = share of the labels bought that were right):",
        "",
        "| data | policy | acc @ 25 % $ | acc @ 50 % $ | acc @ 100 % $ | AULC | "
        "AULC − always_new | final − always_new | share of re-labels | labels right |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['dataset']} | {row['policy']} | "
            + " | ".join(_cell(a) for a in row["accuracy"])
            + f" | {_cell(row['aulc'])} | {_cell(row['aulc_minus_always_new'], signed=True)} | "
            f"{_cell(row['final_minus_always_new'], signed=True)} | "
            f"{_cell(row['relabel_share'])} | {_cell(row['label_accuracy'])} |"
        )
    lines += [
        "",
        "Accuracy (%) of the consensus labels against the truth, on the same annotations, over "
        "the items with two labels or more at the common spend: Bayes EM (what the model "
        "trains on), CROWDLAB, majority vote (ties broken by the model) and Dawid-Skene; then "
        "Bayes EM − majority and CROWDLAB − majority there, averaged over the rounds up to it "
        "(the curve), and over all labeled items (single labels included, where the model's "
        "prior may overrule a lone label). Only activelab re-labels, so only it has items with "
        "two labels (seeds = those that had any); for the others the last column of each "
        "group is all there is.",
        "",
        "| data | policy | seeds | items with ≥ 2 labels | Bayes EM | CROWDLAB | majority vote | "
        "Dawid-Skene | Bayes EM − majority | over the curve | all items | CROWDLAB − majority | "
        "over the curve | all items |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['dataset']} | {row['policy']} | {row['multi_seeds']} | "
            f"{_cell(row['multi_items'], scale=1.0)} | "
            + " | ".join(_cell(row[f"multi_{name}"]) for name in CONSENSUS)
            + " | "
            + " | ".join(
                _cell(row[key], signed=True)
                for name in ("bayes_em", "crowdlab")
                for key in (
                    f"multi_{name}_minus_majority",
                    f"curve_{name}_minus_majority",
                    f"{name}_minus_majority",
                )
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def _replace_block(docs: Path, begin: str, body: str) -> None:
    """Replace the generated block of docs between begin and END with body."""
    head, rest = docs.read_text().split(begin, 1)
    _, tail = rest.split(END, 1)
    docs.write_text(f"{head}{begin}\n{body}{END}{tail}")


def write_docs(results: dict[str, Any], docs: Path) -> None:
    """Replace the generated block of docs (between BEGIN and END) with table(results)."""
    _replace_block(docs, BEGIN, table(results))


def plot(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = results["datasets"]
    fig, axes = plt.subplots(3, len(datasets), figsize=(5 * len(datasets), 12), squeeze=False)
    for col, dataset in enumerate(datasets):
        for policy in POLICIES:
            runs = [
                c for c in results["curves"] if c["dataset"] == dataset and c["policy"] == policy
            ]
            upto = min(c["spent"][-1] for c in runs)
            grid = np.linspace(max(c["spent"][0] for c in runs), upto, 40)
            for row, key in ((0, "accuracy"), (1, "bayes_em")):
                values = np.array(
                    [
                        [
                            float(c[key][max(int(np.searchsorted(c["spent"], g + 1e-9)) - 1, 0)])
                            for g in grid
                        ]
                        for c in runs
                    ]
                )
                mean = values.mean(axis=0)
                half = 1.96 * values.std(axis=0, ddof=1) / math.sqrt(len(runs))
                ax = axes[row, col]
                ax.plot(grid, mean, label=policy)
                ax.fill_between(grid, mean - half, mean + half, alpha=0.2)
        _plot_gap(axes[2, col], results, dataset)
        axes[0, col].set_title(f"{dataset}: test accuracy")
        axes[1, col].set_title(f"{dataset}: consensus (Bayes EM) label accuracy")
        axes[2, col].set_title(f"{dataset}: Bayes EM − majority, items with ≥ 2 labels")
        for row in range(3):
            axes[row, col].set_xlabel("dollars spent")
            axes[row, col].legend()
    fig.tight_layout()
    fig.savefig(out / "annotators.png", dpi=80)
    plt.close(fig)


def _plot_gap(ax: Any, results: dict[str, Any], dataset: str) -> None:
    """Bayes EM − majority vote accuracy on the items with >= 2 labels against dollars, mean
    and 95 % normal band over the seeds that have such items at each spend (re-labeling
    policies only)."""
    for policy in POLICIES:
        runs = [c for c in results["curves"] if c["dataset"] == dataset and c["policy"] == policy]
        if not any(m is not None for c in runs for m in c["multi_majority"]):
            continue
        upto = min(c["spent"][-1] for c in runs)
        grid = np.linspace(max(c["spent"][0] for c in runs), upto, 40)
        gaps = np.full((len(runs), len(grid)), np.nan)
        for r, c in enumerate(runs):
            for g, dollars in enumerate(grid):
                i = max(int(np.searchsorted(c["spent"], dollars + 1e-9)) - 1, 0)
                if c["multi_majority"][i] is not None:
                    gaps[r, g] = c["multi_bayes_em"][i] - c["multi_majority"][i]
        seen = np.sum(~np.isnan(gaps), axis=0)
        keep = seen >= 2
        mean = np.nanmean(gaps[:, keep], axis=0)
        half = 1.96 * np.nanstd(gaps[:, keep], axis=0, ddof=1) / np.sqrt(seen[keep])
        ax.plot(grid[keep], mean, label=policy)
        ax.fill_between(grid[keep], mean - half, mean + half, alpha=0.2)
    ax.axhline(0.0, color="grey", linewidth=0.8)


STATIC_BEGIN = "<!-- BEGIN generated: labelwise-simulate annotators --static -->"
STATIC_LABELS = (1, 2, 3)


def run_static(
    client: Client, source: str, split: Split, setup: Setup, per_item: int, seed: int
) -> dict[str, Any]:
    """Every pool item labeled by per_item distinct annotators drawn at random (the crowd of
    the seed), the model's out-of-sample probabilities from the majority votes of the whole
    pool: the accuracy of Bayes EM's and CROWDLAB's consensus, the majority vote and
    Dawid-Skene against the truth, all by AssessLabels. CROWDLAB's own setting (every item
    labeled more than once)."""
    crowd = Crowd(split, setup, seed)
    n, a, classes = len(split.pool_y), len(setup.costs), split.n_classes
    rng = np.random.default_rng([seed, 99, per_item])
    annotations = np.full((n, a), MISSING, dtype=np.int64)
    for item in range(n):
        for j in rng.choice(a, size=per_item, replace=False):
            annotations[item, j] = crowd.label(item, int(j))
    votes = np.array([np.bincount(row[row >= 0], minlength=classes) for row in annotations])
    p = out_of_sample(split.pool_x, votes.argmax(axis=1), classes, setup, seed)
    em_assessed = client.assess_labels(
        annotations, labeled_probabilities=p, method="bayes_em", deadline=120
    )
    em, majority = em_assessed.consensus_labels, em_assessed.majority_vote_labels
    # CROWDLAB needs an item with two labels: none with one label per item.
    crowdlab = (
        client.assess_labels(annotations, labeled_probabilities=p, deadline=120).consensus_labels
        if per_item > 1
        else None
    )
    ds = client.assess_labels(
        annotations, method="dawid_skene", num_classes=classes, deadline=120
    ).consensus_labels
    truth = split.pool_y
    return {
        "dataset": source,
        "seed": seed,
        "labels_per_item": per_item,
        "items": n,
        "bayes_em": float(np.mean(em == truth)),
        "crowdlab": None if crowdlab is None else float(np.mean(crowdlab == truth)),
        "majority": float(np.mean(majority == truth)),
        "dawid_skene": float(np.mean(ds == truth)),
    }


def static_table(results: dict[str, Any]) -> str:
    """The Markdown table of the static check, from its results.json."""
    lines = [
        f"Every pool item labeled by 1, 2 or 3 of the annotators above drawn at random; the "
        f"model's 5-fold out-of-sample probabilities from the majority votes of the whole pool; "
        f"{results['seeds']} seeds, mean and 95 % t-interval (differences paired by seed). "
        "Accuracy (%) against the truth.",
        "",
        "| data | labels per item | Bayes EM | CROWDLAB | majority vote | Dawid-Skene | "
        "Bayes EM − majority | CROWDLAB − majority |",
        "|---|---|---|---|---|---|---|---|",
    ]
    records = results["records"]
    for dataset in results["datasets"]:
        for per_item in STATIC_LABELS:
            mine = sorted(
                (
                    r
                    for r in records
                    if r["dataset"] == dataset and r["labels_per_item"] == per_item
                ),
                key=lambda r: r["seed"],
            )
            if not mine:
                continue
            cells = [_cell(_kept([r[key] for r in mine])) for key in CONSENSUS]
            gaps = [
                _cell(
                    _kept([None if r[k] is None else r[k] - r["majority"] for r in mine]),
                    signed=True,
                )
                for k in ("bayes_em", "crowdlab")
            ]
            lines.append(f"| {dataset} | {per_item} | {' | '.join(cells + gaps)} |")
    return "\n".join(lines) + "\n"


def _kept(values: list[float | None]) -> tuple[float, float, float]:
    """mean_interval of the values that are there (NaN, shown as "—", when none is)."""
    kept = [v for v in values if v is not None]
    return mean_interval(np.array(kept or [np.nan]))


def write_static_docs(results: dict[str, Any], docs: Path) -> None:
    """Replace the generated block of docs after STATIC_BEGIN with static_table(results)."""
    _replace_block(docs, STATIC_BEGIN, static_table(results))


def build_parser() -> argparse.ArgumentParser:
    setup = Setup()
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--data", nargs="+", default=list(DEFAULT_DATA), help="Built-in data sets.")
    add("--seeds", type=int, default=5, help="Repetitions (default: %(default)s).")
    add("--seed", type=int, default=0, help="First seed (default: %(default)s).")
    add("--accuracies", type=float, nargs="+", default=list(setup.accuracies))
    add("--costs", type=float, nargs="+", default=list(setup.costs))
    add("--hard-fraction", type=float, default=setup.hard_fraction)
    add("--rounds", type=int, default=setup.rounds)
    add("--labels-per-round", type=int, default=setup.labels_per_round)
    add("--address", default=None, help="host:port of a running labelwise service.")
    add("--out", type=Path, default=Path("bench/simulation/annotators"))
    add(
        "--docs",
        type=Path,
        default=None,
        help="Markdown file whose generated block gets the tables (only the tables are "
        "rewritten, from OUT/results.json, when --tables-only).",
    )
    add("--tables-only", action="store_true", help="Only regenerate --docs from OUT.")
    add("--static", action="store_true",
        help="The static consensus check instead of the learning curves: every pool item "
        "labeled 1, 2 and 3 times, Bayes EM and CROWDLAB against the majority vote; "
        "OUT/static/results.json "
        "and --docs's static block.")  # fmt: skip
    add("--merge", type=Path, nargs="+", default=None, metavar="DIR",
        help="Combine the results.json of runs in parallel (same setup, disjoint seeds or "
        "data sets) into OUT, then write its tables and plot.")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from labelwise_simulate.service import ServeProcess, ServiceError

    args = build_parser().parse_args(argv)
    out: Path = args.out
    if args.tables_only:
        if args.docs is None:
            print(f"{PROG}: --tables-only needs --docs", file=sys.stderr)
            return 2
        if args.static:
            write_static_docs(json.loads((out / "static/results.json").read_text()), args.docs)
        else:
            write_docs(json.loads((out / "results.json").read_text()), args.docs)
        return 0
    if args.merge:
        parts = [json.loads((d / "results.json").read_text()) for d in args.merge]
        if any(p["setup"] != parts[0]["setup"] for p in parts):
            print(f"{PROG}: --merge needs runs of one setup", file=sys.stderr)
            return 2
        combined = [c for p in parts for c in p["curves"]]
        datasets = list(dict.fromkeys(d for p in parts for d in p["datasets"]))
        seeds = min(len({c["seed"] for c in combined if c["dataset"] == d}) for d in datasets)
        merged = {"setup": parts[0]["setup"], "datasets": datasets, "seeds": seeds,
                  "seconds": sum(p["seconds"] for p in parts), "curves": combined}  # fmt: skip
        _write(merged, out, args.docs)
        return 0
    if len(args.accuracies) != len(args.costs) or not 1 <= len(args.costs) <= 16:
        print(f"{PROG}: give one --costs per --accuracies (1-16)", file=sys.stderr)
        return 2
    setup = Setup(
        tuple(args.accuracies),
        tuple(args.costs),
        args.hard_fraction,
        args.rounds,
        args.labels_per_round,
    )
    started = time.perf_counter()
    curves: list[Curve] = []
    records: list[dict[str, Any]] = []
    try:
        server = None if args.address else ServeProcess(1)
    except ServiceError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    try:
        address = args.address or server.address  # type: ignore[union-attr]
        with Client(address) as client:
            for name in args.data:
                data = load(DataSource(name))
                for seed in range(args.seed, args.seed + args.seeds):
                    data_split = split(data, setup.test_fraction, seed)
                    if args.static:
                        for per_item in STATIC_LABELS:
                            records.append(
                                run_static(client, name, data_split, setup, per_item, seed)
                            )
                            print(f"{name} seed {seed} static {per_item}", flush=True)
                        continue
                    for policy in POLICIES:
                        curves.append(run_policy(client, name, data_split, setup, policy, seed))
                        print(
                            f"{name} seed {seed} {policy}: {curves[-1].accuracy[-1]:.3f}",
                            flush=True,
                        )
    except LabelwiseError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
    if args.static:
        static = {
            "setup": asdict(setup),
            "datasets": list(args.data),
            "seeds": args.seeds,
            "seconds": round(time.perf_counter() - started),
            "records": records,
        }
        (out / "static").mkdir(parents=True, exist_ok=True)
        (out / "static/results.json").write_text(json.dumps(static, indent=1) + "\n")
        (out / "static/results.md").write_text(static_table(static))
        if args.docs is not None:
            write_static_docs(static, args.docs)
        print(f"wrote {out}/static/results.json, results.md")
        return 0
    results = {
        "setup": asdict(setup),
        "datasets": list(args.data),
        "seeds": args.seeds,
        "seconds": round(time.perf_counter() - started),
        "curves": [asdict(c) for c in curves],
    }
    _write(results, out, args.docs)
    return 0


def _write(results: dict[str, Any], out: Path, docs: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(table(results))
    plot(results, out)
    if docs is not None:
        write_docs(results, docs)
    print(f"wrote {out}/results.json, results.md, annotators.png")
