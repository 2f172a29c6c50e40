"""The `labelwise` command line: `labelwise serve` runs the server; `labelwise simulate`
measures the labels it saves."""

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from labelwise_server import __version__
from labelwise_server.config import HELP, Config, env_name
from labelwise_server.simulation.command import add_flags as add_simulate_flags


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    for spec in fields(Config):
        default: Any = spec.default
        kind = type(default)
        env = env_name(spec.name)
        if env in os.environ:
            try:
                default = _bool(os.environ[env]) if kind is bool else kind(os.environ[env])
            except ValueError as err:
                parser.error(f"{env}={os.environ[env]!r}: {err}")
        flag = "--" + spec.name.replace("_", "-")
        text = f"{HELP[spec.name]} Env: {env}. Default: %(default)s."
        if kind is bool:
            parser.add_argument(
                flag, default=default, action=argparse.BooleanOptionalAction, help=text
            )
        else:
            parser.add_argument(flag, type=kind, default=default, metavar=kind.__name__.upper(),
                                help=text)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labelwise", description="labelwise: active-learning query selection over gRPC."
    )
    parser.add_argument("--version", action="version", version=f"labelwise {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="Run the gRPC server.",
        description="Run the labelwise gRPC server. Every flag can also be set by its "
        "environment variable; a flag wins over the variable.",
    )
    _add_config_flags(serve)
    simulate = commands.add_parser(
        "simulate",
        help="Measure how many labels active learning saves, through the service.",
        description="Run pool-based active learning through a labelwise service (one started "
        "in this process unless --address is given) with every strategy that fits the data "
        "and random, over several seeds; write learning curves, a savings table and plots.",
    )
    add_simulate_flags(simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        config = Config(**{spec.name: getattr(args, spec.name) for spec in fields(Config)})
        logging.basicConfig(
            level=config.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        from labelwise_server.grpc.server import serve

        asyncio.run(serve(config))
    elif args.command == "simulate":
        from labelwise_server.simulation.command import run

        return run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
