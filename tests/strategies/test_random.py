"""The seeded random baseline: its definition, its independence from the pool's values."""

import numpy as np
import pytest

from labelwise_server.strategies.random import random_scores
from tests.strategies.support import random_probabilities, scores_of

# The first draws of PCG64 seeded with 42, the definition of the strategy's scores.
SEED_42 = [0.7739560485559633, 0.4388784397520523, 0.8585979199113825, 0.6973680290593639]
ORACLES = [("random", {}, SEED_42)]


def test_oracle_scores_are_pcg64_draws() -> None:
    p = np.full((4, 2), 0.5)
    np.testing.assert_array_equal(scores_of("random", probabilities=p, seed=42), SEED_42)


def naive_random(n: int, seed: int) -> list[float]:
    generator = np.random.Generator(np.random.PCG64(seed))
    return [float(generator.random()) for _ in range(n)]


NAIVE = {"random": naive_random}


@pytest.mark.parametrize("seed", [0, 1, 2, 2**63 + 5])
def test_matches_one_draw_at_a_time(seed: int) -> None:
    p = random_probabilities(np.random.default_rng(0), 100, 3)
    np.testing.assert_array_equal(
        scores_of("random", probabilities=p, seed=seed), naive_random(100, seed)
    )
    np.testing.assert_array_equal(random_scores(100, seed), naive_random(100, seed))


def test_ignores_the_pool_values_and_depends_on_the_seed() -> None:
    rng = np.random.default_rng(1)
    a, b = random_probabilities(rng, 50, 3), random_probabilities(rng, 50, 3)
    np.testing.assert_array_equal(
        scores_of("random", probabilities=a, seed=9), scores_of("random", probabilities=b, seed=9)
    )
    assert not np.array_equal(
        scores_of("random", probabilities=a, seed=9), scores_of("random", probabilities=a, seed=10)
    )


def test_picks_are_uniform_over_items() -> None:
    # Over many seeds, every item of a 10-item pool is picked first about equally often.
    p = np.full((10, 2), 0.5)
    firsts = [int(scores_of("random", probabilities=p, seed=s).argmax()) for s in range(2000)]
    counts = np.bincount(firsts, minlength=10)
    assert counts.min() > 140 and counts.max() < 260  # 200 ± ~4.5σ
