"""Which of the service's strategies labelwise simulate runs."""

from typing import Any

from labelwise.client import StrategyDescription
from labelwise_server.grpc.servicer import list_strategies_response
from labelwise_server.simulation.runner import plan_strategies

INPUT_NAMES = {1: "probabilities", 2: "committee", 3: "embeddings", 4: "labeled_embeddings",
               5: "any"}  # fmt: skip


class _Offering:
    """A stand-in client whose ListStrategies is the server's own answer."""

    def list_strategies(self) -> list[Any]:
        return [
            StrategyDescription(
                name=s.name,
                family=s.family,
                description=s.description,
                params={},
                required_inputs=[INPUT_NAMES.get(int(i), f"input_{i}") for i in s.required_inputs],
                batch=s.batch,
                seeded=s.seeded,
                task=s.task,
            )
            for s in list_strategies_response().strategies
        ]


def test_only_classification_strategies_are_simulated() -> None:
    plans, skipped = plan_strategies(_Offering(), [])  # type: ignore[arg-type]
    names = {plan.name for plan in plans}
    assert {"random", "entropy", "bald", "core_set"} <= names
    assert not names & {"gsx", "multilabel_entropy", "structured_entropy", "regression_variance"}
    assert skipped["gsx"] == ["regression outputs"]
    assert skipped["structured_bald"] == ["structured outputs"]
    assert skipped["multilabel_bald"] == ["multi-label outputs"]
