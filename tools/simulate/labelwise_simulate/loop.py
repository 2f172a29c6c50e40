"""One pool-based active-learning run, through the real service.

Each round: train the model from scratch on the labeled set, score the test set,
send the unlabeled pool's model outputs (and embeddings, when the strategy needs
them) to the service, and "label" the k items it returns from the held-out
ground truth. The pool sent is only the unlabeled items, so every returned index
is a candidate; the labeled items travel as labeled_embeddings.
"""

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from labelwise import Client, Round, Selection
from labelwise_simulate.data import FloatArray, IntArray, Split, initial_labeled
from labelwise_simulate.defaults import Protocol

# Pool inputs this simulation can produce; a strategy needing anything else is skipped.
SUPPORTED_INPUTS = frozenset(
    {"probabilities", "committee", "embeddings", "labeled_embeddings", "any"}
)


@dataclass(frozen=True)
class StrategyPlan:
    """A strategy to simulate and the pool inputs it needs (from ListStrategies)."""

    name: str
    inputs: frozenset[str]
    family: str = ""


@dataclass
class Curve:
    """Test accuracy after each round: labels[r] labels bought, cost[r] spent, accuracy[r]."""

    labels: list[int] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    select_seconds: float = 0.0  # wall time of the service calls, transport included


def make_model(protocol: Protocol) -> LogisticRegression:
    return LogisticRegression(max_iter=protocol.max_iter)


def _fit(model: Any, x: FloatArray, y: IntArray) -> Any:
    with warnings.catch_warnings():
        # A few labels can make lbfgs stop at max_iter; that is part of the protocol.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


def full_accuracy(split: Split, protocol: Protocol) -> float:
    """The same model trained on the whole labeled pool: the ceiling the curves aim at."""
    model = _fit(make_model(protocol), split.pool_x, split.pool_y)
    return float(model.score(split.test_x, split.test_y))


def _probabilities(model: Any, x: FloatArray, n_classes: int) -> FloatArray:
    """predict_proba with a column for every class, also those the model never saw."""
    seen = model.predict_proba(x)  # [n, classes seen]
    if seen.shape[1] == n_classes:
        return np.asarray(seen, dtype=np.float64)
    full = np.zeros((len(x), n_classes))
    full[:, model.classes_] = seen
    return full


def _committee(
    protocol: Protocol,
    x: FloatArray,
    y: IntArray,
    pool: FloatArray,
    n_classes: int,
    rng: np.random.Generator,
) -> FloatArray:
    """[m, n, c] member probabilities: stratified bootstrap LRs, or MLPs of different seeds."""
    members = []
    for member in range(protocol.committee_size):
        if protocol.committee_model == "mlp":
            model = MLPClassifier(
                hidden_layer_sizes=(protocol.mlp_hidden,),
                max_iter=500,
                random_state=int(rng.integers(2**31)),
            )
            members.append(_probabilities(_fit(model, x, y), pool, n_classes))
            continue
        # Resample within each class so every member sees every labeled class.
        at = np.concatenate(
            [rng.choice(np.flatnonzero(y == c), size=int(np.sum(y == c))) for c in np.unique(y)]
        )
        del member
        members.append(_probabilities(_fit(make_model(protocol), x[at], y[at]), pool, n_classes))
    return np.stack(members)


def history_round(
    selection: Selection, picked: int, labels: IntArray, probabilities: FloatArray
) -> Round:
    """The round "auto" is sent next time for the picked items it chose: the arm that picked
    each (its AutoSelection), the labels they got and what the model predicted for them."""
    assert selection.auto is not None
    return Round(
        strategies=selection.auto.strategies[:picked],
        labels=labels,
        probabilities=probabilities[selection.indices[:picked]],
    )


def run(
    client: Client,
    split: Split,
    strategy: StrategyPlan,
    budget: int,
    protocol: Protocol,
    seed: int,
    on_round: Callable[[], None] = lambda: None,
) -> Curve:
    """Label up to budget items (the initial set included) with one strategy; the curve.

    Cost-aware (protocol.cost_aware and the data have costs): spend up to
    dollar_budget() instead, each round at most batch_size × the mean cost, with
    the service choosing items that fit (its costs + budget request fields).
    """
    rng = np.random.default_rng(seed)
    labeled = initial_labeled(split.pool_y, protocol.initial_per_class, rng)
    strategy_rng = np.random.default_rng([seed, 1])
    costs = split.pool_costs
    curve = Curve()
    is_labeled = np.zeros(len(split.pool_y), dtype=bool)
    is_labeled[labeled] = True
    round_number = 0
    cost_aware = protocol.cost_aware and costs is not None
    dollars = dollar_budget(split, budget)
    # "auto" chooses among strategies from the rounds so far; the initial set credits none.
    history = [Round("", split.pool_y[labeled])] if strategy.name == "auto" else None
    while True:
        x, y = split.pool_x[is_labeled], split.pool_y[is_labeled]
        model = _fit(make_model(protocol), x, y)
        curve.labels.append(int(is_labeled.sum()))
        curve.cost.append(float(costs[is_labeled].sum()) if costs is not None else curve.labels[-1])
        curve.accuracy.append(float(model.score(split.test_x, split.test_y)))
        unlabeled = np.flatnonzero(~is_labeled)
        k = min(protocol.batch_size, budget - curve.labels[-1], len(unlabeled))
        round_dollars: float | None = None
        if cost_aware:
            assert costs is not None
            remaining = dollars - curve.cost[-1]
            cheapest = float(costs[unlabeled].min()) if len(unlabeled) else math.inf
            # A round may buy the cheapest item even when it costs more than a usual round.
            round_dollars = min(max(protocol.batch_size * float(costs.mean()), cheapest), remaining)
            k = len(unlabeled) if cheapest <= remaining else 0
        if k <= 0:
            return curve
        pool = split.pool_x[unlabeled]
        committee: npt.NDArray[Any] | None = None
        if "committee" in strategy.inputs:
            committee = _committee(protocol, x, y, pool, split.n_classes, strategy_rng)
        geometric = bool({"embeddings", "labeled_embeddings"} & strategy.inputs)
        started = time.perf_counter()
        probabilities = _probabilities(model, pool, split.n_classes)
        selection = client.select(
            strategies=[strategy.name],
            k=k,
            probabilities=probabilities,
            committee=committee,
            # The standardised features are the embedding space of a linear model.
            embeddings=pool if geometric else None,
            labeled_embeddings=x if geometric else None,
            costs=costs[unlabeled] if cost_aware and costs is not None else None,
            budget=round_dollars,
            seed=seed * 10007 + round_number,
            clamp_k=True,
            history=history,
        )[strategy.name]
        curve.select_seconds += time.perf_counter() - started
        picked = unlabeled[selection.indices[:k]]
        if len(picked) == 0:
            return curve
        is_labeled[picked] = True
        if history is not None:
            history.append(
                history_round(selection, len(picked), split.pool_y[picked], probabilities)
            )
        round_number += 1
        on_round()


def dollar_budget(split: Split, budget: int) -> float:
    """What budget labels cost at the pool's mean cost; budget itself without costs."""
    if split.pool_costs is None:
        return float(budget)
    return budget * float(split.pool_costs.mean())


def rounds(split_size: int, n_classes: int, budget: int, protocol: Protocol) -> int:
    """How many selection rounds a run makes (for the progress bar)."""
    start = min(n_classes * protocol.initial_per_class, budget)
    return -(-(min(budget, split_size) - start) // protocol.batch_size)
