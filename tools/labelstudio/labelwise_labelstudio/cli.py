"""`labelwise-labelstudio sync`: order a Label Studio project's tasks by labelwise, once or
every --interval seconds; `labelwise-labelstudio clear`: remove what sync wrote."""

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

from labelwise import Client
from labelwise.client import ParamValue
from labelwise_labelstudio.api import DEFAULT_TIMEOUT, LabelStudio, LabelStudioError
from labelwise_labelstudio.sync import (
    DEFAULT_MAX_TASKS,
    ServiceUnavailable,
    SyncError,
    SyncOptions,
    SyncReport,
    sync,
)

PROG = "labelwise-labelstudio"
API_KEY_ENV = "LABEL_STUDIO_API_KEY"
URL_ENV = "LABEL_STUDIO_URL"


def _param(text: str) -> tuple[str, ParamValue]:
    """NAME=VALUE; VALUE as JSON where it parses to a number or boolean, else a string."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if not isinstance(value, bool | int | float | str):
        value = raw
    return name, value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _connection_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--url",
        default=os.environ.get(URL_ENV),
        help=f"Label Studio's address, e.g. http://localhost:8080 (default: ${URL_ENV}).",
    )
    add(
        "--project",
        type=_positive_int,
        required=True,
        help="The Label Studio project id (the number in its URL).",
    )
    add(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT,
        help="Seconds each Label Studio call may take (default: %(default)s).",
    )
    add(
        "--model-version-prefix",
        default="labelwise",
        help="Prefix of the prediction model versions the connector owns (default: %(default)s).",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Order a Label Studio project's unlabeled tasks by labelwise's active-"
        f"learning ranking. The API key is read from ${API_KEY_ENV} (a legacy token or a "
        "personal access token).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "sync",
        help="rank the unlabeled tasks with labelwise and write the order back",
        description="Read the project's tasks, rank the unlabeled ones with labelwise, and "
        "write the ranking back as prediction scores (lowest first) of a labelwise model "
        "version that the project's label stream and a Data Manager tab follow.",
    )
    _connection_flags(run)
    add = run.add_argument
    add("--address", required=True, help="The labelwise service, host:port.")
    add("--strategy", required=True, help="The labelwise strategy, e.g. entropy, margin.")
    add(
        "--param",
        type=_param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="A strategy parameter (repeatable).",
    )
    add("--probabilities-field", help="Task data field holding class probabilities [c].")
    add("--logits-field", help="Task data field holding logits [c].")
    add("--embeddings-field", help="Task data field holding an embedding [d].")
    add("--model", help="Model mode: an ONNX classifier labelwise runs on --features-field.")
    add("--features-field", help="Model mode: task data field holding the model's input [d].")
    add(
        "--model-output",
        choices=["probabilities", "logits"],
        default="probabilities",
        help="What the model's first output is (default: %(default)s).",
    )
    add(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="Rank only labelwise's top N; the rest get no labelwise score (default: all).",
    )
    add("--seed", type=int, default=0, help="Seed for seeded strategies (default: 0).")
    add(
        "--view-title",
        default="labelwise",
        help="Title of the Data Manager tab ordered by the ranking (default: %(default)s).",
    )
    add("--no-view", action="store_true", help="Create or update no Data Manager tab.")
    add(
        "--keep-sampling",
        action="store_true",
        help="Leave the project's sampling as it is (default: set Uncertainty sampling, "
        "which serves the lowest score first).",
    )
    add(
        "--max-tasks",
        type=_positive_int,
        default=DEFAULT_MAX_TASKS,
        help="Refuse projects with more tasks than this (default: %(default)s).",
    )
    add(
        "--deadline",
        type=_positive_float,
        default=120.0,
        help="Seconds the labelwise call may take (default: %(default)s).",
    )
    add(
        "--interval",
        type=_positive_float,
        default=None,
        help="Sync again every this many seconds until interrupted (default: once).",
    )
    add("--json", action="store_true", help="Print each sync's report as one JSON line.")
    clear = commands.add_parser(
        "clear",
        help="delete the predictions sync wrote and unset the project's model version",
    )
    _connection_flags(clear)
    return parser


def _options(args: argparse.Namespace) -> SyncOptions:
    return SyncOptions(
        project=args.project,
        strategy=args.strategy,
        params=dict(args.param),
        probabilities_field=args.probabilities_field,
        logits_field=args.logits_field,
        embeddings_field=args.embeddings_field,
        model=args.model,
        features_field=args.features_field,
        model_output=args.model_output,
        batch_size=args.batch_size,
        seed=args.seed,
        model_version_prefix=args.model_version_prefix,
        view_title=None if args.no_view else args.view_title,
        set_sampling=not args.keep_sampling,
        max_tasks=args.max_tasks,
        deadline=args.deadline,
    )


def _describe(report: SyncReport) -> str:
    if not report.ranking:
        head = f"nothing to rank ({report.unlabeled} unlabeled tasks"
        return head + (
            f", {len(report.missing)} without the input fields)" if report.missing else ")"
        )
    shown = ", ".join(map(str, report.ranking[:10])) + (" …" if len(report.ranking) > 10 else "")
    lines = [
        f"ranked {len(report.ranking)} of {report.unlabeled} unlabeled tasks "
        f"({report.labeled} labeled): {shown}",
        f"model version {report.model_version}: "
        + (f"{report.created} predictions written" if report.changed else "unchanged")
        + (f", {report.deleted} old ones deleted" if report.deleted else ""),
        f"sampling: {report.sampling}"
        + (f"; Data Manager tab {report.view}" if report.view is not None else ""),
    ]
    if report.missing:
        lines.append(f"not ranked, lacking an input field: {len(report.missing)} tasks")
    return "\n".join(lines)


def _clear(ls: LabelStudio, project: int, prefix: str) -> str:
    current = ls.project(project).get("model_version") or ""
    if current.startswith(prefix + "@"):
        ls.update_project(project, {"model_version": ""})
    deleted = sum(
        ls.delete_model_version(project, version)
        for version in ls.model_versions(project)
        if version.startswith(prefix + "@")
    )
    return f"deleted {deleted} predictions of {prefix}@… model versions"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    api_key = os.environ.get(API_KEY_ENV, "")
    try:
        if not args.url:
            raise ValueError(f"give --url or set {URL_ENV}")
        ls = LabelStudio(args.url, api_key, timeout=args.timeout)
        if args.command == "clear":
            print(_clear(ls, args.project, args.model_version_prefix))
            return 0
        options = _options(args)
        options.check()
    except (ValueError, SyncError, LabelStudioError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ValueError | SyncError) else 1
    with Client(args.address) as client:
        try:
            return _run(args, ls, client, options)
        except KeyboardInterrupt:  # how a loop is stopped; a sync cut short is safe to repeat
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130 if args.interval is None else 0


def _run(args: argparse.Namespace, ls: LabelStudio, client: Client, options: SyncOptions) -> int:
    """Sync once, or every args.interval seconds until interrupted."""
    while True:
        started = time.monotonic()
        try:
            report = sync(ls, client, options)
        except (LabelStudioError, ServiceUnavailable) as err:
            # In a loop either server may be restarting: say so and try again next time.
            print(f"{PROG}: error: {err}", file=sys.stderr, flush=True)
            if args.interval is None:
                return 1
        except SyncError as err:
            print(f"{PROG}: error: {err}", file=sys.stderr)
            return 2
        else:
            if args.json:
                print(json.dumps(report.__dict__), flush=True)
            else:
                print(_describe(report), flush=True)
        if args.interval is None:
            return 0
        time.sleep(max(0.0, args.interval - (time.monotonic() - started)))


if __name__ == "__main__":
    sys.exit(main())
