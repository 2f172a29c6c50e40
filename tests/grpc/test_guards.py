"""TLS, mutual TLS, bearer tokens, the concurrency budgets and the deadline cap, on real
servers and channels.

Certificates are made here, for this run only, with the `cryptography` package.
"""

import datetime
import ipaddress
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from prometheus_client import CollectorRegistry

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server.config import Config
from labelwise_server.grpc.guards import BearerTokenInterceptor, ConfigError, load_tokens
from labelwise_server.grpc.server import SERVICE_NAME, backstop_rpcs, interceptors, server_options
from labelwise_server.metrics import Metrics
from tests.grpc.conftest import TEST_CONFIG, ServerThread

P = np.random.default_rng(0).dirichlet(np.ones(3), size=20)
REQUEST = pb.SelectQueriesRequest(
    strategies=[pb.StrategySpec(name="entropy")], k=2, probabilities=encode_tensor(P)
)
ENTROPY = -(P * np.log(P)).sum(axis=1)
EXPECTED = np.argsort(-ENTROPY, kind="stable")[:2].tolist()


@dataclass
class Pem:
    cert: bytes
    key: bytes


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(common: str) -> tuple[Pem, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return _pem(cert, key), key, cert


def make_leaf(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, common: str, server: bool
) -> Pem:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [
                    x509.ExtendedKeyUsageOID.SERVER_AUTH
                    if server
                    else x509.ExtendedKeyUsageOID.CLIENT_AUTH
                ]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return _pem(builder.sign(ca_key, hashes.SHA256()), key)


def _pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pem:
    return Pem(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@dataclass
class Pki:
    dir: Path
    ca: Pem
    server: Pem
    client: Pem
    stranger: Pem  # a client certificate from another CA

    def write(self, name: str, data: bytes) -> str:
        path = self.dir / name
        path.write_bytes(data)
        return str(path)

    def server_config(self, mutual: bool) -> Config:
        return replace(
            TEST_CONFIG,
            tls_cert=self.write("server.pem", self.server.cert),
            tls_key=self.write("server.key", self.server.key),
            tls_client_ca=self.write("ca.pem", self.ca.cert) if mutual else "",
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca, ca_key, ca_cert = make_ca("labelwise test CA")
    _, other_key, other_cert = make_ca("another CA")
    return Pki(
        dir=tmp_path_factory.mktemp("pki"),
        ca=ca,
        server=make_leaf(ca_key, ca_cert, "localhost", server=True),
        client=make_leaf(ca_key, ca_cert, "a client", server=False),
        stranger=make_leaf(other_key, other_cert, "a stranger", server=False),
    )


@pytest.fixture
def started() -> Iterator[list[ServerThread]]:
    servers: list[ServerThread] = []
    yield servers
    for server in servers:
        server.stop()


def secure(address: str, pki: Pki, client: Pem | None = None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        pki.ca.cert, client.key if client else None, client.cert if client else None
    )
    return grpc.secure_channel(address.replace("127.0.0.1", "localhost"), credentials)


def select(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> list[int]:
    stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
    response = stub.SelectQueries(REQUEST, timeout=10, metadata=metadata)
    return list(response.results[0].indices)


def code_of(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as failed:
        select(channel, metadata)
    return failed.value.code()  # type: ignore[no-any-return]


def test_tls_serves_clients_that_trust_the_ca_and_refuses_plaintext(
    pki: Pki, started: list[ServerThread]
) -> None:
    server = ServerThread(pki.server_config(mutual=False))
    started.append(server)
    with secure(server.address, pki) as channel:
        assert select(channel) == EXPECTED
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with grpc.insecure_channel(server.address) as plaintext:
        assert code_of(plaintext) == grpc.StatusCode.UNAVAILABLE
    _, other_key, other_cert = make_ca("not the server's CA")
    untrusting = grpc.ssl_channel_credentials(_pem(other_cert, other_key).cert)
    with grpc.secure_channel(f"localhost:{server.running.port}", untrusting) as channel:
        assert code_of(channel) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_requires_a_client_certificate_from_the_ca(
    pki: Pki, started: list[ServerThread]
) -> None:
    server = ServerThread(pki.server_config(mutual=True))
    started.append(server)
    with secure(server.address, pki, pki.client) as channel:
        assert select(channel) == EXPECTED
    with secure(server.address, pki) as channel:  # no client certificate
        assert code_of(channel) == grpc.StatusCode.UNAVAILABLE
    with secure(server.address, pki, pki.stranger) as channel:  # signed by another CA
        assert code_of(channel) == grpc.StatusCode.UNAVAILABLE


def test_half_a_tls_setting_is_a_config_error(pki: Pki) -> None:
    from labelwise_server.grpc.guards import server_credentials

    full = pki.server_config(mutual=True)
    for config in (
        replace(full, tls_key=""),
        replace(full, tls_cert=""),
        replace(full, tls_cert="", tls_key=""),  # a client CA alone
        replace(full, tls_cert=str(pki.dir / "missing.pem")),
    ):
        with pytest.raises(ConfigError):
            server_credentials(config)
    assert server_credentials(full) is not None
    assert server_credentials(TEST_CONFIG) is None


def test_bearer_tokens_guard_the_service_but_not_health_or_reflection(
    tmp_path: Path, started: list[ServerThread]
) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text("# rotated monthly\nfile-token-2\n\n", encoding="utf-8")
    config = replace(TEST_CONFIG, auth_tokens="env-token-1, ", auth_token_file=str(token_file))
    server = ServerThread(config)
    started.append(server)
    with grpc.insecure_channel(server.address) as channel:
        assert select(channel, (("authorization", "Bearer env-token-1"),)) == EXPECTED
        assert select(channel, (("authorization", "bearer file-token-2"),)) == EXPECTED
        for metadata in (
            (),
            (("authorization", "Bearer wrong"),),
            (("authorization", "Bearer env-token-"),),  # a prefix of a token
            (("authorization", "Bearer env-token-1x"),),
            (("authorization", "Basic env-token-1"),),
            (("authorization", "env-token-1"),),
            (("authorization", "Bearer "),),
            (("x-api-key", "env-token-1"),),
        ):
            assert code_of(channel, metadata) == grpc.StatusCode.UNAUTHENTICATED, metadata
        stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as listed:
            stub.ListStrategies(pb.ListStrategiesRequest(), timeout=5)
        assert listed.value.code() == grpc.StatusCode.UNAUTHENTICATED
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name for a in answers for s in a.list_services_response.service}
        assert SERVICE_NAME in names
    handled = server.registry.get_sample_value(
        "grpc_server_handled_total",
        {"grpc_code": "UNAUTHENTICATED", "grpc_method": "SelectQueries",
         "grpc_service": SERVICE_NAME, "grpc_type": "unary"},
    )  # fmt: skip
    assert handled == 8


def test_token_matching_looks_at_the_whole_token() -> None:
    guard = BearerTokenInterceptor([SERVICE_NAME], ["abc", "longer-token"])
    assert guard.accepts([("authorization", "Bearer abc")])
    assert guard.accepts([("authorization", b"Bearer longer-token")])
    assert not guard.accepts([("authorization", "Bearer ab")])
    assert not guard.accepts([("authorization", "Bearer abcd")])
    assert not guard.accepts([("authorization", "Bearer longer-token abc")])
    assert not guard.accepts(None)
    with pytest.raises(ConfigError):
        load_tokens(replace(TEST_CONFIG, auth_tokens="has space"))
    assert load_tokens(TEST_CONFIG) == []


def test_the_deadline_cap_ends_calls_without_a_deadline_or_with_a_later_one(
    started: list[ServerThread],
) -> None:
    server = ServerThread(replace(TEST_CONFIG, max_deadline_seconds=0.5))
    started.append(server)
    first = pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name="entropy")], k=2, probabilities=encode_tensor(P[:10])
    )

    gate = threading.Event()

    def stalled() -> Iterator[pb.SelectQueriesStreamRequest]:
        yield pb.SelectQueriesStreamRequest(chunk=first)
        gate.wait(5)  # the rest never comes in time

    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
        for timeout in (None, 30.0):
            began = time.monotonic()
            with pytest.raises(grpc.RpcError) as capped:
                stub.SelectQueriesStream(stalled(), timeout=timeout)
            took = time.monotonic() - began
            assert capped.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "--max-deadline-seconds" in str(capped.value.details())
            assert 0.4 < took < 5, took
        began = time.monotonic()  # a client deadline shorter than the cap is the client's
        with pytest.raises(grpc.RpcError) as own:
            stub.SelectQueriesStream(stalled(), timeout=0.2)
        assert own.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - began < 0.45
        assert select(channel) == EXPECTED  # quick calls pass under the cap
        gate.set()
    assert server.registry.get_sample_value("labelwise_requests_in_flight") == 0


# -- Concurrency budgets ---------------------------------------------------------------

TOKEN = (("authorization", "Bearer t0ken"),)
ROOT = Path(__file__).resolve().parents[2]


def own_connection(address: str) -> grpc.Channel:
    """A channel on a connection of its own (equal channels share one by default)."""
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


def idle_streams(
    channel: grpc.Channel, count: int, gate: threading.Event, metadata: Any = TOKEN
) -> list[grpc.Future]:  # type: ignore[type-arg]
    """SelectQueriesStream calls that send no chunk until the gate opens."""
    stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]

    def nothing() -> Iterator[pb.SelectQueriesStreamRequest]:
        gate.wait(30)
        yield from ()

    return [
        stub.SelectQueriesStream.future(nothing(), timeout=30, metadata=metadata)
        for _ in range(count)
    ]


def sample(server: ServerThread, name: str, **labels: str) -> float:
    value = server.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def rpcs(server: ServerThread, counter: str, method: str, **labels: str) -> float:
    grpc_type = "client_stream" if method == "SelectQueriesStream" else "unary"
    return sample(server, f"grpc_server_{counter}_total", grpc_method=method,
                  grpc_service=SERVICE_NAME, grpc_type=grpc_type, **labels)  # fmt: skip


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, error
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError(f"no ErrorInfo in {status}")


def refused(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as failed:
        call()
    return failed.value


def assert_health_serving(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE_NAME):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


def test_idle_streams_on_one_connection_leave_the_service_answering(
    started: list[ServerThread],
) -> None:
    # The defaults: 64 service slots, 32 streams per connection; tokens on.
    server = ServerThread(replace(TEST_CONFIG, auth_tokens="t0ken", stream_idle_seconds=1.0))
    started.append(server)
    gate = threading.Event()
    try:
        with own_connection(server.address) as hog, own_connection(server.address) as other:
            # Once the connection has the server's SETTINGS the client queues streams beyond
            # 32; sooner, the server resets them (REFUSED_STREAM, UNAVAILABLE to the caller).
            assert_health_serving(hog)
            streams = idle_streams(hog, 64, gate)
            wait_for(lambda: rpcs(server, "started", "SelectQueriesStream") >= 32)
            time.sleep(0.2)
            assert rpcs(server, "started", "SelectQueriesStream") == 32  # the rest queue
            assert select(other, TOKEN) == EXPECTED
            assert not any(stream.done() for stream in streams)
            idle = 0
            for stream in streams:  # each ends when idle, letting a queued one start
                error = stream.exception(timeout=10)
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    # A queued stream the client sent as an ended one's trailers arrived, before
                    # the server counted that one closed: reset unprocessed (REFUSED_STREAM).
                    assert "RST_STREAM" in str(error.details())
                    continue
                assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert error_info(error).reason == "STREAM_IDLE"
                idle += 1
            assert 32 <= idle == rpcs(server, "started", "SelectQueriesStream")
            assert select(hog, TOKEN) == EXPECTED
    finally:
        gate.set()


@contextmanager
def every_slot_busy(
    server: ServerThread, limit: int, gate: threading.Event
) -> Iterator[list[grpc.Future]]:  # type: ignore[type-arg]
    """The server's `limit` (--max-concurrent-rpcs) slots all held by idle streams, each on a
    connection of its own (so no per-connection stream cap holds them back)."""
    channels = [own_connection(server.address) for _ in range(limit)]
    try:
        streams = [idle_streams(channel, 1, gate)[0] for channel in channels]
        wait_for(lambda: rpcs(server, "started", "SelectQueriesStream") == limit)
        yield streams
    finally:
        for stream in streams:
            stream.cancel()
        for channel in channels:
            channel.close()


def test_with_every_service_slot_busy_health_answers_and_calls_are_shed(
    started: list[ServerThread],
) -> None:
    config = replace(TEST_CONFIG, auth_tokens="t0ken", max_concurrent_rpcs=2,
                     stream_idle_seconds=2.0)  # fmt: skip
    server = ServerThread(config)
    started.append(server)
    gate = threading.Event()
    try:
        with own_connection(server.address) as channel, every_slot_busy(server, 2, gate) as busy:
            error = refused(lambda: select(channel, TOKEN))
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            info = error_info(error)
            assert (info.reason, info.domain) == ("TOO_MANY_REQUESTS", "labelwise.dev")
            assert info.metadata["limit"] == "2"
            assert "--max-concurrent-rpcs" in str(error.details())
            assert_health_serving(channel)
            code = "RESOURCE_EXHAUSTED"
            assert rpcs(server, "started", "SelectQueries") == 1
            wait_for(lambda: rpcs(server, "handled", "SelectQueries", grpc_code=code) == 1)
            assert sample(server, "labelwise_requests_shed_total",
                          limit="max_concurrent_rpcs") == 1  # fmt: skip
            for stream in busy:  # the idle timeout frees the slots, no client needed
                error = stream.exception(timeout=10)
                assert error_info(error).reason == "STREAM_IDLE"
            assert select(channel, TOKEN) == EXPECTED
    finally:
        gate.set()
    assert sample(server, "labelwise_requests_in_flight") == 0


@pytest.fixture(scope="session")
def health_probe() -> str:
    """grpc-health-probe: the one scripts/bootstrap --dev builds, else built here the same way."""
    built = ROOT / ".tools/bin/grpc-health-probe"
    module = re.search(r"^GRPC_HEALTH_PROBE=(\S+)$", (ROOT / "scripts/bootstrap").read_text(), re.M)
    assert module is not None
    version = module[1].split("@v")[1]
    if built.exists():
        shown = subprocess.run([built, "-version"], capture_output=True, text=True, timeout=30)
        if shown.stdout.strip() == version:
            return str(built)
    go = shutil.which("go")
    if go is None:
        pytest.skip("grpc-health-probe needs Go to build (`go` is not on PATH)")
    subprocess.run([go, "install", module[1]], env=dict(os.environ, GOBIN=str(built.parent)),
                   check=True, timeout=600, capture_output=True)  # fmt: skip
    return str(built)


def test_grpc_health_probe_answers_serving_while_every_slot_is_busy(
    health_probe: str, started: list[ServerThread]
) -> None:
    config = replace(TEST_CONFIG, auth_tokens="t0ken", max_concurrent_rpcs=2,
                     stream_idle_seconds=30.0)  # fmt: skip
    server = ServerThread(config)
    started.append(server)
    gate = threading.Event()
    try:
        with own_connection(server.address) as channel, every_slot_busy(server, 2, gate):
            assert refused(lambda: select(channel, TOKEN)).code() == (
                grpc.StatusCode.RESOURCE_EXHAUSTED
            )
            for service in ("", SERVICE_NAME):  # liveness, then readiness
                probe = subprocess.run(
                    [health_probe, f"-addr={server.address}", f"-service={service}",
                     "-connect-timeout=3s", "-rpc-timeout=3s"],
                    capture_output=True, text=True, timeout=30,
                )  # fmt: skip
                assert probe.returncode == 0, probe.stdout + probe.stderr
                assert "status: SERVING" in probe.stderr  # where the probe prints it
    finally:
        gate.set()


def test_unauthenticated_watch_streams_cannot_lock_out_the_service(
    started: list[ServerThread],
) -> None:
    # Before, 8 Health.Watch streams took all 8 of grpc's maximum_concurrent_rpcs.
    config = replace(TEST_CONFIG, auth_tokens="t0ken", max_concurrent_rpcs=8)
    assert config.max_watch_streams == 16
    server = ServerThread(config)
    started.append(server)
    with own_connection(server.address) as watcher, own_connection(server.address) as client:
        health = health_pb2_grpc.HealthStub(watcher)
        watches = [health.Watch(health_pb2.HealthCheckRequest(), timeout=30) for _ in range(24)]
        shed = []
        for watch in watches:
            try:
                assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert error_info(error).reason == "TOO_MANY_STREAMS"
                shed.append(watch)
        assert len(shed) == 8
        reflect = reflection_pb2_grpc.ServerReflectionStub(watcher)
        listing = iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        error = refused(lambda: list(reflect.ServerReflectionInfo(listing, timeout=5)))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # the same budget
        with ThreadPoolExecutor(8) as pool:  # every service slot at once, still its own
            assert list(pool.map(lambda _: select(client, TOKEN), range(8))) == [EXPECTED] * 8
        assert_health_serving(client)
        assert sample(server, "labelwise_requests_shed_total", limit="max_watch_streams") == 9
        assert sample(server, "labelwise_requests_shed_total", limit="max_concurrent_rpcs") == 0
        for watch in watches:
            watch.cancel()

        def watch_admitted() -> bool:
            try:
                answers = health.Watch(health_pb2.HealthCheckRequest(), timeout=0.5)
                return bool(next(answers).status == health_pb2.HealthCheckResponse.SERVING)
            except grpc.RpcError:
                return False

        wait_for(watch_admitted)  # cancelled streams give their budget back


def test_duplicate_authorization_headers_are_refused_and_reflection_auth(
    started: list[ServerThread],
) -> None:
    server = ServerThread(replace(TEST_CONFIG, auth_tokens="t0ken,other", reflection_auth=True))
    started.append(server)
    with grpc.insecure_channel(server.address) as channel:
        assert select(channel, TOKEN) == EXPECTED
        for twice in (TOKEN * 2, (*TOKEN, ("authorization", "Bearer other"))):
            error = refused(lambda twice=twice: select(channel, twice))
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "exactly one authorization header" in str(error.details())
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)

        def reflected(metadata: Any) -> set[str]:
            listing = iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            answers = reflect.ServerReflectionInfo(listing, timeout=5, metadata=metadata)
            return {s.name for a in answers for s in a.list_services_response.service}

        assert SERVICE_NAME in reflected(TOKEN)
        assert refused(lambda: reflected(())).code() == grpc.StatusCode.UNAUTHENTICATED
        assert_health_serving(channel)  # health never needs the token


def test_duplicate_headers_fail_token_matching_even_when_both_match() -> None:
    guard = BearerTokenInterceptor([SERVICE_NAME], ["abc"])
    assert guard.accepts([("authorization", "Bearer abc"), ("x-other", "1")])
    assert not guard.accepts([("authorization", "Bearer abc"), ("authorization", "Bearer abc")])
    assert not guard.accepts([("authorization", "Bearer no"), ("authorization", "Bearer abc")])


def test_server_options_cap_streams_per_connection_and_keep_a_backstop() -> None:
    options = dict(server_options(TEST_CONFIG))
    assert options["grpc.max_concurrent_streams"] == TEST_CONFIG.max_streams_per_connection == 32
    assert TEST_CONFIG.max_streams_per_connection < TEST_CONFIG.max_concurrent_rpcs
    assert "grpc.max_concurrent_streams" not in dict(
        server_options(replace(TEST_CONFIG, max_streams_per_connection=0))
    )
    # grpc's own limit counts health too: it must sit above both budgets.
    assert backstop_rpcs(TEST_CONFIG) >= (
        TEST_CONFIG.max_concurrent_rpcs + TEST_CONFIG.max_watch_streams + 64
    )
    for broken in (replace(TEST_CONFIG, max_concurrent_rpcs=0),
                   replace(TEST_CONFIG, max_watch_streams=0)):  # fmt: skip
        with pytest.raises(ConfigError):
            interceptors(broken, Metrics.create(CollectorRegistry()))
