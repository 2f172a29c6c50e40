"""Strategy parameters and the constraints on their values, as small objects.

After scikit-learn's `_param_validation`: each constraint checks a value, words
its part of one "must be …; got …" sentence, describes itself for ListStrategies
(the proto's ParamInfo: type, minimum/maximum/exclusive_minimum, allowed_values)
and gives values that break it, so one registry-wide test can send each of them.
Values arrive as the Python value of the wire's ParamValue oneof (bool, int,
float, str) or None when it is unset; a float parameter also takes an int.
"""

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, TypeAlias

from labelwise_server.errors import InvalidArgument

ParamValue: TypeAlias = int | float | str | bool
ParamType: TypeAlias = type[int] | type[float] | type[str] | type[bool]
Closed: TypeAlias = Literal["both", "left", "right", "neither"]

_TYPE_WORDS = {bool: "a boolean", int: "an integer", float: "a finite number", str: "a string"}


@dataclass(frozen=True)
class ParamInfo:
    """What ListStrategies says about a constraint (the proto's ParamInfo fields)."""

    type: ParamType
    allowed_values: tuple[ParamValue, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False


class Constraint(ABC):
    """A rule a parameter's value must follow; `type` is the wire type it takes."""

    type: ParamType

    @abstractmethod
    def accepts(self, value: ParamValue) -> bool:
        """Whether value (already of self.type) is allowed."""

    @abstractmethod
    def __str__(self) -> str:
        """The allowed values, in words that follow "must be"."""

    @abstractmethod
    def info(self) -> ParamInfo: ...

    @abstractmethod
    def invalid_values(self) -> Iterator[ParamValue]:
        """Values of self.type that break the rule (none when every value is allowed)."""


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Interval(Constraint):
    """Numbers between left and right (None: unbounded); closed says which ends are allowed.

    Real intervals also exclude NaN and ±inf. ParamInfo has no exclusive maximum, so a
    bounded right end must be closed.
    """

    type: type[int] | type[float]
    left: float | None
    right: float | None
    closed: Closed = "both"

    def __post_init__(self) -> None:
        if self.right is not None and self.closed in ("left", "neither"):
            raise ValueError("ParamInfo cannot describe an open right bound")
        if self.left is not None and self.right is not None and self.left > self.right:
            raise ValueError(f"empty interval [{self.left}, {self.right}]")

    def accepts(self, value: ParamValue) -> bool:
        if isinstance(value, bool | str) or not math.isfinite(value):
            return False
        low_open = self.closed in ("right", "neither")
        if self.left is not None and (value < self.left or (low_open and value == self.left)):
            return False
        return self.right is None or value <= self.right

    def __str__(self) -> str:
        kind = _TYPE_WORDS[self.type]
        if self.left is None and self.right is None:
            return kind
        if self.right is None:
            relation = ">" if self.closed in ("right", "neither") else ">="
            return f"{kind} {relation} {_number(self.left)}"  # type: ignore[arg-type]
        if self.left is None:
            return f"{kind} <= {_number(self.right)}"
        low = "(" if self.closed in ("right", "neither") else "["
        return f"{kind} in {low}{_number(self.left)}, {_number(self.right)}]"

    def info(self) -> ParamInfo:
        return ParamInfo(
            self.type,
            minimum=self.left,
            maximum=self.right,
            exclusive_minimum=self.closed in ("right", "neither"),
        )

    def invalid_values(self) -> Iterator[ParamValue]:
        step: float = 1 if self.type is int else 0.5
        if self.left is not None:
            yield self.type(self.left if self.closed in ("right", "neither") else self.left - step)
        if self.right is not None:
            yield self.type(self.right + step)
        if self.type is float:
            yield math.nan
            yield math.inf


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of values (strings, or numbers such as the 0 of "0 means k")."""

    type: ParamType
    values: tuple[ParamValue, ...]

    def __post_init__(self) -> None:
        if not self.values or any(type(v) is not self.type for v in self.values):
            raise ValueError(f"options must be values of {self.type.__name__}: {self.values}")

    def accepts(self, value: ParamValue) -> bool:
        return value in self.values

    def __str__(self) -> str:
        words = [repr(v) if isinstance(v, str) else _number(v) for v in self.values]
        return words[0] if len(words) == 1 else "one of " + ", ".join(words)

    def info(self) -> ParamInfo:
        return ParamInfo(self.type, allowed_values=self.values)

    def invalid_values(self) -> Iterator[ParamValue]:
        if self.type is str:
            other = f"not_{self.values[0]}"
            while other in self.values:
                other = f"not_{other}"
            yield other
        elif self.type is not bool:
            numbers = [float(v) for v in self.values]
            yield self.type(min(numbers) - 1)
            yield self.type(max(numbers) + 1)


@dataclass(frozen=True)
class Boolean(Constraint):
    """true or false; only a value of another type breaks it."""

    type = bool

    def accepts(self, value: ParamValue) -> bool:
        return isinstance(value, bool)

    def __str__(self) -> str:
        return _TYPE_WORDS[bool]

    def info(self) -> ParamInfo:
        return ParamInfo(bool)

    def invalid_values(self) -> Iterator[ParamValue]:
        yield from ()


@dataclass(frozen=True)
class AnyOf(Constraint):
    """A value that any of the alternatives allows ("0 or an integer >= 1", "'none' or …").

    The alternatives take one wire type; ListStrategies gets the smallest interval that
    holds them all (no allowed_values unless every alternative is a set of options).
    """

    alternatives: tuple[Constraint, ...]

    def __post_init__(self) -> None:
        if len({c.type for c in self.alternatives}) != 1:
            raise ValueError("the alternatives of AnyOf must take one type")

    @property
    def type(self) -> ParamType:  # type: ignore[override]
        return self.alternatives[0].type

    def accepts(self, value: ParamValue) -> bool:
        return any(c.accepts(value) for c in self.alternatives)

    def __str__(self) -> str:
        return " or ".join(str(c) for c in self.alternatives)

    def info(self) -> ParamInfo:
        infos = [c.info() for c in self.alternatives]
        if all(i.allowed_values for i in infos):
            return ParamInfo(self.type, tuple(v for i in infos for v in i.allowed_values))
        lows: list[float | None] = []
        highs: list[float | None] = []
        for i in infos:  # a set of numbers spans its smallest to its largest
            numbers = [float(v) for v in i.allowed_values if not isinstance(v, bool | str)]
            lows.append(min(numbers) if numbers else i.minimum)
            highs.append(max(numbers) if numbers else i.maximum)
        low = None if None in lows else min(x for x in lows if x is not None)
        high = None if None in highs else max(x for x in highs if x is not None)
        exclusive = low is not None and all(
            i.exclusive_minimum for i, x in zip(infos, lows, strict=True) if x == low
        )
        return ParamInfo(self.type, minimum=low, maximum=high, exclusive_minimum=exclusive)

    def invalid_values(self) -> Iterator[ParamValue]:
        for alternative in self.alternatives:
            yield from (v for v in alternative.invalid_values() if not self.accepts(v))


@dataclass(frozen=True)
class NameList(Constraint):
    """A comma-separated list of distinct names from a fixed set, 1 to most of them
    ("margin,entropy,random"); spaces around each name are ignored."""

    names: tuple[str, ...]
    most: int
    type = str

    def split(self, value: str) -> list[str]:
        return [name.strip() for name in value.split(",")]

    def accepts(self, value: ParamValue) -> bool:
        if not isinstance(value, str) or len(value) > 64 * self.most:
            return False
        names = self.split(value)
        return (
            len(names) <= self.most
            and len(set(names)) == len(names)
            and all(name in self.names for name in names)
        )

    def __str__(self) -> str:
        return f"a comma-separated list of 1 to {self.most} distinct names among " + ", ".join(
            self.names
        )

    def info(self) -> ParamInfo:
        return ParamInfo(str)

    def invalid_values(self) -> Iterator[ParamValue]:
        other = "not_" + self.names[0]
        while other in self.names:
            other = "not_" + other
        yield other
        yield ""
        yield f"{self.names[0]},{self.names[0]}"
        yield ",".join([self.names[0]] * (self.most + 1))


def _got(value: ParamValue | None) -> str:
    if value is None:
        return "no value"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return str(value)


@dataclass(frozen=True)
class Param:
    """One strategy parameter: the constraint on its value, its default and what it does."""

    constraint: Constraint
    default: ParamValue
    description: str

    def __post_init__(self) -> None:
        if type(self.default) is not self.type or not self.constraint.accepts(self.default):
            raise ValueError(f"default {self.default!r} must be {self.constraint}")

    @property
    def type(self) -> ParamType:
        return self.constraint.type

    @property
    def info(self) -> ParamInfo:
        return self.constraint.info()

    # The ParamInfo fields ListStrategies reads, one by one.
    @property
    def choices(self) -> tuple[ParamValue, ...]:
        return self.info.allowed_values

    @property
    def minimum(self) -> float | None:
        return self.info.minimum

    @property
    def maximum(self) -> float | None:
        return self.info.maximum

    @property
    def exclusive_minimum(self) -> bool:
        return self.info.exclusive_minimum

    def coerce(self, value: ParamValue | None, field: str) -> ParamValue:
        """The value a request sent (None: unset), checked, an int widened for a float
        parameter; raises InvalidArgument(field, "must be …; got …") when it breaks the rule."""
        if type(value) is int and self.type is float:
            value = float(value)
        if value is None or type(value) is not self.type or not self.constraint.accepts(value):
            raise InvalidArgument(field, f"must be {self.constraint}; got {_got(value)}")
        return value

    def invalid_values(self) -> list[ParamValue]:
        """Values a request may send that coerce rejects: the constraint's, and one of a
        wrong type."""
        wrong_type: ParamValue = "1" if self.type is not str else 1
        return [*self.constraint.invalid_values(), wrong_type]
