"""The strategy registry: one explicit table, read by validation, ListStrategies and the tests.

Names are the strings of the proto, the clients, the docs and the metrics;
definitions are in shared/strategies.md. The table order is the order
ListStrategies gives.
"""

from collections.abc import Mapping

from labelwise_server.strategies import bayesian, committee, diversity, uncertainty
from labelwise_server.strategies._types import (
    FloatArray,
    Input,
    IntArray,
    Param,
    Params,
    Pool,
    Strategy,
    Task,
)
from labelwise_server.strategies.intermediates import Intermediates
from labelwise_server.strategies.random import random_scores

PROBABILITIES = frozenset({Input.PROBABILITIES})
COMMITTEE = frozenset({Input.COMMITTEE})
EMBEDDINGS = frozenset({Input.EMBEDDINGS})
METRIC = Param(
    str,
    default="euclidean",
    choices=("euclidean", "cosine"),
    description="Distance between embeddings: 'euclidean' or 'cosine' (1 − cosine similarity).",
)


def _random(pool: Pool, task: Task, params: Params) -> FloatArray:
    return random_scores(pool.n, task.seed)


def _core_set(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    assert pool.embeddings is not None
    return diversity.k_center_greedy(
        pool.embeddings,
        pool.labeled_embeddings,
        task.candidates,
        task.k,
        task.seed,
        metric=str(params["metric"]),
        costs=pool.costs,
        budget=task.budget,
    )


def _kl_to_consensus(block: Intermediates, params: Params) -> FloatArray:
    if params["aggregate"] == "max":
        return committee.kl_max_to_consensus(block.committee, block.consensus)
    return block.mutual_information


STRATEGIES: Mapping[str, Strategy] = {
    strategy.name: strategy
    for strategy in (
        Strategy(
            "random",
            family="baseline",
            summary="Uniform random sample, seeded by the request's seed (PCG64).",
            needs=frozenset({Input.ANY}),
            pool_score=_random,
            seeded=True,
        ),
        Strategy(
            "least_confidence",
            family="uncertainty",
            summary="1 − max_j p_ij: the model's least confident predictions. Lewis & Gale (1994).",
            needs=PROBABILITIES,
            block_score=lambda b, _: uncertainty.least_confidence_from_top2(b.top2),
        ),
        Strategy(
            "margin",
            family="uncertainty",
            summary="p(2) − p(1): the smallest gap between the two likeliest classes. "
            "Scheffer et al. (2001).",
            needs=PROBABILITIES,
            block_score=lambda b, _: uncertainty.margin_from_top2(b.top2),
        ),
        Strategy(
            "ratio",
            family="uncertainty",
            summary="p(2) / p(1): the ratio of the two likeliest classes. Settles (2009).",
            needs=PROBABILITIES,
            block_score=lambda b, _: uncertainty.ratio_from_top2(b.top2),
        ),
        Strategy(
            "entropy",
            family="uncertainty",
            summary="−Σ_j p_ij log p_ij: the entropy of the predicted distribution. "
            "Settles (2009).",
            needs=PROBABILITIES,
            block_score=lambda b, _: b.entropy,
        ),
        Strategy(
            "vote_entropy",
            family="committee",
            summary="−Σ_j (V_ij/m) log(V_ij/m), V_ij = members voting class j. "
            "Dagan & Engelson (1995).",
            needs=COMMITTEE,
            block_score=lambda b, _: committee.vote_entropy_from_votes(b.votes, b.members),
        ),
        Strategy(
            "consensus_entropy",
            family="committee",
            summary="H(p̄_i): the entropy of the committee's mean prediction. "
            "McCallum & Nigam (1998).",
            needs=COMMITTEE,
            block_score=lambda b, _: b.consensus_entropy,
        ),
        Strategy(
            "kl_to_consensus",
            family="committee",
            summary="KL(P_k ‖ p̄) of each member to the consensus, averaged (or maxed) over "
            "members. McCallum & Nigam (1998).",
            needs=COMMITTEE,
            params={
                "aggregate": Param(
                    str,
                    default="mean",
                    choices=("mean", "max"),
                    description="How member divergences combine: 'mean' (the classic "
                    "definition) or 'max' (modAL's max_disagreement).",
                )
            },
            block_score=_kl_to_consensus,
        ),
        Strategy(
            "bald",
            family="bayesian",
            summary="H(p̄_i) − (1/m) Σ_k H(P_ki): mutual information between label and "
            "parameters. Houlsby et al. (2011); Gal et al. (2017).",
            needs=COMMITTEE,
            block_score=lambda b, _: b.mutual_information,
        ),
        Strategy(
            "variation_ratio",
            family="bayesian",
            summary="1 − (max_j V_ij)/m: the share of samples not voting for the mode. "
            "Freeman (1965); Gal et al. (2017).",
            needs=COMMITTEE,
            block_score=lambda b, _: bayesian.variation_ratio_from_votes(b.votes, b.members),
        ),
        Strategy(
            "mean_std",
            family="bayesian",
            summary="(1/c) Σ_j std_k(P_kij): the mean standard deviation of the class "
            "probabilities over samples. Kampffmeyer et al. (2016).",
            needs=COMMITTEE,
            block_score=lambda b, _: bayesian.mean_std_scores(b.committee),
        ),
        Strategy(
            "core_set",
            family="diversity",
            summary="k-center greedy: repeatedly pick the item farthest from the labeled set and "
            "the picks so far; score = that distance. Sener & Savarese (2018).",
            needs=EMBEDDINGS,
            params={"metric": METRIC},
            batch_select=_core_set,
            seeded=True,
        ),
    )
}

__all__ = ["STRATEGIES", "Input", "Param", "Pool", "Strategy", "Task"]
