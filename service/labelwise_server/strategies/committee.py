"""Query-by-committee on the class probabilities of m committee members.

Every function takes a committee [m, n, c] (each member's rows sum to 1),
or an intermediate derived from it, and returns float64 scores [n], higher
meaning "label this first". Seung et al. (1992); McCallum & Nigam (1998).
"""

import numpy as np

from labelwise_server.strategies._types import FloatArray, Params, RealArray, RowBlock
from labelwise_server.strategies.uncertainty import entropy_scores


def consensus(committee: RealArray) -> RealArray:
    """The members' mean probabilities p̄ [n, c]."""
    mean: RealArray = committee.mean(axis=0, dtype=committee.dtype)
    return mean


def vote_counts(committee: RealArray) -> FloatArray:
    """V [n, c]: how many members' argmax is each class (ties go to the lower class)."""
    _, n, c = committee.shape
    votes = np.zeros((n, c), dtype=np.float64)
    rows = np.arange(n)
    for member in committee:
        votes[rows, member.argmax(axis=1)] += 1.0
    return votes


def mean_member_entropy(committee: RealArray) -> FloatArray:
    """(1/m) Σ_k H(P_k) [n]: the expected entropy of one member."""
    total = np.zeros(committee.shape[1], dtype=np.float64)
    for member in committee:
        total += entropy_scores(member)
    total /= committee.shape[0]
    return total


def vote_entropy_from_votes(votes: FloatArray, members: int) -> FloatArray:
    """−Σ_j (V_ij/m) log(V_ij/m) from vote counts V [n, c]."""
    share = votes / members
    logs = np.zeros_like(share)
    np.log(share, out=logs, where=share > 0)
    scores: FloatArray = 0.0 - (share * logs).sum(axis=1)  # not −(…): a sure row is +0, not −0
    return scores


def kl_max_to_consensus(committee: RealArray, mean: RealArray) -> FloatArray:
    """max_k KL(P_k ‖ p̄) [n]: the most disagreeing member (modAL's max_disagreement)."""
    best = np.full(committee.shape[1], -np.inf)
    for member in committee:
        terms = np.zeros(member.shape, dtype=np.float64)
        positive = member > 0
        # p̄ >= P_k / m > 0 wherever P_k > 0, so the log is finite.
        np.divide(member, mean, out=terms, where=positive)
        np.log(terms, out=terms, where=positive)
        np.maximum(best, (terms * member).sum(axis=1), out=best)
    scores: FloatArray = best
    return scores


def vote_entropy_scores(committee: RealArray) -> FloatArray:
    """Vote entropy of the members' argmax votes. Dagan & Engelson (1995)."""
    return vote_entropy_from_votes(vote_counts(committee), committee.shape[0])


def consensus_entropy_scores(committee: RealArray) -> FloatArray:
    """Entropy of the consensus H(p̄_i). McCallum & Nigam (1998)."""
    return entropy_scores(consensus(committee))


def kl_to_consensus_scores(committee: RealArray, aggregate: str = "mean") -> FloatArray:
    """KL divergence of the members to their consensus, averaged or maxed over members.

    mean: (1/m) Σ_k KL(P_k ‖ p̄) = H(p̄) − (1/m) Σ_k H(P_k) (the same identity as BALD);
    max: max_k KL(P_k ‖ p̄). McCallum & Nigam (1998).
    """
    mean = consensus(committee)
    if aggregate == "max":
        return kl_max_to_consensus(committee, mean)
    return entropy_scores(mean) - mean_member_entropy(committee)


# Registry adapter (strategies/registry.py): one block of rows' shared values in.


def kl_to_consensus_block(block: RowBlock, params: Params) -> FloatArray:
    if params["aggregate"] == "max":
        return kl_max_to_consensus(block.committee, block.consensus)
    return block.mutual_information  # the mean KL to the consensus is the mutual information
