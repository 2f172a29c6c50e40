"""Parameter constraints: each one's wording, ListStrategies description and invalid values,
and a registry-wide check that every parameter of every strategy rejects them at the boundary.

In the style of scikit-learn's test_param_validation: the constraint objects say which values
break them, so the registry test needs no per-parameter table.
"""

import math

import numpy as np
import pytest

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies import STRATEGIES
from labelwise_server.strategies.params import (
    AnyOf,
    Boolean,
    Constraint,
    Interval,
    Options,
    Param,
    ParamInfo,
    ParamValue,
)
from labelwise_server.tensors import parse_request
from labelwise_server.validation import decode_request

FIELD = "strategies[0].params[x]"
ZERO_OR_MORE = AnyOf((Options(int, (0,)), Interval(int, 1, None)))


@pytest.mark.parametrize(
    ("constraint", "words"),
    [
        (Interval(int, 1, 4096), "an integer in [1, 4096]"),
        (Interval(int, 1, None), "an integer >= 1"),
        (Interval(int, None, 5), "an integer <= 5"),
        (Interval(float, 0.0, 1.0, closed="right"), "a finite number in (0.0, 1.0]"),
        (Interval(float, 0.0, None, closed="neither"), "a finite number > 0.0"),
        (Interval(float, None, None), "a finite number"),
        (Options(str, ("mean", "max")), "one of 'mean', 'max'"),
        (Options(str, ("sum",)), "'sum'"),
        (Boolean(), "a boolean"),
        (ZERO_OR_MORE, "0 or an integer >= 1"),
    ],
)
def test_a_constraint_words_what_the_value_must_be(constraint: Constraint, words: str) -> None:
    assert str(constraint) == words


@pytest.mark.parametrize(
    ("param", "sent", "message"),
    [
        (Param(Interval(int, 1, 4096), 1, ""), 0, "must be an integer in [1, 4096]; got 0"),
        (Param(Interval(int, 1, 4096), 1, ""), 2.0, "must be an integer in [1, 4096]; got 2.0"),
        (Param(ZERO_OR_MORE, 0, ""), -1, "must be 0 or an integer >= 1; got -1"),
        (
            Param(Options(str, ("a", "b")), "a", ""),
            "c",
            "must be one of 'a', 'b'; got the string 'c'",
        ),
        (Param(Boolean(), False, ""), 1, "must be a boolean; got 1"),
        (Param(Boolean(), False, ""), None, "must be a boolean; got no value"),
        (Param(Options(str, ("a",)), "a", ""), True, "must be 'a'; got the boolean true"),
        (
            Param(Interval(float, 0.0, None, closed="right"), 1.0, ""),
            math.inf,
            "must be a finite number > 0.0; got inf",
        ),
    ],
)
def test_a_parameter_says_what_it_must_be_and_what_it_got(
    param: Param, sent: ParamValue | None, message: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        param.coerce(sent, FIELD)
    assert (caught.value.field, caught.value.description) == (FIELD, message)
    assert "a int" not in message and "a float" not in message


def test_a_float_parameter_takes_an_int_and_an_int_parameter_keeps_it() -> None:
    real = Param(Interval(float, 0.0, 10.0), 1.0, "")
    assert type(real.coerce(2, FIELD)) is float
    assert Param(ZERO_OR_MORE, 0, "").coerce(0, FIELD) == 0
    assert Param(ZERO_OR_MORE, 0, "").coerce(7, FIELD) == 7


@pytest.mark.parametrize(
    ("constraint", "info"),
    [
        (Interval(int, 1, 1000), ParamInfo(int, minimum=1, maximum=1000)),
        (
            Interval(float, 0.0, None, closed="right"),
            ParamInfo(float, minimum=0.0, exclusive_minimum=True),
        ),
        (Options(str, ("a", "b")), ParamInfo(str, allowed_values=("a", "b"))),
        (Boolean(), ParamInfo(bool)),
        (ZERO_OR_MORE, ParamInfo(int, minimum=0.0)),  # the same as [0, ∞) for integers
        (
            AnyOf((Options(str, ("none",)), Options(str, ("x", "y")))),
            ParamInfo(str, allowed_values=("none", "x", "y")),
        ),
    ],
)
def test_a_constraint_describes_itself_as_param_info(
    constraint: Constraint, info: ParamInfo
) -> None:
    assert constraint.info() == info


def test_constraints_that_param_info_cannot_describe_or_defaults_that_break_them_are_refused() -> (
    None
):
    with pytest.raises(ValueError, match="open right bound"):
        Interval(float, 0.0, 1.0, closed="left")
    with pytest.raises(ValueError, match="must be"):
        Param(Interval(int, 1, 10), 0, "")
    with pytest.raises(ValueError, match="one type"):
        AnyOf((Options(int, (0,)), Options(str, ("a",))))


@pytest.mark.parametrize(
    "constraint",
    [
        Interval(int, 1, 4096),
        Interval(float, 0.0, 1.0, closed="right"),
        Interval(float, 0.0, None, closed="neither"),
        Options(str, ("mean", "max")),
        Options(int, (0, 2)),
        ZERO_OR_MORE,
    ],
    ids=str,
)
def test_a_constraint_rejects_the_invalid_values_it_gives(constraint: Constraint) -> None:
    invalid = list(constraint.invalid_values())
    assert invalid, "a constraint with values outside it must give at least one"
    for value in invalid:
        assert type(value) is constraint.type and not constraint.accepts(value), value


PARAMS = [
    (name, param_name, param)
    for name, strategy in STRATEGIES.items()
    for param_name, param in strategy.params.items()
]


def _wire(value: ParamValue) -> pb.ParamValue:
    if isinstance(value, bool):
        return pb.ParamValue(bool_value=value)
    if isinstance(value, int):
        return pb.ParamValue(int_value=value)
    if isinstance(value, float):
        return pb.ParamValue(double_value=value)
    return pb.ParamValue(string_value=value)


def _decode(name: str, params: dict[str, pb.ParamValue]) -> None:
    """A request asking for entropy, then `name` with params, through the whole validation."""
    message = pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name="entropy"), pb.StrategySpec(name=name, params=params)],
        k=1,
        probabilities=encode_tensor(np.full((3, 2), 0.5)),
    )
    decode_request(parse_request(message.SerializeToString()), 1 << 28)


def test_the_registry_has_parameters_of_every_kind() -> None:
    kinds = {type(param.constraint) for _, _, param in PARAMS}
    assert {Interval, Options, Boolean, AnyOf} <= kinds


@pytest.mark.parametrize(
    ("name", "param_name", "param"), PARAMS, ids=[f"{n}-{p}" for n, p, _ in PARAMS]
)
def test_every_parameter_rejects_its_invalid_values_with_its_field_path(
    name: str, param_name: str, param: Param
) -> None:
    invalid = param.invalid_values()
    # Every parameter but a boolean has a value of its own type that breaks it.
    assert any(type(v) is param.type for v in invalid) or param.type is bool, invalid
    for value in invalid:
        with pytest.raises(InvalidArgument) as caught:
            _decode(name, {param_name: _wire(value)})
        error = caught.value
        assert error.field == f"strategies[1].params[{param_name}]", value
        assert error.reason and error.description.startswith(f"must be {param.constraint}; got")


@pytest.mark.parametrize(
    ("name", "param_name", "param"), PARAMS, ids=[f"{n}-{p}" for n, p, _ in PARAMS]
)
def test_every_parameter_takes_its_default_and_its_listed_values(
    name: str, param_name: str, param: Param
) -> None:
    for value in (param.default, *param.choices):
        assert param.coerce(value, FIELD) == value
    if param.minimum is not None and not param.exclusive_minimum:
        assert param.coerce(param.type(param.minimum), FIELD) == param.minimum
    if param.maximum is not None:
        assert param.coerce(param.type(param.maximum), FIELD) == param.maximum
