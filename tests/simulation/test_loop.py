"""One loop: what each round sends the service (a recording stand-in for the client)."""

from typing import Any

import numpy as np

from labelwise import Selection
from labelwise_simulate.data import DataSource, load, split
from labelwise_simulate.defaults import Protocol
from labelwise_simulate.loop import StrategyPlan
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
