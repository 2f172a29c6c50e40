"""The row-wise score strategies that others build on: power_bald's and the hybrids' `base`.

The registry runs a base (strategies that build on one get its scores through a
BaseScores the registry gives them, so no family module imports the registry);
a test keeps NAMES in step with the table's row-wise entries.
"""

from collections.abc import Callable
from typing import TypeAlias

from labelwise_server.strategies._types import FloatArray, Pool, StopCheck
from labelwise_server.strategies.params import Options, Param

NAMES = (
    "least_confidence",
    "margin",
    "ratio",
    "entropy",
    "vote_entropy",
    "consensus_entropy",
    "kl_to_consensus",
    "bald",
    "variation_ratio",
    "mean_std",
)
# What each base's scores need added so the lowest possible one is 0.
OFFSETS = {"margin": 1.0}  # p(2) − p(1) ∈ [−1, 0]: 1 + margin = 1 − (p(1) − p(2))

# The named base's scores of the whole pool [n] with its default params, unshifted.
BaseScores: TypeAlias = Callable[[Pool, str, StopCheck], FloatArray]


def shifted(base_scores: BaseScores, pool: Pool, name: str, stop: StopCheck) -> FloatArray:
    """The base's scores of every pool item [n], shifted by OFFSETS to be >= 0."""
    return base_scores(pool, name, stop) + OFFSETS.get(name, 0.0)


def param(default: str, what: str) -> Param:
    """The hybrids' `base` parameter."""
    return Param(
        Options(str, NAMES),
        default=default,
        description=f"The score strategy that gives {what}, run with its default parameters "
        "(its inputs are needed too); margin enters as 1 + margin = 1 − (p(1) − p(2)), "
        "so that every base is >= 0.",
    )
