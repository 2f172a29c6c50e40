"""Random multi-label, regression, structured and stopping requests through the server:
each answers OK (with k, exclude and finite scores respected) or INVALID_ARGUMENT, never
anything else.
"""

from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server.strategies import STRATEGIES, Input
from tests.grpc.test_fuzz import answer_or_invalid_argument

TASK_NAMES = [name for name, s in STRATEGIES.items() if s.task != "classification"]
# The fields that satisfy each input kind, in one or two consistent ways.
NEEDS: dict[Input, list[set[str]]] = {
    Input.MULTILABEL_PROBABILITIES: [{"multilabel_probabilities"}, {"multilabel_logits"}],
    Input.MULTILABEL_COMMITTEE: [{"multilabel_committee"}],
    Input.LABELED_LABEL_CARDINALITY: [set()],
    Input.REGRESSION_PREDICTION: [{"regression_mean"}, {"regression_samples"}],
    Input.REGRESSION_SPREAD: [{"regression_mean", "regression_std"}, {"regression_samples"}],
    Input.EMBEDDINGS: [{"embeddings"}],
    Input.LABELED_EMBEDDINGS: [{"labeled_embeddings"}],
    Input.LABELED_TARGETS: [{"labeled_targets", "labeled_embeddings"}],
    Input.STRUCTURED_PROBABILITIES: [{"structured_probabilities"}],
    Input.STRUCTURED_COMMITTEE: [{"structured_committee"}],
}
FLOATS = [pb.DATA_TYPE_FLOAT16, pb.DATA_TYPE_FLOAT32, pb.DATA_TYPE_FLOAT64, pb.DATA_TYPE_BFLOAT16]
ALL_DTYPES = [*FLOATS, pb.DATA_TYPE_INT32, pb.DATA_TYPE_INT64]


@st.composite
def task_requests(draw: st.DrawFn) -> pb.SelectQueriesRequest:
    corrupt = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    n = draw(st.integers(0 if corrupt else 1, 8))
    labels, m, c, e = (draw(st.integers(0 if corrupt else 1, 4)) for _ in range(4))
    m, c = max(m, 2) if not corrupt else m, max(c, 2) if not corrupt else c

    def jitter(size: int) -> int:
        return draw(st.integers(0, 5)) if corrupt and draw(st.integers(0, 4)) == 0 else size

    def structured(shape: tuple[int, ...], axis: int) -> Any:
        raw = rng.dirichlet(np.ones(max(shape[axis], 1)), size=shape[:axis] + shape[axis + 1 :])
        return np.moveaxis(raw, -1, axis)[tuple(slice(0, s) for s in shape)]

    candidates: dict[str, Any] = {
        "multilabel_probabilities": lambda: rng.uniform(size=(jitter(n), jitter(labels))),
        "multilabel_logits": lambda: rng.normal(size=(jitter(n), labels)) * 30,
        "multilabel_committee": lambda: rng.uniform(size=(jitter(m), jitter(n), labels)),
        "regression_mean": lambda: rng.normal(size=jitter(n)),
        "regression_std": lambda: np.abs(rng.normal(size=jitter(n))),
        "regression_samples": lambda: rng.normal(size=(jitter(m), jitter(n))),
        "embeddings": lambda: rng.normal(size=(jitter(n), 2)),
        "labeled_embeddings": lambda: rng.normal(size=(jitter(2), 2)),
        "labeled_targets": lambda: rng.normal(size=jitter(2)),
        "structured_probabilities": lambda: structured((jitter(n), jitter(c), jitter(e) or 1), 1),
        "structured_committee": lambda: structured((jitter(m), n, c, e or 1), 2),
        "structured_mask": lambda: (rng.uniform(size=(jitter(n), e or 1)) < 0.8).astype(float),
    }
    names = draw(st.lists(st.sampled_from(TASK_NAMES), min_size=1, max_size=4))
    message = pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name=name) for name in names],
        k=draw(st.integers(-1 if corrupt else 1, 9)),
        clamp_k=True,
        exclude=draw(st.lists(st.integers(0, max(n - 2, 0)), max_size=2)) if n > 1 else [],
    )  # fmt: skip
    cardinalities = [0.0, 1.5] + ([-1.0] if corrupt else [])
    if corrupt or any(Input.LABELED_LABEL_CARDINALITY in STRATEGIES[n].needs for n in names):
        message.labeled_label_cardinality = draw(st.sampled_from(cardinalities))
    if corrupt:
        fields = draw(st.sets(st.sampled_from(sorted(candidates)), min_size=1, max_size=6))
    else:  # what the strategies need, one consistent way
        needs = set().union(*(STRATEGIES[n].needs for n in names))
        samples = draw(st.booleans())
        fields = {field for need, options in NEEDS.items() if need in needs
                  for field in options[samples % len(options)]}  # fmt: skip
        if fields & {"structured_probabilities", "structured_committee"} and draw(st.booleans()):
            fields.add("structured_mask")
    for name in sorted(fields):
        values = np.asarray(candidates[name](), dtype=np.float64)
        if corrupt and values.size and draw(st.integers(0, 3)) == 0:
            values.flat[draw(st.integers(0, values.size - 1))] = draw(
                st.sampled_from([np.nan, np.inf, -1.0, 2.0, 0.5])
            )
        dtype = draw(st.sampled_from(ALL_DTYPES if corrupt else FLOATS))
        with np.errstate(over="ignore", invalid="ignore"):
            getattr(message, name).CopyFrom(encode_tensor(values, dtype))
    return message


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> Any:
    return pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(task_requests())
def test_random_task_requests_answer_ok_or_invalid_argument(
    stub: Any, message: pb.SelectQueriesRequest
) -> None:
    response = answer_or_invalid_argument(stub, message)
    if response is not None:
        assert all(len(result.indices) > 0 for result in response.results)


@st.composite
def stopping_requests(draw: st.DrawFn) -> pb.CheckStoppingRequest:
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    r, s, c = draw(st.integers(0, 5)), draw(st.integers(0, 6)), draw(st.integers(1, 4))
    message = pb.CheckStoppingRequest()
    if draw(st.booleans()):
        if draw(st.booleans()):
            labels = rng.integers(-1 if draw(st.booleans()) else 0, 3, size=(r, s))
            dtype = draw(st.sampled_from([pb.DATA_TYPE_INT32, pb.DATA_TYPE_INT64]))
            message.stop_set_predictions.CopyFrom(encode_tensor(labels, dtype))
        else:
            probabilities = rng.dirichlet(np.ones(c), size=(r, s))
            if draw(st.integers(0, 3)) == 0 and probabilities.size:
                probabilities.flat[0] = np.nan
            dtype = draw(st.sampled_from(FLOATS))
            message.stop_set_predictions.CopyFrom(encode_tensor(probabilities, dtype))
    if draw(st.booleans()):
        message.pool_probabilities.CopyFrom(
            encode_tensor(rng.dirichlet(np.ones(c), size=s), draw(st.sampled_from(FLOATS)))
        )
    if draw(st.booleans()):
        message.kappa_threshold = draw(st.sampled_from([0.5, 0.99, 1.0, 0.0, 2.0, float("nan")]))
    if draw(st.booleans()):
        message.kappa_window = draw(st.integers(-1, 6))
    message.rule = draw(st.sampled_from([0, 1, 2, 3]))
    message.uncertainty_aggregate = draw(st.sampled_from([0, 1, 2, 5]))
    return message


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(stopping_requests())
def test_random_stopping_requests_answer_ok_or_invalid_argument(
    stub: Any, message: pb.CheckStoppingRequest
) -> None:
    try:
        response = stub.CheckStopping(message, timeout=10)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
        return
    assert all(np.isfinite(c.value) for c in response.criteria)
    assert all(-1.0 <= k <= 1.0 for k in response.kappas)
    assert response.stop == (
        bool([c for c in response.criteria if c.evaluated])
        and (any if message.rule == pb.STOPPING_RULE_ANY else all)(
            c.stop for c in response.criteria if c.evaluated
        )
    )
