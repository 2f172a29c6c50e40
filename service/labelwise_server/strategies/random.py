"""The seeded random baseline."""

import numpy as np

from labelwise_server.strategies._types import FloatArray, Params, Pool, Task


def random_scores(n: int, seed: int) -> FloatArray:
    """n scores drawn uniformly from [0, 1) by PCG64 from seed; ranking them is a uniform sample."""
    return np.random.default_rng(seed).random(n)


# Registry adapters (strategies/registry.py): the validated pool and task in, the math above
# called. Validation has checked the inputs each strategy needs are present.


def random_adapter(pool: Pool, task: Task, params: Params) -> FloatArray:
    return random_scores(pool.n, task.seed)
