"""Bayesian strategies on MC-dropout samples (or any committee) [m, n, c].

Every function returns float64 scores [n], higher meaning "label this first".
Gal, Islam & Ghahramani (2017); Houlsby et al. (2011).
"""

import numpy as np

from labelwise_server.strategies._types import FloatArray, RealArray
from labelwise_server.strategies.committee import consensus, mean_member_entropy, vote_counts
from labelwise_server.strategies.uncertainty import entropy_scores


def bald_scores(committee: RealArray) -> FloatArray:
    """Mutual information H(p̄_i) − (1/m) Σ_k H(P_ki). Houlsby et al. (2011)."""
    return entropy_scores(consensus(committee)) - mean_member_entropy(committee)


def variation_ratio_from_votes(votes: FloatArray, members: int) -> FloatArray:
    """1 − max_j V_ij / m from vote counts V [n, c]."""
    scores: FloatArray = 1.0 - votes.max(axis=1) / members
    return scores


def variation_ratio_scores(committee: RealArray) -> FloatArray:
    """Variation ratio 1 − (max_j V_ij)/m of the members' votes. Freeman (1965)."""
    return variation_ratio_from_votes(vote_counts(committee), committee.shape[0])


def mean_std_scores(committee: RealArray) -> FloatArray:
    """(1/c) Σ_j std_k(P_kij), population std over samples. Kampffmeyer et al. (2016)."""
    spread = committee.std(axis=0, dtype=np.float64)  # [n, c]
    scores: FloatArray = spread.mean(axis=1)
    return scores
