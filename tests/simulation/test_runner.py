"""Which of the service's strategies labelwise-simulate runs."""

import pytest

from labelwise import Client
from labelwise_simulate.runner import plan_strategies


def test_only_classification_strategies_are_simulated(address: str) -> None:
    with Client(address) as client:
        plans, skipped = plan_strategies(client, [])
    names = {plan.name for plan in plans}
    assert {"random", "entropy", "bald", "core_set"} <= names
    assert not names & {"gsx", "multilabel_entropy", "structured_entropy", "regression_variance"}
    assert skipped["gsx"] == ["regression outputs"]
    assert skipped["structured_bald"] == ["structured outputs"]
    assert skipped["multilabel_bald"] == ["multi-label outputs"]


def test_a_subset_keeps_random_and_an_unknown_name_is_refused(address: str) -> None:
    with Client(address) as client:
        plans, _ = plan_strategies(client, ["margin"])
        assert sorted(plan.name for plan in plans) == ["margin", "random"]
        with pytest.raises(ValueError, match="the service has no"):
            plan_strategies(client, ["no_such_strategy"])
