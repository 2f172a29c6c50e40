"""Summaries of the curves: labels to reach a share of full accuracy, savings, AULC, plots.

Every run of a data set uses the same schedule (the initial set, then batches up
to the budget), so curves of different seeds and strategies share their label
counts and can be averaged point by point.
"""

import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labelwise_simulate.data import FloatArray
from labelwise_simulate.loop import Curve
from labelwise_simulate.runner import DatasetResult, Results

TARGETS = (0.90, 0.95, 0.98, 0.99)
BOOTSTRAP_DRAWS = 2000


@dataclass(frozen=True)
class Reach:
    """Labels (or dollars) to reach a share of full accuracy, per seed (None: not in budget)."""

    per_seed: list[float | None]

    def censored(self, budgets: list[float]) -> FloatArray:
        # Runs that never reach the target count as their budget: a lower bound on their need.
        return np.array(
            [b if v is None else v for v, b in zip(self.per_seed, budgets, strict=True)],
            dtype=np.float64,
        )

    @property
    def reached(self) -> int:
        return sum(v is not None for v in self.per_seed)


@dataclass(frozen=True)
class Saving:
    """1 − labels(strategy)/labels(random) in percent, with a bootstrap interval over seeds."""

    percent: float
    low: float
    high: float
    censored: bool  # some run of either side never reached the target: a bound, not a value


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


def x_values(result: DatasetResult, curve: Curve) -> list[float]:
    """A curve's x axis: dollars spent when the run was cost-aware, otherwise labels."""
    return curve.cost if result.cost_aware else [float(n) for n in curve.labels]


def on_grid(result: DatasetResult, runs: list[Curve]) -> tuple[FloatArray, FloatArray]:
    """A shared x grid and [seeds, grid] accuracies: the label schedule every run shares,
    or, on dollars, the accuracy each run had after spending x (a step function)."""
    if not result.cost_aware:
        width = max(len(c.labels) for c in runs)
        grid = np.array(max((c.labels for c in runs), key=len), dtype=np.float64)
        # A run that ran out of pool early keeps its last accuracy.
        acc = [c.accuracy + [c.accuracy[-1]] * (width - len(c.accuracy)) for c in runs]
        return grid, np.array(acc, dtype=np.float64)
    start = max(c.cost[0] for c in runs)
    stop = max(start, min(c.cost[-1] for c in runs))
    grid = np.linspace(start, stop, 80)
    rows = []
    for c in runs:
        at = np.searchsorted(np.asarray(c.cost), grid, side="right") - 1
        rows.append(np.asarray(c.accuracy)[np.clip(at, 0, len(c.accuracy) - 1)])
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
    strategy: FloatArray, random: FloatArray, rng: np.random.Generator, censored: bool
) -> Saving:
    """Resample seeds (paired: a seed's split and initial set are shared) and recompute."""
    percent = 100.0 * (1.0 - strategy.mean() / random.mean())
    draws = rng.integers(0, len(strategy), size=(BOOTSTRAP_DRAWS, len(strategy)))
    resampled = 100.0 * (1.0 - strategy[draws].mean(axis=1) / random[draws].mean(axis=1))
    low, high = np.percentile(resampled, [2.5, 97.5])
    return Saving(percent, float(low), float(high), censored)


def summarize(result: DatasetResult, seed: int) -> list[StrategySummary]:
    rng = np.random.default_rng(seed)
    reaches: dict[str, dict[float, Reach]] = {}
    for name, runs in result.curves.items():
        reaches[name] = {
            t: Reach([first_reach(x_values(result, c), c.accuracy, t * full)
                      for c, full in zip(runs, result.full_accuracy, strict=True)])
            for t in TARGETS
        }  # fmt: skip
    summaries = []
    for name, runs in result.curves.items():
        areas = [aulc(np.array(x_values(result, c)), np.array(c.accuracy)) for c in runs]
        final = [c.accuracy[-1] for c in runs]
        saving: dict[float, Saving | None] = {}
        for t in TARGETS:
            if name == "random":
                saving[t] = None
                continue
            mine, base = reaches[name][t], reaches["random"][t]
            saving[t] = bootstrap_saving(
                mine.censored(result.x_budget),
                base.censored(result.x_budget),
                rng,
                censored=mine.reached < len(runs) or base.reached < len(runs),
            )
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
        summaries.append(
            StrategySummary(
                name=name,
                aulc_mean=float(np.mean(areas)),
                aulc_std=float(np.std(areas)),
                final_mean=float(np.mean(final)),
                final_std=float(np.std(final)),
                reach=reaches[name],
                saving=saving,
                accuracy_per_dollar=per_dollar,
                cost_to_reach=cost_to_reach,
                ms_per_call=1000 * sum(c.select_seconds for c in runs) / max(1, calls),
            )
        )
    return summaries


def _signed(percent: float) -> str:
    return f"{round(percent):+d}"  # round first, so -0.3 reads +0, not -0


def _saving_text(saving: Saving) -> str:
    mark = "*" if saving.censored else ""
    return f"{_signed(saving.percent)}%{mark} [{_signed(saving.low)}, {_signed(saving.high)}]"


def _reach_cell(reach: Reach, saving: Saving | None, budgets: list[float]) -> str:
    n = len(reach.per_seed)
    if reach.reached == 0:
        labels = f">{np.mean(budgets):.0f}"
    else:
        labels = f"{reach.censored(budgets).mean():.0f}"
        if reach.reached < n:
            labels = f"≥{labels} ({reach.reached}/{n})"
    if saving is None:
        return labels
    return f"{labels}: {_saving_text(saving)}"


def dataset_table(result: DatasetResult, summaries: list[StrategySummary]) -> str:
    full = np.array(result.full_accuracy)
    budget = f"{result.budget} labels"
    if result.cost_aware:
        budget = f"${np.mean(result.x_budget):.0f} (what {result.budget} labels cost on average)"
    unit = "$" if result.cost_aware else "labels"
    head = ["strategy", "AULC", "final acc"] + [f"{unit} to {t:.0%}" for t in TARGETS]
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
            f"{s.final_mean:.3f} ± {s.final_std:.3f}",
        ] + [_reach_cell(s.reach[t], s.saving[t], result.x_budget) for t in TARGETS]
        row.append(f"{s.ms_per_call:.1f}")
        if result.has_costs:
            row.append(f"{1000 * (s.accuracy_per_dollar or 0.0):.3f}")
        if result.has_costs and not result.cost_aware:
            row += ["—" if s.cost_to_reach[t] is None else f"{s.cost_to_reach[t]:.0f}"
                    for t in TARGETS]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def savings_table(
    results: Results, summaries: dict[str, list[StrategySummary]], target: float
) -> str:
    """One row per strategy, one column per data set: the saving vs random at target."""
    names = [d.name for d in results.datasets]
    lines = [
        "| strategy | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    strategies = [p.name for p in results.strategies if p.name != "random"]
    for strategy in strategies:
        cells = []
        for name in names:
            found = next(s for s in summaries[name] if s.name == strategy)
            saving = found.saving[target]
            assert saving is not None
            cells.append(_saving_text(saving))
        lines.append(f"| `{strategy}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(results: Results, summaries: dict[str, list[StrategySummary]], seconds: float) -> str:
    settings = results.settings
    p = settings.protocol
    committee = f"{p.committee_size} bootstrap copies of the model"
    if p.committee_model == "mlp":
        committee = f"{p.committee_size} MLPs ({p.mlp_hidden} hidden units) of different seeds"
    parts = [
        "# labelwise simulate: results",
        "",
        f"{settings.seeds} seeds from --seed {settings.seed}; stratified "
        f"{1 - p.test_fraction:.0%}/{p.test_fraction:.0%} pool/test split per seed, features "
        f"standardised on the pool; {p.initial_per_class} labeled examples per class to start; "
        f"LogisticRegression(max_iter={p.max_iter}) retrained from scratch each round; batches "
        f"of {p.batch_size}; committee: {committee}. Full accuracy = the same model trained "
        f"on the whole pool. Ran in {seconds:.0f} s.",
        "",
        "Cells under *labels to X%*: mean labels (over seeds; dollars under *$ to X%* on "
        "--cost-aware data) until test accuracy first reaches X% of full accuracy, "
        "then the saving vs `random` = 1 − labels/labels(random) "
        "(positive: fewer labels) with a 95% bootstrap interval over seeds. `*`: some run did "
        "not reach the target within the budget and counts as the budget, so the figure is "
        "a bound. AULC: area under the accuracy-vs-labels curve, normalised to [0, 1]. "
        "ms/call: mean wall time of one SelectQueries call through gRPC.",
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
            families.setdefault(plan.family, []).append(plan.name)
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
    names = [p.name for p in results.strategies]
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


def write(results: Results, out: Path, seconds: float) -> dict[str, list[StrategySummary]]:
    """results.md, results.json, learning_curves.png and one PNG per data set under out."""
    out.mkdir(parents=True, exist_ok=True)
    summaries = {d.name: summarize(d, results.settings.seed) for d in results.datasets}
    (out / "results.md").write_text(markdown(results, summaries, seconds))
    raw = {
        "settings": {
            "seeds": results.settings.seeds,
            "seed": results.settings.seed,
            "protocol": asdict(results.settings.protocol),
        },
        "skipped": results.skipped,
        "datasets": [
            {
                "name": d.name,
                "budget": d.budget,
                "full_accuracy": d.full_accuracy,
                "curves": {name: [_rounded(c) for c in runs] for name, runs in d.curves.items()},
            }
            for d in results.datasets
        ],
    }
    (out / "results.json").write_text(json.dumps(raw, separators=(",", ":")))
    plot(results, out / "learning_curves.png")
    for d in results.datasets:
        plot(results, out / f"learning_curves_{d.name}.png", only=d)
    return summaries
