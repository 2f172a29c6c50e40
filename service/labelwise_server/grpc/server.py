"""Build and run the gRPC server: the service, health, reflection, metrics and shutdown."""

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry, start_http_server

from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server.config import Config
from labelwise_server.dataplane import DataPlane
from labelwise_server.grpc.codec import StreamLimits
from labelwise_server.grpc.guards import (
    BearerTokenInterceptor,
    ConcurrencyLimitInterceptor,
    DeadlineCapInterceptor,
    MemoryTrimInterceptor,
    StreamBudgetInterceptor,
    load_tokens,
    server_credentials,
)
from labelwise_server.grpc.interceptors import PrometheusInterceptor
from labelwise_server.grpc.reflection import SERVICE_NAMES as REFLECTION
from labelwise_server.grpc.reflection import enable_reflection
from labelwise_server.grpc.servicer import QuerySelectionServicer
from labelwise_server.metrics import Metrics
from labelwise_server.onnx_runner import ModelLimits, ModelStore
from labelwise_server.sandbox.pool import PoolSettings, WorkPool
from labelwise_server.tensors import (
    MalformedMessage,
    WireRequest,
    parse_request,
    parse_stream_chunk,
)

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["QuerySelectionService"].full_name
METHOD_TYPES = {"SelectQueries": "unary", "SelectQueriesStream": "client_stream",
                "ListStrategies": "unary", "CheckStopping": "unary"}  # fmt: skip
log = logging.getLogger(__name__)


def _request_parsers(
    max_model_bytes: int,
) -> tuple[
    Callable[[bytes], WireRequest | MalformedMessage],
    Callable[[bytes], WireRequest | MalformedMessage],
]:
    """The unary and stream-chunk deserializers; model bytes over max_model_bytes are refused
    while the wire bytes are walked, before protobuf copies them."""

    def request(data: bytes) -> WireRequest | MalformedMessage:
        # A deserializer that raised would turn into INTERNAL; the servicer answers
        # INVALID_ARGUMENT for a MalformedMessage instead.
        try:
            return parse_request(data, max_model_bytes)
        except MalformedMessage as err:
            return err

    def stream_chunk(data: bytes) -> WireRequest | MalformedMessage:
        try:
            return parse_stream_chunk(data, max_model_bytes)
        except MalformedMessage as err:
            return err

    return request, stream_chunk


_request, _stream_chunk = _request_parsers(Config.max_model_bytes)


def _stopping_request(data: bytes) -> pb.CheckStoppingRequest | MalformedMessage:
    try:
        return pb.CheckStoppingRequest.FromString(data)
    except Exception as err:  # protobuf raises DecodeError, or others on hostile bytes
        return MalformedMessage(f"CheckStoppingRequest does not parse: {type(err).__name__}")


def _serializer(message: type[Any]) -> Callable[[Any], bytes]:
    """The message's serializer, passing through answers a work process encoded already."""

    def serialize(response: Any) -> bytes:
        if isinstance(response, bytes):
            return response
        if not isinstance(response, message):
            raise TypeError(f"expected {message.__name__}, got {type(response).__name__}")
        # Map fields in key order, so every replica answers the same bytes (sandbox/child.py).
        return response.SerializeToString(deterministic=True)  # type: ignore[no-any-return]

    return serialize


def service_handler(
    servicer: QuerySelectionServicer, max_model_bytes: int = Config.max_model_bytes
) -> "grpc.GenericRpcHandler[Any, Any]":
    """The service's method handlers, with the zero-copy request parsers."""
    _request, _stream_chunk = _request_parsers(max_model_bytes)
    return grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {
            "SelectQueries": grpc.unary_unary_rpc_method_handler(
                servicer.SelectQueries,
                request_deserializer=_request,
                response_serializer=_serializer(pb.SelectQueriesResponse),
            ),
            "SelectQueriesStream": grpc.stream_unary_rpc_method_handler(
                servicer.SelectQueriesStream,
                request_deserializer=_stream_chunk,
                response_serializer=_serializer(pb.SelectQueriesStreamResponse),
            ),
            "ListStrategies": grpc.unary_unary_rpc_method_handler(
                servicer.ListStrategies,
                request_deserializer=pb.ListStrategiesRequest.FromString,
                response_serializer=pb.ListStrategiesResponse.SerializeToString,
            ),
            "CheckStopping": grpc.unary_unary_rpc_method_handler(
                servicer.CheckStopping,
                request_deserializer=_stopping_request,
                response_serializer=_serializer(pb.CheckStoppingResponse),
            ),
        },
    )


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: Any  # grpc_health.v1.health.aio.HealthServicer (untyped)
    executor: ThreadPoolExecutor
    pool: WorkPool | None = None

    async def shutdown(self, grace_seconds: float, drain_seconds: float = 0.0) -> None:
        """Report NOT_SERVING, wait drain_seconds, then let in-flight calls finish within grace."""
        await self.health.enter_graceful_shutdown()
        if drain_seconds > 0:
            await asyncio.sleep(drain_seconds)
        await self.server.stop(grace_seconds)
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.pool is not None:
            await self.pool.close()


def server_options(config: Config, reuse_port: bool = False) -> list[tuple[str, int]]:
    options = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        # One process owns the port: a second server must fail to bind, not steal calls;
        # only the workers of one supervisor share it (labelwise_server.workers).
        ("grpc.so_reuseport", int(reuse_port)),
    ]
    if config.max_streams_per_connection > 0:
        # HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: a client queues calls beyond it on that
        # connection, so one connection cannot take every --max-concurrent-rpcs slot.
        options.append(("grpc.max_concurrent_streams", config.max_streams_per_connection))
    if config.max_connection_age_seconds > 0:
        age_ms = int(config.max_connection_age_seconds * 1000)
        options += [("grpc.max_connection_age_ms", age_ms),
                    ("grpc.max_connection_age_grace_ms",
                     int(config.grace_seconds * 1000))]  # fmt: skip
    return options


# Room in grpc's own limit (backstop_rpcs) for Health.Check and for calls being refused.
BACKSTOP_MARGIN = 64


def backstop_rpcs(config: Config) -> int:
    """grpc's maximum_concurrent_rpcs, which counts every RPC (health included) and refuses
    beyond it before any interceptor, unseen by the metrics: only a backstop against floods,
    above what the interceptors admit (the service's slots, the watch streams) plus room for
    Health.Check probes and for calls that are being refused at the same moment."""
    return (
        config.max_concurrent_rpcs
        + config.max_watch_streams
        + max(BACKSTOP_MARGIN, config.max_concurrent_rpcs)
    )


def interceptors(config: Config, metrics: Metrics) -> list[grpc.aio.ServerInterceptor]:  # type: ignore[type-arg]
    """Outermost first: metrics see every call (refused ones too), then the token, the
    service's concurrency limit and the health/reflection stream budget (so an unauthenticated
    call takes no slot), the memory trim after every admitted call's end, the deadline cap."""
    tokens = load_tokens(config)
    open_services = (health.SERVICE_NAME, *REFLECTION)
    chain: list[grpc.aio.ServerInterceptor] = [PrometheusInterceptor(metrics)]  # type: ignore[type-arg]
    if tokens:
        guarded = [SERVICE_NAME, *REFLECTION] if config.reflection_auth else [SERVICE_NAME]
        chain.append(BearerTokenInterceptor(guarded, tokens))
    chain += [
        ConcurrencyLimitInterceptor(
            [SERVICE_NAME],
            config.max_concurrent_rpcs,
            metrics.shed.labels(limit="max_concurrent_rpcs").inc,
        ),
        StreamBudgetInterceptor(
            open_services,
            config.max_watch_streams,
            metrics.shed.labels(limit="max_watch_streams").inc,
        ),
        MemoryTrimInterceptor([SERVICE_NAME]),
    ]
    if config.max_deadline_seconds > 0:
        chain.append(DeadlineCapInterceptor([SERVICE_NAME], config.max_deadline_seconds))
    return chain


async def start_server(
    config: Config, registry: CollectorRegistry, reuse_port: bool = False
) -> RunningServer:
    """Start serving on config.host:config.port; the returned port is the one bound."""
    credentials = server_credentials(config)
    metrics = Metrics.create(registry, config.max_deadline_seconds)
    metrics.initialize(SERVICE_NAME, METHOD_TYPES)
    executor = ThreadPoolExecutor(config.threads, thread_name_prefix="labelwise-compute")
    server = grpc.aio.server(
        interceptors=interceptors(config, metrics),
        options=server_options(config, reuse_port),
        maximum_concurrent_rpcs=backstop_rpcs(config),
    )

    def observe_lookup(source: str, hit: bool, cache_bytes: int) -> None:
        metrics.model_lookups.labels(source=source, result="hit" if hit else "miss").inc()
        metrics.model_cache_bytes.set(cache_bytes)

    models = ModelStore(
        ModelLimits(max_bytes=config.max_model_bytes, intra_op_threads=config.inference_threads),
        config.model_cache_bytes,
        observe_lookup,
    )
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    pool = None
    if config.sandbox:
        pool = WorkPool(
            PoolSettings(
                processes=config.work_process_count,
                memory_bytes=config.work_memory_limit(config.work_process_count),
                max_elements=config.max_pool_elements,
                max_model_bytes=config.max_model_bytes,
                model_cache_bytes=config.model_cache_bytes,
                max_response_bytes=config.max_message_bytes,
                inference_threads=config.inference_threads,
                stop_grace=config.work_stop_grace_seconds,
                log_level=config.log_level,
            ),
            on_health=lambda serving: _set_health(health_servicer, serving),
            observe_lookup=observe_lookup,
        )
        await pool.start()
    plane = DataPlane(metrics, executor, config.max_pool_elements, models, pool=pool,
                      max_response_bytes=config.max_message_bytes)  # fmt: skip
    stream = StreamLimits(config.max_pool_elements, config.stream_idle_seconds,
                          config.max_stream_chunks)  # fmt: skip
    servicer = QuerySelectionServicer(plane, stream)
    server.add_generic_rpc_handlers((service_handler(servicer, config.max_model_bytes),))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if config.reflection:
        enable_reflection((SERVICE_NAME, health.SERVICE_NAME), server)  # v1 and v1alpha
    address = f"{config.host}:{config.port}"
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {config.host}:{config.port}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, port, health_servicer, executor, pool)


def _set_health(health_servicer: Any, serving: bool) -> None:
    """Health follows the work pool: NOT_SERVING while no work process can run a call."""
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )

    async def update() -> None:
        for name in ("", SERVICE_NAME):
            await health_servicer.set(name, status)

    task = asyncio.get_running_loop().create_task(update())
    _health_updates.add(task)
    task.add_done_callback(_health_updates.discard)


_health_updates: set["asyncio.Task[None]"] = set()


def write_port_file(path: str, port: int) -> None:
    """Write port to path atomically, so a reader polling for the file never sees half of it."""
    partial = f"{path}.{os.getpid()}.partial"
    with open(partial, "w", encoding="ascii") as out:
        out.write(f"{port}\n")
    os.replace(partial, path)


async def serve(
    config: Config, reuse_port: bool = False, on_ready: Callable[[int], None] | None = None
) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully.

    A worker of labelwise_server.workers shares the port (reuse_port) and reports through
    on_ready(port) instead of writing the port file; its metrics_port is 0.
    """
    registry = CollectorRegistry()
    if config.metrics_port:
        start_http_server(
            config.metrics_port, addr=config.metrics_host.strip("[]"), registry=registry
        )
    running = await start_server(config, registry, reuse_port)
    if config.port_file:
        write_port_file(config.port_file, running.port)
    log.info(
        "labelwise serving gRPC (%s) on %s:%d, metrics on %s:%d, %d compute threads, pid %d",
        "TLS" if config.tls_cert else "plaintext", config.host, running.port,
        config.metrics_host, config.metrics_port, config.threads, os.getpid(),
    )  # fmt: skip
    if on_ready is not None:
        on_ready(running.port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("shutting down: draining %.1fs, grace %.1fs", config.drain_seconds,
             config.grace_seconds)  # fmt: skip
    await running.shutdown(config.grace_seconds, config.drain_seconds)
    log.info("stopped")
