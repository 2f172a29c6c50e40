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


def test_batch_strategies_select_from_the_union_of_the_shards_picks(
    replicas: list[ServerThread],
) -> None:
    rng = np.random.default_rng(2)
    n = 3000
    embeddings = rng.normal(size=(n, 8)).astype(np.float32)
    probabilities = rng.dirichlet(np.ones(4), size=n)
    labeled = rng.normal(size=(20, 8)).astype(np.float32)
    addresses = [r.address for r in replicas]
    # Batch strategies' shards are even halves.
    with (
        ShardedClient(addresses, oversample=3, oversample_for={}) as sharded,
        Client(addresses[0]) as one,
    ):
        got = sharded.select(
            strategies=["core_set", "badge"],
            k=10,
            seed=3,
            embeddings=embeddings,
            probabilities=probabilities,
            labeled_embeddings=labeled,
            exclude=[5, 2500],
        )
        # The naive second run: each shard's 30 exact picks, then one call on their union.
        union = []
        for start, end in ((0, 1500), (1500, n)):
            local_exclude = [e - start for e in (5, 2500) if start <= e < end]
            picks = one.select(
                strategies=["core_set", "badge"],
                k=30,
                seed=3,
                clamp_k=True,
                embeddings=embeddings[start:end],
                probabilities=probabilities[start:end],
                labeled_embeddings=labeled,
                exclude=local_exclude,
            )
            union.append({name: s.indices + start for name, s in picks.items()})
        for name in ("core_set", "badge"):
            rows = np.sort(np.concatenate([u[name] for u in union]))
            final = one.select(
                strategies=[name],
                k=10,
                seed=3,
                clamp_k=True,
                embeddings=embeddings[rows],
                probabilities=probabilities[rows],
                labeled_embeddings=labeled,
            )[name]
            assert got[name].indices.tolist() == rows[final.indices].tolist()
            assert got[name].scores.tobytes() == final.scores.tobytes()
            assert not {5, 2500} & set(got[name].indices.tolist())


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
