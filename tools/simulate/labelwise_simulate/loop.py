"""One pool-based active-learning run, through the real service.

Each round: train the model from scratch on the labeled set, score the test set,
send the unlabeled pool's model outputs (and embeddings, when the strategy needs
them) to the service, and "label" the k items it returns from the held-out
ground truth. The pool sent is only the unlabeled items, so every returned index
is a candidate; the labeled items travel as labeled_embeddings.

A run stops at the budget once its accuracy has reached the target it is given
(the highest share of full accuracy the report asks about); until then it goes on
past the budget, up to a cap, so that "labels to reach the target" is a
measurement rather than "more than the budget".
"""

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from labelwise import Client, Round, Selection
from labelwise_simulate.data import FloatArray, IntArray, Split, initial_labeled
from labelwise_simulate.defaults import Protocol

# A strategy parameter's value, as the client sends it.
ParamValue = int | float | str | bool

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
    # Strategy parameters sent with every request (e.g. a class-balance switch); a plan
    # with parameters is reported under its label, "name:key=value,...".
    params: tuple[tuple[str, ParamValue], ...] = ()

    @property
    def label(self) -> str:
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_param_text(v)}" for k, v in self.params)


def _param_text(value: ParamValue) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_plan_text(text: str) -> tuple[str, tuple[tuple[str, ParamValue], ...]]:
    """ "entropy" or "entropy:class_balance=true,beta=2": the name and typed parameters
    (true/false as bools, integers, decimals, else strings)."""
    name, _, rest = text.partition(":")
    if not name or (":" in text and not rest):
        raise ValueError(f"--strategies: {text!r} is not NAME or NAME:KEY=VALUE,...")
    params: list[tuple[str, ParamValue]] = []
    for item in rest.split(",") if rest else []:
        key, eq, raw = item.partition("=")
        if not key or not eq or not raw:
            raise ValueError(f"--strategies: {text!r} is not NAME or NAME:KEY=VALUE,...")
        value: ParamValue = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            for kind in (int, float):
                try:
                    value = kind(raw)
                    break
                except ValueError:
                    continue
        params.append((key, value))
    return name, tuple(sorted(params))


@dataclass
class Curve:
    """Test accuracy after each round: labels[r] labels bought, cost[r] spent, accuracy[r]."""

    labels: list[int] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    select_seconds: float = 0.0  # wall time of the service calls, transport included


def make_model(protocol: Protocol, seed: int = 0) -> Any:
    """A fresh, seeded model of the protocol's family (--model)."""
    if protocol.model == "random_forest":
        return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    if protocol.model == "mlp":
        return MLPClassifier(hidden_layer_sizes=(protocol.mlp_hidden,), max_iter=500,
                             random_state=seed)  # fmt: skip
    if protocol.model != "logistic":
        raise ValueError(f"unknown model {protocol.model!r}")
    return LogisticRegression(max_iter=protocol.max_iter)


def _fit(model: Any, x: FloatArray, y: IntArray) -> Any:
    with warnings.catch_warnings():
        # A few labels can make lbfgs stop at max_iter; that is part of the protocol.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


def full_accuracy(split: Split, protocol: Protocol, seed: int = 0) -> float:
    """The same model trained on the whole labeled pool: the ceiling the curves aim at."""
    model = _fit(make_model(protocol, seed), split.pool_x, split.pool_y)
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
        copy = make_model(protocol, int(rng.integers(2**31)))
        members.append(_probabilities(_fit(copy, x[at], y[at]), pool, n_classes))
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
    target: float | None = None,
) -> Curve:
    """Label up to budget items (the initial set included) with one strategy; the curve.

    With a target accuracy, a run that has not reached it at the budget goes on in
    batches of the same size until it does or until cap(budget) labels (the pool's size
    at most). Cost-aware (protocol.cost_aware and the data have costs): spend up to
    dollar_budget() instead, each round at most batch_size × the mean cost, with
    the service choosing items that fit (its costs + budget request fields); runs
    then stop at the budget.
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
    limit = budget
    # "auto" chooses among strategies from the rounds so far; the initial set credits none.
    history = [Round("", split.pool_y[labeled])] if strategy.name == "auto" else None
    while True:
        x, y = split.pool_x[is_labeled], split.pool_y[is_labeled]
        model = _fit(make_model(protocol, seed), x, y)
        curve.labels.append(int(is_labeled.sum()))
        curve.cost.append(float(costs[is_labeled].sum()) if costs is not None else curve.labels[-1])
        curve.accuracy.append(float(model.score(split.test_x, split.test_y)))
        if target is not None and not cost_aware and curve.labels[-1] >= budget:
            # Past the budget only until the target is reached: then stop where we are.
            reached = max(curve.accuracy) >= target
            limit = curve.labels[-1] if reached else max(budget, cap(budget, protocol))
        unlabeled = np.flatnonzero(~is_labeled)
        k = min(protocol.batch_size, limit - curve.labels[-1], len(unlabeled))
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
            strategies=[
                (strategy.name, dict(strategy.params)) if strategy.params else strategy.name
            ],
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


def cap(budget: int, protocol: Protocol) -> int:
    """Labels a run that has not reached its target at the budget may go on to."""
    return math.floor(budget * max(1.0, protocol.cap_factor))


def rounds(split_size: int, n_classes: int, budget: int, protocol: Protocol) -> int:
    """How many selection rounds a run makes (for the progress bar)."""
    start = min(n_classes * protocol.initial_per_class, budget)
    return -(-(min(budget, split_size) - start) // protocol.batch_size)
