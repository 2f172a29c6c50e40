"""The strategy registry: one explicit table, read by validation, ListStrategies and the tests.

Names are the strings of the proto, the clients, the docs and the metrics;
definitions are in shared/strategies.md. The table order is the order
ListStrategies gives.
"""

import math
from collections.abc import Callable, Mapping

import numpy as np

from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies import (
    adversarial,
    bayesian,
    committee,
    diversity,
    hybrid,
    multilabel,
    prefilter,
    regression,
    structured,
    uncertainty,
)
from labelwise_server.strategies._types import (
    FloatArray,
    Input,
    IntArray,
    Param,
    Params,
    Pool,
    RealArray,
    StopCheck,
    Strategy,
    Task,
    never_stop,
)
from labelwise_server.strategies.intermediates import Intermediates, pool_blocks
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
        stop=task.stop,
    )


MULTILABEL = frozenset({Input.MULTILABEL_PROBABILITIES})
LABEL_AGGREGATE = Param(
    str,
    default="mean",
    choices=multilabel.AGGREGATES,
    description="How the per-label scores combine: 'mean' over labels or 'max' (the most "
    "uncertain label).",
)
REDUCTION = Param(
    str,
    default="mean",
    choices=structured.REDUCTIONS,
    description="How per-element scores become one per item, over its valid (mask) elements: "
    "'mean', 'max', 'sum', or 'top_q_mean' (the mean of the ⌈q·E⌉ largest).",
)
TOP_Q = Param(
    float,
    default=0.1,
    minimum=0.0,
    maximum=1.0,
    exclusive_minimum=True,
    description="For reduction 'top_q_mean': the fraction q of an item's valid elements "
    "averaged, the highest-scoring ones (at least one element).",
)


def _multilabel(pool: Pool) -> RealArray:
    assert pool.multilabel is not None
    return pool.multilabel


def _spread(pool: Pool) -> FloatArray:
    assert pool.regression_std is not None
    return pool.regression_std


def _gsx(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    assert pool.embeddings is not None
    return regression.gsx_select(
        pool.embeddings,
        pool.labeled_embeddings,
        task.candidates,
        task.k,
        costs=pool.costs,
        budget=task.budget,
        stop=task.stop,
    )


def _gsy(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    assert pool.regression_mean is not None and pool.labeled_targets is not None
    return regression.gsy_select(
        pool.regression_mean,
        pool.labeled_targets,
        task.candidates,
        task.k,
        costs=pool.costs,
        budget=task.budget,
        stop=task.stop,
    )


def _igs(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    assert pool.embeddings is not None and pool.regression_mean is not None
    assert pool.labeled_embeddings is not None and pool.labeled_targets is not None
    return regression.igs_select(
        pool.embeddings,
        pool.regression_mean,
        pool.labeled_embeddings,
        pool.labeled_targets,
        task.candidates,
        task.k,
        costs=pool.costs,
        budget=task.budget,
        stop=task.stop,
    )


def _structured(
    base: str, family: str, summary: str, row_score: structured.RowScore, on_committee: bool
) -> Strategy:
    """The structured-output version of a row-wise strategy: per element, then reduced."""

    def score(pool: Pool, task: Task, params: Params) -> FloatArray:
        reduction, q = str(params["reduction"]), float(params["q"])
        if on_committee:
            assert pool.structured_committee is not None
            return structured.structured_committee_scores(
                row_score, pool.structured_committee, pool.structured_mask, reduction, q
            )
        assert pool.structured is not None
        return structured.structured_scores(
            row_score, pool.structured, pool.structured_mask, reduction, q
        )

    needs = Input.STRUCTURED_COMMITTEE if on_committee else Input.STRUCTURED_PROBABILITIES
    return Strategy(
        f"structured_{base}",
        family=family,
        summary=f"{base} of every element's class distribution ({summary}), reduced to one "
        "score per item over its valid elements by `reduction`.",
        needs=frozenset({needs}),
        params={"reduction": REDUCTION, "q": TOP_Q},
        pool_score=score,
        task="structured",
    )


def _batch_bald(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    assert pool.committee is not None
    return bayesian.batch_bald_select(
        pool.committee,
        task.candidates,
        task.k,
        task.seed,
        num_samples=int(params["num_samples"]),
        max_exact=int(params["max_exact_configurations"]),
        costs=pool.costs,
        budget=task.budget,
        stop=task.stop,
    )


# The row-wise score strategies power_bald can sample over (a test keeps this in step with
# the table), and what it adds to a base's scores so the lowest possible one is 0.
POWER_BASES = (
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
POWER_OFFSETS = {"margin": 1.0}  # p(2) − p(1) ∈ [−1, 0]: 1 + margin = 1 − (p(1) − p(2))
# Bytes of pool rows per block when a base's scores are computed for power_bald.
_ROW_BLOCK_BYTES = 1 << 22


def _row_scores(strategy: Strategy, pool: Pool, stop: StopCheck = never_stop) -> FloatArray:
    """A row-wise strategy's scores of the whole pool [n], block by block, default params."""
    assert strategy.block_score is not None
    params = {name: param.default for name, param in strategy.params.items()}
    scores = np.empty(pool.n)
    for start, end, block in pool_blocks(pool, _ROW_BLOCK_BYTES):
        stop()
        scores[start:end] = strategy.block_score(block, params)
    return scores


def _power_bald(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    base = str(params["base"])
    scores = _row_scores(STRATEGIES[base], pool, task.stop)
    picked = bayesian.power_sample(
        scores + POWER_OFFSETS.get(base, 0.0),
        task.candidates,
        task.k,
        task.seed,
        beta=float(params["beta"]),
        costs=pool.costs,
        budget=task.budget,
    )
    return picked, scores[picked]


def _deepfool_run(
    pool: Pool, rows: IntArray, params: Params, stop: StopCheck = never_stop
) -> tuple[FloatArray, FloatArray]:
    """DeepFool distances [len(rows)] and adversarial points [len(rows), d], chunk by chunk."""
    assert pool.model is not None
    model = pool.model
    distances = np.empty(rows.shape[0])
    points = np.empty((rows.shape[0], model.inputs.shape[1]))
    for start in range(0, rows.shape[0], model.chunk_rows):
        stop()
        part = rows[start : start + model.chunk_rows]
        distances[start : start + part.shape[0]], points[start : start + part.shape[0]] = (
            adversarial.deepfool(
                model.logits_jacobian,
                np.asarray(model.inputs[part], dtype=np.float64),
                overshoot=float(params["overshoot"]),
                max_iter=int(params["max_iter"]),
            )
        )
    return distances, points


def _deepfool(pool: Pool, task: Task, params: Params) -> FloatArray:
    scores = np.zeros(pool.n)  # only candidates are ranked
    distances, _ = _deepfool_run(pool, task.candidates, params, task.stop)
    scores[task.candidates] = adversarial.deepfool_scores(distances)
    return scores


def _deepfool_points(pool: Pool, indices: IntArray, params: Params) -> FloatArray | None:
    if not params["return_points"]:
        return None
    return _deepfool_run(pool, indices, params)[1]


# Hybrid strategies build on the same row-wise bases as power_bald (param `base`).
BASES = POWER_BASES


def _base_param(default: str, what: str) -> Param:
    return Param(
        str,
        default=default,
        choices=BASES,
        description=f"The score strategy that gives {what}, run with its default parameters "
        "(its inputs are needed too); margin enters as 1 + margin = 1 − (p(1) − p(2)), "
        "so that every base is >= 0.",
    )


def base_scores(pool: Pool, name: str) -> FloatArray:
    """The row-wise strategy name's score of every pool item [n], shifted to be >= 0."""
    return _row_scores(STRATEGIES[name], pool) + POWER_OFFSETS.get(name, 0.0)


def _with_prefilter(needs: frozenset[Input]) -> Callable[[Params], frozenset[Input]]:
    return lambda params: needs | prefilter.needs(params)


def _base_needs(params: Params) -> frozenset[Input]:
    return EMBEDDINGS | STRATEGIES[str(params["base"])].needs | prefilter.needs(params)


def _badge(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    assert pool.probabilities is not None and pool.embeddings is not None
    return hybrid.badge_select(
        pool.probabilities,
        pool.embeddings,
        task.candidates,
        task.k,
        np.random.default_rng(task.seed),
        costs=pool.costs,
        budget=task.budget,
        stop=task.stop,
    )


def _typiclust(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    assert pool.embeddings is not None
    return diversity.typiclust_select(
        pool.embeddings,
        pool.labeled_embeddings,
        task.candidates,
        task.k,
        task.seed,
        neighbours=int(params["neighbours"]),
        max_clusters=int(params["max_clusters"]),
        costs=pool.costs,
        budget=task.budget,
        stop=task.stop,
    )


def _cluster_margin_candidates(pool: Pool, task: Task, params: Params) -> IntArray:
    """The k_m = max(k, ⌈margin_multiple · k⌉) lowest-margin candidates, capped."""
    assert pool.probabilities is not None
    cap = hybrid.CLUSTER_MARGIN_MAX_ITEMS
    if task.k > cap:
        raise InvalidArgument(
            "k",
            f"must be at most {cap} for cluster_margin, which clusters at most {cap} "
            f"items (average linkage is quadratic in them); got {task.k}",
        )
    size = min(max(task.k, math.ceil(float(params["margin_multiple"]) * task.k)), cap)
    return prefilter.least_sure(pool.probabilities, task.candidates, size)


def _cluster_margin(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    assert pool.probabilities is not None and pool.embeddings is not None
    margins = np.zeros(pool.n)
    margins[task.candidates] = prefilter.margin_scores_of(pool.probabilities, task.candidates)
    clusters = int(params["clusters"]) or task.k
    return hybrid.cluster_margin_select(
        margins,
        pool.embeddings,
        task.candidates,
        task.k,
        clusters,
        costs=pool.costs,
        budget=task.budget,
    )


def _information_density(pool: Pool, task: Task, params: Params) -> FloatArray:
    assert pool.embeddings is not None
    base = base_scores(pool, str(params["base"]))
    return hybrid.information_density_scores(base, pool.embeddings, float(params["beta"]))


def _ranked_batch(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    assert pool.embeddings is not None
    return hybrid.ranked_batch_select(
        base_scores(pool, str(params["base"])),
        pool.embeddings,
        pool.labeled_embeddings,
        task.candidates,
        task.k,
        metric=str(params["metric"]),
        costs=pool.costs,
        budget=task.budget,
        stop=task.stop,
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
            "batch_bald",
            family="bayesian",
            summary="BatchBALD: greedily grow the batch of largest joint mutual information "
            "with the parameters; score = the gain in joint mutual information at pick time. "
            "Kirsch et al. (2019).",
            needs=COMMITTEE,
            params={
                "num_samples": Param(
                    int,
                    default=10_000,
                    minimum=1,
                    maximum=100_000,
                    description="Joint label configurations sampled (seeded) to estimate the "
                    "batch's joint entropy once it has more than max_exact_configurations; "
                    "rounded down to a multiple of m (at least m), and at most 2^24 / m.",
                ),
                "max_exact_configurations": Param(
                    int,
                    default=10_000,
                    minimum=1,
                    maximum=100_000,
                    description="Joint entropies are exact (every label configuration of the "
                    "batch so far) while the configurations of nonzero probability times c "
                    "are at most this many; sampled after.",
                ),
            },
            batch_select=_batch_bald,
            seeded=True,
        ),
        Strategy(
            "power_bald",
            family="bayesian",
            summary="Stochastic power acquisition: k items drawn without replacement with "
            "probability ∝ score^β of a row-wise base strategy (seeded Gumbel top-k); score = "
            "the base score. Kirsch et al. (2023).",
            needs=COMMITTEE,
            params={
                "base": Param(
                    str,
                    default="bald",
                    choices=POWER_BASES,
                    description="The row-wise score strategy to sample over, with its default "
                    "parameters; power_bald needs what it needs. margin is shifted by +1 to "
                    "[0, 1]; scores below 1e-12 × the largest are raised to it.",
                ),
                "beta": Param(
                    float,
                    default=1.0,
                    minimum=0.0,
                    maximum=1e6,
                    description="The power β: 0 samples uniformly, large β approaches the "
                    "base's top k.",
                ),
            },
            batch_select=_power_bald,
            seeded=True,
            needs_of=lambda params: STRATEGIES[str(params["base"])].needs,
        ),
        Strategy(
            "core_set",
            family="diversity",
            summary="k-center greedy: repeatedly pick the item farthest from the labeled set and "
            "the picks so far; score = that distance. Sener & Savarese (2018).",
            needs=EMBEDDINGS,
            params={"metric": METRIC, **prefilter.PARAMS},
            batch_select=_core_set,
            seeded=True,
            narrow=prefilter.narrow,
            needs_of=_with_prefilter(EMBEDDINGS),
        ),
        Strategy(
            "typiclust",
            family="diversity",
            summary="TypiClust: k-means into l + k clusters (at most max_clusters); from each "
            "of the largest clusters no labeled item covers, the item of highest typicality "
            "= 1 / mean distance to its K nearest neighbours in the cluster. "
            "Hacohen et al. (2022).",
            needs=EMBEDDINGS,
            params={
                "neighbours": Param(
                    int,
                    default=20,
                    minimum=1,
                    maximum=1000,
                    description="K, the nearest neighbours typicality averages over.",
                ),
                "max_clusters": Param(
                    int,
                    default=500,
                    minimum=1,
                    maximum=100_000,
                    description="The most k-means clusters (the paper's cap); past it a "
                    "cluster gives several picks, the least covered clusters first.",
                ),
                **prefilter.PARAMS,
            },
            batch_select=_typiclust,
            seeded=True,
            narrow=prefilter.narrow,
            needs_of=_with_prefilter(EMBEDDINGS),
        ),
        Strategy(
            "badge",
            family="hybrid",
            summary="BADGE: k-means++ seeding (D² sampling, seeded) on gradient embeddings "
            "(p_i − e_ŷ) ⊗ x_i, first pick the largest gradient norm; score = gradient distance "
            "to the nearest pick. Ash et al. (2020).",
            needs=PROBABILITIES | EMBEDDINGS,
            params=dict(prefilter.PARAMS),
            batch_select=_badge,
            seeded=True,
            narrow=prefilter.narrow,
        ),
        Strategy(
            "cluster_margin",
            family="hybrid",
            summary="Cluster-margin: average-linkage clusters of the k_m lowest-margin items' "
            "embeddings, visited round-robin from the smallest cluster up; score = the margin "
            "p(2) − p(1). Citovsky et al. (2021).",
            needs=PROBABILITIES | EMBEDDINGS,
            params={
                "margin_multiple": Param(
                    float,
                    default=10.0,
                    minimum=1.0,
                    maximum=1000.0,
                    description="k_m = ⌈margin_multiple · k⌉ lowest-margin items are clustered "
                    f"(at most {hybrid.CLUSTER_MARGIN_MAX_ITEMS}, so k must be at most that).",
                ),
                "clusters": Param(
                    int,
                    default=0,
                    minimum=0,
                    description="How many clusters to cut the average-linkage tree into; "
                    "0 means k.",
                ),
            },
            batch_select=_cluster_margin,
            narrow=_cluster_margin_candidates,
        ),
        Strategy(
            "information_density",
            family="hybrid",
            summary="base score × (mean cosine similarity to the pool)^β, computed in O(n·d) "
            "from the mean of the unit embeddings. Settles & Craven (2008).",
            needs=EMBEDDINGS,
            params={
                "base": _base_param("entropy", "the informativeness"),
                "beta": Param(
                    float,
                    default=1.0,
                    minimum=0.0,
                    maximum=100.0,
                    description="β, the weight of density against informativeness.",
                ),
            },
            pool_score=_information_density,
            needs_of=lambda params: EMBEDDINGS | STRATEGIES[str(params["base"])].needs,
        ),
        Strategy(
            "ranked_batch",
            family="hybrid",
            summary="Ranked batch-mode: greedily α·(1 − similarity to labeled ∪ picked) + "
            "(1 − α)·uncertainty, similarity = 1 / (1 + distance), α = unlabeled / (unlabeled "
            "+ labeled). Cardoso et al. (2017), as in modAL.",
            needs=EMBEDDINGS,
            params={
                "base": _base_param("least_confidence", "the uncertainty"),
                "metric": METRIC,
                **prefilter.PARAMS,
            },
            batch_select=_ranked_batch,
            narrow=prefilter.narrow,
            needs_of=_base_needs,
        ),
        Strategy(
            "multilabel_entropy",
            family="uncertainty",
            summary="Binary entropy H_b(p_il) = −p log p − (1−p) log(1−p) of each label, "
            "averaged (or maxed) over the labels. Brinker (2006); Yang et al. (2009).",
            needs=MULTILABEL,
            params={"aggregate": LABEL_AGGREGATE},
            pool_score=lambda pool, _, p: multilabel.multilabel_entropy_scores(
                _multilabel(pool), str(p["aggregate"])
            ),
            task="multi_label",
        ),
        Strategy(
            "multilabel_least_confidence",
            family="uncertainty",
            summary="1 − max(p_il, 1 − p_il) of each label's binary prediction, averaged (or "
            "maxed) over the labels. Lewis & Gale (1994), label by label.",
            needs=MULTILABEL,
            params={"aggregate": LABEL_AGGREGATE},
            pool_score=lambda pool, _, p: multilabel.multilabel_least_confidence_scores(
                _multilabel(pool), str(p["aggregate"])
            ),
            task="multi_label",
        ),
        Strategy(
            "label_cardinality_inconsistency",
            family="uncertainty",
            summary="|Σ_l 1[p_il > threshold] − c̄|: how far the predicted number of labels is "
            "from the labeled set's mean label cardinality c̄ (labeled_label_cardinality). "
            "Li & Guo (2013).",
            needs=frozenset({Input.MULTILABEL_PROBABILITIES, Input.LABELED_LABEL_CARDINALITY}),
            params={
                "threshold": Param(
                    float,
                    default=0.5,
                    minimum=0.0,
                    maximum=1.0,
                    description="A label counts as predicted when its probability is above this.",
                )
            },
            pool_score=lambda pool, _, p: multilabel.label_cardinality_inconsistency_scores(
                _multilabel(pool),
                float(pool.labeled_label_cardinality or 0.0),
                float(p["threshold"]),
            ),
            task="multi_label",
        ),
        Strategy(
            "multilabel_bald",
            family="bayesian",
            summary="Binary mutual information H_b(p̄_il) − (1/m) Σ_k H_b(P_kil) of each label, "
            "summed (or averaged) over the labels. Houlsby et al. (2011), label by label.",
            needs=frozenset({Input.MULTILABEL_COMMITTEE}),
            params={
                "aggregate": Param(
                    str,
                    default="sum",
                    choices=("sum", "mean"),
                    description="How the per-label mutual informations combine: 'sum' (the "
                    "mutual information of the label vector when labels are independent "
                    "given the model) or 'mean'.",
                )
            },
            pool_score=lambda pool, _, p: multilabel.multilabel_bald_scores(
                pool.multilabel_committee,  # type: ignore[arg-type]
                str(p["aggregate"]),
            ),
            task="multi_label",
        ),
        Strategy(
            "regression_variance",
            family="committee",
            summary="σ_i² (or σ_i) of the prediction: regression_std, or the spread of "
            "regression_samples. Query-by-committee for regression: RayChaudhuri & Hamey "
            "(1995); Burbidge et al. (2007).",
            needs=frozenset({Input.REGRESSION_SPREAD}),
            params={
                "measure": Param(
                    str,
                    default="variance",
                    choices=("variance", "std"),
                    description="Score by the variance or by the standard deviation (the "
                    "same ranking).",
                )
            },
            pool_score=lambda pool, _, p: regression.variance_scores(
                _spread(pool), str(p["measure"])
            ),
            task="regression",
        ),
        Strategy(
            "gaussian_bald",
            family="bayesian",
            summary="½ log(1 + σ_i²/σ_noise²): the mutual information between the target and "
            "the model for a Gaussian prediction with Gaussian noise. Houlsby et al. (2011).",
            needs=frozenset({Input.REGRESSION_SPREAD}),
            params={
                "noise_std": Param(
                    float,
                    default=1.0,
                    minimum=0.0,
                    exclusive_minimum=True,
                    description="σ_noise, the observation noise's standard deviation, in "
                    "the unit of the targets.",
                )
            },
            pool_score=lambda pool, _, p: regression.gaussian_bald_scores(
                _spread(pool), float(p["noise_std"])
            ),
            task="regression",
        ),
        Strategy(
            "gsx",
            family="diversity",
            summary="Greedy sampling on inputs: pick the item farthest (euclidean) from the "
            "labeled items and the picks so far; score = that distance. Without labeled "
            "items the first pick is the one closest to the centroid. Wu, Lin & Huang (2019).",
            needs=EMBEDDINGS,
            batch_select=_gsx,
            task="regression",
        ),
        Strategy(
            "gsy",
            family="diversity",
            summary="Greedy sampling on outputs: pick the item whose prediction is farthest "
            "from the labeled targets and the picks' predictions; score = that distance. "
            "Wu, Lin & Huang (2019).",
            needs=frozenset({Input.REGRESSION_PREDICTION, Input.LABELED_TARGETS}),
            batch_select=_gsy,
            task="regression",
        ),
        Strategy(
            "igs",
            family="diversity",
            summary="Improved greedy sampling: pick argmax_n min_m ‖x_n − x_m‖·|f(x_n) − y_m| "
            "over the labeled items and the picks; score = that product. "
            "Wu, Lin & Huang (2019).",
            needs=frozenset(
                {
                    Input.EMBEDDINGS,
                    Input.LABELED_EMBEDDINGS,
                    Input.REGRESSION_PREDICTION,
                    Input.LABELED_TARGETS,
                }
            ),
            batch_select=_igs,
            task="regression",
        ),
        _structured(
            "least_confidence",
            "uncertainty",
            "1 − max_j p_j",
            uncertainty.least_confidence_scores,
            on_committee=False,
        ),
        _structured(
            "margin", "uncertainty", "p(2) − p(1)", uncertainty.margin_scores, on_committee=False
        ),
        _structured(
            "ratio", "uncertainty", "p(2) / p(1)", uncertainty.ratio_scores, on_committee=False
        ),
        _structured(
            "entropy",
            "uncertainty",
            "−Σ_j p_j log p_j",
            uncertainty.entropy_scores,
            on_committee=False,
        ),
        _structured(
            "bald",
            "bayesian",
            "H(p̄) − (1/m) Σ_k H(P_k); Houlsby et al. 2011",
            bayesian.bald_scores,
            on_committee=True,
        ),
        _structured(
            "variation_ratio",
            "bayesian",
            "1 − max_j V_j / m; Freeman 1965",
            bayesian.variation_ratio_scores,
            on_committee=True,
        ),
        _structured(
            "mean_std",
            "bayesian",
            "(1/c) Σ_j std_k P_kj; Kampffmeyer et al. 2016",
            bayesian.mean_std_scores,
            on_committee=True,
        ),
        Strategy(
            "deepfool",
            family="adversarial",
            summary="−‖r_i‖, r_i the DeepFool perturbation (Moosavi-Dezfooli et al. 2016) of the "
            "model's input that changes its predicted class: items nearest the decision "
            "boundary first (DFAL, Ducoffe & Precioso 2018). Model mode only.",
            needs=frozenset({Input.MODEL}),
            params={
                "max_iter": Param(
                    int,
                    default=50,
                    minimum=1,
                    maximum=1000,
                    description="Most DeepFool steps per item; an item not flipped by then "
                    "scores the distance reached.",
                ),
                "overshoot": Param(
                    float,
                    default=0.02,
                    minimum=0.0,
                    maximum=1.0,
                    description="Each probe moves (1 + overshoot) times the perturbation so far, "
                    "to step across the boundary; the distance reported is without it.",
                ),
                "return_points": Param(
                    bool,
                    default=False,
                    description="Also return the adversarial point of each selected item "
                    "(StrategyResult.adversarial_points).",
                ),
            },
            pool_score=_deepfool,
            points=_deepfool_points,
        ),
    )
}

__all__ = ["STRATEGIES", "Input", "Param", "Pool", "Strategy", "Task"]
