"""TLS, mutual TLS, bearer tokens and the deadline cap, on real servers and channels.

Certificates are made here, for this run only, with the `cryptography` package.
"""

import datetime
import ipaddress
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server.config import Config
from labelwise_server.grpc.guards import BearerTokenInterceptor, ConfigError, load_tokens
from labelwise_server.grpc.server import SERVICE_NAME
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
