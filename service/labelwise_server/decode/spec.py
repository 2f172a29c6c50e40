"""A StrategySpec checked against a table of strategies: the strategy it names and its
parameters, coerced and with the defaults filled in (SelectQueries and stream decisions)."""

from collections.abc import Mapping
from typing import Protocol, TypeVar

from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import reasons
from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies._types import Param, ParamValue

SHOWN = 64  # characters of a caller's name that an error message repeats


class _Parameterised(Protocol):
    @property
    def params(self) -> Mapping[str, Param]: ...


S = TypeVar("S", bound=_Parameterised)


def decode_spec(
    spec: pb.StrategySpec, table: Mapping[str, S], field: str
) -> tuple[S, dict[str, ParamValue]]:
    """The strategy of table that spec names, and spec's parameters for it; field is the
    spec's path in the request, for the errors."""
    strategy = table.get(spec.name)
    if strategy is None:
        raise InvalidArgument(
            f"{field}.name",
            f"must be one of {', '.join(table)}; got {spec.name[:SHOWN]!r}",
            reason=reasons.UNKNOWN_STRATEGY,
        )
    params: dict[str, ParamValue] = {}
    for name in sorted(spec.params):
        if name not in strategy.params:
            allowed = ", ".join(strategy.params) or "none"
            raise InvalidArgument(
                f"{field}.params[{name[:SHOWN]}]",
                f"is not a parameter of {spec.name} (its parameters: {allowed})",
                reason=reasons.UNKNOWN_PARAMETER,
            )
        params[name] = param_value(
            strategy.params[name], spec.params[name], f"{field}.params[{name}]"
        )
    for name, param in strategy.params.items():
        params.setdefault(name, param.default)
    return strategy, params


def param_value(param: Param, value: pb.ParamValue, field: str) -> ParamValue:
    """value (whichever kind the caller set, or none) coerced by param's rule."""
    kind = value.WhichOneof("kind")
    return param.coerce(None if kind is None else getattr(value, kind), field)
