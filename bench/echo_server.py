"""The transport floor: a grpcio server whose handler does nothing with the request.

It takes the request bytes as they arrive (no protobuf parse) and answers an
empty message, so timing a call to it measures only what gRPC itself costs
to carry the payload over loopback.
"""

import argparse
import asyncio

import grpc


async def _nothing(request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
    return b""


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-message-bytes", type=int, default=256 * 1024 * 1024)
    args = parser.parse_args()
    options = [
        ("grpc.max_receive_message_length", args.max_message_bytes),
        ("grpc.max_send_message_length", args.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.aio.server(options=options)
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo",
        {"Nothing": grpc.unary_unary_rpc_method_handler(_nothing, lambda b: b, lambda b: b)},
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main())
