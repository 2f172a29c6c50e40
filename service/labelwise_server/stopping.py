"""Stopping criteria: should the caller stop labeling? Stateless, from the request alone.

The caller sends what the models of its last r rounds predict on a fixed,
unlabeled stop set (labels [r, s] or probabilities [r, s, c]) and, optionally,
the current model's probabilities on the pool [n, c]. Three criteria:

- stabilizing_predictions (Bloodgood & Vijay-Shanker 2009): Cohen's kappa
  between successive rounds' labels on the stop set; stop when the mean of the
  last `window` kappas is >= the threshold (defaults 3 and 0.99, the paper's).
- overall_uncertainty (Zhu, Wang & Hovy 2008): the mean (or max) entropy of
  the current model's predictions; stop when it is <= the threshold.
- classification_change (Zhu, Wang & Hovy 2008): the fraction of stop-set
  items whose label changed between the last two rounds; stop when it is <=
  the threshold (default 0: no change at all).

The combined verdict is over the criteria that could be evaluated: all of them
say stop (the default, conservative rule) or any of them does.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import reasons
from labelwise_server.checks import SUM_TOLERANCE, check_class_probabilities
from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies._types import IntArray, RealArray
from labelwise_server.strategies.uncertainty import entropy_scores
from labelwise_server.tensors import INT_DTYPES, RawTensor, decode_tensor

DEFAULT_KAPPA_THRESHOLD = 0.99  # Bloodgood & Vijay-Shanker (2009)
DEFAULT_KAPPA_WINDOW = 3  # Bloodgood & Vijay-Shanker (2009)
DEFAULT_UNCERTAINTY_THRESHOLD = 0.01  # nats; ours (Zhu et al. tune it per task)
DEFAULT_MAX_CHANGE_FRACTION = 0.0  # Zhu et al. (2008): no label changes


def cohen_kappa(first: IntArray, second: IntArray) -> float:
    """Cohen's kappa (p_o − p_e) / (1 − p_e) between two label vectors [s]. Cohen (1960).

    p_o is the share of items given the same label, p_e the agreement expected
    by chance from the two label frequencies. When both give every item one
    and the same label (p_e = 1) they agree perfectly: kappa 1.
    """
    s = first.shape[0]
    _, codes = np.unique(np.concatenate([first, second]), return_inverse=True)
    classes = int(codes.max()) + 1
    counts_first = np.bincount(codes[:s], minlength=classes).astype(np.float64)
    counts_second = np.bincount(codes[s:], minlength=classes).astype(np.float64)
    observed = float(np.mean(first == second))
    expected = float(counts_first @ counts_second) / (float(s) * float(s))
    if expected >= 1.0:
        return 1.0
    return (observed - expected) / (1.0 - expected)


@dataclass(frozen=True)
class Criterion:
    name: str
    value: float
    threshold: float
    stop: bool
    evaluated: bool
    detail: str


@dataclass(frozen=True)
class Thresholds:
    kappa: float = DEFAULT_KAPPA_THRESHOLD
    window: int = DEFAULT_KAPPA_WINDOW
    uncertainty: float = DEFAULT_UNCERTAINTY_THRESHOLD
    aggregate: str = "mean"  # or "max"
    max_change: float = DEFAULT_MAX_CHANGE_FRACTION
    rule: str = "all"  # or "any"


@dataclass(frozen=True)
class StoppingInputs:
    labels: IntArray | None = None  # [r, s]
    stop_probabilities: RealArray | None = None  # [r, s, c] when sent as probabilities
    pool_probabilities: RealArray | None = None  # [n, c]
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class Verdict:
    stop: bool
    criteria: list[Criterion]
    kappas: list[float]


def evaluate(inputs: StoppingInputs) -> Verdict:
    """Every criterion the inputs allow, and the combined verdict."""
    t = inputs.thresholds
    criteria: list[Criterion] = []
    kappas: list[float] = []
    labels = inputs.labels
    if labels is not None:
        kappas = [cohen_kappa(labels[i], labels[i + 1]) for i in range(labels.shape[0] - 1)]
        if len(kappas) >= t.window:
            value = float(np.mean(kappas[-t.window :]))
            criteria.append(
                Criterion(
                    "stabilizing_predictions",
                    value,
                    t.kappa,
                    value >= t.kappa,
                    True,
                    f"mean Cohen's kappa of the last {t.window} pairs of successive rounds "
                    f"on {labels.shape[1]} stop-set items, compared with >= {t.kappa}",
                )
            )
        else:
            value = float(np.mean(kappas)) if kappas else 0.0
            criteria.append(
                Criterion(
                    "stabilizing_predictions",
                    value,
                    t.kappa,
                    False,
                    False,
                    f"needs at least {t.window + 1} rounds for a window of {t.window} kappas; "
                    f"got {labels.shape[0]}",
                )
            )
    probabilities = inputs.pool_probabilities
    source = "the pool"
    if probabilities is None and inputs.stop_probabilities is not None:
        probabilities = inputs.stop_probabilities[-1]
        source = "the stop set (last round)"
    if probabilities is not None:
        entropies = entropy_scores(probabilities)
        value = float(entropies.max() if t.aggregate == "max" else entropies.mean())
        criteria.append(
            Criterion(
                "overall_uncertainty",
                value,
                t.uncertainty,
                value <= t.uncertainty,
                True,
                f"{t.aggregate} entropy (nats) of the current model on {source} "
                f"({probabilities.shape[0]} items), compared with <= {t.uncertainty}",
            )
        )
    if labels is not None:
        if labels.shape[0] >= 2:
            value = float(np.mean(labels[-1] != labels[-2]))
            criteria.append(
                Criterion(
                    "classification_change",
                    value,
                    t.max_change,
                    value <= t.max_change,
                    True,
                    "fraction of stop-set items whose predicted label changed between the "
                    f"last two rounds, compared with <= {t.max_change}",
                )
            )
        else:
            criteria.append(
                Criterion(
                    "classification_change",
                    0.0,
                    t.max_change,
                    False,
                    False,
                    f"needs at least 2 rounds; got {labels.shape[0]}",
                )
            )
    verdicts = [c.stop for c in criteria if c.evaluated]
    combined = bool(verdicts) and (any(verdicts) if t.rule == "any" else all(verdicts))
    return Verdict(combined, criteria, kappas)


def _raw(tensor: pb.Tensor) -> RawTensor:
    return RawTensor(tensor.dtype, list(tensor.shape), memoryview(tensor.raw_data))


def decode_stopping(request: pb.CheckStoppingRequest, max_elements: int) -> StoppingInputs:
    """Check every field of a CheckStoppingRequest; raise InvalidArgument on the first bad one."""
    labels: IntArray | None = None
    stop_probabilities: RealArray | None = None
    if request.HasField("stop_set_predictions"):
        name = "stop_set_predictions"
        raw = request.stop_set_predictions
        array: npt.NDArray[Any] = decode_tensor(_raw(raw), name, max_elements, allow_int=True)
        if raw.dtype in INT_DTYPES:
            if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
                raise InvalidArgument(
                    f"{name}.shape",
                    f"must be [r, s] class labels with r >= 1 rounds and s >= 1 items; "
                    f"got {list(array.shape)}",
                )
            if (array < 0).any():
                where = [int(i) for i in np.unravel_index(int(np.argmax(array < 0)), array.shape)]
                raise InvalidArgument(
                    name, f"class labels must be >= 0; got a negative one at {where}"
                )
            labels = array.astype(np.int64)
        else:
            if array.ndim != 3 or array.shape[0] < 1 or array.shape[1] < 1:
                raise InvalidArgument(
                    f"{name}.shape",
                    f"must be [r, s, c] probabilities (or [r, s] labels as INT32/INT64) with "
                    f"r >= 1 and s >= 1; got {list(array.shape)}",
                )
            check_class_probabilities(array, name, "[r, s, c]", SUM_TOLERANCE[raw.dtype])
            stop_probabilities = array
            labels = array.argmax(axis=2).astype(np.int64)
    pool_probabilities: RealArray | None = None
    if request.HasField("pool_probabilities"):
        name = "pool_probabilities"
        raw = request.pool_probabilities
        array = decode_tensor(_raw(raw), name, max_elements)
        if array.ndim != 2 or array.shape[0] < 1:
            raise InvalidArgument(
                f"{name}.shape", f"must be [n, c] with n >= 1; got {list(array.shape)}"
            )
        check_class_probabilities(array, name, "[n, c]", SUM_TOLERANCE[raw.dtype])
        pool_probabilities = array
    if labels is None and pool_probabilities is None:
        raise InvalidArgument(
            "stop_set_predictions",
            "the request carries neither stop_set_predictions nor pool_probabilities; "
            "send at least one",
            reason=reasons.MISSING_INPUT,
        )
    return StoppingInputs(labels, stop_probabilities, pool_probabilities, _thresholds(request))


def _thresholds(request: pb.CheckStoppingRequest) -> Thresholds:
    kappa = (
        request.kappa_threshold if request.HasField("kappa_threshold") else DEFAULT_KAPPA_THRESHOLD
    )
    if not (np.isfinite(kappa) and 0 < kappa <= 1):
        raise InvalidArgument("kappa_threshold", f"must be in (0, 1]; got {kappa}")
    window = request.kappa_window if request.HasField("kappa_window") else DEFAULT_KAPPA_WINDOW
    if window < 1:
        raise InvalidArgument("kappa_window", f"must be >= 1; got {window}")
    uncertainty = (
        request.uncertainty_threshold
        if request.HasField("uncertainty_threshold")
        else DEFAULT_UNCERTAINTY_THRESHOLD
    )
    if not (np.isfinite(uncertainty) and uncertainty >= 0):
        raise InvalidArgument(
            "uncertainty_threshold", f"must be finite and >= 0; got {uncertainty}"
        )
    change = (
        request.max_change_fraction
        if request.HasField("max_change_fraction")
        else DEFAULT_MAX_CHANGE_FRACTION
    )
    if not (np.isfinite(change) and 0 <= change <= 1):
        raise InvalidArgument("max_change_fraction", f"must be in [0, 1]; got {change}")
    aggregates = {
        pb.UNCERTAINTY_AGGREGATE_UNSPECIFIED: "mean",
        pb.UNCERTAINTY_AGGREGATE_MEAN: "mean",
        pb.UNCERTAINTY_AGGREGATE_MAX: "max",
    }
    if request.uncertainty_aggregate not in aggregates:
        raise InvalidArgument(
            "uncertainty_aggregate",
            f"must be UNCERTAINTY_AGGREGATE_MEAN or _MAX; got {request.uncertainty_aggregate}",
        )
    rules = {
        pb.STOPPING_RULE_UNSPECIFIED: "all",
        pb.STOPPING_RULE_ALL: "all",
        pb.STOPPING_RULE_ANY: "any",
    }
    if request.rule not in rules:
        raise InvalidArgument("rule", f"must be STOPPING_RULE_ALL or _ANY; got {request.rule}")
    return Thresholds(
        kappa=float(kappa),
        window=int(window),
        uncertainty=float(uncertainty),
        aggregate=aggregates[request.uncertainty_aggregate],
        max_change=float(change),
        rule=rules[request.rule],
    )


def encode_verdict(verdict: Verdict) -> pb.CheckStoppingResponse:
    return pb.CheckStoppingResponse(
        stop=verdict.stop,
        criteria=[
            pb.StoppingCriterion(
                name=c.name,
                value=c.value,
                threshold=c.threshold,
                stop=c.stop,
                evaluated=c.evaluated,
                detail=c.detail,
            )
            for c in verdict.criteria
        ],
        kappas=verdict.kappas,
    )
