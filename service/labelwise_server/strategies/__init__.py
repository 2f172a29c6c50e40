"""Active-learning query strategies: pure NumPy functions, one module per family.

Re-exports only. The registry (STRATEGIES) is in registry.py, the shared types
in _types.py, parameter constraints in params.py. The registry is imported on
first use of its names here, so importing a submodule (such as _types, which
the request types need) does not build the registry or import every family.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labelwise_server.strategies._types import Input, Param, Pool, Strategy, Task
    from labelwise_server.strategies.registry import (
        BASES,
        POWER_BASES,
        POWER_OFFSETS,
        STRATEGIES,
    )

__all__ = [
    "BASES",
    "POWER_BASES",
    "POWER_OFFSETS",
    "STRATEGIES",
    "Input",
    "Param",
    "Pool",
    "Strategy",
    "Task",
]

_HOMES = {
    "BASES": "registry",
    "POWER_BASES": "registry",
    "POWER_OFFSETS": "registry",
    "STRATEGIES": "registry",
    "Input": "_types",
    "Param": "_types",
    "Pool": "_types",
    "Strategy": "_types",
    "Task": "_types",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value
