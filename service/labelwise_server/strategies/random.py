"""The seeded random baseline."""

import numpy as np

from labelwise_server.strategies._types import FloatArray


def random_scores(n: int, seed: int) -> FloatArray:
    """n scores drawn uniformly from [0, 1) by PCG64 from seed; ranking them is a uniform sample."""
    return np.random.default_rng(seed).random(n)
