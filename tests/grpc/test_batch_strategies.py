"""The batch and hybrid strategies over a real channel: listed, served, streamed, checked."""

from typing import Any

import grpc
import numpy as np
import pytest

from labelwise import Client, LabelwiseError
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server.strategies import hybrid
from labelwise_server.strategies.diversity import typiclust_select

RNG = np.random.default_rng(21)
N, C, D = 400, 5, 8
P = RNG.dirichlet(np.ones(C) * 0.5, size=N).astype(np.float32)
X = RNG.normal(size=(N, D)).astype(np.float32)
L = RNG.normal(size=(6, D)).astype(np.float32)
NEW = ("typiclust", "badge", "cluster_margin", "information_density", "ranked_batch")


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.QuerySelectionServiceStub:
    return pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]


def test_list_strategies_describes_the_new_strategies_and_their_params(client: Client) -> None:
    listed = {s.name: s for s in client.list_strategies()}
    for name in NEW:
        assert name in listed, name
        assert listed[name].description
    assert {"prefilter", "prefilter_size"} <= set(listed["badge"].params)
    assert {"neighbours", "max_clusters", "prefilter"} <= set(listed["typiclust"].params)
    assert listed["information_density"].params["base"].default == "entropy"
    assert "bald" in listed["information_density"].params["base"].allowed_values
    assert listed["ranked_batch"].params["base"].default == "least_confidence"
    assert {"margin_multiple", "clusters"} <= set(listed["cluster_margin"].params)
    assert listed["badge"].batch and listed["badge"].seeded
    assert not listed["information_density"].batch


def test_badge_over_the_wire_equals_the_function(client: Client) -> None:
    picks = client.select(
        strategies=["badge"], k=20, probabilities=P, embeddings=X, exclude=[0, 1], seed=9,
        deadline=30,
    )  # fmt: skip
    expected, scores = hybrid.badge_select(P, X, np.arange(2, N), 20, np.random.default_rng(9))
    np.testing.assert_array_equal(picks["badge"].indices, expected)
    np.testing.assert_array_equal(picks["badge"].scores, scores)
    assert picks["badge"].candidates_considered == N - 2
    assert picks["badge"].total_cost == 20.0


def test_every_new_strategy_answers_with_budget_and_prefilter_reported(client: Client) -> None:
    costs = RNG.uniform(0.5, 2.0, size=N)
    strategies: list[Any] = [
        ("typiclust", {"prefilter": "random", "prefilter_size": 100}),
        ("badge", {"prefilter": "uncertainty", "prefilter_size": 50}),
        "cluster_margin",
        ("information_density", {"base": "margin", "beta": 2.0}),
        ("ranked_batch", {"metric": "cosine"}),
    ]
    picks = client.select(
        strategies=strategies, k=10, probabilities=P, embeddings=X, labeled_embeddings=L,
        costs=costs, budget=6.0, seed=3, deadline=30,
    )  # fmt: skip
    considered = {name: picks[name].candidates_considered for name in NEW}
    assert considered == {
        "typiclust": 100, "badge": 50, "cluster_margin": 100, "information_density": N,
        "ranked_batch": N,
    }  # fmt: skip
    for name in NEW:
        chosen = picks[name].indices
        assert len(set(chosen.tolist())) == len(chosen) <= 10
        assert picks[name].total_cost == pytest.approx(costs[chosen].sum())
        assert picks[name].total_cost <= 6.0


def test_typiclust_stream_equals_unary(client: Client, stub: Any) -> None:
    from labelwise.tensors import encode_tensor

    header = dict(k=12, seed=4, strategies=[pb.StrategySpec(name="typiclust")])
    unary = stub.SelectQueries(
        pb.SelectQueriesRequest(
            **header, embeddings=encode_tensor(X), labeled_embeddings=encode_tensor(L)
        ),
        timeout=30,
    )
    chunks = [
        pb.SelectQueriesStreamRequest(
            chunk=pb.SelectQueriesRequest(
                **header, embeddings=encode_tensor(X[:150]), labeled_embeddings=encode_tensor(L)
            )
        ),
        pb.SelectQueriesStreamRequest(
            chunk=pb.SelectQueriesRequest(embeddings=encode_tensor(X[150:]))
        ),
    ]
    streamed = stub.SelectQueriesStream(iter(chunks), timeout=30)
    assert streamed.response == unary
    expected, _ = typiclust_select(X, L, np.arange(N), 12, 4)
    assert list(unary.results[0].indices) == expected.tolist()


def test_uncertainty_prefilter_without_probabilities_names_the_strategy(client: Client) -> None:
    with pytest.raises(LabelwiseError) as caught:
        client.select(
            strategies=[("core_set", {"prefilter": "uncertainty"})], k=3, embeddings=X, deadline=10
        )
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in caught.value.violations] == ["strategies[0].name"]
    assert "probabilities" in caught.value.violations[0].description


def test_information_density_base_needs_its_inputs(client: Client) -> None:
    with pytest.raises(LabelwiseError) as caught:
        client.select(
            strategies=[("information_density", {"base": "bald"})], k=3, probabilities=P,
            embeddings=X, deadline=10,
        )  # fmt: skip
    assert "committee" in caught.value.violations[0].description


def test_cluster_margin_k_over_its_cap_is_invalid_argument(client: Client) -> None:
    n = hybrid.CLUSTER_MARGIN_MAX_KMEANS_ITEMS + 10
    p = RNG.dirichlet(np.ones(2), size=n).astype(np.float32)
    with pytest.raises(LabelwiseError) as caught:
        client.select(
            strategies=["cluster_margin"], k=n - 1, probabilities=p,
            embeddings=np.ones((n, 1), np.float32), deadline=30,
        )  # fmt: skip
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in caught.value.violations] == ["k"]
