"""The strategy registry: one explicit table, read by validation, ListStrategies and the tests.

Names are the strings of the proto, the clients, the docs and the metrics;
definitions are in each function's docstring. The table order is the order
ListStrategies gives. Each entry's adapter (validated pool and task in, the
math called) lives beside its math in the family module; this module holds the
table, its shared parameters and the wiring of strategies built on a `base`.
"""

from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np

from labelwise_server.strategies import (
    adversarial,
    auto,
    balance,
    bases,
    bayesian,
    committee,
    coverage,
    diversity,
    hybrid,
    multilabel,
    prefilter,
    regression,
    stream,
    structured,
    uncertainty,
)
from labelwise_server.strategies._types import (
    FloatArray,
    Input,
    IntArray,
    Params,
    Pool,
    StopCheck,
    Strategy,
    Task,
    never_stop,
)
from labelwise_server.strategies.intermediates import pool_blocks
from labelwise_server.strategies.params import (
    AnyOf,
    Boolean,
    Interval,
    NameList,
    Options,
    Param,
)
from labelwise_server.strategies.random import random_adapter
from labelwise_server.strategies.ranking import rank, top_k

PROBABILITIES = frozenset({Input.PROBABILITIES})
COMMITTEE = frozenset({Input.COMMITTEE})
EMBEDDINGS = frozenset({Input.EMBEDDINGS})
MULTILABEL = frozenset({Input.MULTILABEL_PROBABILITIES})
METRIC = Param(
    Options(str, ("euclidean", "cosine")),
    default="euclidean",
    description="Distance between embeddings: 'euclidean' or 'cosine' (1 − cosine similarity).",
)
LABEL_AGGREGATE = Param(
    Options(str, multilabel.AGGREGATES),
    default="mean",
    description="How the per-label scores combine: 'mean' over labels or 'max' (the most "
    "uncertain label).",
)
REDUCTION = Param(
    Options(str, structured.REDUCTIONS),
    default="mean",
    description="How per-element scores become one per item, over its valid (mask) elements: "
    "'mean', 'max', 'sum', or 'top_q_mean' (the mean of the ⌈q·E⌉ largest).",
)
TOP_Q = Param(
    Interval(float, 0.0, 1.0, closed="right"),
    default=0.1,
    description="For reduction 'top_q_mean': the fraction q of an item's valid elements "
    "averaged, the highest-scoring ones (at least one element).",
)

# Kept for the names tests and callers use; the facts live in bases.py.
POWER_BASES = BASES = bases.NAMES
POWER_OFFSETS = bases.OFFSETS
# Bytes of pool rows per block when a base's scores are computed.
_ROW_BLOCK_BYTES = 1 << 22


def base_scores(pool: Pool, name: str, stop: StopCheck = never_stop) -> FloatArray:
    """The row-wise strategy name's scores of the whole pool [n], block by block, with its
    default params (unshifted: bases.shifted adds bases.OFFSETS)."""
    strategy = STRATEGIES[name]
    if strategy.block_score is None:
        raise ValueError(f"{name} is not a row-wise strategy")
    params = {param_name: param.default for param_name, param in strategy.params.items()}
    scores = np.empty(pool.n)
    for start, end, block in pool_blocks(pool, _ROW_BLOCK_BYTES):
        stop()
        scores[start:end] = strategy.block_score(block, params)
    return scores


def _with_prefilter(needs: frozenset[Input]) -> Callable[[Params], frozenset[Input]]:
    return lambda params: needs | prefilter.needs(params)


def _base_needs(params: Params) -> frozenset[Input]:
    return EMBEDDINGS | STRATEGIES[str(params["base"])].needs | prefilter.needs(params)


def _structured(
    base: str, family: str, summary: str, row_score: structured.RowScore, on_committee: bool
) -> Strategy:
    """The structured-output entry of a row-wise strategy: per element, then reduced."""
    needs = Input.STRUCTURED_COMMITTEE if on_committee else Input.STRUCTURED_PROBABILITIES
    return Strategy(
        f"structured_{base}",
        family=family,
        summary=f"{base} of every element's class distribution ({summary}), reduced to one "
        "score per item over its valid elements by `reduction`.",
        needs=frozenset({needs}),
        params={"reduction": REDUCTION, "q": TOP_Q},
        pool_score=structured.structured_adapter(row_score, on_committee),
        task="structured",
    )


_PLAIN: Mapping[str, Strategy] = {
    strategy.name: strategy
    for strategy in (
        Strategy(
            "random",
            family="baseline",
            summary="Uniform random sample, seeded by the request's seed (PCG64).",
            needs=frozenset({Input.ANY}),
            pool_score=random_adapter,
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
                    Options(str, ("mean", "max")),
                    default="mean",
                    description="How member divergences combine: 'mean' (the classic "
                    "definition) or 'max' (modAL's max_disagreement).",
                )
            },
            block_score=committee.kl_to_consensus_block,
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
                    Interval(int, 1, 100_000),
                    default=10_000,
                    description="Joint label configurations sampled (seeded) to estimate the "
                    "batch's joint entropy once it has more than max_exact_configurations; "
                    "rounded down to a multiple of m (at least m), and at most 2^24 / m.",
                ),
                "max_exact_configurations": Param(
                    Interval(int, 1, 100_000),
                    default=10_000,
                    description="Joint entropies are exact (every label configuration of the "
                    "batch so far) while the configurations of nonzero probability times c "
                    "are at most this many; sampled after.",
                ),
            },
            batch_select=bayesian.batch_bald_adapter,
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
                    Options(str, bases.NAMES),
                    default="bald",
                    description="The row-wise score strategy to sample over, with its default "
                    "parameters; power_bald needs what it needs. margin is shifted by +1 to "
                    "[0, 1]; scores below 1e-12 × the largest are raised to it.",
                ),
                "beta": Param(
                    Interval(float, 0.0, 1e6),
                    default=1.0,
                    description="The power β: 0 samples uniformly, large β approaches the "
                    "base's top k.",
                ),
            },
            batch_select=bayesian.power_bald_adapter(base_scores),
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
            batch_select=diversity.core_set_adapter,
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
                    Interval(int, 1, 1000),
                    default=20,
                    description="K, the nearest neighbours typicality averages over.",
                ),
                "max_clusters": Param(
                    Interval(int, 1, 100_000),
                    default=500,
                    description="The most k-means clusters (the paper's cap); past it a "
                    "cluster gives several picks, the least covered clusters first.",
                ),
                **prefilter.PARAMS,
            },
            batch_select=diversity.typiclust_adapter,
            seeded=True,
            narrow=prefilter.narrow,
            needs_of=_with_prefilter(EMBEDDINGS),
        ),
        Strategy(
            "probcover",
            family="diversity",
            summary="ProbCover: on the graph of pool and labeled items at most δ apart, "
            "greedily pick the candidate whose δ-ball covers the most points not yet covered "
            "by a labeled item, an excluded item or a pick; score = that count. For the first "
            "rounds, before a model (embeddings only). Yehuda et al. (2022).",
            needs=EMBEDDINGS,
            params={
                "delta": Param(
                    Interval(float, 0.0, 1e15),
                    default=0.0,
                    description="The ball radius δ (euclidean, in the unit of the "
                    "embeddings); 0 estimates it by the paper's purity rule: the largest δ "
                    "whose balls hold points of one k-means cluster for at least alpha of "
                    "the points.",
                ),
                "clusters": Param(
                    Interval(int, 2, 10_000),
                    default=10,
                    description="For delta 0: the k-means clusters of the purity rule (the "
                    "expected number of classes).",
                ),
                "alpha": Param(
                    Interval(float, 0.0, 1.0, closed="right"),
                    default=0.95,
                    description="For delta 0: the share of pure balls δ must keep.",
                ),
            },
            batch_select=coverage.probcover_adapter,
            seeded=True,
        ),
        Strategy(
            "badge",
            family="hybrid",
            summary="BADGE: k-means++ seeding (D² sampling, seeded) on gradient embeddings "
            "(p_i − e_ŷ) ⊗ x_i, first pick the largest gradient norm; score = gradient distance "
            "to the nearest pick. Ash et al. (2020).",
            needs=PROBABILITIES | EMBEDDINGS,
            params={
                **prefilter.PARAMS,
                "report_weights": Param(
                    Boolean(),
                    default=False,
                    description="Also return, per pick, the total item_weights (1 each "
                    "when unset) of the candidates nearest it in gradient space "
                    "(StrategyResult.represented_weights): a weighted summary of the pool, "
                    "which a sharded client merges by a weighted badge over the union of "
                    "shards (item_weights).",
                ),
            },
            batch_select=hybrid.badge_adapter,
            seeded=True,
            narrow=prefilter.narrow,
            needs_of=_with_prefilter(PROBABILITIES | EMBEDDINGS),
            reads_item_weights=True,
            represented=hybrid.badge_represented_adapter,
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
                    Interval(float, 1.0, 1000.0),
                    default=10.0,
                    description="k_m = ⌈margin_multiple · k⌉ lowest-margin items are clustered "
                    f"(at most {hybrid.CLUSTER_MARGIN_MAX_KMEANS_ITEMS}, so k must be at most "
                    f"that): by average linkage up to {hybrid.CLUSTER_MARGIN_MAX_ITEMS} items, "
                    "past that by k-means seeded by the request's seed (FAISS).",
                ),
                "clusters": Param(
                    AnyOf((Options(int, (0,)), Interval(int, 1, None))),
                    default=0,
                    description="How many clusters to cut the average-linkage tree into "
                    "(k-means: at most k_m / 32); 0 means k.",
                ),
            },
            batch_select=hybrid.cluster_margin_adapter,
            narrow=hybrid.cluster_margin_candidates,
        ),
        Strategy(
            "information_density",
            family="hybrid",
            summary="base score × (mean cosine similarity to the pool)^β, computed in O(n·d) "
            "from the mean of the unit embeddings. Settles & Craven (2008).",
            needs=EMBEDDINGS,
            params={
                "base": bases.param("entropy", "the informativeness"),
                "beta": Param(
                    Interval(float, 0.0, 100.0),
                    default=1.0,
                    description="β, the weight of density against informativeness.",
                ),
            },
            pool_score=hybrid.information_density_adapter(base_scores),
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
                "base": bases.param("least_confidence", "the uncertainty"),
                "metric": METRIC,
                **prefilter.PARAMS,
            },
            batch_select=hybrid.ranked_batch_adapter(base_scores),
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
            pool_score=multilabel.multilabel_entropy_adapter,
            task="multi_label",
        ),
        Strategy(
            "multilabel_least_confidence",
            family="uncertainty",
            summary="1 − max(p_il, 1 − p_il) of each label's binary prediction, averaged (or "
            "maxed) over the labels. Lewis & Gale (1994), label by label.",
            needs=MULTILABEL,
            params={"aggregate": LABEL_AGGREGATE},
            pool_score=multilabel.multilabel_least_confidence_adapter,
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
                    Interval(float, 0.0, 1.0),
                    default=0.5,
                    description="A label counts as predicted when its probability is above this.",
                )
            },
            pool_score=multilabel.label_cardinality_inconsistency_adapter,
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
                    Options(str, ("sum", "mean")),
                    default="sum",
                    description="How the per-label mutual informations combine: 'sum' (the "
                    "mutual information of the label vector when labels are independent "
                    "given the model) or 'mean'.",
                )
            },
            pool_score=multilabel.multilabel_bald_adapter,
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
                    Options(str, ("variance", "std")),
                    default="variance",
                    description="Score by the variance or by the standard deviation (the "
                    "same ranking).",
                )
            },
            pool_score=regression.regression_variance_adapter,
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
                    Interval(float, 0.0, None, closed="right"),
                    default=1.0,
                    description="σ_noise, the observation noise's standard deviation, in "
                    "the unit of the targets.",
                )
            },
            pool_score=regression.gaussian_bald_adapter,
            task="regression",
        ),
        Strategy(
            "gsx",
            family="diversity",
            summary="Greedy sampling on inputs: pick the item farthest (euclidean) from the "
            "labeled items and the picks so far; score = that distance. Without labeled "
            "items the first pick is the one closest to the centroid. Wu, Lin & Huang (2019).",
            needs=EMBEDDINGS,
            batch_select=regression.gsx_adapter,
            task="regression",
        ),
        Strategy(
            "gsy",
            family="diversity",
            summary="Greedy sampling on outputs: pick the item whose prediction is farthest "
            "from the labeled targets and the picks' predictions; score = that distance. "
            "Wu, Lin & Huang (2019).",
            needs=frozenset({Input.REGRESSION_PREDICTION, Input.LABELED_TARGETS}),
            batch_select=regression.gsy_adapter,
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
            batch_select=regression.igs_adapter,
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
            summary="−‖r_i‖, r_i the smallest perturbation of the model's input that changes "
            "its predicted class: items nearest the decision boundary first (DFAL, Ducoffe & "
            "Precioso 2018). By DeepFool (Moosavi-Dezfooli et al. 2016) on the model's "
            "gradient, or from its predictions alone (boundary bisection refined as in "
            "HopSkipJump, Chen et al. 2020) for models with no gradient. Model mode only.",
            needs=frozenset({Input.MODEL}),
            seeded=True,
            params={
                "method": Param(
                    Options(str, adversarial.METHODS),
                    default="auto",
                    description="'gradient': DeepFool on the model's Jacobian (every op the "
                    "class output needs must be in gradient_ops); 'decision': from the model's "
                    "predictions alone, within max_queries evaluations per item; 'auto': "
                    "gradient when the model is differentiable, else decision. "
                    "StrategyResult.adversarial_method says which ran.",
                ),
                "max_queries": Param(
                    Interval(int, 100, 100_000),
                    default=1000,
                    description="The decision method's model evaluations per item: more "
                    "refines the boundary point further (see docs/adversarial.md).",
                ),
                "max_iter": Param(
                    Interval(int, 1, 1000),
                    default=50,
                    description="Most DeepFool steps per item; an item not flipped by then "
                    "scores the distance reached.",
                ),
                "overshoot": Param(
                    Interval(float, 0.0, 1.0),
                    default=0.02,
                    description="Each probe moves (1 + overshoot) times the perturbation so far, "
                    "to step across the boundary; the distance reported is without it.",
                ),
                "return_points": Param(
                    Boolean(),
                    default=False,
                    description="Also return the adversarial point of each selected item "
                    "(StrategyResult.adversarial_points).",
                ),
            },
            pool_score=adversarial.deepfool_adapter,
            points=adversarial.deepfool_points,
            method=adversarial.resolved_method,
        ),
    )
}

# Stream strategies (StreamSelectionService): a decision per arriving item at a target rate,
# not a ranking of a pool, so a table of their own (entries in stream.py); ListStrategies lists
# them after STRATEGIES, with family "stream".
STREAM_STRATEGIES: Mapping[str, stream.StreamStrategy] = {
    entry.name: entry for entry in stream.STREAM_ENTRIES
}


def _with_class_balance(strategy: Strategy) -> Strategy:
    """strategy with the class_balance parameter (balance.py), and the input it then needs."""
    own_needs = strategy.needs_of

    def needs_of(params: Params) -> frozenset[Input]:
        own = strategy.needs if own_needs is None else own_needs(params)
        return own | balance.needs(own, params)

    params = {**strategy.params, "class_balance": balance.PARAM}
    # Seeded: a balanced score strategy draws each class's quota from the request's seed.
    return replace(strategy, params=params, needs_of=needs_of, seeded=True)


def _on_model_outputs(strategy: Strategy) -> bool:
    return strategy.task == "classification" and Input.MODEL not in strategy.needs


# Every classification strategy on model outputs takes class_balance.
_TABLE: Mapping[str, Strategy] = {
    name: _with_class_balance(strategy) if _on_model_outputs(strategy) else strategy
    for name, strategy in _PLAIN.items()
}
# The strategies auto may choose among: the classification ones that work on model outputs.
ARM_NAMES = tuple(name for name, strategy in _TABLE.items() if _on_model_outputs(strategy))


def run_arm(pool: Pool, task: Task, name: str) -> tuple[IntArray, FloatArray]:
    """Strategy name's top task.k candidates with its default params: ranked by score for a
    score strategy (every candidate when a budget applies: the budget walk may pass over
    items), in pick order for a batch one (after its pre-filter, if any; it keeps to the
    budget itself)."""
    strategy = STRATEGIES[name]
    params = {param_name: param.default for param_name, param in strategy.params.items()}
    if strategy.batch_select is not None:
        if strategy.narrow is not None:
            task = Task(
                task.k, strategy.narrow(pool, task, params), task.seed, task.budget, task.stop
            )
        return strategy.batch_select(pool, task, params)
    if strategy.block_score is not None:
        scores = base_scores(pool, name, task.stop)
    elif strategy.pool_score is not None:
        scores = strategy.pool_score(pool, task, params)
    else:
        raise ValueError(f"{name} cannot be an arm of auto")
    if task.budget is not None:
        return rank(task.candidates, scores[task.candidates])
    return top_k(scores[task.candidates], task.k, task.candidates)


def _auto_needs(params: Params) -> frozenset[Input]:
    needs = set(PROBABILITIES)
    for name in auto.parse_arms(str(params["arms"])):
        arm = STRATEGIES[name]
        needs |= arm.inputs({p: spec.default for p, spec in arm.params.items()})
    return frozenset(needs)


AUTO = Strategy(
    "auto",
    family="selection",
    summary="Chooses among candidate strategies (arms) from the caller's own history "
    "(SelectQueriesRequest.history): an item of class y that the model gave probability "
    "p̂_y before labeling is worth 1 − p̂_y (the model's surprise; TAILOR's class-diversity "
    "reward and the product of the two are options), with Thompson sampling on each arm's "
    "Dirichlet label distribution, one draw per pick, so a batch mixes arms by their "
    "posterior. Reports the arm of each pick and the arms' weights "
    "(StrategyResult.auto_selection). Zhang et al. (2023); see docs/strategy-selection.md.",
    needs=PROBABILITIES,
    params={
        "arms": Param(
            NameList(ARM_NAMES, auto.MAX_ARMS),
            default=",".join(auto.DEFAULT_ARMS),
            description="The candidate strategies, comma-separated, each run with its "
            "default parameters; keep 'random' among them as the safety net. auto needs "
            "what its arms need.",
        ),
        "reward": Param(
            Options(str, auto.REWARDS),
            default="surprise",
            description="How an arm's picks are scored: 'surprise', 1 − p̂_y for an item of "
            "class y, p̂_y the model's probability of y before labeling (the history rounds' "
            "probabilities, needed for the items arms picked): the items the model got wrong; "
            "'rare_surprise', v_y · (1 − p̂_y) with v_y = 1 / max(1, N_y), N_y the labeled "
            "items of that class in the history: rare classes the model got wrong; "
            "'class_diversity' (TAILOR), v_y alone, which needs no probabilities.",
        ),
        "prior_items": Param(
            Interval(float, 0.0, 1e6, closed="right"),
            default=10.0,
            description="The strength of each arm's prior, in items: the prior is that an "
            "arm picks classes like every label so far (add-one smoothed).",
        ),
        "discount": Param(
            Interval(float, 0.0, 1.0, closed="right"),
            default=0.9,
            description="Each history round's evidence is weighted discount^(rounds since "
            "it), so the posterior follows arms whose picks change as the model learns; "
            "1 keeps every round at full weight.",
        ),
    },
    explained_select=lambda pool, task, params: auto.auto_select(pool, task, params, run_arm),
    seeded=True,
    needs_of=_auto_needs,
)

STRATEGIES: Mapping[str, Strategy] = {**_TABLE, AUTO.name: AUTO}


__all__ = [
    "ARM_NAMES",
    "BASES",
    "POWER_BASES",
    "POWER_OFFSETS",
    "STRATEGIES",
    "STREAM_STRATEGIES",
    "base_scores",
]
