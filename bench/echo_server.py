"""The transport floor: a grpcio server whose handler does nothing with the request.

It takes the request bytes as they arrive (no protobuf parse) and answers an
empty message, so timing a call to it measures only what gRPC itself costs
to carry the payload over loopback. It answers as `bench.Echo/Nothing` and also
as `labelwise.v1.QuerySelectionService/SelectQueries` (an empty response), so a
load generator can send labelwise's own requests to it. `bench.Echo/Drain` (also answering
as SelectQueriesStream) reads a client stream's messages and drops them.

`--workers N` starts N such processes on the port with SO_REUSEPORT, as
`labelwise serve --workers N` does, for the ceiling of N workers.
"""

import argparse
import asyncio
import multiprocessing
import signal
import socket

import grpc


async def _nothing(request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
    return b""


async def _drain(requests: object, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
    """Read every message of a client stream, do nothing with it, answer empty."""
    async for _ in requests:  # type: ignore[attr-defined]
        pass
    return b""


async def serve(port: int, max_message_bytes: int, reuse_port: bool) -> None:
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.so_reuseport", int(reuse_port)),
    ]
    server = grpc.aio.server(options=options)
    method = grpc.unary_unary_rpc_method_handler(_nothing, lambda b: b, lambda b: b)
    for service, name in (("bench.Echo", "Nothing"),
                          ("labelwise.v1.QuerySelectionService", "SelectQueries")):  # fmt: skip
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {name: method}),)
        )
    drain = grpc.stream_unary_rpc_method_handler(_drain, lambda b: b, lambda b: b)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Echo", {"Drain": drain}),)
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "labelwise.v1.QuerySelectionService", {"SelectQueriesStream": drain}
            ),
        )
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0)


def _worker(port: int, max_message_bytes: int) -> None:
    asyncio.run(serve(port, max_message_bytes, reuse_port=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-message-bytes", type=int, default=256 * 1024 * 1024)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.workers == 1:
        asyncio.run(serve(args.port, args.max_message_bytes, reuse_port=False))
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as reservation:
        reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reservation.bind(("127.0.0.1", args.port))
        context = multiprocessing.get_context("spawn")
        workers = [
            context.Process(target=_worker, args=(args.port, args.max_message_bytes))
            for _ in range(args.workers)
        ]
        for worker in workers:
            worker.start()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join()


if __name__ == "__main__":
    main()
