"""Which of the service's strategies labelwise-simulate runs."""

import pytest

from labelwise import Client
from labelwise_simulate.loop import StrategyPlan
from labelwise_simulate.runner import DEFAULT_VARIANTS, plan_strategies


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


def test_parameterised_variants_are_planned_after_their_strategy(address: str) -> None:
    with Client(address) as client:
        offered = {s.name: s for s in client.list_strategies()}
        plans, _ = plan_strategies(client, ["power_bald:beta=2.5", "margin", "power_bald"])
        assert [p.label for p in plans] == ["random", "margin", "power_bald:beta=2.5", "power_bald"]
        assert plans[2].params == (("beta", 2.5),) and plans[2].name == "power_bald"
        with pytest.raises(ValueError, match="margin has no parameter 'nope'"):
            plan_strategies(client, ["margin:nope=1"])
        everything, _ = plan_strategies(client, [])
    labels = [p.label for p in everything]
    # The default run adds entropy with class balance where the service offers it.
    for name, params in DEFAULT_VARIANTS:
        variant = StrategyPlan(name, frozenset(), "", params).label
        offers = {k for k, _ in params} <= set(offered[name].params)
        assert (variant in labels) == offers
        if offers:
            assert labels.index(variant) == labels.index(name) + 1
