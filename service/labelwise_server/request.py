"""The request as the stages pass it on, transport-free: no protobuf, no gRPC, no runtime.

decode/validation builds a Selection from the wire; the inference stage fills in what the
caller's models say; selection runs the strategy calls on it. Pool and Task are the
strategies' own input types (strategies/_types.py: strategies import nothing above them),
re-exported here so every stage takes its types from one module.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from labelwise_server.strategies._types import (
    ModelAccess,
    ParamValue,
    Pool,
    RealArray,
    Strategy,
    Task,
)

__all__ = [
    "MAX_MC_SAMPLES",
    "MAX_MODELS",
    "MAX_STRATEGIES",
    "ModelAccess",
    "ModelRun",
    "ModelSource",
    "Pool",
    "Selection",
    "StrategyCall",
    "Task",
]

# Strategies per request (TOO_MANY_STRATEGIES beyond).
MAX_STRATEGIES = 64
# Models per request (TOO_MANY_MODELS beyond), and MC-dropout runs of one model.
MAX_MODELS = 64
MAX_MC_SAMPLES = 64


@dataclass(frozen=True)
class StrategyCall:
    """One validated StrategySpec: the registry entry and its parameters with defaults."""

    strategy: Strategy
    params: Mapping[str, ParamValue]
    field: str


@dataclass(frozen=True)
class ModelSource:
    """One model of the request: its ONNX bytes, or the sha256 of bytes sent before."""

    onnx: bytes | None
    sha256: str | None
    field: str  # models[i]


@dataclass(frozen=True)
class ModelRun:
    """Model mode's validated settings: which models run on which rows, and how to read them."""

    models: tuple[ModelSource, ...]
    inputs: RealArray  # [n, d] the models' input rows
    input_field: str  # model_inputs, or embeddings
    embeddings_output: str  # "" for none
    mc_samples: int  # 0, or >= 2 dropout runs of the one model
    seed: int
    batch_rows: int  # 0: the runner's choice
    timeout: float | None  # seconds for the inference, from its start
    logits: bool  # the class output is logits (softmax at temperature), not probabilities
    temperature: float
    needs_model: bool  # a strategy works through the model itself (ModelAccess)

    @property
    def committee(self) -> bool:
        """The models give a committee [m, n, c]: several models, or several dropout runs."""
        return self.mc_samples > 0 or len(self.models) > 1


@dataclass(frozen=True)
class Selection:
    """A validated request: the pool, what to run on it, and how many to pick."""

    pool: Pool
    calls: tuple[StrategyCall, ...]
    task: Task
    models: ModelRun | None = None  # model mode until the inference stage has run them
