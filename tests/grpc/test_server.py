"""Server lifecycle: health goes NOT_SERVING for the drain, then calls are refused."""

import asyncio
import time
from dataclasses import replace

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from labelwise_server.grpc.server import SERVICE_NAME, server_options
from tests.grpc.conftest import TEST_CONFIG, ServerThread


def test_shutdown_reports_not_serving_while_draining() -> None:
    thread = ServerThread(TEST_CONFIG)
    with grpc.insecure_channel(thread.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        assert health.Check(request, timeout=5).status == health_pb2.HealthCheckResponse.SERVING
        stopping = asyncio.run_coroutine_threadsafe(
            thread.running.shutdown(grace_seconds=1.0, drain_seconds=1.0), thread._loop
        )
        time.sleep(0.3)
        status = health.Check(request, timeout=5).status
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        stopping.result(timeout=10)
        try:
            health.Check(request, timeout=2)
            raise AssertionError("the stopped server still answered")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE
    thread._loop.call_soon_threadsafe(thread._loop.stop)


def test_message_limits_apply_both_ways_and_port_reuse_is_off() -> None:
    options = dict(server_options(TEST_CONFIG))
    assert options["grpc.max_receive_message_length"] == TEST_CONFIG.max_message_bytes
    assert options["grpc.max_send_message_length"] == TEST_CONFIG.max_message_bytes
    assert options["grpc.so_reuseport"] == 0
    assert TEST_CONFIG.max_message_bytes > 4 * 1024 * 1024  # above gRPC's default
    assert "grpc.max_connection_age_ms" not in options


def test_connection_age_sets_age_and_grace() -> None:
    config = replace(TEST_CONFIG, max_connection_age_seconds=30.0, grace_seconds=5.0)
    options = dict(server_options(config))
    assert options["grpc.max_connection_age_ms"] == 30_000
    assert options["grpc.max_connection_age_grace_ms"] == 5_000
