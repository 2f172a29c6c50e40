"""One loop: what each round sends the service (a recording stand-in for the client)."""

import itertools
from typing import Any

import numpy as np
import pytest

from labelwise import Selection
from labelwise_simulate.data import DataSource, load, split
from labelwise_simulate.defaults import Protocol
from labelwise_simulate.loop import StrategyPlan, parse_plan_text
from labelwise_simulate.loop import run as run_loop


class _RecordingClient:
    """Stands in for labelwise.Client: records what a round sends, picks the first k items."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def select(self, *, strategies: list[str], k: int, **inputs: Any) -> dict[str, Selection]:
        self.calls.append({"k": k, **inputs})
        n = len(inputs["probabilities"])
        picks = np.arange(min(k, n), dtype=np.int64)
        return {strategies[0]: Selection(strategies[0], picks, np.zeros(len(picks)), {}, 0.0)}


def test_embedding_and_committee_strategies_get_features_and_members_of_the_unlabeled_pool() -> (
    None
):
    data_split = split(load(DataSource("wine")), 0.3, seed=0)
    client = _RecordingClient()
    plan = StrategyPlan("a_hybrid", frozenset({"probabilities", "committee", "embeddings"}))
    curve = run_loop(
        client, data_split, plan, budget=26, protocol=Protocol(committee_size=3), seed=0
    )  # type: ignore[arg-type]
    assert curve.labels == [6, 16, 26]
    first, second = client.calls
    n, d = data_split.pool_x.shape
    assert first["embeddings"].shape == (n - 6, d)
    assert first["labeled_embeddings"].shape == (6, d)
    assert second["labeled_embeddings"].shape == (16, d)
    assert first["committee"].shape == (3, n - 6, 3)
    assert np.allclose(first["committee"].sum(axis=2), 1.0)
    assert first["probabilities"].shape == (n - 6, 3)
    # The first round labeled pool items 0.. of the unlabeled list; they are gone from the next.
    assert len(second["probabilities"]) == n - 16


def test_probability_strategies_send_no_committee_nor_embeddings() -> None:
    data_split = split(load(DataSource("wine")), 0.3, seed=1)
    client = _RecordingClient()
    run_loop(
        client, data_split, StrategyPlan("margin", frozenset({"probabilities"})), 16, Protocol(), 1
    )  # type: ignore[arg-type]
    (call,) = client.calls
    assert call["committee"] is None and call["embeddings"] is None


@pytest.mark.parametrize(
    ("target", "ends_at"),
    [(None, 26), (0.0, 26), (2.0, 78)],
    ids=["no_target", "reached_by_the_budget", "never_reached_goes_to_the_cap"],
)
def test_a_run_short_of_its_target_goes_on_past_the_budget_up_to_the_cap(
    target: float | None, ends_at: int
) -> None:
    data_split = split(load(DataSource("wine")), 0.3, seed=0)
    client = _RecordingClient()
    plan = StrategyPlan("margin", frozenset({"probabilities"}))
    curve = run_loop(client, data_split, plan, 26, Protocol(cap_factor=3.0), 0, target=target)  # type: ignore[arg-type]
    assert curve.labels[-1] == ends_at
    assert curve.labels[:3] == [6, 16, 26]
    # Same batches past the budget as before it.
    assert all(b - a == 10 or b == ends_at for a, b in itertools.pairwise(curve.labels))
    assert [c["k"] for c in client.calls] == [b - a for a, b in itertools.pairwise(curve.labels)]


def test_a_run_stops_at_the_first_round_past_the_budget_that_reaches_the_target() -> None:
    data_split = split(load(DataSource("wine")), 0.3, seed=2)
    plan = StrategyPlan("margin", frozenset({"probabilities"}))
    free = run_loop(_RecordingClient(), data_split, plan, 16, Protocol(cap_factor=6.0), 2,
                    target=2.0)  # type: ignore[arg-type]  # fmt: skip
    assert free.labels[-1] == 96
    past = [(n, a) for n, a in zip(free.labels, free.accuracy, strict=True) if n > 16]
    below_budget = max(a for n, a in zip(free.labels, free.accuracy, strict=True) if n <= 16)
    # A target first met somewhere past the budget: the run ends exactly there.
    goal_at = next((n, a) for n, a in past if a > below_budget)
    stopped = run_loop(_RecordingClient(), data_split, plan, 16, Protocol(cap_factor=6.0), 2,
                       target=goal_at[1])  # type: ignore[arg-type]  # fmt: skip
    assert stopped.labels[-1] == goal_at[0]
    assert stopped.accuracy == free.accuracy[: len(stopped.accuracy)]


@pytest.mark.parametrize("model", ["logistic", "random_forest", "mlp"])
def test_every_model_family_runs_and_is_deterministic(model: str) -> None:
    data_split = split(load(DataSource("wine")), 0.3, seed=0)
    plan = StrategyPlan("margin", frozenset({"probabilities"}))
    protocol = Protocol(model=model)
    first = run_loop(_RecordingClient(), data_split, plan, 26, protocol, 0)  # type: ignore[arg-type]
    again = run_loop(_RecordingClient(), data_split, plan, 26, protocol, 0)  # type: ignore[arg-type]
    assert first.accuracy == again.accuracy and len(first.accuracy) == 3
    assert all(0.3 < a <= 1.0 for a in first.accuracy)
    from labelwise_simulate.loop import make_model

    kind = type(make_model(protocol, 0)).__name__
    assert kind == {"logistic": "LogisticRegression", "random_forest": "RandomForestClassifier",
                    "mlp": "MLPClassifier"}[model]  # fmt: skip


def test_strategy_texts_parse_to_names_and_typed_parameters() -> None:
    assert parse_plan_text("entropy") == ("entropy", ())
    assert parse_plan_text("entropy:class_balance=true") == ("entropy", (("class_balance", True),))
    name, params = parse_plan_text("power_bald:beta=2,mode=x,scale=0.5")
    assert name == "power_bald"
    assert params == (("beta", 2), ("mode", "x"), ("scale", 0.5))
    assert StrategyPlan(name, frozenset(), "", params).label == "power_bald:beta=2,mode=x,scale=0.5"
    for bad in ("entropy:", "entropy:x", ":x=1", "entropy:x="):
        with pytest.raises(ValueError, match="NAME:KEY=VALUE"):
            parse_plan_text(bad)
