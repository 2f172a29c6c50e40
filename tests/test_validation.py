"""Request checks at the boundary: tolerances, positions in messages, parameters, limits."""

from typing import Any

import numpy as np
import pytest

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import checks, validation
from labelwise_server.decode.spec import param_value
from labelwise_server.errors import InvalidArgument
from labelwise_server.request import Selection
from labelwise_server.strategies.params import Boolean, Interval, Param
from labelwise_server.tensors import parse_request
from labelwise_server.validation import decode_request


def decode(
    strategies: tuple[str, ...] = ("entropy",),
    k: int = 1,
    max_elements: int = 1 << 28,
    **fields: Any,
) -> Selection:
    message = pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name=name) for name in strategies], k=k
    )
    for name, value in fields.items():
        if isinstance(value, np.ndarray):
            getattr(message, name).CopyFrom(encode_tensor(value))
        elif isinstance(value, pb.Tensor):
            getattr(message, name).CopyFrom(value)
        elif isinstance(value, list):
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)
    return decode_request(parse_request(message.SerializeToString()), max_elements)


def rejected(**kwargs: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        decode(**kwargs)
    return caught.value


@pytest.mark.parametrize(
    ("dtype", "off", "ok"),
    [
        (pb.DATA_TYPE_FLOAT64, 5e-4, True),
        (pb.DATA_TYPE_FLOAT64, 2e-3, False),
        (pb.DATA_TYPE_FLOAT32, 9e-4, True),
        (pb.DATA_TYPE_FLOAT32, 2e-3, False),
        (pb.DATA_TYPE_FLOAT16, 8e-3, True),
        (pb.DATA_TYPE_FLOAT16, 3e-2, False),
        (pb.DATA_TYPE_BFLOAT16, 6e-3, True),
        (pb.DATA_TYPE_BFLOAT16, 3e-2, False),
    ],
)
def test_row_sum_tolerance_follows_the_wire_dtype(dtype: int, off: float, ok: bool) -> None:
    rows = np.array([[0.25, 0.75], [0.5, 0.5 + off]])
    tensor = encode_tensor(rows, dtype)
    if ok:
        assert decode(probabilities=tensor).pool.n == 2
    else:
        error = rejected(probabilities=tensor)
        assert error.field == "probabilities" and "row [1]" in error.description


@pytest.mark.parametrize("block_bytes", [1, 64, 1 << 22])
def test_the_first_bad_row_is_named_whatever_the_check_blocks(
    block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checks, "_CHECK_BYTES", block_bytes)
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=300)
    p[173] = [0.5, 0.6, 0.1]
    p[250] = [0.5, 0.6, 0.1]
    assert "row [173] sums to 1.2" in rejected(probabilities=p).description
    p = rng.dirichlet(np.ones(3), size=300)
    p[201, 2] = np.nan
    assert rejected(probabilities=p).description == "must be finite; got NaN or Inf at [201, 2]"
    p = rng.dirichlet(np.ones(3), size=300)
    p[222] = [1.5, -0.5, 0.0]
    assert "negative value at [222, 1]" in rejected(probabilities=p).description
    committee = rng.dirichlet(np.ones(3), size=(3, 100))
    committee[2, 57] = [0.2, 0.2, 0.2]
    error = rejected(strategies=("bald",), committee=committee)
    assert error.field == "committee" and "row [2, 57]" in error.description
    embeddings = rng.standard_normal((300, 4))
    embeddings[299, 3] = -np.inf
    error = rejected(strategies=("random",), embeddings=embeddings)
    assert error.description.endswith("at [299, 3]")


@pytest.mark.parametrize("field", ["embeddings", "labeled_embeddings"])
def test_embeddings_too_large_for_float32_distances_are_rejected(field: str) -> None:
    # Found by the wire fuzz: float64 embeddings near 1e300 made core_set's float32
    # squared distances overflow, and an inf score came back.
    values = np.array([[1.0], [2.0]])
    fields = {"embeddings": values.copy(), "labeled_embeddings": values.copy()}
    fields[field][1, 0] = -3e15
    error = rejected(strategies=("core_set",), **fields)
    assert error.field == field
    assert error.description == (
        "must have every |value| <= 1e+15 (distances are computed in float32); got -3e+15 at [1, 0]"
    )
    fields[field][1, 0] = checks.EMBEDDING_BOUND  # the bound itself is allowed
    assert decode(strategies=("core_set",), **fields).pool.n == 2


def test_labeled_embeddings_may_be_empty_in_either_axis() -> None:
    p = np.full((3, 2), 0.5)
    for shape in [(0, 2), (0, 0), (4, 0)]:
        selection = decode(probabilities=p, labeled_embeddings=np.ones(shape))
        assert selection.pool.labeled_embeddings is not None
        assert selection.pool.labeled_embeddings.shape == shape


def test_embeddings_alone_make_a_pool_and_int_costs_are_accepted() -> None:
    selection = decode(
        strategies=("random",),
        k=2,
        embeddings=np.ones((4, 3)),
        costs=np.array([1, 2, 3, 4], dtype=np.int32),
        budget=3.0,
    )
    assert selection.pool.n == 4
    assert selection.pool.costs is not None and selection.pool.costs.dtype == np.float64
    assert selection.task.budget == 3.0


def test_exclude_may_repeat_and_clamp_k_counts_each_item_once() -> None:
    selection = decode(probabilities=np.full((5, 2), 0.5), k=9, clamp_k=True, exclude=[1, 1, 3])
    assert selection.task.k == 3
    assert selection.task.candidates.tolist() == [0, 2, 4]


def test_zero_budget_is_allowed() -> None:
    assert decode(probabilities=np.full((2, 2), 0.5), budget=0.0).task.budget == 0.0


def test_the_first_failing_strategy_is_named() -> None:
    error = rejected(strategies=("entropy", "margin", "nope", "worse"), probabilities=np.eye(2))
    assert error.field == "strategies[2].name" and "'nope'" in error.description


def test_float16_inputs_are_checked_and_widened() -> None:
    selection = decode(probabilities=np.full((3, 4), 0.25, dtype=np.float16))
    assert selection.pool.probabilities is not None
    assert selection.pool.probabilities.dtype == np.float32


def _value(**kind: Any) -> pb.ParamValue:
    return pb.ParamValue(**kind)


BOUNDED = Param(Interval(float, 0.0, 10.0, closed="right"), default=1.0, description="")
COUNT = Param(Interval(int, 1, None), default=3, description="")
FLAG = Param(Boolean(), default=False, description="")


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        (BOUNDED, _value(double_value=0.5), 0.5),
        (BOUNDED, _value(int_value=2), 2.0),  # a float parameter accepts an int
        (BOUNDED, _value(double_value=10.0), 10.0),
        (COUNT, _value(int_value=1), 1),
        (FLAG, _value(bool_value=True), True),
    ],
)
def test_parameter_values_within_their_rules(
    param: Param, value: pb.ParamValue, expected: Any
) -> None:
    got = param_value(param, value, "strategies[0].params[x]")
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        (BOUNDED, _value(double_value=0.0), "must be a finite number in (0.0, 10.0]; got 0.0"),
        (BOUNDED, _value(double_value=-1.0), "must be a finite number in (0.0, 10.0]; got -1.0"),
        (BOUNDED, _value(double_value=10.5), "must be a finite number in (0.0, 10.0]; got 10.5"),
        (
            BOUNDED,
            _value(double_value=float("nan")),
            "must be a finite number in (0.0, 10.0]; got nan",
        ),
        (
            BOUNDED,
            _value(double_value=float("inf")),
            "must be a finite number in (0.0, 10.0]; got inf",
        ),
        (
            BOUNDED,
            _value(string_value="1"),
            "must be a finite number in (0.0, 10.0]; got the string '1'",
        ),
        (COUNT, _value(double_value=2.0), "must be an integer >= 1; got 2.0"),
        (COUNT, _value(int_value=0), "must be an integer >= 1; got 0"),
        (FLAG, _value(int_value=1), "must be a boolean; got 1"),
        (FLAG, _value(), "must be a boolean; got no value"),
    ],
)
def test_parameter_values_breaking_their_rules(
    param: Param, value: pb.ParamValue, message: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        param_value(param, value, "strategies[0].params[x]")
    assert caught.value.field == "strategies[0].params[x]"
    assert caught.value.description == message


# ---- Limits checked before allocation (issue 13) -------------------------------------------

PROBS = np.full((4, 2), 0.5)


def test_more_than_max_strategies_are_refused_before_anything_is_decoded() -> None:
    err = rejected(strategies=("random",) * (validation.MAX_STRATEGIES + 1), probabilities=PROBS)
    assert (err.field, err.reason) == ("strategies", "TOO_MANY_STRATEGIES")
    assert decode(strategies=("random",) * validation.MAX_STRATEGIES, probabilities=PROBS)


def test_more_than_max_models_are_refused_before_any_is_resolved() -> None:
    # 50,000 references to one cached model made a 10^9-element committee before this check.
    message = pb.SelectQueriesRequest(strategies=[pb.StrategySpec(name="entropy")], k=1)
    for _ in range(50_000):
        message.models.add(sha256="ab" * 32)
    with pytest.raises(InvalidArgument) as caught:
        decode_request(parse_request(message.SerializeToString()), 1 << 28)
    assert (caught.value.field, caught.value.reason) == ("models", "TOO_MANY_MODELS")


def test_a_response_larger_than_the_message_limit_is_refused() -> None:
    pool = np.full((2000, 2), 0.5)
    with pytest.raises(InvalidArgument) as caught:
        decode_request(_request(("random",) * 64, 1000, probabilities=pool), 1 << 28,
                       max_response_bytes=1 << 20)  # fmt: skip
    assert (caught.value.field, caught.value.reason) == ("k", "RESPONSE_TOO_LARGE")
    assert decode_request(_request(("random",) * 4, 1000, probabilities=pool), 1 << 28,
                          max_response_bytes=1 << 20)  # fmt: skip


def test_the_response_estimate_uses_k_after_clamping() -> None:
    request = _request(("random",), 10**9, probabilities=PROBS)
    request.header.clamp_k = True
    assert decode_request(request, 1 << 28, max_response_bytes=4096).task.k == 4


def test_a_model_whose_bytes_the_walker_dropped_is_refused_with_its_field() -> None:
    message = pb.SelectQueriesRequest(strategies=[pb.StrategySpec(name="entropy")], k=1)
    message.models.add(sha256="ab" * 32)
    message.models.add(onnx=bytes(3 << 20))
    request = parse_request(message.SerializeToString(), max_model_bytes=1 << 20)
    with pytest.raises(InvalidArgument) as caught:
        decode_request(request, 1 << 28)
    err = caught.value
    assert (err.field, err.reason) == ("models[1].onnx", "MODEL_TOO_LARGE")
    assert str(3 << 20) in err.description and str(1 << 20) in err.description


def test_a_10000_dimension_tensor_is_an_invalid_argument() -> None:
    tensor = pb.Tensor(dtype=pb.DATA_TYPE_FLOAT32, shape=[1] * 10_000, raw_data=bytes(4))
    err = rejected(probabilities=tensor)
    assert (err.field, err.reason) == ("probabilities.shape", "TOO_MANY_DIMENSIONS")


def _request(strategies: tuple[str, ...], k: int, **tensors: Any) -> Any:
    message = pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name=name) for name in strategies], k=k
    )
    for name, value in tensors.items():
        getattr(message, name).CopyFrom(encode_tensor(value))
    return parse_request(message.SerializeToString())


def test_item_weights_are_badges_alone_and_checked() -> None:
    p, x = np.full((4, 2), 0.5), np.ones((4, 3))
    selection = decode(
        strategies=("badge",), probabilities=p, embeddings=x,
        item_weights=np.array([0, 2, 3, 1], dtype=np.int64),
    )  # fmt: skip
    assert selection.pool.item_weights is not None
    assert selection.pool.item_weights.tolist() == [0.0, 2.0, 3.0, 1.0]
    other = rejected(
        strategies=("badge", "core_set"), probabilities=p, embeddings=x, item_weights=np.ones(4)
    )
    assert other.field == "item_weights" and "strategies[1]" in str(other)
    for bad in (np.array([1.0, -1.0, 1.0, 1.0]), np.array([1.0, np.inf, 1.0, 1.0])):
        error = rejected(strategies=("badge",), probabilities=p, embeddings=x, item_weights=bad)
        assert error.field == "item_weights"
    assert (
        rejected(
            strategies=("badge",), probabilities=p, embeddings=x, item_weights=np.ones(5)
        ).field
        == "item_weights.shape"
    )
    assert (
        rejected(
            strategies=("badge",), probabilities=p, embeddings=x, item_weights=np.ones((4, 1))
        ).field
        == "item_weights.shape"
    )
