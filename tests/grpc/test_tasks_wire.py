"""Multi-label, regression and structured inputs and the stopping RPC, over a real channel."""

from typing import Any

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from sklearn.metrics import cohen_kappa_score

from labelwise import Client, LabelwiseError
from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server.strategies import STRATEGIES
from tests.grpc.conftest import ServerThread

RNG = np.random.default_rng(9)
N = 40
ML = RNG.uniform(size=(N, 5))
ML_COMMITTEE = RNG.uniform(size=(3, N, 5))
MEAN, STD = RNG.normal(size=N), RNG.uniform(0.1, 2.0, size=N)
SAMPLES = RNG.normal(size=(4, N))
X, LX, LY = RNG.normal(size=(N, 3)), RNG.normal(size=(6, 3)), RNG.normal(size=6)
SEG = np.moveaxis(RNG.dirichlet(np.ones(3), size=(N, 4, 5)), -1, 1)  # [N, 3, 4, 5]
SEG_COMMITTEE = np.moveaxis(RNG.dirichlet(np.ones(3), size=(3, N, 4, 5)), -1, 2)
MASK = RNG.uniform(size=(N, 4, 5)) < 0.7
MASK[:, 0, 0] = True


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> Any:
    return pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]


def t(array: Any, dtype: int | None = None) -> pb.Tensor:
    return encode_tensor(np.asarray(array), dtype)


def message(names: list[str], k: int = 3, **fields: Any) -> pb.SelectQueriesRequest:
    request = pb.SelectQueriesRequest(strategies=[pb.StrategySpec(name=n) for n in names], k=k)
    for name, value in fields.items():
        if isinstance(value, pb.Tensor):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


def _violation(err: grpc.RpcError) -> str:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return str(bad.field_violations[0].field)
    raise AssertionError("no BadRequest detail")


def _nan(array: Any, index: tuple[int, ...]) -> Any:
    changed = np.array(array, dtype=np.float64)
    changed[index] = np.nan
    return changed


BAD = [
    (message(["multilabel_entropy"], multilabel_probabilities=t(ML[:, 0])),
     "multilabel_probabilities.shape"),
    (message(["multilabel_entropy"], multilabel_probabilities=t(ML * 2)),
     "multilabel_probabilities"),
    (message(["multilabel_entropy"], multilabel_probabilities=t(_nan(ML, (3, 1)))),
     "multilabel_probabilities"),
    (message(["multilabel_entropy"], multilabel_probabilities=t(ML), multilabel_logits=t(ML)),
     "multilabel_logits"),
    (message(["multilabel_bald"], multilabel_committee_logits=t(_nan(ML_COMMITTEE, (1, 2, 3)))),
     "multilabel_committee_logits"),
    (message(["structured_entropy"], structured_logits=t(_nan(SEG, (0, 1, 1, 1)))),
     "structured_logits"),
    (message(["structured_bald"], structured_committee_logits=t(SEG_COMMITTEE[:1])),
     "structured_committee_logits.shape"),
    (message(["multilabel_bald"], multilabel_committee=t(ML_COMMITTEE[:1])),
     "multilabel_committee.shape"),
    (message(["multilabel_bald"], multilabel_probabilities=t(ML),
             multilabel_committee=t(ML_COMMITTEE[:, :, :4])), "multilabel_committee.shape"),
    (message(["multilabel_bald"], multilabel_probabilities=t(ML),
             multilabel_committee=t(ML_COMMITTEE[:, :30])), "multilabel_committee.shape"),
    (message(["label_cardinality_inconsistency"], multilabel_probabilities=t(ML)),
     "strategies[0].name"),
    (message(["label_cardinality_inconsistency"], multilabel_probabilities=t(ML),
             labeled_label_cardinality=-1.0), "labeled_label_cardinality"),
    (message(["regression_variance"], regression_mean=t(MEAN), regression_std=t(-STD)),
     "regression_std"),
    (message(["regression_variance"], regression_std=t(STD)), "regression_mean"),
    (message(["regression_variance"], regression_mean=t(MEAN), regression_std=t(STD[:10])),
     "regression_std.shape"),
    (message(["regression_variance"], regression_mean=t(_nan(MEAN, (2,))),
             regression_std=t(STD)), "regression_mean"),
    (message(["gsy"], regression_mean=t(MEAN * 1e16), labeled_targets=t(LY)), "regression_mean"),
    (message(["gsy"], regression_mean=t(MEAN), labeled_targets=t(LY * 1e16)), "labeled_targets"),
    (message(["regression_variance"], regression_samples=t(SAMPLES * 1e16)),
     "regression_samples"),
    (message(["regression_variance"], regression_samples=t(SAMPLES[:1])),
     "regression_samples.shape"),
    (message(["regression_variance"], regression_samples=t(SAMPLES), regression_mean=t(MEAN)),
     "regression_mean"),
    (message(["regression_variance"], regression_mean=t(MEAN)), "strategies[0].name"),
    (message(["gsy"], regression_mean=t(MEAN), labeled_targets=t(np.zeros(0))),
     "labeled_targets.shape"),
    (message(["igs"], embeddings=t(X), regression_mean=t(MEAN), labeled_embeddings=t(LX),
             labeled_targets=t(LY[:4])), "labeled_targets.shape"),
    (message(["structured_entropy"], structured_probabilities=t(SEG[:, :, 0, 0])),
     "structured_probabilities.shape"),
    (message(["structured_entropy"], structured_probabilities=t(SEG * 1.1)),
     "structured_probabilities"),
    (message(["structured_entropy"], structured_probabilities=t(_nan(SEG, (1, 0, 2, 2)))),
     "structured_probabilities"),
    (message(["structured_entropy"], structured_probabilities=t(SEG),
             structured_mask=t(MASK[:, :3])), "structured_mask.shape"),
    (message(["structured_entropy"], structured_probabilities=t(SEG),
             structured_mask=t(MASK * 2.0)), "structured_mask"),
    (message(["structured_entropy"], structured_probabilities=t(SEG),
             structured_mask=t(np.zeros((N, 4, 5)))), "structured_mask"),
    (message(["structured_entropy"], embeddings=t(X), structured_mask=t(MASK.astype(np.int32))),
     "structured_mask"),
    (message(["structured_bald"], structured_probabilities=t(SEG),
             structured_committee=t(SEG_COMMITTEE[:, :, :, :3])), "structured_committee.shape"),
    (message([], structured_probabilities=t(SEG)), "strategies"),
]  # fmt: skip


@pytest.mark.parametrize(("request_message", "field"), BAD)
def test_bad_inputs_name_the_field_and_the_server_keeps_serving(
    stub: Any, channel: grpc.Channel, request_message: pb.SelectQueriesRequest, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.SelectQueries(request_message, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violation(caught.value) == field
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


TASK_INPUTS: dict[str, Any] = dict(
    multilabel_probabilities=ML,
    multilabel_committee=ML_COMMITTEE,
    labeled_label_cardinality=1.5,
    regression_samples=SAMPLES,
    embeddings=X,
    labeled_embeddings=LX,
    labeled_targets=LY,
    structured_probabilities=SEG,
    structured_committee=SEG_COMMITTEE,
    structured_mask=MASK,
    costs=RNG.uniform(0.5, 2.0, size=N),
)
TASK_NAMES = [name for name, s in STRATEGIES.items() if s.task != "classification"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stream_equals_unary_for_every_task_input(server: ServerThread, dtype: Any) -> None:
    inputs = {k: v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
              for k, v in TASK_INPUTS.items()}  # fmt: skip
    with Client(server.address) as unary_client:
        unary = unary_client.select(strategies=TASK_NAMES, k=7, budget=6.0, exclude=[1, 5],
                                    deadline=20, **inputs)  # fmt: skip
    # A message limit this small sends the pool through the stream, a few rows per chunk.
    with Client(server.address, max_message_bytes=70_000, chunk_bytes=3_000) as streaming:
        streamed = streaming.select(strategies=TASK_NAMES, k=7, budget=6.0, exclude=[1, 5],
                                    deadline=20, **inputs)  # fmt: skip
    assert list(unary) == TASK_NAMES
    for name in TASK_NAMES:
        assert streamed[name].indices.tolist() == unary[name].indices.tolist(), name
        assert streamed[name].scores.tobytes() == unary[name].scores.tobytes(), name
        assert len(unary[name].indices) > 0 and unary[name].total_cost <= 6.0


def test_logit_variants_equal_their_probabilities(client: Client) -> None:
    logits = RNG.normal(size=(N, 5))
    committee_logits = RNG.normal(size=(3, N, 5))
    seg_logits = RNG.normal(size=(N, 3, 4, 5))
    picks = client.select(
        strategies=["multilabel_entropy", "multilabel_bald", "structured_margin"], k=N,
        multilabel_logits=logits, multilabel_committee_logits=committee_logits,
        structured_logits=seg_logits, temperature=2.0, deadline=10)  # fmt: skip
    softmax = np.exp(seg_logits / 2.0)
    softmax /= softmax.sum(axis=1, keepdims=True)
    again = client.select(
        strategies=["multilabel_entropy", "multilabel_bald", "structured_margin"], k=N,
        multilabel_probabilities=1 / (1 + np.exp(-logits / 2.0)),
        multilabel_committee=1 / (1 + np.exp(-committee_logits / 2.0)),
        structured_probabilities=softmax, deadline=10)  # fmt: skip
    for name in picks:
        order = np.argsort(picks[name].indices)
        other = np.argsort(again[name].indices)
        np.testing.assert_allclose(picks[name].scores[order], again[name].scores[other],
                                   rtol=1e-9, atol=1e-12)  # fmt: skip


def test_list_strategies_gives_the_task_and_the_new_inputs(client: Client) -> None:
    described = {s.name: s for s in client.list_strategies(deadline=10)}
    assert described["multilabel_bald"].task == "multi_label"
    assert described["multilabel_bald"].required_inputs == ["multilabel_committee"]
    assert described["igs"].task == "regression" and described["igs"].batch
    assert set(described["igs"].required_inputs) == {
        "embeddings", "labeled_embeddings", "regression_prediction", "labeled_targets"}  # fmt: skip
    assert described["structured_bald"].task == "structured"
    assert list(described["structured_bald"].params) == ["reduction", "q"]
    assert described["entropy"].task == "classification"


def test_check_stopping_over_the_wire(client: Client, stub: Any) -> None:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 3, size=200)
    rounds = [np.where(rng.uniform(size=200) < p, rng.integers(0, 3, size=200), base)
              for p in (0.3, 0.05, 0.0, 0.0, 0.0, 0.0)]  # fmt: skip
    labels = np.stack(rounds)
    verdict = client.check_stopping(stop_set_predictions=labels, deadline=10)
    expected = [cohen_kappa_score(labels[i], labels[i + 1]) for i in range(5)]
    np.testing.assert_allclose(verdict.kappas, expected, rtol=1e-12)
    assert verdict.criteria["stabilizing_predictions"].stop
    assert verdict.criteria["classification_change"].value == 0.0 and verdict.stop
    pool = rng.dirichlet(np.ones(3), size=50)
    verdict = client.check_stopping(stop_set_predictions=labels, pool_probabilities=pool,
                                    kappa_window=4, rule="any", deadline=10)  # fmt: skip
    assert list(verdict.criteria) == ["stabilizing_predictions", "overall_uncertainty",
                                      "classification_change"]  # fmt: skip
    assert not verdict.criteria["stabilizing_predictions"].stop
    assert not verdict.criteria["overall_uncertainty"].stop and verdict.stop
    with pytest.raises(LabelwiseError) as caught:
        client.check_stopping(stop_set_predictions=labels, kappa_threshold=2.0, deadline=10)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in caught.value.violations] == ["kappa_threshold"]


def test_check_stopping_rejects_bytes_that_do_not_parse(channel: grpc.Channel) -> None:
    call = channel.unary_unary(
        "/labelwise.v1.QuerySelectionService/CheckStopping",
        request_serializer=lambda data: data,
        response_deserializer=pb.CheckStoppingResponse.FromString,
    )
    with pytest.raises(grpc.RpcError) as caught:
        call(b"\x0a\xff\xff", timeout=10)  # a length running past the end
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violation(caught.value) == "request"
