"""The request as the stages pass it on, transport-free: no protobuf, no gRPC, no runtime.

decode/validation builds a Selection from the wire; the inference stage fills in what the
caller's models say; selection runs the strategy calls on it. Pool and Task are the
strategies' own input types (strategies/_types.py: strategies import nothing above them),
re-exported here so every stage takes its types from one module.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from labelwise_server.strategies._types import ModelAccess, ParamValue, Pool, Strategy, Task

__all__ = [
    "MAX_STRATEGIES",
    "ModelAccess",
    "Pool",
    "Selection",
    "StrategyCall",
    "Task",
]

# Strategies per request (TOO_MANY_STRATEGIES beyond).
MAX_STRATEGIES = 64


@dataclass(frozen=True)
class StrategyCall:
    """One validated StrategySpec: the registry entry and its parameters with defaults."""

    strategy: Strategy
    params: Mapping[str, ParamValue]
    field: str


@dataclass(frozen=True)
class Selection:
    """A validated request: the pool, what to run on it, and how many to pick."""

    pool: Pool
    calls: tuple[StrategyCall, ...]
    task: Task
