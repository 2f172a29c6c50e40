"""Types shared by every strategy module and the registry.

It imports no strategy module (nor the registry), so the request types can be
imported without building the registry. Shape letters: n pool items, c classes,
m committee members, d embedding dims, l labeled items, k items to select, b rows
in one block of the pool.
"""

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt

from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies.params import Param as Param  # re-exported
from labelwise_server.strategies.params import ParamValue as ParamValue

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
# Pool tensors stay in the precision they arrived in (float32 or float64).
RealArray: TypeAlias = npt.NDArray[np.floating[Any]]
Params: TypeAlias = Mapping[str, ParamValue]


class Input(enum.Enum):
    """A kind of pool input; values match the proto's PoolInput numbers."""

    PROBABILITIES = 1  # [n, c], from probabilities or logits
    COMMITTEE = 2  # [m, n, c], from committee or committee_logits
    EMBEDDINGS = 3  # [n, d]
    LABELED_EMBEDDINGS = 4  # [l, d]
    ANY = 5  # only n is needed
    MULTILABEL_PROBABILITIES = 10  # [n, L], from multilabel_probabilities or multilabel_logits
    MULTILABEL_COMMITTEE = 11  # [m, n, L]
    LABELED_LABEL_CARDINALITY = 12  # a scalar: the labeled set's mean label count
    REGRESSION_PREDICTION = 13  # [n], regression_mean or the mean of regression_samples
    REGRESSION_SPREAD = 14  # [n], regression_std or the std of regression_samples
    LABELED_TARGETS = 15  # [l]
    STRUCTURED_PROBABILITIES = 16  # [n, c, E...]
    STRUCTURED_COMMITTEE = 17  # [m, n, c, E...]
    MODEL = 6  # a model sent with the request, with its inputs (model mode)


# logits_jacobian(x [b, d]) -> (logits [b, c], d logits / d x [b, c, d]), float64.
LogitsJacobian: TypeAlias = Callable[[FloatArray], tuple[FloatArray, FloatArray]]


# predict(x [b, d]) -> the model's class scores [b, c] (ONNX Runtime, as the pool was run).
Predict: TypeAlias = Callable[[FloatArray], RealArray]


def _no_predict(rows: FloatArray) -> RealArray:
    raise NotImplementedError("this pool's model has no predict callable")


@dataclass(frozen=True)
class ModelAccess:
    """The request's model as plain callables, for strategies that work through it."""

    inputs: RealArray  # [n, d] the model's input rows
    logits_jacobian: LogitsJacobian  # raises the model's refusal when not differentiable
    chunk_rows: int  # rows per logits_jacobian call that keep its memory bounded
    predict: Predict = _no_predict
    predict_rows: int = 4096  # rows per predict call that keep its memory bounded
    differentiable: bool = True  # logits_jacobian can run (every op the output needs has one)


@dataclass(frozen=True)
class HistoryRound:
    """One past round of the caller's labeling (the proto's SelectionRound), validated."""

    strategies: tuple[str, ...]  # [b] the arm that picked each item; "" for none
    labels: IntArray  # [b] class labels in [0, c)
    probabilities: FloatArray | None = None  # [b, c] predicted before labeling, when sent


@dataclass(frozen=True)
class History:
    """The caller's past rounds, oldest first (SelectQueriesRequest.history)."""

    rounds: tuple[HistoryRound, ...]

    @property
    def items(self) -> int:
        return sum(r.labels.shape[0] for r in self.rounds)


@dataclass(frozen=True)
class ArmReport:
    """One arm of "auto" as the result reports it (the proto's AutoArm)."""

    name: str
    picks: int
    weight: float
    expected_reward: float
    evidence: float


@dataclass(frozen=True)
class AutoReport:
    """What "auto" reports about its choice (the proto's AutoSelection)."""

    arms: tuple[ArmReport, ...]
    strategies: tuple[str, ...]  # aligned with the result's indices
    reward: str
    history_rounds: int
    history_items: int


@dataclass(frozen=True)
class Pool:
    """The validated pool inputs of one request; absent inputs are None."""

    n: int
    probabilities: RealArray | None = None  # [n, c] row-stochastic
    committee: RealArray | None = None  # [m, n, c] row-stochastic per member
    embeddings: RealArray | None = None  # [n, d]
    labeled_embeddings: RealArray | None = None  # [l, d]
    costs: FloatArray | None = None  # [n], > 0
    item_weights: FloatArray | None = None  # [n], >= 0: how many items each stands for
    multilabel: RealArray | None = None  # [n, L] in [0, 1]
    multilabel_committee: RealArray | None = None  # [m, n, L] in [0, 1]
    labeled_label_cardinality: float | None = None  # >= 0
    regression_mean: FloatArray | None = None  # [n]
    regression_std: FloatArray | None = None  # [n], >= 0
    regression_samples: FloatArray | None = None  # [m, n]
    labeled_targets: FloatArray | None = None  # [l], l >= 1
    structured: RealArray | None = None  # [n, c, E...], axis 1 sums to 1
    structured_committee: RealArray | None = None  # [m, n, c, E...]
    structured_mask: npt.NDArray[np.bool_] | None = None  # [n, E...]
    model: ModelAccess | None = None  # model mode only
    history: History | None = None  # the caller's past rounds, for "auto"


_T = TypeVar("_T")


def needed(value: _T | None, field: str) -> _T:
    """An input the strategy needs (Strategy.needs), which validation has checked is present;
    InvalidArgument naming its field if a caller skipped that check."""
    if value is None:
        raise InvalidArgument(field, "is needed by the strategy; the request does not carry it")
    return value


# Called between the steps of long loops; raises to abandon the work (a deadline passed,
# the caller left). What it raises is the caller's business: strategies let it through.
StopCheck: TypeAlias = Callable[[], None]


def never_stop() -> None:
    return None


@dataclass(frozen=True)
class Task:
    """What one strategy is asked for: k items among the candidates, within a budget."""

    k: int
    candidates: IntArray  # ascending pool indices that may be selected
    seed: int
    budget: float | None = None
    stop: StopCheck = never_stop  # batch strategies call it once per pick


class RowBlock(Protocol):
    """What a row-wise score reads of one block of rows: intermediates.Intermediates, whose
    values several strategies share (a protocol, so this module imports no strategy math)."""

    @property
    def probabilities(self) -> RealArray: ...  # [b, c]
    @property
    def committee(self) -> RealArray: ...  # [m, b, c]
    @property
    def members(self) -> int: ...  # m
    @property
    def top2(self) -> RealArray: ...  # [b, 2]: 2nd largest, largest
    @property
    def entropy(self) -> FloatArray: ...  # [b]
    @property
    def consensus(self) -> RealArray: ...  # [b, c]
    @property
    def consensus_entropy(self) -> FloatArray: ...  # [b]
    @property
    def mean_member_entropy(self) -> FloatArray: ...  # [b]
    @property
    def mutual_information(self) -> FloatArray: ...  # [b]
    @property
    def votes(self) -> FloatArray: ...  # [b, c]


# A row-wise score: one block of rows in, one score per row out ([b]).
BlockScore: TypeAlias = Callable[[RowBlock, Params], FloatArray]
# A whole-pool score ([n]), for strategies that are not row-wise.
PoolScore: TypeAlias = Callable[[Pool, Task, Params], FloatArray]
# A greedy batch: picks in pick order and the score each had when picked.
BatchSelect: TypeAlias = Callable[[Pool, Task, Params], tuple[IntArray, FloatArray]]
# A batch that also explains itself ("auto": which arm picked each item).
ExplainedSelect: TypeAlias = Callable[[Pool, Task, Params], tuple[IntArray, FloatArray, AutoReport]]
# Extra per-item output for the selected pool indices ([k, ...]), or None when not asked for.
SelectedPoints: TypeAlias = Callable[[Pool, Task, IntArray, Params], "FloatArray | None"]
# What each selected pool index stands for ([k]), or None when not asked for.
SelectedWeights: TypeAlias = Callable[[Pool, Task, IntArray, Params], "FloatArray | None"]
# A candidate pre-filter run before a batch strategy: the candidates it keeps (ascending).
Narrow: TypeAlias = Callable[[Pool, Task, Params], IntArray]


@dataclass(frozen=True)
class Strategy:
    """A registry entry: exactly one of block_score, pool_score, batch_select or
    explained_select is set."""

    name: str
    family: str
    summary: str
    needs: frozenset[Input]
    params: Mapping[str, Param] = field(default_factory=dict)
    block_score: BlockScore | None = None
    pool_score: PoolScore | None = None
    batch_select: BatchSelect | None = None
    explained_select: ExplainedSelect | None = None
    seeded: bool = False
    task: str = "classification"  # or "multi_label", "regression", "structured"
    # For a strategy over another one (power_bald's base): the inputs its params need.
    needs_of: Callable[[Params], frozenset[Input]] | None = None
    points: SelectedPoints | None = None  # e.g. deepfool's adversarial points
    # For strategies that can work more than one way: the way a call used (deepfool's method).
    method: Callable[[Pool, Params], str] | None = None
    narrow: Narrow | None = None  # batch strategies: narrows task.candidates first
    reads_item_weights: bool = False  # only such strategies may get Pool.item_weights
    # Per selected item, what it stands for (badge's represented_weights), or None.
    represented: "SelectedWeights | None" = None

    def __post_init__(self) -> None:
        kinds = [self.block_score, self.pool_score, self.batch_select, self.explained_select]
        if sum(kind is not None for kind in kinds) != 1:
            raise TypeError(f"strategy {self.name!r} must set exactly one scoring function")

    @property
    def batch(self) -> bool:
        return self.batch_select is not None or self.explained_select is not None

    def inputs(self, params: Params) -> frozenset[Input]:
        """The inputs a call with these (default-filled) params needs."""
        return self.needs if self.needs_of is None else self.needs_of(params)
