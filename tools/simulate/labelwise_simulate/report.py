"""Summaries of the curves: labels to reach a share of full accuracy, savings, AULC, plots.

Every run of a data set uses the same schedule up to the budget (the initial set, then
batches), so curves of different seeds and strategies share their label counts there and
can be averaged point by point. Past the budget a run goes on only while it is short of
the highest target (loop.run), so the curves differ in length: AULC, final accuracy and
the plots use the part up to the budget, labels-to-reach uses all of it.

Comparisons with random are paired by seed (a seed's split, initial set and model seed
are shared by every strategy): savings get a percentile bootstrap interval over seeds,
differences in AULC and final accuracy a Student's t interval of the mean paired
difference; a strategy is "significantly worse than random" when that interval lies
wholly below zero (a two-sided paired t-test at the 5% level, not corrected for the
number of strategies and data sets compared).
"""

import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from labelwise_simulate.data import FloatArray
from labelwise_simulate.defaults import TARGETS, Protocol
from labelwise_simulate.loop import Curve, StrategyPlan
from labelwise_simulate.runner import DatasetResult, Results, Settings

BOOTSTRAP_DRAWS = 2000
CONFIDENCE = 0.95
WORSE, BETTER = "▼", "▲"  # significantly worse / better than random (paired t, 95%)


@dataclass(frozen=True)
class Reach:
    """Labels (or dollars) to reach a share of full accuracy, per seed (None: the run stopped
    short of it), and where each run stopped."""

    per_seed: list[float | None]
    ends: list[float]

    def censored(self) -> FloatArray:
        # A run that never reached the target counts as where it stopped: a lower bound.
        return np.array(
            [end if v is None else v for v, end in zip(self.per_seed, self.ends, strict=True)],
            dtype=np.float64,
        )

    @property
    def reached(self) -> int:
        return sum(v is not None for v in self.per_seed)

    @property
    def complete(self) -> bool:
        return self.reached == len(self.per_seed)


# How a saving relates to the truth when some runs stopped short of the target.
MEASURED = ""
AT_LEAST = "≥"  # only random's runs fell short: random needs more, the saving is larger
AT_MOST = "≤"  # only the strategy's runs fell short: it needs more, the saving is smaller
UNKNOWN = "?"  # both fell short somewhere: no bound in either direction


def bound_kind(strategy_complete: bool, random_complete: bool) -> str:
    if strategy_complete and random_complete:
        return MEASURED
    if strategy_complete:
        return AT_LEAST
    if random_complete:
        return AT_MOST
    return UNKNOWN


@dataclass(frozen=True)
class Saving:
    """1 − labels(strategy)/labels(random) in percent, with a bootstrap interval over seeds."""

    percent: float
    low: float
    high: float
    bound: str = MEASURED  # MEASURED, or AT_LEAST / AT_MOST / UNKNOWN when runs fell short

    @property
    def censored(self) -> bool:
        return self.bound != MEASURED


@dataclass(frozen=True)
class Difference:
    """Mean paired difference strategy − random over seeds, with its t interval."""

    mean: float
    low: float
    high: float

    @property
    def mark(self) -> str:
        if self.high < 0:
            return WORSE
        if self.low > 0:
            return BETTER
        return ""


@dataclass(frozen=True)
class StrategySummary:
    name: str
    aulc_mean: float
    aulc_std: float
    final_mean: float
    final_std: float
    reach: dict[float, Reach]
    saving: dict[float, Saving | None]  # None for random itself
    accuracy_per_dollar: float | None  # accuracy gained per unit of cost, when costs vary
    cost_to_reach: dict[float, float | None]  # mean cost to reach a target, when costs vary
    ms_per_call: float  # mean wall time of one SelectQueries call, transport included
    delta_aulc: Difference | None = None  # vs random, paired by seed; None for random
    delta_final: Difference | None = None


def x_values(result: DatasetResult, curve: Curve) -> list[float]:
    """A curve's x axis: dollars spent when the run was cost-aware, otherwise labels."""
    return curve.cost if result.cost_aware else [float(n) for n in curve.labels]


def within_budget(result: DatasetResult, curve: Curve, at: int) -> tuple[FloatArray, FloatArray]:
    """The x values and accuracies of seed at's run up to its budget."""
    x = np.array(x_values(result, curve), dtype=np.float64)
    keep = x <= result.x_budget[at] * (1 + 1e-9)
    keep[0] = True
    return x[keep], np.array(curve.accuracy, dtype=np.float64)[keep]


def on_grid(result: DatasetResult, runs: list[Curve]) -> tuple[FloatArray, FloatArray]:
    """A shared x grid and [seeds, grid] accuracies up to the budget: the label schedule
    every run shares, or, on dollars, the accuracy each run had after spending x (a step
    function)."""
    parts = [within_budget(result, c, at) for at, c in enumerate(runs)]
    if not result.cost_aware:
        width = max(len(x) for x, _ in parts)
        grid = max((x for x, _ in parts), key=len)
        # A run that ran out of pool early keeps its last accuracy.
        acc = [list(a) + [a[-1]] * (width - len(a)) for _, a in parts]
        return grid, np.array(acc, dtype=np.float64)
    start = max(x[0] for x, _ in parts)
    stop = max(start, min(x[-1] for x, _ in parts))
    grid = np.linspace(start, stop, 80)
    rows = []
    for x, a in parts:
        at = np.searchsorted(x, grid, side="right") - 1
        rows.append(a[np.clip(at, 0, len(a) - 1)])
    return grid, np.array(rows, dtype=np.float64)


def aulc(x: FloatArray, accuracy: FloatArray) -> float:
    """Area under the learning curve over its x range, normalised to [0, 1]."""
    if len(x) < 2 or x[-1] == x[0]:
        return float(accuracy[-1])
    area = np.sum((accuracy[1:] + accuracy[:-1]) / 2 * np.diff(x))
    return float(area / (x[-1] - x[0]))


def first_reach(x: list[float], accuracy: list[float], target: float) -> float | None:
    for spent, value in zip(x, accuracy, strict=True):
        if value >= target:
            return spent
    return None


def bootstrap_saving(
    strategy: FloatArray, random: FloatArray, rng: np.random.Generator, bound: str = MEASURED
) -> Saving:
    """Resample seeds (paired: a seed's split and initial set are shared) and recompute."""
    percent = 100.0 * (1.0 - strategy.mean() / random.mean())
    draws = rng.integers(0, len(strategy), size=(BOOTSTRAP_DRAWS, len(strategy)))
    resampled = 100.0 * (1.0 - strategy[draws].mean(axis=1) / random[draws].mean(axis=1))
    low, high = np.percentile(resampled, [2.5, 97.5])
    return Saving(percent, float(low), float(high), bound)


def paired_difference(strategy: FloatArray, random: FloatArray) -> Difference:
    """Mean of strategy − random over seeds and its Student's t interval (CONFIDENCE): the
    interval excludes 0 exactly when a two-sided paired t-test rejects at 1 − CONFIDENCE.
    One seed gives an unbounded interval; equal differences on every seed a point."""
    diff = np.asarray(strategy, dtype=np.float64) - np.asarray(random, dtype=np.float64)
    mean = float(diff.mean())
    if len(diff) < 2:
        return Difference(mean, -math.inf, math.inf)
    half = (
        float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(diff) - 1))
        * float(diff.std(ddof=1))
        / math.sqrt(len(diff))
    )
    return Difference(mean, mean - half, mean + half)


def summarize(result: DatasetResult, seed: int) -> list[StrategySummary]:
    rng = np.random.default_rng(seed)
    reaches: dict[str, dict[float, Reach]] = {}
    for name, runs in result.curves.items():
        ends = [x_values(result, c)[-1] for c in runs]
        reaches[name] = {
            t: Reach([first_reach(x_values(result, c), c.accuracy, t * full)
                      for c, full in zip(runs, result.full_accuracy, strict=True)], ends)
            for t in TARGETS
        }  # fmt: skip
    areas: dict[str, FloatArray] = {}
    finals: dict[str, FloatArray] = {}
    for name, runs in result.curves.items():
        parts = [within_budget(result, c, at) for at, c in enumerate(runs)]
        areas[name] = np.array([aulc(x, a) for x, a in parts])
        finals[name] = np.array([a[-1] for _, a in parts])
    summaries = []
    for name, runs in result.curves.items():
        saving: dict[float, Saving | None] = {}
        for t in TARGETS:
            if name == "random":
                saving[t] = None
                continue
            mine, base = reaches[name][t], reaches["random"][t]
            saving[t] = bootstrap_saving(mine.censored(), base.censored(), rng,
                                         bound_kind(mine.complete, base.complete))  # fmt: skip
        per_dollar: float | None = None
        cost_to_reach: dict[float, float | None] = {}
        if result.has_costs:
            gained = [(c.accuracy[-1] - c.accuracy[0]) / max(c.cost[-1] - c.cost[0], 1e-12)
                      for c in runs]  # fmt: skip
            per_dollar = float(np.mean(gained))
            for t in TARGETS:
                costs = [first_reach(c.cost, c.accuracy, t * full)
                         for c, full in zip(runs, result.full_accuracy, strict=True)]  # fmt: skip
                reached = [c for c in costs if c is not None]
                cost_to_reach[t] = float(np.mean(reached)) if len(reached) == len(costs) else None
        calls = sum(len(c.labels) - 1 for c in runs)
        is_random = name == "random"
        summaries.append(
            StrategySummary(
                name=name,
                aulc_mean=float(np.mean(areas[name])),
                aulc_std=float(np.std(areas[name])),
                final_mean=float(np.mean(finals[name])),
                final_std=float(np.std(finals[name])),
                reach=reaches[name],
                saving=saving,
                accuracy_per_dollar=per_dollar,
                cost_to_reach=cost_to_reach,
                ms_per_call=1000 * sum(c.select_seconds for c in runs) / max(1, calls),
                delta_aulc=None if is_random else paired_difference(areas[name], areas["random"]),
                delta_final=None
                if is_random
                else paired_difference(finals[name], finals["random"]),
            )
        )
    return summaries


def _signed(percent: float) -> str:
    return f"{round(percent):+d}"  # round first, so -0.3 reads +0, not -0


def saving_text(saving: Saving) -> str:
    """A measured saving with its interval; a bound as ≥/≤ without one; ? when neither."""
    if saving.bound == UNKNOWN:
        return "? (both short)"
    if saving.bound:
        return f"{saving.bound}{_signed(saving.percent)}%"
    return f"{_signed(saving.percent)}% [{_signed(saving.low)}, {_signed(saving.high)}]"


def difference_text(diff: Difference, digits: int = 3) -> str:
    """+0.012 [+0.004, +0.020] ▲: the mean paired difference, its interval, its mark."""

    def f(v: float) -> str:
        return "±∞" if math.isinf(v) else f"{v:+.{digits}f}"

    mark = f" {diff.mark}" if diff.mark else ""
    return f"{f(diff.mean)} [{f(diff.low)}, {f(diff.high)}]{mark}"


def _reach_cell(reach: Reach, saving: Saving | None) -> str:
    n = len(reach.per_seed)
    labels = f"{reach.censored().mean():.0f}"
    if reach.reached == 0:
        labels = f">{np.mean(reach.ends):.0f}"
    elif reach.reached < n:
        labels = f"≥{labels} ({reach.reached}/{n})"
    if saving is None:
        return labels
    return f"{labels}: {saving_text(saving)}"


def dataset_table(result: DatasetResult, summaries: list[StrategySummary]) -> str:
    full = np.array(result.full_accuracy)
    budget = f"{result.budget} labels"
    if result.cost_aware:
        budget = f"${np.mean(result.x_budget):.0f} (what {result.budget} labels cost on average)"
    elif result.cap > result.budget:
        budget += f" (runs short of {max(TARGETS):.0%} go on to {result.cap})"
    unit = "$" if result.cost_aware else "labels"
    head = ["strategy", "AULC", "ΔAULC vs random", "final acc", "Δfinal vs random"]
    head += [f"{unit} to {t:.0%}" for t in TARGETS]
    head.append("ms/call")
    if result.has_costs:
        head.append("acc gained per $1000")
    if result.has_costs and not result.cost_aware:
        head += [f"$ to {t:.0%}" for t in TARGETS]
    lines = [
        f"### {result.name}",
        "",
        f"pool {result.pool_size}, test {result.test_size}, {result.n_classes} classes, "
        f"budget {budget}, full-pool accuracy {full.mean():.3f} ± {full.std():.3f}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for s in summaries:
        row = [
            f"`{s.name}`",
            f"{s.aulc_mean:.3f} ± {s.aulc_std:.3f}",
            "—" if s.delta_aulc is None else difference_text(s.delta_aulc),
            f"{s.final_mean:.3f} ± {s.final_std:.3f}",
            "—" if s.delta_final is None else difference_text(s.delta_final),
        ] + [_reach_cell(s.reach[t], s.saving[t]) for t in TARGETS]
        row.append(f"{s.ms_per_call:.1f}")
        if result.has_costs:
            row.append(f"{1000 * (s.accuracy_per_dollar or 0.0):.3f}")
        if result.has_costs and not result.cost_aware:
            row += ["—" if s.cost_to_reach[t] is None else f"{s.cost_to_reach[t]:.0f}"
                    for t in TARGETS]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _strategy_names(results: Results) -> list[str]:
    return [p.label for p in results.strategies if p.label != "random"]


def savings_table(
    results: Results, summaries: dict[str, list[StrategySummary]], target: float
) -> str:
    """One row per strategy, one column per data set: the saving vs random at target, and
    the difference in AULC with its significance mark."""
    names = [d.name for d in results.datasets]
    lines = [
        "| strategy | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for strategy in _strategy_names(results):
        cells = []
        for name in names:
            found = next((s for s in summaries[name] if s.name == strategy), None)
            if found is None:
                cells.append("—")
                continue
            saving, delta = found.saving[target], found.delta_aulc
            assert saving is not None and delta is not None
            cells.append(f"{saving_text(saving)}; ΔAULC {difference_text(delta)}")
        lines.append(f"| `{strategy}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


LEGEND = (
    "Cells under *labels to X%*: mean labels (over seeds; dollars under *$ to X%* on "
    "--cost-aware data) until test accuracy first reaches X% of full accuracy, then the "
    "saving vs `random` = 1 − labels/labels(random) (positive: fewer labels) with a 95% "
    "bootstrap interval over seeds. A run short of {top} of full accuracy at the budget "
    "goes on labeling (same strategy, same batches) up to the cap, so most savings are "
    "measured; where some run still fell short at the cap it counts as where it stopped "
    "and the cell is a bound, without an interval: `≥+40%` (random fell short: the saving "
    "is at least that), `≤−35%` (the strategy fell short: at most that, a loss at least "
    "that large), `?` (both fell short: no bound); `≥N (r/n)` in the labels part: r of n "
    "runs reached it. AULC: area under the accuracy-vs-labels curve up to the budget, "
    "normalised to [0, 1]; final acc: accuracy at the budget. ΔAULC and Δfinal: mean "
    "paired difference strategy − random over seeds with a 95% Student's t interval; "
    f"{WORSE} significantly worse than random (the interval lies below 0: a two-sided "
    f"paired t-test at 5%, not corrected for the many comparisons), {BETTER} significantly "
    "better. ms/call: mean wall time of one SelectQueries call through gRPC."
).format(top=f"{max(TARGETS):.0%}")


def model_text(p: Protocol) -> str:
    if p.model == "random_forest":
        return "RandomForestClassifier(n_estimators=100, random_state=seed)"
    if p.model == "mlp":
        return (
            f"MLPClassifier(hidden_layer_sizes=({p.mlp_hidden},), max_iter=500, random_state=seed)"
        )
    return f"LogisticRegression(max_iter={p.max_iter})"


def protocol_text(settings: Settings) -> str:
    p = settings.protocol
    committee = f"{p.committee_size} bootstrap copies of the model"
    if p.committee_model == "mlp":
        committee = f"{p.committee_size} MLPs ({p.mlp_hidden} hidden units) of different seeds"
    cap = "every run stops at the budget"
    if p.cap_factor > 1:
        cap = (f"a run short of {max(TARGETS):.0%} of full accuracy at the budget goes on to "
               f"{p.cap_factor:g}× the budget (the pool at most)")  # fmt: skip
    return (
        f"{settings.seeds} seeds from --seed {settings.seed}; stratified "
        f"{1 - p.test_fraction:.0%}/{p.test_fraction:.0%} pool/test split per seed, features "
        f"standardised on the pool; {p.initial_per_class} labeled examples per class to start; "
        f"{model_text(p)} retrained from scratch each round; batches of {p.batch_size}; "
        f"{cap}; committee: {committee}. Full accuracy = the same model trained on the whole "
        "pool."
    )


def markdown(results: Results, summaries: dict[str, list[StrategySummary]], seconds: float) -> str:
    parts = [
        "# labelwise simulate: results",
        "",
        f"{protocol_text(results.settings)} Ran in {seconds:.0f} s.",
        "",
        LEGEND,
        "",
    ]
    if results.skipped:
        skipped = ", ".join(f"`{n}` (needs {', '.join(i)})" for n, i in results.skipped.items())
        parts += [f"Not simulated (inputs this loop cannot give): {skipped}.", ""]
    parts += [
        "## Saving vs random at 95% of full accuracy",
        "",
        savings_table(results, summaries, 0.95),
        "",
    ]
    for result in results.datasets:
        parts += [dataset_table(result, summaries[result.name]), ""]
    return "\n".join(parts)


_FAMILY_COLORS = {"uncertainty": "Blues", "committee": "Greens", "bayesian": "Oranges"}
_OTHER_COLORS = ("Purples", "Reds", "Greys", "YlOrBr")


def _styles(results: Results) -> dict[str, dict[str, Any]]:
    """One shade per strategy from its family's colour map; random is thick and black."""
    import matplotlib

    families: dict[str, list[str]] = {}
    for plan in results.strategies:
        if plan.name != "random":
            families.setdefault(plan.family, []).append(plan.label)
    others = iter(_OTHER_COLORS * 4)
    styles: dict[str, dict[str, Any]] = {
        "random": {"color": "black", "linewidth": 2.4, "zorder": 5}
    }
    for family, members in families.items():
        cmap = matplotlib.colormaps[_FAMILY_COLORS.get(family) or next(others)]
        for at, (name, shade) in enumerate(
            zip(members, np.linspace(0.5, 0.95, len(members)), strict=True)
        ):
            styles[name] = {"color": cmap(shade), "linewidth": 1.3,
                            "linestyle": ("-", "--", "-.", ":")[at % 4]}  # fmt: skip
    return styles


def plot(results: Results, path: Path, only: DatasetResult | None = None) -> None:
    """Accuracy vs labels, mean ± std over seeds, one panel per data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = [only] if only is not None else results.datasets
    columns = min(2, len(datasets))
    rows = math.ceil(len(datasets) / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(5.5 * columns + 1.8, 4 * rows), squeeze=False
    )
    names = [p.label for p in results.strategies]
    styles = _styles(results)
    for ax, result in zip(axes.flat, datasets, strict=False):
        lowest = 1.0
        for name in names:
            grid, acc = on_grid(result, result.curves[name])
            mean, std = acc.mean(axis=0), acc.std(axis=0)
            lowest = min(lowest, float(mean.min()))
            style = styles[name]
            ax.plot(grid, mean, label=name, **style)
            shade = 0.15 if name == "random" else 0.05
            ax.fill_between(grid, mean - std, mean + std, color=style["color"], alpha=shade)
        full = float(np.mean(result.full_accuracy))
        ax.axhline(full, color="grey", linewidth=0.8)
        ax.axhline(0.95 * full, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(f"{result.name} (full-pool accuracy {full:.3f}; dotted: 95%)", fontsize=10)
        ax.set_xlabel("labeling cost ($)" if result.cost_aware else "labels")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
        # Below 70% of full accuracy only the first rounds show; they would flatten the rest.
        ax.set_ylim(max(0.0, lowest - 0.02, 0.7 * full), min(1.0, full + 0.04))
    for ax in list(axes.flat)[len(datasets) :]:
        ax.axis("off")
    handles, labels_ = axes.flat[0].get_legend_handles_labels()
    legend_width = 1.8 / (5.5 * columns + 1.8)
    figure.legend(handles, labels_, loc="center right", fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0, 1 - legend_width, 1))
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=80, format="png")
    plt.close(figure)
    # A 256-colour palette keeps the PNG small enough to commit (a third of the RGBA size).
    from PIL import Image

    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(256).save(path, optimize=True)


def _rounded(curve: Curve) -> dict[str, Any]:
    return {
        "labels": curve.labels,
        "cost": [round(c, 6) for c in curve.cost],
        "accuracy": [round(a, 6) for a in curve.accuracy],
        "select_seconds": round(curve.select_seconds, 4),
    }


def to_json(results: Results) -> dict[str, Any]:
    """Everything the report reads, so that from_json() can write it again."""
    return {
        "settings": {
            "seeds": results.settings.seeds,
            "seed": results.settings.seed,
            "protocol": asdict(results.settings.protocol),
        },
        "strategies": [
            {
                "name": p.name,
                "family": p.family,
                "inputs": sorted(p.inputs),
                "params": [list(kv) for kv in p.params],
            }
            for p in results.strategies
        ],
        "skipped": results.skipped,
        "datasets": [
            {
                "name": d.name,
                "budget": d.budget,
                "cap": d.cap,
                "pool_size": d.pool_size,
                "test_size": d.test_size,
                "n_classes": d.n_classes,
                "has_costs": d.has_costs,
                "cost_aware": d.cost_aware,
                "x_budget": d.x_budget,
                "full_accuracy": d.full_accuracy,
                "curves": {name: [_rounded(c) for c in runs] for name, runs in d.curves.items()},
            }
            for d in results.datasets
        ],
    }


def from_json(raw: dict[str, Any]) -> Results:
    """The Results that to_json() wrote (the data sources themselves are not kept)."""
    settings = raw["settings"]
    plans = [
        StrategyPlan(s["name"], frozenset(s["inputs"]), s["family"],
                     tuple((k, v) for k, v in s["params"]))
        for s in raw["strategies"]
    ]  # fmt: skip
    datasets = [
        DatasetResult(
            name=d["name"],
            budget=d["budget"],
            pool_size=d["pool_size"],
            test_size=d["test_size"],
            n_classes=d["n_classes"],
            has_costs=d["has_costs"],
            full_accuracy=d["full_accuracy"],
            cost_aware=d["cost_aware"],
            x_budget=d["x_budget"],
            curves={
                name: [
                    Curve(c["labels"], c["cost"], c["accuracy"], c["select_seconds"]) for c in runs
                ]
                for name, runs in d["curves"].items()
            },
            cap=d["cap"],
        )
        for d in raw["datasets"]
    ]
    return Results(
        Settings(sources=(), seeds=settings["seeds"], seed=settings["seed"],
                 protocol=Protocol(**settings["protocol"])),
        plans,
        raw["skipped"],
        datasets,
    )  # fmt: skip


def write(results: Results, out: Path, seconds: float) -> dict[str, list[StrategySummary]]:
    """results.md, results.json, learning_curves.png and one PNG per data set under out."""
    out.mkdir(parents=True, exist_ok=True)
    summaries = {d.name: summarize(d, results.settings.seed) for d in results.datasets}
    (out / "results.md").write_text(markdown(results, summaries, seconds))
    (out / "results.json").write_text(json.dumps(to_json(results), separators=(",", ":")))
    plot(results, out / "learning_curves.png")
    for d in results.datasets:
        plot(results, out / f"learning_curves_{d.name}.png", only=d)
    return summaries
