"""The `labelwise` command line: `labelwise serve` runs the server; `labelwise health` asks a
server's health service (the container's health check); `labelwise simulate` runs
`labelwise-simulate`, the separate tool that measures the labels it saves."""

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from labelwise_server import __version__
from labelwise_server.config import HELP, Config, env_name


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
        # An empty default says "none" rather than "Default: ." (argparse's %(default)s).
        shown = "%(default)s" if default != "" else "none"
        text = f"{HELP[spec.name]} Env: {env}. Default: {shown}."
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
    # Listed for --help only: main() hands `simulate ...` to the tool before parsing.
    commands.add_parser(
        "simulate",
        help="Measure how many labels active learning saves, through the service "
        "(runs labelwise-simulate; see `labelwise simulate --help`).",
        add_help=False,
    )
    health = commands.add_parser(
        "health",
        help="Ask a server's gRPC health service; exit 0 when it is SERVING.",
        description="Check grpc.health.v1 on a labelwise server (the container's HEALTHCHECK; "
        "an exec probe where the port is TLS-only). Exit status 0: SERVING; 1: anything else.",
    )
    add_health_flags(health)
    return parser


def add_health_flags(parser: argparse.ArgumentParser) -> None:
    port = os.environ.get(env_name("port"), "50051")
    parser.add_argument("--address", default=f"127.0.0.1:{port}",
                        help="host:port (default: 127.0.0.1:$LABELWISE_PORT).")  # fmt: skip
    parser.add_argument("--service", default="",
                        help="Service name to check (default: the whole server).")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=3.0, help="Seconds (default 3).")
    parser.add_argument("--tls-ca", default="", help="PEM CA bundle: connect with TLS.")
    parser.add_argument("--tls-cert", default="", help="PEM client certificate (mutual TLS).")
    parser.add_argument("--tls-key", default="", help="PEM key of --tls-cert.")
    parser.add_argument("--server-name", default="",
                        help="Name to verify the server certificate against.")  # fmt: skip


def check_health(args: argparse.Namespace) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    def read(path: str) -> bytes | None:
        with open(path, "rb") as file:
            return file.read()

    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    if args.tls_ca:
        credentials = grpc.ssl_channel_credentials(
            read(args.tls_ca),
            read(args.tls_key) if args.tls_key else None,
            read(args.tls_cert) if args.tls_cert else None,
        )
        channel = grpc.secure_channel(args.address, credentials, options)
    else:
        channel = grpc.insecure_channel(args.address, options)
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as err:
            print(f"{args.address}: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{args.address} {args.service or '(server)'}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


SIMULATE = "labelwise-simulate"


def simulate(argv: Sequence[str]) -> int:
    """Exec `labelwise-simulate` (a separate package, a client of this server) with argv."""
    beside = os.path.join(os.path.dirname(sys.executable), SIMULATE)
    tool = beside if os.access(beside, os.X_OK) else shutil.which(SIMULATE)
    if tool is None:
        print(f"labelwise simulate runs {SIMULATE}, which is not installed: "
              "pip install ./tools/simulate (from a clone; scripts/bootstrap installs it)",
              file=sys.stderr)  # fmt: skip
        return 2
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(tool, [tool, *argv])


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["simulate"]:
        return simulate(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        config = Config(**{spec.name: getattr(args, spec.name) for spec in fields(Config)})
        logging.basicConfig(
            level=config.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        from labelwise_server.grpc.guards import ConfigError, load_tokens, server_credentials
        from labelwise_server.stream_token import TokenKeyError, load_key
        from labelwise_server.workers import run as run_workers

        try:  # a bad setting is a usage error here, once, not in every worker
            server_credentials(config)
            load_tokens(config)
            load_key(config.stream_token_key_file, os.environ)
        except (ConfigError, TokenKeyError) as err:
            parser.error(str(err))
        if config.workers < 0:
            parser.error("--workers must be 0 (one per core) or more")
        return run_workers(config)
    elif args.command == "health":
        return check_health(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
