"""The loop sends auto the rounds so far: the seed set, then each round's arms, labels and
predictions (a recording stand-in for the client)."""

from typing import Any

import numpy as np

from labelwise import AutoSelection, Round, Selection
from labelwise_simulate.data import DataSource, load, split
from labelwise_simulate.defaults import Protocol
from labelwise_simulate.loop import StrategyPlan
from labelwise_simulate.loop import run as run_loop


class _AutoClient:
    """Answers "auto" with the first k items, the even ones picked by "margin"; records the
    history it was sent (copied: the loop appends to its list)."""

    def __init__(self) -> None:
        self.histories: list[list[Round]] = []
        self.probabilities: list[Any] = []

    def select(self, *, strategies: list[str], k: int, **inputs: Any) -> dict[str, Selection]:
        self.histories.append(list(inputs["history"]))
        self.probabilities.append(inputs["probabilities"])
        picks = np.arange(k, dtype=np.int64)
        arms = ["margin" if i % 2 == 0 else "random" for i in range(k)]
        report = AutoSelection([], arms, "rare_surprise", 0, 0)
        return {"auto": Selection("auto", picks, np.zeros(k), {}, 0.0, auto=report)}


def test_the_loop_sends_auto_every_round_so_far() -> None:
    data_split = split(load(DataSource("wine")), 0.3, seed=0)
    client = _AutoClient()
    run_loop(client, data_split, StrategyPlan("auto", frozenset({"probabilities"})),
             budget=26, protocol=Protocol(), seed=0)  # type: ignore[arg-type]  # fmt: skip
    first, second = client.histories
    [seed] = first
    assert seed.strategies == "" and len(np.asarray(seed.labels)) == 6
    assert second[0] is seed and len(second) == 2
    latest = second[1]
    assert list(latest.strategies) == ["margin", "random"] * 5
    # The labels of the ten items picked (the first ten of the unlabeled pool) and what the
    # model predicted for them before labeling.
    unlabeled = np.setdiff1d(np.arange(len(data_split.pool_y)), _seed_indices(data_split, seed))
    assert np.asarray(latest.labels).tolist() == data_split.pool_y[unlabeled[:10]].tolist()
    assert np.array_equal(latest.probabilities, client.probabilities[0][:10])


def _seed_indices(data_split: Any, seed: Round) -> Any:
    from labelwise_simulate.data import initial_labeled

    indices = initial_labeled(data_split.pool_y, Protocol().initial_per_class,
                              np.random.default_rng(0))  # fmt: skip
    assert data_split.pool_y[indices].tolist() == np.asarray(seed.labels).tolist()
    return indices
