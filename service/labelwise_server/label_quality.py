"""LabelQualityService's work: decode and check a request, run strategies/annotators, encode.

AssessLabels: consensus and quality by CROWDLAB, Dawid-Skene or Bayes EM. PlanLabeling: ActiveLab
priorities over labeled and pool items on one scale, then annotators assigned in rank order
by a weighted round robin (shares proportional to expected correct labels beyond chance per
unit cost) within the budget, from interval estimates of their accuracy (see
strategies/annotators.py for the math and its references).

Every check runs before any array the size of the work is allocated: the tensors are bounded
by the element limit as they are decoded, and the annotations' working set (e labels × c
classes, a × c × c confusion entries) by the same limit before the math starts.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise.v1 import label_quality_pb2 as lq
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import reasons
from labelwise_server.checks import SUM_TOLERANCE, check_class_probabilities
from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies import annotators as ann
from labelwise_server.strategies._types import FloatArray, IntArray, Pool, RealArray, StopCheck
from labelwise_server.strategies._types import never_stop as _never_stop
from labelwise_server.strategies.params import Interval, Options, Param
from labelwise_server.strategies.registry import base_scores
from labelwise_server.tensors import INT_DTYPES, RawTensor, decode_tensor, encode_tensor

DEFAULT_MAX_ITERATIONS = 100
MAX_ITERATIONS = 1000
DEFAULT_TOLERANCE = 1e-5
DEFAULT_PRIOR_STRENGTH = 10.0
MAX_PRIOR_STRENGTH = 1e6
DEFAULT_ALPHA = 0.05
DEFAULT_EPSILON = 0.9
POOL_STRATEGIES = ("activelab", "least_confidence", "margin", "ratio", "entropy")
ACCURACY_BOUNDS = ("upper", "mean", "lower")


@dataclass(frozen=True)
class MethodInfo:
    """One method of LabelQualityService, as ListStrategies describes it
    (ListStrategiesResponse.label_quality_methods). params: the request fields that tune it,
    by their field name, with the default an unset field means."""

    name: str
    rpcs: tuple[str, ...]
    description: str
    params: dict[str, Param]
    is_default: bool


# The EM methods' shared settings (AssessLabelsRequest.max_iterations, .tolerance).
EM_PARAMS: dict[str, Param] = {
    "max_iterations": Param(
        Interval(int, 1, MAX_ITERATIONS),
        default=DEFAULT_MAX_ITERATIONS,
        description="The most EM iterations.",
    ),
    "tolerance": Param(
        Interval(float, 0.0, None, closed="right"),
        default=DEFAULT_TOLERANCE,
        description="EM stops once the evidence lower bound per annotation gains less.",
    ),
}

# The one table of the label-quality methods: ListStrategies reads it, and the decoders below
# take their defaults and bounds from the same constants (tests/test_label_quality.py checks
# that an unset field decodes to each default).
METHODS: tuple[MethodInfo, ...] = (
    MethodInfo(
        "crowdlab",
        ("AssessLabels", "PlanLabeling"),
        "CROWDLAB (Goh, Tkachenko & Mueller 2022): consensus label, its quality and annotator "
        "quality; the model counts as one more annotator and everyone is weighted by agreement "
        "beyond always answering the most common class. Needs labeled_probabilities and one "
        "item with two labels. As cleanlab's get_label_quality_multiannotator.",
        {},
        True,
    ),
    MethodInfo(
        "dawid_skene",
        ("AssessLabels",),
        "Dawid-Skene EM (Dawid & Skene 1979): a confusion matrix per annotator and class "
        "priors from the annotations alone; consensus = the posterior's argmax, annotator "
        "quality = its expected accuracy. As crowd-kit's DawidSkene.",
        dict(EM_PARAMS),
        False,
    ),
    MethodInfo(
        "bayes_em",
        ("AssessLabels",),
        "Bayes EM (the E-step of Raykar et al. 2010, the caller's model held fixed): consensus "
        "= the posterior of the true class, prior = the model's probabilities at a fitted "
        "temperature (class priors without them), likelihood = each annotator's one-coin "
        "accuracy shrunk toward the pooled accuracy; fitted by EM. Two agreeing labels "
        "outvote the model unless it is confident beyond their combined accuracy. With "
        "accuracy_prior_strength 0 and no model, crowd-kit's OneCoinDawidSkene.",
        {
            **EM_PARAMS,
            "accuracy_prior_strength": Param(
                Interval(float, 0.0, MAX_PRIOR_STRENGTH),
                default=DEFAULT_PRIOR_STRENGTH,
                description="Pseudo-labels at the pooled accuracy each annotator's accuracy "
                "starts from.",
            ),
        },
        False,
    ),
    MethodInfo(
        "activelab",
        ("PlanLabeling",),
        "ActiveLab (Goh & Mueller 2023): one scale for 'label again' (CROWDLAB's consensus "
        "quality mixed with 1/c by the weight of an item's annotators and the model) and "
        "'label first' (the model's temperature-scaled confidence mixed with 1/c); priority = "
        "1 − score. As cleanlab's get_active_learning_scores, with the vote fractions of its "
        "temperature search counted by class.",
        {
            "pool_strategy": Param(
                Options(str, POOL_STRATEGIES),
                default="activelab",
                description="What orders the pool items among themselves; another strategy "
                "takes ActiveLab's pool scores in its own order.",
            )
        },
        True,
    ),
    MethodInfo(
        "interval_estimation",
        ("PlanLabeling",),
        "Who labels it (Kaelbling 1993; IEThresh, Donmez et al. 2009): each annotator's "
        "agreement with a reference label as a Student-t interval with one pseudo-agreement "
        "and one pseudo-disagreement; annotators below epsilon × the best get nothing; walking "
        "the ranking, each item goes to the eligible annotator with the fewest tasks so far "
        "relative to its expected correct labels beyond chance per unit cost, "
        "((q − 1/c)/(1 − 1/c)) / cost (a weighted round robin: shares in proportion to that "
        "value), within budget and capacity.",
        {
            "accuracy_bound": Param(
                Options(str, ACCURACY_BOUNDS),
                default="upper",
                description="Which end of the interval is an annotator's accuracy "
                "(AccuracyBound: ACCURACY_BOUND_UPPER, _MEAN, _LOWER).",
            ),
            "alpha": Param(
                Interval(float, 0.0, None, closed="right"),
                default=DEFAULT_ALPHA,
                description="The intervals' level is 1 − alpha; must also be < 1.",
            ),
            "epsilon": Param(
                Interval(float, 0.0, 1.0),
                default=DEFAULT_EPSILON,
                description="IEThresh's threshold: annotators below epsilon × the best "
                "expected accuracy get no task.",
            ),
        },
        True,
    ),
)


def _raw(tensor: pb.Tensor) -> RawTensor:
    return RawTensor(tensor.dtype, list(tensor.shape), memoryview(tensor.raw_data))


def _probabilities(tensor: pb.Tensor, name: str, max_elements: int, layout: str) -> RealArray:
    array = decode_tensor(_raw(tensor), name, max_elements)
    if array.ndim != 2:
        raise InvalidArgument(f"{name}.shape", f"must be {layout}; got {list(array.shape)}")
    check_class_probabilities(array, name, layout, SUM_TOLERANCE[tensor.dtype])
    return array


def decode_annotations(
    tensor: pb.Tensor, classes: int, max_elements: int, field: str = "annotations"
) -> IntArray:
    """annotations [l, a] as int64: integer dtype, l >= 1, a >= 1, each -1 or in [0, classes),
    every row with a label, e × classes and a × classes² within max_elements."""
    if tensor.dtype not in INT_DTYPES:
        raise InvalidArgument(f"{field}.dtype", "must be DATA_TYPE_INT32 or DATA_TYPE_INT64")
    array: npt.NDArray[Any] = decode_tensor(_raw(tensor), field, max_elements, allow_int=True)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise InvalidArgument(
            f"{field}.shape",
            f"must be [l, a] with l >= 1 labeled items and a >= 1 annotators; "
            f"got {list(array.shape)}",
        )
    bad = (array < ann.MISSING) | (array >= classes)
    if bad.any():
        where = [int(i) for i in np.unravel_index(int(np.argmax(bad)), array.shape)]
        raise InvalidArgument(
            field, f"every entry must be -1 (missing) or a class in [0, {classes}); not at {where}"
        )
    present = array != ann.MISSING
    empty = ~present.any(axis=1)
    if empty.any():
        raise InvalidArgument(
            field,
            f"every labeled item needs at least one annotation; row {int(np.argmax(empty))} "
            "has none",
        )
    labels = int(np.count_nonzero(present))
    a = array.shape[1]
    if labels * classes > max_elements or a * classes * classes > max_elements:
        raise InvalidArgument(
            field,
            f"{labels} annotations × {classes} classes and {a} annotators × {classes}² must "
            f"each be at most {max_elements} elements",
            reason=reasons.TOO_MANY_ELEMENTS,
        )
    return array.astype(np.int64)


@dataclass(frozen=True)
class Assess:
    annotations: IntArray
    probabilities: RealArray | None
    classes: int
    method: int
    max_iterations: int
    tolerance: float
    prior_strength: float


def decode_assess(request: lq.AssessLabelsRequest, max_elements: int) -> Assess:
    """Check every field of an AssessLabelsRequest; InvalidArgument on the first bad one."""
    method = request.method or lq.LABEL_QUALITY_METHOD_CROWDLAB
    if method not in (
        lq.LABEL_QUALITY_METHOD_CROWDLAB,
        lq.LABEL_QUALITY_METHOD_DAWID_SKENE,
        lq.LABEL_QUALITY_METHOD_BAYES_EM,
    ):
        raise InvalidArgument(
            "method",
            f"must be LABEL_QUALITY_METHOD_CROWDLAB, _DAWID_SKENE or _BAYES_EM; got {method}",
        )
    probabilities = None
    if request.HasField("labeled_probabilities"):
        probabilities = _probabilities(
            request.labeled_probabilities, "labeled_probabilities", max_elements, "[l, c]"
        )
    if request.HasField("num_classes"):
        classes = request.num_classes
        if classes < 2 or classes > max_elements:
            raise InvalidArgument("num_classes", f"must be in [2, {max_elements}]; got {classes}")
        if probabilities is not None and probabilities.shape[1] != classes:
            raise InvalidArgument(
                "num_classes",
                f"must equal labeled_probabilities' c = {probabilities.shape[1]}; got {classes}",
            )
    elif probabilities is not None:
        classes = probabilities.shape[1]
    else:
        raise InvalidArgument(
            "labeled_probabilities",
            "is required (CROWDLAB uses it; for Dawid-Skene and Bayes EM num_classes may "
            "replace it)",
            reason=reasons.MISSING_INPUT,
        )
    if method == lq.LABEL_QUALITY_METHOD_CROWDLAB and probabilities is None:
        raise InvalidArgument(
            "labeled_probabilities", "is required by CROWDLAB", reason=reasons.MISSING_INPUT
        )
    if not request.HasField("annotations"):
        raise InvalidArgument("annotations", "is required", reason=reasons.MISSING_INPUT)
    annotations = decode_annotations(request.annotations, classes, max_elements)
    if probabilities is not None and probabilities.shape[0] != annotations.shape[0]:
        raise InvalidArgument(
            "labeled_probabilities.shape",
            f"must have items = {annotations.shape[0]} rows, one per row of annotations; "
            f"got {list(probabilities.shape)}",
        )
    if (
        method == lq.LABEL_QUALITY_METHOD_CROWDLAB
        and not ((annotations != ann.MISSING).sum(axis=1) > 1).any()
    ):
        raise InvalidArgument(
            "annotations",
            "CROWDLAB needs at least one item with two or more annotations (it weighs "
            "annotators by their agreement); use Dawid-Skene, or PlanLabeling",
        )
    iterations = (
        request.max_iterations if request.HasField("max_iterations") else DEFAULT_MAX_ITERATIONS
    )
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise InvalidArgument(
            "max_iterations", f"must be in [1, {MAX_ITERATIONS}]; got {iterations}"
        )
    tolerance = request.tolerance if request.HasField("tolerance") else DEFAULT_TOLERANCE
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise InvalidArgument("tolerance", f"must be finite and > 0; got {tolerance}")
    strength = (
        request.accuracy_prior_strength
        if request.HasField("accuracy_prior_strength")
        else DEFAULT_PRIOR_STRENGTH
    )
    if not (np.isfinite(strength) and 0 <= strength <= MAX_PRIOR_STRENGTH):
        raise InvalidArgument(
            "accuracy_prior_strength", f"must be in [0, {MAX_PRIOR_STRENGTH:g}]; got {strength}"
        )
    return Assess(
        annotations, probabilities, classes, method, iterations, float(tolerance), float(strength)
    )


def assess(inputs: Assess, stop: StopCheck = _never_stop) -> lq.AssessLabelsResponse:
    obs = ann.observe(inputs.annotations, inputs.classes)
    stop()
    vote = ann.majority_vote(obs, inputs.probabilities)
    counts = obs.per_annotator.astype(np.int64)
    if inputs.method == lq.LABEL_QUALITY_METHOD_DAWID_SKENE:
        ds = ann.dawid_skene(
            inputs.annotations,
            inputs.classes,
            max_iterations=inputs.max_iterations,
            tolerance=inputs.tolerance,
            stop=stop,
            obs=obs,
        )
        response = _em_response(obs, ds.consensus, ds.quality, ds.annotator_quality, ds.priors)
        response.method = lq.LABEL_QUALITY_METHOD_DAWID_SKENE
        response.confusion.CopyFrom(encode_tensor(ds.confusion, pb.DATA_TYPE_FLOAT64))
        return _with_counts(response, ds.iterations, counts, vote)
    if inputs.method == lq.LABEL_QUALITY_METHOD_BAYES_EM:
        em = ann.bayes_em(
            inputs.annotations,
            inputs.classes,
            inputs.probabilities,
            prior_strength=inputs.prior_strength,
            max_iterations=inputs.max_iterations,
            tolerance=inputs.tolerance,
            stop=stop,
            obs=obs,
        )
        response = _em_response(obs, em.consensus, em.quality, em.accuracy, em.priors)
        response.method = lq.LABEL_QUALITY_METHOD_BAYES_EM
        response.model_temperature = em.temperature
        return _with_counts(response, em.iterations, counts, vote)
    if inputs.probabilities is None:  # decode_assess requires them for CROWDLAB
        raise InvalidArgument("labeled_probabilities", "is required by CROWDLAB")
    result = ann.crowdlab(inputs.annotations, inputs.probabilities, obs)
    return lq.AssessLabelsResponse(
        method=lq.LABEL_QUALITY_METHOD_CROWDLAB,
        consensus_labels=result.consensus.tolist(),
        consensus_quality=result.quality.tolist(),
        item_agreement=result.agreement.tolist(),
        annotator_quality=result.annotator_quality.tolist(),
        annotator_agreement=result.annotator_agreement.tolist(),
        annotator_label_counts=counts.tolist(),
        annotator_weights=result.annotator_weights.tolist(),
        model_weight=result.model_weight,
        majority_vote_labels=vote.tolist(),
    )


def _em_response(
    obs: ann.Observed,
    consensus: IntArray,
    quality: FloatArray,
    annotator_quality: FloatArray,
    priors: FloatArray,
) -> lq.AssessLabelsResponse:
    """The fields Dawid-Skene and Bayes EM fill alike, from their consensus and estimates."""
    hit = (obs.label == consensus[obs.item]).astype(np.float64)
    return lq.AssessLabelsResponse(
        consensus_labels=consensus.tolist(),
        consensus_quality=quality.tolist(),
        item_agreement=_agreement(obs, consensus).tolist(),
        annotator_quality=annotator_quality.tolist(),
        annotator_agreement=_per_annotator_mean(obs, hit).tolist(),
        class_priors=priors.tolist(),
    )


def _with_counts(
    response: lq.AssessLabelsResponse, iterations: int, counts: IntArray, vote: IntArray
) -> lq.AssessLabelsResponse:
    response.iterations = iterations
    response.annotator_label_counts.extend(counts.tolist())
    response.majority_vote_labels.extend(vote.tolist())
    return response


def _agreement(obs: ann.Observed, consensus: IntArray) -> FloatArray:
    rows = np.arange(obs.counts.shape[0])
    return np.asarray(obs.counts[rows, consensus] / obs.per_item, dtype=np.float64)


def _per_annotator_mean(obs: ann.Observed, values: FloatArray) -> FloatArray:
    a = obs.per_annotator.shape[0]
    sums = np.bincount(obs.annotator, weights=values, minlength=a)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(obs.per_annotator > 0, sums / obs.per_annotator, np.nan)


@dataclass(frozen=True)
class Plan:
    annotations: IntArray  # [l, a]
    probabilities: RealArray  # [l, c]
    pool: RealArray  # [n, c], n may be 0
    costs: FloatArray  # [a]
    budget: float | None
    k: int
    pool_strategy: str
    bound: str  # "upper", "mean" or "lower"
    alpha: float
    epsilon: float
    capacity: int | None
    exclude_labeled: IntArray
    exclude_pool: IntArray


def _indices(values: Any, size: int, field: str) -> IntArray:
    array = np.asarray(values, dtype=np.int64)
    bad = (array < 0) | (array >= size)
    if bad.any():
        position = int(np.argmax(bad))
        raise InvalidArgument(
            f"{field}[{position}]", f"must be in [0, {size}); got {int(array[position])}"
        )
    return array


def decode_plan(request: lq.PlanLabelingRequest, max_elements: int) -> Plan:
    """Check every field of a PlanLabelingRequest; InvalidArgument on the first bad one."""
    if not request.HasField("labeled_probabilities"):
        raise InvalidArgument("labeled_probabilities", "is required", reason=reasons.MISSING_INPUT)
    probabilities = _probabilities(
        request.labeled_probabilities, "labeled_probabilities", max_elements, "[l, c]"
    )
    items, c = probabilities.shape
    if not request.HasField("annotations"):
        raise InvalidArgument("annotations", "is required", reason=reasons.MISSING_INPUT)
    annotations = decode_annotations(request.annotations, c, max_elements)
    if annotations.shape[0] != items:
        raise InvalidArgument(
            "labeled_probabilities.shape",
            f"must have items = {annotations.shape[0]} rows, one per row of annotations; "
            f"got {list(probabilities.shape)}",
        )
    a = annotations.shape[1]
    pool: RealArray = np.zeros((0, c))
    if request.HasField("pool_probabilities"):
        pool = _probabilities(request.pool_probabilities, "pool_probabilities", max_elements,
                              "[n, c]")  # fmt: skip
        if pool.shape[1] != c:
            raise InvalidArgument(
                "pool_probabilities.shape",
                f"must be [n, c] with the c = {c} of labeled_probabilities; got {list(pool.shape)}",
            )
    costs = np.ones(a)
    if request.HasField("annotator_costs"):
        raw = decode_tensor(_raw(request.annotator_costs), "annotator_costs", max_elements)
        if raw.shape != (a,):
            raise InvalidArgument(
                "annotator_costs.shape",
                f"must be [a] = [{a}], one per column of annotations; got {list(raw.shape)}",
            )
        positive = np.isfinite(raw) & (raw > 0)
        if not positive.all():
            j = int(np.argmax(~positive))
            raise InvalidArgument("annotator_costs", f"must be finite and > 0; not at [{j}]")
        costs = raw.astype(np.float64)
    budget = None
    if request.HasField("budget"):
        budget = request.budget
        if not (np.isfinite(budget) and budget >= 0):
            raise InvalidArgument("budget", f"must be finite and >= 0; got {budget}")
    exclude_labeled = _indices(request.exclude_labeled, items, "exclude_labeled")
    exclude_pool = _indices(request.exclude_pool, pool.shape[0], "exclude_pool")
    excluded = np.unique(exclude_labeled).shape[0] + np.unique(exclude_pool).shape[0]
    candidates = items + pool.shape[0] - excluded
    k = request.k
    if k < 1:
        raise InvalidArgument("k", f"must be >= 1; got {k}")
    if k > candidates:
        if not request.clamp_k:
            raise InvalidArgument(
                "k",
                f"must be at most the {candidates} candidate items (l + n minus the excluded); "
                f"got {k} (set clamp_k to lower it instead)",
            )
        k = candidates
    strategy = request.pool_strategy or "activelab"
    if strategy not in POOL_STRATEGIES:
        raise InvalidArgument(
            "pool_strategy",
            f"must be one of {', '.join(POOL_STRATEGIES)}; got {strategy[:64]!r}",
            reason=reasons.UNKNOWN_STRATEGY,
        )
    bounds = {
        lq.ACCURACY_BOUND_UNSPECIFIED: "upper",
        lq.ACCURACY_BOUND_UPPER: "upper",
        lq.ACCURACY_BOUND_MEAN: "mean",
        lq.ACCURACY_BOUND_LOWER: "lower",
    }
    if request.accuracy_bound not in bounds:
        raise InvalidArgument(
            "accuracy_bound",
            f"must be ACCURACY_BOUND_UPPER, _MEAN or _LOWER; got {request.accuracy_bound}",
        )
    alpha = request.alpha if request.HasField("alpha") else DEFAULT_ALPHA
    if not (np.isfinite(alpha) and 0 < alpha < 1):
        raise InvalidArgument("alpha", f"must be in (0, 1); got {alpha}")
    epsilon = request.epsilon if request.HasField("epsilon") else DEFAULT_EPSILON
    if not (np.isfinite(epsilon) and 0 <= epsilon <= 1):
        raise InvalidArgument("epsilon", f"must be in [0, 1]; got {epsilon}")
    capacity = None
    if request.HasField("max_tasks_per_annotator"):
        capacity = request.max_tasks_per_annotator
        if capacity < 1:
            raise InvalidArgument(
                "max_tasks_per_annotator", f"must be >= 1 when set; got {capacity}"
            )
    return Plan(
        annotations,
        probabilities,
        pool,
        costs,
        budget,
        int(k),
        strategy,
        bounds[request.accuracy_bound],
        float(alpha),
        float(epsilon),
        capacity,
        exclude_labeled,
        exclude_pool,
    )


def plan(inputs: Plan, stop: StopCheck = _never_stop) -> lq.PlanLabelingResponse:
    annotations = inputs.annotations
    items, a = annotations.shape
    c = inputs.probabilities.shape[1]
    stop()
    active = ann.activelab_priorities(annotations, inputs.probabilities, inputs.pool)
    stop()
    pool_scores = active.pool
    if inputs.pool_strategy != "activelab" and pool_scores.shape[0]:
        pool = Pool(inputs.pool.shape[0], probabilities=inputs.pool)
        pool_scores = ann.rank_map(pool_scores, base_scores(pool, inputs.pool_strategy, stop))
    obs = ann.observe(annotations, c)
    # The reference an annotator's label is checked against: the consensus where someone else
    # labeled the item too, else the model's out-of-sample prediction (independent of it).
    predicted = np.argmax(inputs.probabilities, axis=1)
    reference = np.where(obs.per_item >= 2, active.consensus, predicted).astype(np.int64)
    intervals = ann.annotator_intervals(obs, reference, alpha=inputs.alpha)
    chosen_bound = {"upper": intervals.upper, "mean": intervals.mean, "lower": intervals.lower}
    accuracy = np.clip(chosen_bound[inputs.bound], 0.0, 1.0)
    eligible = ann.threshold_annotators(accuracy, inputs.epsilon)
    # What a label is worth: its chance of being right beyond guessing, (q − 1/c) / (1 − 1/c);
    # an annotator at chance level gives nothing, however cheap.
    value = np.clip((accuracy - 1.0 / c) / (1.0 - 1.0 / c), 0.0, 1.0)
    # Candidates: labeled items, then pool items; best score first, ties to the lower id.
    scores: FloatArray = np.concatenate([active.labeled, pool_scores])
    allowed = np.ones(scores.shape[0], dtype=bool)
    allowed[inputs.exclude_labeled] = False
    allowed[items + inputs.exclude_pool] = False
    ids = np.flatnonzero(allowed).astype(np.int64)
    order: IntArray = ids[np.lexsort((ids, -scores[ids]))]
    present = annotations != ann.MISSING
    nobody = np.zeros(a, dtype=bool)

    def already(candidate: int) -> npt.NDArray[np.bool_]:
        return present[candidate] if candidate < items else nobody

    assignment = ann.assign_annotators(
        order,
        already,
        value,
        inputs.costs,
        eligible,
        k=inputs.k,
        budget=inputs.budget,
        capacity=inputs.capacity,
        stop=stop,
    )
    crowd_quality = _annotator_quality(annotations, inputs.probabilities, obs)
    tasks = []
    for position, annotator, cost in zip(
        assignment.chosen, assignment.annotator, assignment.cost, strict=True
    ):
        candidate = int(order[position])
        relabel = candidate < items
        tasks.append(
            lq.LabelingTask(
                kind=lq.LABELING_KIND_RELABEL if relabel else lq.LABELING_KIND_LABEL_FIRST,
                index=candidate if relabel else candidate - items,
                score=float(scores[candidate]),
                annotator=int(annotator),
                expected_accuracy=float(accuracy[annotator]),
                cost=float(cost),
            )
        )
    per_annotator = np.bincount(assignment.annotator, minlength=a)
    return lq.PlanLabelingResponse(
        tasks=tasks,
        total_cost=assignment.total_cost,
        annotators=[
            lq.AnnotatorEstimate(
                accuracy_mean=float(intervals.mean[j]),
                accuracy_lower=float(intervals.lower[j]),
                accuracy_upper=float(intervals.upper[j]),
                observations=int(intervals.observations[j]),
                quality=float(crowd_quality[j]),
                eligible=bool(eligible[j]),
                cost=float(inputs.costs[j]),
                tasks=int(per_annotator[j]),
            )
            for j in range(a)
        ],
        temperature=active.temperature,
        candidates_considered=int(ids.shape[0]),
        consensus_labels=active.consensus.tolist(),
    )


def _annotator_quality(
    annotations: IntArray, probabilities: RealArray, obs: ann.Observed
) -> FloatArray:
    """CROWDLAB's annotator quality, or (no item with two labels) the mean model probability
    of each annotator's labels (the mean of the others for one with none)."""
    if (obs.per_item > 1).any():
        return ann.crowdlab(annotations, probabilities, obs).annotator_quality
    p = np.asarray(probabilities, dtype=np.float64)
    quality = _per_annotator_mean(obs, p[obs.item, obs.label])
    seen = obs.per_annotator > 0
    quality[~seen] = quality[seen].mean()
    return quality
