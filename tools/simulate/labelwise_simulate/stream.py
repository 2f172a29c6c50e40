"""`labelwise-simulate --stream`: prequential (test-then-train) evaluation of the stream
strategies through the service, on built-in streams and CSV files in file order.

Each item is first predicted by the current model (its prediction counts towards the
prequential accuracy), then its probabilities go to StreamSelectionService.Decide, and the items
it says to label are learned. Items travel in small batches (--batch, default 10): a batch is
predicted with the model as it was before the batch, and its labeled items are learned after
the answer, as a service reached over the network would be used. The model is scikit-learn's
GaussianNB, trained incrementally (partial_fit) on the labeled items only; until it has seen a
label it predicts uniform probabilities.

For each strategy and budget the run compares with stream_random at the same budget, and
entropy_sampler (whose rate its discount factor sets) with stream_random at its realised rate.
Streams keep their order, so seeds change only the randomised strategies' draws: the intervals
of deterministic strategies have zero width, which the report says.

Built-in streams are the data files river (a dependency of this tool) ships inside its
package: phishing, bananas, shuttle; nothing is downloaded.
"""

import argparse
import itertools
import json
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

PROG = "labelwise-simulate --stream"
BUILT_IN_STREAMS = ("phishing", "bananas", "shuttle")
DEFAULT_STRATEGIES = (
    "variable_uncertainty",
    "split",
    "fixed_uncertainty",
    "quantile_filter",
    "stream_margin",
    "periodic",
    "entropy_sampler",
)
CHECKPOINTS = 10  # accuracy is reported at every tenth of the stream


@dataclass(frozen=True)
class Stream:
    name: str
    features: npt.NDArray[np.float64]  # [N, d] in arrival order
    labels: npt.NDArray[np.int64]  # [N], 0..c-1
    classes: int


@dataclass
class Run:
    stream: str
    strategy: str
    budget: float | None  # None: entropy_sampler (no target)
    seed: int
    labels_spent: int
    items: int
    accuracy: float  # prequential, over the whole stream
    curve: list[float]  # prequential accuracy of each tenth of the stream
    spent_curve: list[int]  # labels spent by the end of each tenth


def load_stream(name: str, label_column: str | None = None) -> Stream:
    """A built-in stream (river's bundled files) or a CSV file, in file order."""
    if name in BUILT_IN_STREAMS:
        from river import datasets

        loaders: dict[str, Any] = {"phishing": datasets.Phishing, "bananas": datasets.Bananas,
                                   "shuttle": datasets.Shuttle}  # fmt: skip
        rows = list(loaders[name]())
        keys = list(rows[0][0])
        features = np.array([[float(x[k]) for k in keys] for x, _ in rows])
        raw = [str(y) for _, y in rows]
    else:
        path = Path(name)
        if path.suffix.lower() != ".csv" or not path.is_file():
            raise ValueError(
                f"--data must be one of {', '.join(BUILT_IN_STREAMS)} or a CSV file; got {name!r}"
            )
        from labelwise_simulate.data import DataSource, load

        data = load(DataSource(path.stem, str(path), label_column))
        return Stream(path.stem, data.features, data.labels, len(data.class_names))
    names = sorted(set(raw))
    labels = np.array([names.index(y) for y in raw], dtype=np.int64)
    return Stream(name, features, labels, len(names))


def prequential(
    stream: Stream,
    strategy: str,
    budget: float | None,
    seed: int,
    address: str,
    batch: int,
) -> Run:
    from sklearn.naive_bayes import GaussianNB

    from labelwise import Client

    model = GaussianNB()
    classes = np.arange(stream.classes)
    fitted = False
    n = len(stream.labels)
    correct = np.zeros(n, dtype=bool)
    spent = np.zeros(n, dtype=bool)
    with Client(address) as client:
        selector = client.stream_selector(strategy, budget=budget, seed=seed)
        for start in range(0, n, batch):
            x = stream.features[start : start + batch]
            if fitted:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore", RuntimeWarning)  # log(0): handled in _valid
                    probabilities = _valid(model.predict_proba(x), stream.classes)
            else:
                probabilities = np.full((len(x), stream.classes), 1.0 / stream.classes)
            predicted = probabilities.argmax(axis=1)
            correct[start : start + len(x)] = predicted == stream.labels[start : start + len(x)]
            decisions = selector.decide(probabilities=probabilities, deadline=30)
            spent[start : start + len(x)] = decisions.label
            if decisions.label.any():
                y = stream.labels[start : start + len(x)][decisions.label]
                model.partial_fit(x[decisions.label], y, classes=classes)
                fitted = True
    edges = np.linspace(0, n, CHECKPOINTS + 1).astype(int)
    return Run(
        stream=stream.name,
        strategy=strategy,
        budget=budget,
        seed=seed,
        labels_spent=int(spent.sum()),
        items=n,
        accuracy=float(correct.mean()),
        curve=[float(correct[a:b].mean()) for a, b in itertools.pairwise(edges)],
        spent_curve=[int(spent[:b].sum()) for b in edges[1:]],
    )


def _valid(probabilities: npt.NDArray[np.float64], classes: int) -> npt.NDArray[np.float64]:
    """GaussianNB's rows, with rows it could not compute (NaN: a class never labeled yet under
    a degenerate variance) replaced by uniform ones."""
    bad: npt.NDArray[np.bool_] = np.asarray(~np.isfinite(probabilities).all(axis=1))
    probabilities = np.where(bad[:, None], 1.0 / classes, probabilities)
    out: npt.NDArray[np.float64] = probabilities / probabilities.sum(axis=1, keepdims=True)
    return out


def interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and a 95% t-interval over seeds (zero width with one value or equal values)."""
    array = np.asarray(values, dtype=np.float64)
    mean = float(array.mean())
    if len(array) < 2:
        return mean, mean, mean
    t95 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776}.get(len(array), 2.262)
    half = t95 * float(array.std(ddof=1)) / np.sqrt(len(array))
    return mean, mean - half, mean + half


def table(runs: list[dict[str, Any]]) -> str:
    """Markdown: per stream and budget, each strategy's prequential accuracy and labels spent
    (mean [95% interval] over seeds) beside random's at the same budget."""
    lines = [
        "| stream | budget | strategy | labels spent | accuracy | random at the same rate "
        "| difference (points) |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = sorted(
        {(r["stream"], r["budget"] or -1.0) for r in runs if r["strategy"] != "stream_random"}
    )
    for stream, budget in keys:
        group = [r for r in runs if r["stream"] == stream]
        for strategy in dict.fromkeys(r["strategy"] for r in group):
            if strategy == "stream_random":
                continue
            mine = [
                r for r in group if r["strategy"] == strategy and (r["budget"] or -1.0) == budget
            ]
            if not mine:
                continue
            rate = mine[0].get("random_rate", budget)
            theirs = [r for r in group if r["strategy"] == "stream_random"
                      and abs(r["budget"] - rate) < 1e-12]  # fmt: skip
            acc, lo, hi = interval([r["accuracy"] for r in mine])
            racc, rlo, rhi = interval([r["accuracy"] for r in theirs]) if theirs else (np.nan,) * 3
            by_seed = {r["seed"]: r["accuracy"] for r in theirs}
            diff = [r["accuracy"] - by_seed[r["seed"]] for r in mine if r["seed"] in by_seed]
            d, dlo, dhi = interval(diff) if diff else (np.nan,) * 3
            spent = np.mean([r["labels_spent"] for r in mine])
            rspent = np.mean([r["labels_spent"] for r in theirs]) if theirs else np.nan
            label = "none (discount 3)" if budget < 0 else f"{budget:g}"
            lines.append(
                f"| {stream} ({mine[0]['items']}) | {label} | {strategy} | {spent:.0f} "
                f"| {acc:.3f} [{lo:.3f}, {hi:.3f}] | {racc:.3f} [{rlo:.3f}, {rhi:.3f}] "
                f"at {rate:.3f}, {rspent:.0f} labels "
                f"| {100 * d:+.1f} [{100 * dlo:+.1f}, {100 * dhi:+.1f}] |"
            )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--stream", action="store_true", help="Stream mode (this one).")
    parser.add_argument(
        "--data",
        nargs="+",
        default=list(BUILT_IN_STREAMS),
        metavar="NAME_OR_CSV",
        help="Built-in streams (%(default)s) or CSV files, read in file order.",
    )
    parser.add_argument("--label-column", default=None, help="CSV label column (default: last).")
    parser.add_argument("--budgets", nargs="+", type=float, default=[0.05, 0.2])
    parser.add_argument("--strategies", nargs="+", default=list(DEFAULT_STRATEGIES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=10, help="Items per Decide call.")
    parser.add_argument("--address", default=None, help="host:port of a running service.")
    parser.add_argument("--out", type=Path, default=Path("stream-simulation-results"))
    return parser


def run_stream(stream: Stream, args: argparse.Namespace, address: str) -> list[dict[str, Any]]:
    """Every strategy and budget over every seed, then random at each budget and at
    entropy_sampler's mean realised rate."""
    runs: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        for strategy in args.strategies:
            for budget in [None] if strategy == "entropy_sampler" else args.budgets:
                run = prequential(stream, strategy, budget, seed, address, args.batch)
                runs.append(asdict(run))
                print(
                    f"  {stream.name} {strategy} b={budget} seed={seed}: "
                    f"acc {run.accuracy:.3f}, {run.labels_spent} labels",
                    file=sys.stderr,
                )
    rates = set(args.budgets)
    entropy = [r for r in runs if r["strategy"] == "entropy_sampler"]
    if entropy:
        rate = round(float(np.mean([r["labels_spent"] / r["items"] for r in entropy])), 4)
        for r in entropy:
            r["random_rate"] = rate
        rates.add(rate)
    for seed in range(args.seeds):
        for budget in sorted(rates):
            runs.append(asdict(prequential(stream, "stream_random", budget, seed, address,
                                           args.batch)))  # fmt: skip
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from labelwise_simulate.service import ServeProcess, ServiceError

    if args.seeds < 1 or args.batch < 1 or not all(0 < b <= 1 for b in args.budgets):
        print(f"{PROG}: --seeds and --batch must be >= 1, --budgets in (0, 1]", file=sys.stderr)
        return 2
    try:
        streams = [load_stream(name, args.label_column) for name in args.data]
    except ValueError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    try:
        service = None if args.address else ServeProcess(1)
        address = args.address or service.address  # type: ignore[union-attr]
        try:
            for stream in streams:
                runs += run_stream(stream, args, address)
        finally:
            if service is not None:
                service.stop()
    except ServiceError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    seconds = time.perf_counter() - started
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    (args.out / "results.json").write_text(
        json.dumps({"settings": settings, "seconds": seconds, "runs": runs}, indent=1) + "\n"
    )
    (args.out / "results.md").write_text(table(runs) + "\n")
    print(table(runs))
    print(f"wrote {args.out}/results.json and results.md in {seconds:.0f} s")
    return 0
