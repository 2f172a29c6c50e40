"""ShardedClient over two replicas: row-wise strategies equal one server; batch strategies
select the final batch from the union of the shards' picks."""

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from labelwise import Client
from labelwise.sharded import ShardedClient, block_rows, resolve, shard_bounds
from tests.grpc.conftest import TEST_CONFIG, ServerThread

ROW_WISE = [
    "least_confidence", "margin", "ratio", "entropy", "vote_entropy", "consensus_entropy",
    "kl_to_consensus", "bald", "variation_ratio", "mean_std",
]  # fmt: skip


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[ServerThread]]:
    threads = [ServerThread(TEST_CONFIG) for _ in range(2)]
    yield threads
    for thread in threads:
        thread.stop()


def _same(a: Any, b: Any) -> None:
    assert a.indices.tobytes() == b.indices.tobytes()
    assert a.scores.tobytes() == b.scores.tobytes()
    assert (a.total_cost, a.candidates_considered, a.params) == (
        b.total_cost,
        b.candidates_considered,
        b.params,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_wise_strategies_sharded_equal_one_server(
    replicas: list[ServerThread], dtype: Any
) -> None:
    rng = np.random.default_rng(0)
    inputs = {
        "probabilities": rng.dirichlet(np.ones(8) * 0.3, size=150_000).astype(dtype),
        "committee": rng.dirichlet(np.ones(8) * 0.3, size=(2, 150_000)).astype(dtype),
        "costs": rng.uniform(1, 2, size=150_000),
    }
    inputs["probabilities"][100_000::9] = inputs["probabilities"][3]  # ties across shards
    assert len(shard_bounds(150_000, 2, block_rows(inputs))) == 2
    exclude = rng.choice(150_000, size=5000, replace=False)
    with (
        Client(replicas[0].address) as one,
        ShardedClient([r.address for r in replicas]) as sharded,
    ):
        for k, excluded in ((1, None), (50, exclude)):
            expected = one.select(strategies=ROW_WISE, k=k, exclude=excluded, **inputs)
            got = sharded.select(strategies=ROW_WISE, k=k, exclude=excluded, **inputs)
            for name in ROW_WISE:
                _same(got[name], expected[name])


def test_clamp_k_and_errors_as_one_server(replicas: list[ServerThread]) -> None:
    p = np.random.default_rng(1).dirichlet(np.ones(3), size=40)
    with (
        Client(replicas[0].address) as one,
        ShardedClient([r.address for r in replicas]) as sharded,
    ):
        got = sharded.select(
            strategies=["margin"], k=100, clamp_k=True, exclude=[0, 1], probabilities=p
        )
        expected = one.select(
            strategies=["margin"], k=100, clamp_k=True, exclude=[0, 1], probabilities=p
        )
        _same(got["margin"], expected["margin"])
        with pytest.raises(ValueError, match="clamp_k"):
            sharded.select(strategies=["margin"], k=100, probabilities=p)
        with pytest.raises(ValueError, match="budget"):
            sharded.select(strategies=["margin"], k=1, budget=3.0, probabilities=p)


def naive_represented(
    p: np.ndarray, x: np.ndarray, picks: np.ndarray, candidates: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """Each candidate's weight to its nearest pick in BADGE's gradient space, (p − e_ŷ) ⊗ x
    built in float64 (ties: the earlier pick)."""
    a = p - np.eye(p.shape[1])[p.argmax(axis=1)]
    g = (a[:, :, None] * x.astype(np.float64)[:, None, :]).reshape(p.shape[0], -1)
    d2 = ((g[candidates][:, None, :] - g[picks][None, :, :]) ** 2).sum(axis=2)
    return np.bincount(d2.argmin(axis=1), weights=w[candidates], minlength=picks.shape[0])


@pytest.mark.parametrize("caller_weights", [False, True])
def test_batch_strategies_select_from_the_union_of_the_shards_picks(
    replicas: list[ServerThread], caller_weights: bool
) -> None:
    rng = np.random.default_rng(2)
    n = 3000
    embeddings = rng.normal(size=(n, 8)).astype(np.float32)
    probabilities = rng.dirichlet(np.ones(4), size=n)
    labeled = rng.normal(size=(20, 8)).astype(np.float32)
    item_weights = rng.integers(1, 4, n).astype(np.float64) if caller_weights else None
    w = np.ones(n) if item_weights is None else item_weights
    addresses = [r.address for r in replicas]
    excluded = [5, 2500]
    names = ["badge"] if caller_weights else ["core_set", "badge"]  # item_weights: badge's
    # Batch strategies' shards are even halves.
    with (
        ShardedClient(addresses, oversample=3) as sharded,
        Client(addresses[0]) as one,
    ):
        got = sharded.select(
            strategies=names,
            k=10,
            seed=3,
            embeddings=embeddings,
            probabilities=probabilities,
            labeled_embeddings=labeled,
            exclude=excluded,
            item_weights=item_weights,
        )
        # The naive second run: each shard's 30 exact picks (badge: with what each stands
        # for among the shard's candidates, by NumPy), then one call on their union.
        union: dict[str, list[np.ndarray]] = {name: [] for name in names}
        weights: list[np.ndarray] = []
        for start, end in ((0, 1500), (1500, n)):
            local_exclude = [e - start for e in excluded if start <= e < end]
            picks = one.select(
                strategies=names,
                k=30,
                seed=3,
                clamp_k=True,
                embeddings=embeddings[start:end],
                probabilities=probabilities[start:end],
                labeled_embeddings=labeled,
                exclude=local_exclude,
                item_weights=None if item_weights is None else item_weights[start:end],
            )
            for name in names:
                union[name].append(picks[name].indices + start)
            candidates = np.setdiff1d(np.arange(start, end), excluded)
            weights.append(
                naive_represented(
                    probabilities, embeddings, picks["badge"].indices + start, candidates, w
                )
            )
        for name in names:
            rows = np.concatenate(union[name])
            order = np.argsort(rows)
            rows = rows[order]
            final = one.select(
                strategies=[name],
                k=10,
                seed=3,
                clamp_k=True,
                embeddings=embeddings[rows],
                probabilities=probabilities[rows],
                labeled_embeddings=labeled,
                item_weights=np.concatenate(weights)[order] if name == "badge" else None,
            )[name]
            assert got[name].indices.tolist() == rows[final.indices].tolist()
            assert got[name].scores.tobytes() == final.scores.tobytes()
            assert not set(excluded) & set(got[name].indices.tolist())


def test_badge_reports_what_each_pick_stands_for(replicas: list[ServerThread]) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 5)).astype(np.float32)
    p = rng.dirichlet(np.ones(3), size=400)
    w = rng.uniform(0, 2, 400)
    with Client(replicas[0].address) as one:
        shown = one.select(
            strategies=[("badge", {"report_weights": True})], k=12, seed=1, exclude=[0, 7],
            probabilities=p, embeddings=x, item_weights=w,
        )["badge"]  # fmt: skip
        plain = one.select(strategies=["badge"], k=12, seed=1, probabilities=p, embeddings=x)
    assert shown.represented_weights is not None
    expected = naive_represented(p, x, shown.indices, np.setdiff1d(np.arange(400), [0, 7]), w)
    np.testing.assert_allclose(shown.represented_weights, expected, rtol=1e-9)
    assert plain["badge"].represented_weights is None


def test_one_name_resolves_to_every_address() -> None:
    assert resolve(["a:1", "b:2"]) == ["a:1", "b:2"]
    assert resolve("127.0.0.1:50051") == ["127.0.0.1:50051"]
    assert resolve("dns:///localhost:50051")[0].endswith(":50051")


def test_shards_are_cut_at_whole_scoring_blocks() -> None:
    assert shard_bounds(10, 3, 4) == [(0, 4), (4, 8), (8, 10)]
    assert shard_bounds(5000, 2, 1024) == [(0, 3072), (3072, 5000)]
    assert shard_bounds(100, 4, 1024) == [(0, 100)]
    p16 = np.zeros((1, 10), np.float16)
    assert block_rows({"probabilities": p16}) == (1 << 22) // 40
    assert block_rows({"embeddings": np.zeros((1, 3))}) == 1 << 22
