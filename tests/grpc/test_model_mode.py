"""Model mode over the wire: results equal sending the model's outputs, the hash cache and its
NOT_FOUND protocol, the client's retry, hostile models refused while the server keeps serving,
and deepfool with its adversarial points."""

import hashlib
import warnings
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from labelwise import Client, LabelwiseError
from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server.onnx_runner import GRADIENT_OPS
from tests import onnx_models as om
from tests.grpc.conftest import TEST_CONFIG, ServerThread
from tests.grpc.test_servicer import assert_serving, call_error, violations
from tests.strategies.test_adversarial import closed_form

F32 = pb.DATA_TYPE_FLOAT32
PROBABILITY_STRATEGIES = ["least_confidence", "margin", "ratio", "entropy", "random"]
COMMITTEE_STRATEGIES = ["vote_entropy", "consensus_entropy", "kl_to_consensus", "bald",
                        "variation_ratio", "mean_std"]  # fmt: skip


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.QuerySelectionServiceStub:
    return pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def uncached_server() -> Iterator[ServerThread]:
    """A server that caches no model and takes models of at most 64 KiB."""
    thread = ServerThread(replace(TEST_CONFIG, model_cache_bytes=0, max_model_bytes=64 << 10))
    yield thread
    thread.stop()


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def request(
    names: list[str], k: int, models: list[bytes], x: npt.NDArray[Any], **fields: Any
) -> pb.SelectQueriesRequest:
    return pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name=name) for name in names],
        k=k,
        models=[pb.Model(onnx=m) for m in models],
        model_inputs=encode_tensor(x, F32),
        **fields,
    )


def rankings(response: pb.SelectQueriesResponse) -> list[tuple[list[int], list[float]]]:
    return [(list(r.indices), list(r.scores)) for r in response.results]


def ort_outputs(data: bytes, x: npt.NDArray[Any]) -> list[npt.NDArray[Any]]:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def sklearn_models() -> dict[str, tuple[bytes, Any, npt.NDArray[np.float32]]]:
    """Logistic regression and an MLP fitted by scikit-learn, converted by skl2onnx."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    rng = _rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 0.8)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of the short MLP fit
        for name, clf in (
            ("logistic_regression", LogisticRegression(max_iter=300)),
            ("mlp", MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, random_state=0)),
        ):
            clf.fit(x, y)
            onx = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}})
            out[name] = (onx.SerializeToString(), clf, x)
    return out


@pytest.mark.parametrize("name", ["logistic_regression", "mlp"])
def test_sklearn_models_rank_as_their_probabilities_sent_directly(
    stub: Any, sklearn_models: dict[str, Any], name: str
) -> None:
    data, clf, x = sklearn_models[name]
    [_, probabilities] = ort_outputs(data, x)
    np.testing.assert_allclose(probabilities, clf.predict_proba(x), rtol=1e-4, atol=1e-5)
    names = PROBABILITY_STRATEGIES
    via_model = stub.SelectQueries(request(names, 25, [data], x, seed=3), timeout=30)
    direct = stub.SelectQueries(
        pb.SelectQueriesRequest(
            strategies=[pb.StrategySpec(name=n) for n in names],
            k=25,
            seed=3,
            probabilities=encode_tensor(probabilities, F32),
        ),
        timeout=30,
    )
    assert rankings(via_model) == rankings(direct)


def test_mlp_outputs_and_embeddings_feed_every_strategy_as_numpy_would(stub: Any) -> None:
    rng = _rng(1)
    mlp = om.Mlp.random(rng, d=8, h=5, c=4)
    x = rng.normal(size=(150, 8)).astype(np.float32)
    labeled = rng.normal(size=(3, 5)).astype(np.float32)
    names = [*PROBABILITY_STRATEGIES, "core_set"]
    via_model = stub.SelectQueries(
        request(names, 20, [mlp.onnx()], x, embeddings_output="hidden", inference_batch_rows=16,
                labeled_embeddings=encode_tensor(labeled, F32)),
        timeout=30,
    )  # fmt: skip
    direct = stub.SelectQueries(
        pb.SelectQueriesRequest(
            strategies=[pb.StrategySpec(name=n) for n in names],
            k=20,
            probabilities=encode_tensor(mlp.probabilities(x), pb.DATA_TYPE_FLOAT64),
            embeddings=encode_tensor(mlp.hidden(x), F32),
            labeled_embeddings=encode_tensor(labeled, F32),
        ),
        timeout=30,
    )
    for (ours, our_scores), (theirs, their_scores) in zip(
        rankings(via_model), rankings(direct), strict=True
    ):
        assert ours == theirs
        np.testing.assert_allclose(our_scores, their_scores, rtol=1e-5, atol=1e-6)


def test_an_ensemble_is_a_committee_and_its_mean_the_probabilities(stub: Any) -> None:
    rng = _rng(2)
    members = [om.Linear.random(rng, 5, 3) for _ in range(4)]
    x = rng.normal(size=(120, 5)).astype(np.float32)
    blobs = [m.onnx() for m in members]
    committee = np.stack([ort_outputs(b, x)[0] for b in blobs])
    names = [*COMMITTEE_STRATEGIES, "entropy"]
    via_model = stub.SelectQueries(request(names, 15, blobs, x), timeout=30)
    direct = stub.SelectQueries(
        pb.SelectQueriesRequest(
            strategies=[pb.StrategySpec(name=n) for n in names],
            k=15,
            committee=encode_tensor(committee, F32),
            probabilities=encode_tensor(committee.mean(axis=0, dtype=np.float32), F32),
        ),
        timeout=30,
    )
    assert rankings(via_model) == rankings(direct)


def test_logits_models_are_softmaxed_at_the_temperature(stub: Any) -> None:
    rng = _rng(3)
    model = om.Linear.random(rng, 4, 5, softmax=False)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    [logits] = ort_outputs(model.onnx(), x)
    via_model = stub.SelectQueries(
        request(["entropy", "margin"], 10, [model.onnx()], x, temperature=2.5,
                model_output=pb.MODEL_OUTPUT_LOGITS),
        timeout=30,
    )  # fmt: skip
    direct = stub.SelectQueries(
        pb.SelectQueriesRequest(
            strategies=[pb.StrategySpec(name="entropy"), pb.StrategySpec(name="margin")],
            k=10,
            temperature=2.5,
            logits=encode_tensor(logits, F32),
        ),
        timeout=30,
    )
    assert rankings(via_model) == rankings(direct)


def test_mc_dropout_gives_a_seeded_committee(stub: Any) -> None:
    data = om.dropout_model(_rng(4), 6, 3, training_input=True)
    x = _rng(5).normal(size=(80, 6)).astype(np.float32)

    def bald(seed: int) -> Any:
        message = request(["bald"], 80, [data], x, mc_dropout_samples=8, seed=seed)
        return rankings(stub.SelectQueries(message, timeout=30))

    first = bald(1)
    assert first == bald(1)
    assert first != bald(2)
    assert max(first[0][1]) > 0.01  # the samples disagree: BALD is not all zero


def test_a_model_sent_once_is_then_found_by_its_hash(stub: Any) -> None:
    data = om.Linear.random(_rng(6), 3, 2).onnx()
    x = _rng(7).normal(size=(30, 3)).astype(np.float32)
    by_bytes = stub.SelectQueries(request(["entropy"], 5, [data], x), timeout=30)
    message = request(["entropy"], 5, [], x)
    message.models.append(pb.Model(sha256=hashlib.sha256(data).hexdigest()))
    assert rankings(stub.SelectQueries(message, timeout=30)) == rankings(by_bytes)


def test_model_lookups_are_counted_by_source_and_result(server: ServerThread, stub: Any) -> None:
    def lookups(source: str, result: str) -> float:
        name = "labelwise_model_lookups_total"
        labels = {"source": source, "result": result}
        return server.registry.get_sample_value(name, labels) or 0.0

    kinds = [(s, r) for s in ("bytes", "sha256") for r in ("hit", "miss")]
    before = {kind: lookups(*kind) for kind in kinds}
    data = om.Linear.random(_rng(31), 3, 2).onnx()  # never sent before
    x = _rng(32).normal(size=(10, 3)).astype(np.float32)
    stub.SelectQueries(request(["entropy"], 2, [data], x), timeout=30)  # loaded: a miss
    stub.SelectQueries(request(["entropy"], 2, [data], x), timeout=30)  # cached: a hit
    by_hash = request(["entropy"], 2, [], x)
    by_hash.models.append(pb.Model(sha256=hashlib.sha256(data).hexdigest()))
    stub.SelectQueries(by_hash, timeout=30)
    unknown = request(["entropy"], 2, [], x)
    unknown.models.append(pb.Model(sha256=hashlib.sha256(b"not this one").hexdigest()))
    call_error(lambda: stub.SelectQueries(unknown, timeout=30))
    added = {kind: lookups(*kind) - before[kind] for kind in kinds}
    assert added == {("bytes", "hit"): 1, ("bytes", "miss"): 1,
                     ("sha256", "hit"): 1, ("sha256", "miss"): 1}  # fmt: skip
    cached = server.registry.get_sample_value("labelwise_model_cache_bytes")
    assert cached is not None and cached >= len(data)


def test_an_unknown_hash_is_not_found_with_model_not_cached(
    stub: Any, channel: grpc.Channel
) -> None:
    digest = hashlib.sha256(b"never sent").hexdigest()
    message = request(["entropy"], 1, [], np.zeros((2, 3), np.float32))
    message.models.append(pb.Model(sha256=digest))
    error = call_error(lambda: stub.SelectQueries(message, timeout=10))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details if d.Is(info.DESCRIPTOR))
    assert info.reason == "MODEL_NOT_CACHED"
    assert dict(info.metadata) == {"field": "models[0].sha256", "sha256": digest}
    assert_serving(channel)


def test_the_client_sends_bytes_first_then_the_hash_and_resends_bytes_on_a_miss(
    uncached_server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = om.Linear.random(_rng(8), 3, 2).onnx()
    x = _rng(9).normal(size=(30, 3)).astype(np.float32)
    sent: list[list[str | None]] = []
    with Client(uncached_server.address) as client:
        real_call = client._call

        def spy(req: Any, deadline: float | None) -> Any:
            sent.append([m.WhichOneof("source") for m in req.header.models])
            return real_call(req, deadline)

        monkeypatch.setattr(client, "_call", spy)
        first = client.select(strategies=["entropy"], k=5, model=data, model_inputs=x)
        # The server caches nothing: the hash misses, and the client resends the bytes.
        second = client.select(strategies=["entropy"], k=5, model=data, model_inputs=x)
    assert sent == [["onnx"], ["sha256"], ["onnx"]]
    np.testing.assert_array_equal(first["entropy"].indices, second["entropy"].indices)


def test_the_client_reads_a_model_path_and_uses_the_hash_on_a_caching_server(
    server: ServerThread, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(om.Linear.random(_rng(10), 3, 2).onnx())
    x = _rng(11).normal(size=(30, 3)).astype(np.float32)
    sent: list[list[str | None]] = []
    with Client(server.address) as client:
        real_call = client._call

        def spy(req: Any, deadline: float | None) -> Any:
            sent.append([m.WhichOneof("source") for m in req.header.models])
            return real_call(req, deadline)

        monkeypatch.setattr(client, "_call", spy)
        for _ in range(3):
            client.select(strategies=["margin"], k=3, model=str(path), model_inputs=x)
    assert sent == [["onnx"], ["sha256"], ["sha256"]]


def test_model_mode_streams_as_it_calls_unary(server: ServerThread) -> None:
    rng = _rng(12)
    mlp = om.Mlp.random(rng, d=40, h=8, c=3)
    x = rng.normal(size=(3000, 40)).astype(np.float32)  # 480 kB: streamed under a 200 kB limit
    kwargs: dict[str, Any] = dict(strategies=["entropy", "core_set"], k=10, model=mlp.onnx(),
                                  model_inputs=x, embeddings_output="hidden")  # fmt: skip
    with (
        Client(server.address) as unary,
        Client(server.address, max_message_bytes=200_000, chunk_bytes=50_000) as streaming,
    ):
        a = unary.select(**kwargs)
        b = streaming.select(**kwargs)
    for name in kwargs["strategies"]:
        np.testing.assert_array_equal(a[name].indices, b[name].indices)
        np.testing.assert_array_equal(a[name].scores, b[name].scores)


def test_deepfool_over_the_wire_matches_the_closed_form_and_returns_points(stub: Any) -> None:
    rng = _rng(13)
    model = om.Linear.random(rng, 6, 4)
    x = rng.normal(size=(90, 6)).astype(np.float32)
    message = request([], 12, [model.onnx()], x)
    message.strategies.append(
        pb.StrategySpec(name="deepfool", params={"return_points": pb.ParamValue(bool_value=True)})
    )
    [result] = stub.SelectQueries(message, timeout=30).results
    expected = -closed_form(model, x.astype(np.float64))
    order = np.lexsort((np.arange(90), -expected))[:12]
    assert list(result.indices) == order.tolist()
    np.testing.assert_allclose(result.scores, expected[order], rtol=1e-3)  # the bar
    np.testing.assert_allclose(result.scores, expected[order], rtol=1e-9)  # what it achieves
    points = np.frombuffer(result.adversarial_points.raw_data, "<f8").reshape(
        tuple(result.adversarial_points.shape)
    )
    assert points.shape == (12, 6)
    before = model.logits(x[order]).argmax(1)
    assert (model.logits(points).argmax(1) != before).all()


def test_deepfool_without_a_model_names_the_missing_input(stub: Any) -> None:
    message = pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name="deepfool")],
        k=1,
        probabilities=encode_tensor(np.full((2, 2), 0.5), pb.DATA_TYPE_FLOAT64),
    )
    error = call_error(lambda: stub.SelectQueries(message, timeout=10))
    [violation] = violations(error)
    assert (violation.field, violation.reason) == ("strategies[0].name", "MISSING_INPUT")


def _x(n: int = 6, d: int = 4) -> npt.NDArray[np.float32]:
    return _rng(14).normal(size=(n, d)).astype(np.float32)


def _linear(d: int = 4, c: int = 3, softmax: bool = True) -> bytes:
    return om.Linear.random(_rng(15), d, c, softmax).onnx()


HOSTILE = [
    ("malformed", request(["entropy"], 1, [b"\x0a\xff\xffgarbage"], _x()),
     "models[0].onnx", "MODEL_MALFORMED"),
    ("external-data-etc-passwd", request(["entropy"], 1, [om.external_data_model(4, 3)], _x()),
     "models[0].onnx", "MODEL_EXTERNAL_DATA"),
    ("custom-op", request(["entropy"], 1, [om.custom_op_model(4, 3)], _x()),
     "models[0].onnx", "MODEL_CUSTOM_OP"),
    ("wrong-input-width", request(["entropy"], 1, [_linear(d=4)], _x(d=7)),
     "model_inputs.shape", "MODEL_INPUT_MISMATCH"),
    ("nan-output", request(["entropy"], 1, [om.nan_model(4, 3)], _x()),
     "models[0]", "MODEL_NON_FINITE_OUTPUT"),
    ("opset-too-new", request(["entropy"], 1, [om.new_opset_model(4, 3)], _x()),
     "models[0].onnx", "MODEL_VERSION"),
    ("logits-read-as-probabilities", request(["entropy"], 1, [_linear(softmax=False)], _x()),
     "models[0]", "MODEL_OUTPUT_NOT_PROBABILITIES"),
    ("deepfool-gradient-unsupported-op",
     pb.SelectQueriesRequest(
         strategies=[pb.StrategySpec(name="deepfool",
                                     params={"method": pb.ParamValue(string_value="gradient")})],
         k=1, models=[pb.Model(onnx=om.unsupported_gradient_model(4, 3))],
         model_inputs=encode_tensor(_x(), F32)),
     "models[0]", "UNSUPPORTED_GRADIENT_OP"),
    ("no-model-inputs", pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name="entropy")], k=1, models=[pb.Model(onnx=_linear())]),
     "model_inputs", "MISSING_INPUT"),
    ("with-probabilities", request(["entropy"], 1, [_linear()], _x(),
                                   probabilities=encode_tensor(np.full((6, 2), 0.5), F32)),
     "models", None),
    ("mc-dropout-one-sample", request(["bald"], 1, [_linear()], _x(), mc_dropout_samples=1),
     "mc_dropout_samples", None),
    ("mc-dropout-without-dropout", request(["bald"], 1, [_linear()], _x(), mc_dropout_samples=4),
     "mc_dropout_samples", "MODEL_SIGNATURE"),
    ("embeddings-output-unknown", request(["core_set"], 1, [_linear()], _x(),
                                          embeddings_output="nope"),
     "embeddings_output", "MODEL_SIGNATURE"),
    ("bad-hash", request(["entropy"], 1, [], _x()), "models[0].sha256", None),
    ("negative-batch-rows", request(["entropy"], 1, [_linear()], _x(), inference_batch_rows=-1),
     "inference_batch_rows", None),
    ("zero-timeout", request(["entropy"], 1, [_linear()], _x(), inference_timeout_seconds=0.0),
     "inference_timeout_seconds", None),
]  # fmt: skip
HOSTILE[13][1].models.append(pb.Model(sha256="not-a-hash"))


@pytest.mark.parametrize(("message", "field", "reason"), [c[1:] for c in HOSTILE],
                         ids=[c[0] for c in HOSTILE])  # fmt: skip
def test_hostile_or_wrong_models_are_invalid_argument_and_the_server_keeps_serving(
    stub: Any, channel: grpc.Channel, message: pb.SelectQueriesRequest, field: str, reason: Any
) -> None:
    error = call_error(lambda: stub.SelectQueries(message, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [violation] = violations(error)
    assert violation.field == field, violation.description
    if reason is not None:
        assert violation.reason == reason, violation.description
    assert_serving(channel)


def test_an_oversize_model_is_refused_by_size(uncached_server: ServerThread) -> None:
    with Client(uncached_server.address) as client:
        with pytest.raises(LabelwiseError) as caught:
            client.select(strategies=["entropy"], k=1, model=om.padded_model(4, 3, 100_000),
                          model_inputs=_x())  # fmt: skip
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.reason == "MODEL_TOO_LARGE"
        assert [v.field for v in caught.value.violations] == ["models[0].onnx"]
        client.select(strategies=["entropy"], k=1, model=_linear(), model_inputs=_x())


def test_an_inference_timeout_is_deadline_exceeded(stub: Any) -> None:
    message = request(["entropy"], 1, [_linear()], _rng(16).normal(size=(5000, 4)),
                      inference_batch_rows=1, inference_timeout_seconds=1e-4)  # fmt: skip
    error = call_error(lambda: stub.SelectQueries(message, timeout=30))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_list_strategies_marks_deepfool_as_needing_the_model(stub: Any) -> None:
    [info] = [s for s in stub.ListStrategies(pb.ListStrategiesRequest()).strategies
              if s.name == "deepfool"]  # fmt: skip
    assert list(info.required_inputs) == [pb.POOL_INPUT_MODEL]
    assert list(info.gradient_ops) == list(GRADIENT_OPS)
    assert info.family == "adversarial"
