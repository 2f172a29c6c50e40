"""Random requests through the server: each answers OK or INVALID_ARGUMENT, never a crash."""

from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server.strategies import STRATEGIES
from tests.grpc.test_servicer import stream_chunks

WIRE_DTYPES = [pb.DATA_TYPE_FLOAT16, pb.DATA_TYPE_FLOAT32, pb.DATA_TYPE_FLOAT64,
               pb.DATA_TYPE_BFLOAT16, pb.DATA_TYPE_INT32, pb.DATA_TYPE_INT64]  # fmt: skip


@st.composite
def arrays(draw: st.DrawFn, shape: tuple[int, ...], stochastic: bool, corrupt: bool) -> Any:
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    if stochastic and shape and shape[-1] > 0 and (not corrupt or draw(st.booleans())):
        alpha = draw(st.sampled_from([0.05, 1.0]))
        values = rng.dirichlet(np.full(shape[-1], alpha), size=shape[:-1])
        if draw(st.booleans()):  # exact ties and exact zeros
            values = np.round(values, 1)
            values /= np.where(values.sum(axis=-1, keepdims=True) > 0,
                               values.sum(axis=-1, keepdims=True), 1)  # fmt: skip
            values[values.sum(axis=-1) == 0] = 1.0 / shape[-1]
    else:
        values = rng.standard_normal(shape) * draw(st.sampled_from([1.0, 50.0, 1e30]))
    if corrupt and draw(st.integers(0, 4)) == 0 and values.size:
        values.flat[draw(st.integers(0, values.size - 1))] = draw(
            st.sampled_from([np.nan, np.inf, -1.0, 0.0, 2.0])
        )
    return values


@st.composite
def requests(draw: st.DrawFn) -> pb.SelectQueriesRequest:
    """A request that is valid about half the time and wrong in some way otherwise."""
    corrupt = draw(st.booleans())
    n = draw(st.integers(0 if corrupt else 1, 9))
    c = draw(st.integers(1 if corrupt else 2, 4))
    m = draw(st.integers(1 if corrupt else 2, 3))
    d = draw(st.integers(0 if corrupt else 1, 3))

    def jitter(size: int) -> int:
        return draw(st.integers(0, 4)) if corrupt and draw(st.integers(0, 5)) == 0 else size

    known = list(STRATEGIES)
    names = draw(st.lists(st.sampled_from([*known, "nope"] if corrupt else known),
                          min_size=0 if corrupt else 1, max_size=4))  # fmt: skip
    specs = []
    for name in names:
        params = {}
        if name == "kl_to_consensus" and draw(st.booleans()):
            values = [pb.ParamValue(string_value="max"), pb.ParamValue(string_value="mean")]
            if corrupt:
                values += [pb.ParamValue(string_value="sum"), pb.ParamValue(int_value=1)]
            params["aggregate"] = draw(st.sampled_from(values))
        specs.append(pb.StrategySpec(name=name, params=params))
    message = pb.SelectQueriesRequest(
        strategies=specs,
        k=draw(st.integers(-1 if corrupt else 1, 12)),
        seed=draw(st.integers(0, 2**64 - 1)),
        clamp_k=draw(st.booleans()) if corrupt else True,
        exclude=draw(st.lists(st.integers(-1 if corrupt else 0, 10 if corrupt else n - 1),
                              max_size=min(4, n - 1) if not corrupt else 4)),
    )  # fmt: skip
    if draw(st.booleans()):
        budgets = [0.0, 1.5, 4.0] + ([-1.0, float("inf")] if corrupt else [])
        message.budget = draw(st.sampled_from(budgets))
    if draw(st.booleans()):
        temperatures = [1e-40, 0.5, 3.0, 1e30] + ([0.0, float("nan")] if corrupt else [])
        message.temperature = draw(st.sampled_from(temperatures))
    probabilities = draw(st.sampled_from(["probabilities", "logits"]))
    committee = draw(st.sampled_from(["committee", "committee_logits"]))
    layouts = {
        probabilities: ((jitter(n), jitter(c)), probabilities == "probabilities"),
        committee: ((jitter(m), jitter(n), jitter(c)), committee == "committee"),
        "embeddings": ((jitter(n), jitter(d)), False),
        "labeled_embeddings": ((jitter(2), jitter(d)), False),
        "costs": ((jitter(n),), False),
    }
    if corrupt and draw(st.booleans()):
        other = "logits" if probabilities == "probabilities" else "probabilities"
        layouts[other] = ((jitter(n), jitter(c)), other == "probabilities")
    float_types = [pb.DATA_TYPE_FLOAT64, pb.DATA_TYPE_FLOAT32, pb.DATA_TYPE_FLOAT16,
                   pb.DATA_TYPE_BFLOAT16]  # fmt: skip
    for name, (shape, stochastic) in layouts.items():
        if draw(st.integers(0, 2)) == 0 and (corrupt or name != probabilities):
            continue  # absent (the probabilities stay, so a valid request has a pool)
        values = draw(arrays(shape, stochastic, corrupt))
        if name == "costs":
            values = np.abs(values) + (0.0 if corrupt else 0.5)
        dtype = draw(st.sampled_from(WIRE_DTYPES if corrupt else float_types))
        with np.errstate(over="ignore", invalid="ignore"):  # NaN to int, 1e30 to float16
            tensor = encode_tensor(values.astype(np.float64), dtype)
        if corrupt and draw(st.integers(0, 9)) == 0:
            tensor.raw_data = tensor.raw_data[:-1]
        getattr(message, name).CopyFrom(tensor)
    return message


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> Any:
    return pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def answer_or_invalid_argument(
    stub: Any, message: pb.SelectQueriesRequest
) -> pb.SelectQueriesResponse | None:
    """The answer, checked for what every answer keeps, or None for INVALID_ARGUMENT (any
    other status fails the test)."""
    try:
        response = stub.SelectQueries(message, timeout=10)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
        event(f"rejected: {error.details().split(':')[0]}")
        return None
    event("answered")
    assert len(response.results) == len(message.strategies)
    for result in response.results:
        assert len(result.indices) <= message.k and len(result.indices) == len(result.scores)
        assert not set(result.indices) & set(message.exclude)
        assert all(0 <= i < response.pool_size for i in result.indices)
        assert np.isfinite(result.scores).all()
    return response  # type: ignore[no-any-return]


@given(requests())
def test_random_requests_answer_ok_or_invalid_argument(
    stub: Any, message: pb.SelectQueriesRequest
) -> None:
    response = answer_or_invalid_argument(stub, message)
    if response is None:
        return
    n = response.pool_size
    for result in response.results:
        if not message.HasField("budget"):
            assert len(result.indices) == min(message.k, n - len({*message.exclude}))
    if n > 0 and any(len(r.indices) for r in response.results):
        rows = max(1, n // 2)
        streamed = stub.SelectQueriesStream(iter(stream_chunks(message, rows)), timeout=10)
        assert streamed.response.SerializeToString(
            deterministic=True
        ) == response.SerializeToString(deterministic=True)
