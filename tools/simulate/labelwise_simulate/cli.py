"""`labelwise-simulate` (also `labelwise simulate` where the server is installed): its flags
and their run."""

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from labelwise_simulate.defaults import (
    BUILT_IN,
    DEFAULT_BUDGETS,
    DEFAULT_DATA,
    MODELS,
    TARGETS,
    Protocol,
)

PROG = "labelwise-simulate"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Measure how many labels active learning saves, through a labelwise "
        "service (`labelwise serve` started as a child process unless --address is given): "
        "run pool-based active learning with every strategy that fits the data and random, "
        "over several seeds; write learning curves, a savings table and plots.",
    )
    add_flags(parser)
    return parser


def add_flags(parser: argparse.ArgumentParser) -> None:
    defaults = Protocol()
    add = parser.add_argument
    add(
        "--data",
        nargs="+",
        default=list(DEFAULT_DATA),
        metavar="NAME_OR_FILE",
        help=f"Data sets: built-in {', '.join(BUILT_IN)}, or .npz files (arrays features/X, "
        "labels/y, optional costs) or .csv files (a header row; numeric features). "
        "Default: %(default)s (bench/savings.py runs every built-in one).",
    )
    add("--label-column", default=None, help="CSV column holding the label (default: the last).")
    add("--cost-column", default=None, help="CSV column holding each item's labeling cost.")
    add(
        "--budget",
        type=int,
        default=None,
        help="Labels to spend per run, the initial set included (default per data set: "
        + ", ".join(f"{k} {v}" for k, v in DEFAULT_BUDGETS.items())
        + ", files 500).",
    )
    add(
        "--seeds",
        type=int,
        default=5,
        help="Repetitions, each with its own split and start (default: %(default)s).",
    )
    add(
        "--seed",
        type=int,
        default=0,
        help="First seed; seeds are seed..seed+seeds-1 (default: %(default)s).",
    )
    add(
        "--strategies",
        nargs="+",
        default=[],
        metavar="NAME",
        help="Strategies to run, each NAME or NAME:KEY=VALUE,... with strategy parameters, "
        "e.g. entropy:class_balance=true (default: every one the service offers whose inputs "
        "the simulation can give, and entropy with class balance; random is always run).",
    )
    add(
        "--test-fraction",
        type=float,
        default=defaults.test_fraction,
        help="Share of each data set held out for testing (default: %(default)s).",
    )
    add(
        "--initial-per-class",
        type=int,
        default=defaults.initial_per_class,
        help="Labeled examples per class to start with (default: %(default)s).",
    )
    add(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help="Items labeled per round (default: %(default)s).",
    )
    add(
        "--model",
        choices=MODELS,
        default=defaults.model,
        help="The model trained each round: logistic regression, a random forest of 100 "
        "trees, or an MLP (default: %(default)s).",
    )
    add(
        "--cap-factor",
        type=float,
        default=defaults.cap_factor,
        help=f"A run short of {100 * max(TARGETS):.0f}%% of full accuracy at the budget goes on "
        "labeling up to this many times the budget (the pool at most), so labels-to-reach is "
        "measured rather than bounded; 1 stops every run at the budget (default: %(default)s).",
    )
    add(
        "--max-iter",
        type=int,
        default=defaults.max_iter,
        help="LogisticRegression max_iter (default: %(default)s).",
    )
    add(
        "--committee-model",
        choices=("lr", "mlp"),
        default=defaults.committee_model,
        help="Committee for committee strategies: 'lr' bootstrap copies of the model, or "
        "'mlp' MLPs of different seeds (default: %(default)s).",
    )
    add(
        "--committee-size",
        type=int,
        default=defaults.committee_size,
        help="Committee members (default: %(default)s).",
    )
    add(
        "--cost-aware",
        action="store_true",
        help="With per-item costs: spend dollars, not labels. Each round sends the costs and "
        "a budget of batch-size × the mean cost, so the service picks items that fit; runs "
        "stop at what the label budget costs on average. Without it costs are only counted.",
    )
    add(
        "--address",
        default=None,
        help="host:port of a running labelwise service (default: start `labelwise serve` "
        "on a free local port).",
    )
    add(
        "--serve-command",
        default=None,
        metavar="COMMAND",
        help="Command that runs `labelwise serve` when no --address is given; the simulation "
        "adds the port, worker and log flags (default: the `labelwise` installed beside this "
        "Python, else on PATH, with `serve`).",
    )
    add(
        "--jobs",
        type=int,
        default=0,
        help="Loops run in parallel, and the worker processes of the service it starts "
        "(default 0: one per available core).",
    )
    add(
        "--out",
        type=Path,
        default=Path("simulation-results"),
        help="Output directory for results.md, results.json and the PNG plots "
        "(default: %(default)s).",
    )
    add("--no-progress", action="store_true", help="Do not show the progress bar.")
    add(
        "--stream",
        action="store_true",
        help="Evaluate the stream strategies instead (StreamSelectionService, prequential on "
        "streams in file order); see `labelwise-simulate --stream --help`.",
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--stream" in argv:  # stream strategies, prequential: labelwise_simulate.stream
        from labelwise_simulate.stream import main as stream_main

        return stream_main(argv)
    if argv[:1] == ["annotators"]:  # the noisy-annotators mode: labelwise_simulate.annotators
        from labelwise_simulate.annotators import main as annotators

        return annotators(argv[1:])
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    from labelwise_simulate.data import parse_source
    from labelwise_simulate.report import write
    from labelwise_simulate.runner import Settings, default_jobs, simulate
    from labelwise_simulate.service import ServiceError

    positive = {"--seeds": args.seeds, "--batch-size": args.batch_size,
                "--initial-per-class": args.initial_per_class, "--max-iter": args.max_iter,
                "--committee-size": args.committee_size}  # fmt: skip
    for flag, value in positive.items():
        if value < 1:
            print(f"{PROG}: {flag} must be >= 1; got {value}", file=sys.stderr)
            return 2
    if args.budget is not None and args.budget < 1:
        print(f"{PROG}: --budget must be >= 1; got {args.budget}", file=sys.stderr)
        return 2
    if not args.cap_factor >= 1:
        print(f"{PROG}: --cap-factor must be >= 1; got {args.cap_factor}", file=sys.stderr)
        return 2
    if not 0 < args.test_fraction < 1:
        print(f"{PROG}: --test-fraction must be in (0, 1); got {args.test_fraction}",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        sources = tuple(parse_source(d, args.label_column, args.cost_column) for d in args.data)
    except ValueError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    settings = Settings(
        sources=sources,
        seeds=args.seeds,
        seed=args.seed,
        budget=args.budget,
        protocol=Protocol(
            test_fraction=args.test_fraction,
            initial_per_class=args.initial_per_class,
            batch_size=args.batch_size,
            max_iter=args.max_iter,
            model=args.model,
            cap_factor=args.cap_factor,
            committee_model=args.committee_model,
            committee_size=args.committee_size,
            cost_aware=args.cost_aware,
        ),
        strategies=tuple(args.strategies),
        address=args.address,
        serve_command=tuple(shlex.split(args.serve_command)) if args.serve_command else None,
        jobs=args.jobs or default_jobs(),
        progress=not args.no_progress,
    )
    started = time.perf_counter()
    try:
        results = simulate(settings)
    except (ValueError, ServiceError) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    write(results, args.out, time.perf_counter() - started)
    print(f"wrote {args.out}/results.md, results.json and learning_curves*.png "
          f"in {time.perf_counter() - started:.0f} s")  # fmt: skip
    return 0
