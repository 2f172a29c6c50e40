"""label_quality.py: every bad field named, and the plan's promises (budget, kinds, who)."""

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise.tensors import encode_tensor
from labelwise.v1 import label_quality_pb2 as lq
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import reasons
from labelwise_server.errors import InvalidArgument
from labelwise_server.label_quality import assess, decode_assess, decode_plan, plan
from labelwise_server.strategies import annotators as ann
from tests.strategies.annotator_support import make_crowd

LIMIT = 1 << 20
CROWD = make_crowd(0, items=40, annotators=4, classes=3, pool=30)


def _plan(**fields: Any) -> lq.PlanLabelingRequest:
    request = lq.PlanLabelingRequest(k=fields.pop("k", 5))
    request.annotations.CopyFrom(encode_tensor(fields.pop("annotations", CROWD.annotations)))
    request.labeled_probabilities.CopyFrom(
        encode_tensor(fields.pop("labeled_probabilities", CROWD.probabilities))
    )
    if "pool_probabilities" not in fields:
        request.pool_probabilities.CopyFrom(encode_tensor(CROWD.pool))
    for name, value in fields.items():
        if isinstance(value, np.ndarray):
            getattr(request, name).CopyFrom(encode_tensor(value))
        elif isinstance(value, pb.Tensor):
            getattr(request, name).CopyFrom(value)
        elif isinstance(value, list):
            getattr(request, name).extend(value)
        elif value is not None:
            setattr(request, name, value)
    return request


def _assess(**fields: Any) -> lq.AssessLabelsRequest:
    request = lq.AssessLabelsRequest(method=fields.pop("method", 0))
    annotations = fields.pop("annotations", CROWD.annotations)
    if annotations is not None:
        request.annotations.CopyFrom(encode_tensor(annotations))
    probabilities = fields.pop("labeled_probabilities", CROWD.probabilities)
    if probabilities is not None:
        request.labeled_probabilities.CopyFrom(encode_tensor(probabilities))
    for name, value in fields.items():
        setattr(request, name, value)
    return request


BAD_ANNOTATIONS = CROWD.annotations.copy()
BAD_ANNOTATIONS[3, 1] = 3  # c = 3
EMPTY_ROW = CROWD.annotations.copy()
EMPTY_ROW[7] = -1
SINGLE = np.where(np.arange(4)[None, :] == np.arange(40)[:, None] % 4, 0, -1)

ASSESS_CASES = [
    ({"annotations": CROWD.annotations.astype(np.float32)}, "annotations.dtype"),
    ({"annotations": BAD_ANNOTATIONS}, "annotations"),
    ({"annotations": np.full((40, 4), -2)}, "annotations"),
    ({"annotations": EMPTY_ROW}, "annotations"),
    ({"annotations": CROWD.annotations[:, :, None]}, "annotations.shape"),
    ({"annotations": np.zeros((0, 4), dtype=np.int64)}, "annotations.shape"),
    ({"annotations": None}, "annotations"),
    ({"annotations": CROWD.annotations[:30]}, "labeled_probabilities.shape"),
    ({"labeled_probabilities": CROWD.probabilities * 2}, "labeled_probabilities"),
    ({"labeled_probabilities": None}, "labeled_probabilities"),
    ({"annotations": SINGLE}, "annotations"),  # CROWDLAB needs an item with two labels
    ({"method": 7}, "method"),
    ({"num_classes": 4}, "num_classes"),
    ({"num_classes": 1, "labeled_probabilities": None, "method": 2}, "num_classes"),
    ({"max_iterations": 0, "method": 2}, "max_iterations"),
    ({"tolerance": float("nan"), "method": 2}, "tolerance"),
    ({"accuracy_prior_strength": -1.0, "method": 3}, "accuracy_prior_strength"),
    ({"accuracy_prior_strength": float("inf"), "method": 3}, "accuracy_prior_strength"),
    ({"labeled_probabilities": None, "method": 3}, "labeled_probabilities"),  # no c at all
    ({"max_iterations": 1001, "method": 3}, "max_iterations"),
]


@pytest.mark.parametrize(("fields", "field"), ASSESS_CASES)
def test_assess_names_the_bad_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_assess(_assess(**fields), LIMIT)
    assert caught.value.field == field


def test_assess_bounds_the_working_set_before_the_math() -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_assess(_assess(), max_elements=200)  # 4 × 3² fits; the labels × 3 do not
    assert caught.value.reason == reasons.TOO_MANY_ELEMENTS


PLAN_CASES = [
    ({"k": 0}, "k"),
    ({"k": 71}, "k"),  # 40 + 30 candidates
    ({"k": 70, "exclude_pool": [0]}, "k"),
    ({"exclude_labeled": [40]}, "exclude_labeled[0]"),
    ({"exclude_pool": [1, -1]}, "exclude_pool[1]"),
    ({"annotator_costs": np.ones(3)}, "annotator_costs.shape"),
    ({"annotator_costs": np.array([1.0, 0.0, 1.0, 1.0])}, "annotator_costs"),
    ({"annotator_costs": np.array([1.0, np.inf, 1.0, 1.0])}, "annotator_costs"),
    ({"budget": -1.0}, "budget"),
    ({"pool_strategy": "bald"}, "pool_strategy"),
    ({"accuracy_bound": 9}, "accuracy_bound"),
    ({"alpha": 1.0}, "alpha"),
    ({"epsilon": 1.5}, "epsilon"),
    ({"max_tasks_per_annotator": 0}, "max_tasks_per_annotator"),
    ({"pool_probabilities": np.full((5, 4), 0.25)}, "pool_probabilities.shape"),
    ({"labeled_probabilities": np.full((40, 2), 0.5)}, "annotations"),  # label 2 with c = 2
    ({"annotations": EMPTY_ROW}, "annotations"),
]


@pytest.mark.parametrize(("fields", "field"), PLAN_CASES)
def test_plan_names_the_bad_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_plan(_plan(**fields), LIMIT)
    assert caught.value.field == field


def test_assess_crowdlab_and_dawid_skene_answer_the_math() -> None:
    crowdlab = assess(decode_assess(_assess(), LIMIT))
    expected = ann.crowdlab(CROWD.annotations, CROWD.probabilities)
    assert list(crowdlab.consensus_labels) == expected.consensus.tolist()
    np.testing.assert_allclose(crowdlab.consensus_quality, expected.quality)
    assert crowdlab.method == lq.LABEL_QUALITY_METHOD_CROWDLAB
    assert list(crowdlab.annotator_label_counts) == (CROWD.annotations >= 0).sum(0).tolist()
    ds = assess(decode_assess(_assess(method=2, labeled_probabilities=None, num_classes=3), LIMIT))
    expected_ds = ann.dawid_skene(CROWD.annotations, 3)
    np.testing.assert_allclose(ds.consensus_quality, expected_ds.quality)
    assert ds.iterations == expected_ds.iterations and list(ds.confusion.shape) == [4, 3, 3]


def test_assess_bayes_em_answers_the_math_with_and_without_the_model() -> None:
    em = assess(decode_assess(_assess(method=3), LIMIT))
    expected = ann.bayes_em(CROWD.annotations, 3, CROWD.probabilities)
    assert em.method == lq.LABEL_QUALITY_METHOD_BAYES_EM
    assert list(em.consensus_labels) == expected.consensus.tolist()
    np.testing.assert_allclose(em.consensus_quality, expected.quality)
    np.testing.assert_allclose(em.annotator_quality, expected.accuracy)
    assert em.model_temperature == expected.temperature > 0
    assert em.iterations == expected.iterations and not em.HasField("confusion")
    # Without the model (c from num_classes), with a strength of its own; no item needs two
    # labels, unlike CROWDLAB.
    alone = assess(
        decode_assess(
            _assess(
                method=3,
                annotations=SINGLE,
                labeled_probabilities=None,
                num_classes=3,
                accuracy_prior_strength=0.0,
            ),
            LIMIT,
        )
    )
    assert alone.model_temperature == 0 and list(alone.consensus_labels) == [0] * 40


def test_plan_stays_in_budget_and_never_sends_an_item_back_to_its_annotator() -> None:
    costs = np.array([1.0, 2.0, 0.5, 3.0])
    response = plan(decode_plan(_plan(k=40, annotator_costs=costs, budget=9.0), LIMIT))
    assert response.total_cost <= 9.0
    assert response.total_cost == pytest.approx(sum(t.cost for t in response.tasks))
    for task in response.tasks:
        assert task.cost == costs[task.annotator]
        if task.kind == lq.LABELING_KIND_RELABEL:
            assert CROWD.annotations[task.index, task.annotator] == -1
        else:
            assert task.kind == lq.LABELING_KIND_LABEL_FIRST and 0 <= task.index < 30
    scores = [t.score for t in response.tasks]
    assert scores == sorted(scores, reverse=True)
    assert sum(e.tasks for e in response.annotators) == len(response.tasks)


def test_plan_mixes_both_kinds_on_activelabs_scale() -> None:
    response = plan(decode_plan(_plan(k=70, epsilon=0.0, max_tasks_per_annotator=70), LIMIT))
    active = ann.activelab_priorities(CROWD.annotations, CROWD.probabilities, CROWD.pool)
    kinds = {t.kind for t in response.tasks}
    assert kinds == {lq.LABELING_KIND_RELABEL, lq.LABELING_KIND_LABEL_FIRST}
    for task in response.tasks:
        scores = active.labeled if task.kind == lq.LABELING_KIND_RELABEL else active.pool
        assert task.score == scores[task.index]
    assert response.candidates_considered == 70


def test_plan_with_another_pool_strategy_keeps_the_scale_and_takes_its_order() -> None:
    response = plan(decode_plan(_plan(k=70, pool_strategy="margin", epsilon=0.0), LIMIT))
    pool_tasks = [t for t in response.tasks if t.kind == lq.LABELING_KIND_LABEL_FIRST]
    active = ann.activelab_priorities(CROWD.annotations, CROWD.probabilities, CROWD.pool)
    top2 = np.sort(CROWD.pool, axis=1)[:, -2:]
    margin = top2[:, 0] - top2[:, 1]
    indices = [t.index for t in pool_tasks]
    assert np.all(np.diff(margin[indices]) <= 0)  # smallest gap first
    np.testing.assert_allclose(sorted(t.score for t in pool_tasks), sorted(active.pool))


def test_plan_exclusions_and_capacity() -> None:
    response = plan(
        decode_plan(
            _plan(k=8, exclude_labeled=list(range(40)), max_tasks_per_annotator=2, epsilon=0.0),
            LIMIT,
        )
    )
    assert all(t.kind == lq.LABELING_KIND_LABEL_FIRST for t in response.tasks)
    assert len(response.tasks) == 8
    assert max(e.tasks for e in response.annotators) <= 2


def test_plan_gives_a_better_annotator_more_per_dollar() -> None:
    # Annotator 0 agrees with the others everywhere, annotator 1 never does.
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 2, 60)
    annotations = np.stack([truth, 1 - truth, truth, truth], axis=1)
    p = np.where(truth[:, None] == np.arange(2), 0.8, 0.2)
    response = plan(
        decode_plan(
            _plan(
                k=3,
                annotations=annotations,
                labeled_probabilities=p,
                pool_probabilities=np.full((10, 2), 0.5),
                accuracy_bound=2,
                epsilon=0.5,
            ),
            LIMIT,
        )
    )
    estimates = response.annotators
    assert estimates[0].accuracy_mean > 0.9 > 0.1 > estimates[1].accuracy_mean
    assert not estimates[1].eligible and estimates[0].eligible
    assert all(t.annotator != 1 for t in response.tasks)


DTYPES = [pb.DATA_TYPE_INT32, pb.DATA_TYPE_INT64, pb.DATA_TYPE_FLOAT32, pb.DATA_TYPE_FLOAT64]


@st.composite
def hostile_plans(draw: st.DrawFn) -> lq.PlanLabelingRequest:
    """Requests near the valid ones: small shapes, labels and costs sometimes out of range."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    corrupt = draw(st.integers(0, 3)) == 0  # one request in four breaks some rule
    low = 0 if corrupt else 1
    items, a, n = (draw(st.integers(low, 6)) for _ in range(3))
    c = draw(st.integers(1 if corrupt else 2, 4))
    labels = rng.integers(-1, c + (1 if corrupt else 0), size=(items, a))
    if not corrupt:
        labels[np.arange(items), rng.integers(0, a, items)] = rng.integers(0, c, items)
    request = lq.PlanLabelingRequest(k=draw(st.integers(low - 1, 12)), clamp_k=draw(st.booleans()))
    dtype = draw(st.sampled_from(DTYPES)) if corrupt else pb.DATA_TYPE_INT64
    request.annotations.CopyFrom(encode_tensor(labels, dtype))
    extra = draw(st.integers(0, 1)) if corrupt else 0
    request.labeled_probabilities.CopyFrom(encode_tensor(rng.dirichlet(np.ones(c), items + extra)))
    pooled = draw(st.booleans())
    if pooled:
        request.pool_probabilities.CopyFrom(encode_tensor(rng.dirichlet(np.ones(max(c, 1)), n)))
    if draw(st.booleans()):
        costs = rng.choice([0.5, 1.0, 3.0, -1.0, np.inf, np.nan] if corrupt else [0.5, 1.0, 3.0],
                           size=a + (draw(st.integers(0, 1)) if corrupt else 0))  # fmt: skip
        request.annotator_costs.CopyFrom(encode_tensor(costs))
    if draw(st.booleans()):
        request.budget = draw(st.sampled_from([0.0, 1.0, 4.0] + ([-1.0, float("nan")] if corrupt
                                                                   else [])))  # fmt: skip
    request.exclude_labeled.extend(draw(st.lists(st.integers(-low, max(items - 1, 0)), max_size=2)))
    if pooled or corrupt:
        request.exclude_pool.extend(draw(st.lists(st.integers(-low, max(n - 1, 0)), max_size=2)))
    request.pool_strategy = draw(st.sampled_from(["", "activelab", "margin", "entropy"]
                                                 + (["bald"] if corrupt else [])))  # fmt: skip
    request.accuracy_bound = draw(st.integers(0, 4 if corrupt else 3))
    if draw(st.booleans()):
        request.max_tasks_per_annotator = draw(st.integers(low - 1, 3))
    return request


@settings(max_examples=150, deadline=None)
@given(hostile_plans())
def test_a_hostile_plan_is_answered_within_its_promises_or_named(
    request: lq.PlanLabelingRequest,
) -> None:
    try:
        inputs = decode_plan(request, LIMIT)
    except InvalidArgument as err:
        assert err.field and len(err.description) < 400
        return
    response = plan(inputs)
    annotations = inputs.annotations
    assert len(response.tasks) <= inputs.k
    if inputs.budget is not None:
        assert response.total_cost <= inputs.budget + 1e-9
    per_annotator = np.zeros(annotations.shape[1], dtype=int)
    for task in response.tasks:
        assert np.isfinite(task.score) and 0 <= task.expected_accuracy <= 1
        per_annotator[task.annotator] += 1
        if task.kind == lq.LABELING_KIND_RELABEL:
            assert annotations[task.index, task.annotator] == -1
            assert task.index not in set(inputs.exclude_labeled.tolist())
        else:
            assert task.index not in set(inputs.exclude_pool.tolist())
    assert per_annotator.max(initial=0) <= (inputs.capacity or 10**9)


@settings(max_examples=150, deadline=None)
@given(hostile_plans(), st.sampled_from([0, 1, 2, 3, 5]))
def test_a_hostile_assessment_is_answered_or_named(
    request: lq.PlanLabelingRequest, method: int
) -> None:
    assessment = lq.AssessLabelsRequest(method=method)
    assessment.annotations.CopyFrom(request.annotations)
    assessment.labeled_probabilities.CopyFrom(request.labeled_probabilities)
    try:
        inputs = decode_assess(assessment, LIMIT)
    except InvalidArgument as err:
        assert err.field
        return
    response = assess(inputs)
    items = inputs.annotations.shape[0]
    assert len(response.consensus_labels) == len(response.consensus_quality) == items
    assert all(0 <= q <= 1 + 1e-9 for q in response.consensus_quality)
    assert all(0 <= k < inputs.classes for k in response.consensus_labels)


def test_list_strategies_describes_the_methods_from_the_one_table() -> None:
    from labelwise_server.grpc.codec import list_strategies_response
    from labelwise_server.label_quality import METHODS

    listed = list_strategies_response().label_quality_methods
    assert [m.name for m in listed] == ["crowdlab", "dawid_skene", "bayes_em", "activelab",
                                        "interval_estimation"]  # fmt: skip
    assert all(m.description and m.rpcs for m in listed)
    by_name = {m.name: m for m in METHODS}
    assert [p.name for p in listed[1].params] == ["max_iterations", "tolerance"]
    # An unset field decodes to the default the table gives.
    ds = decode_assess(_assess(method=2), LIMIT)
    dawid = by_name["dawid_skene"].params
    assert ds.max_iterations == dawid["max_iterations"].default
    assert ds.tolerance == dawid["tolerance"].default
    em = decode_assess(_assess(method=3), LIMIT)
    bayes = by_name["bayes_em"].params
    assert em.max_iterations == bayes["max_iterations"].default
    assert em.tolerance == bayes["tolerance"].default
    assert em.prior_strength == bayes["accuracy_prior_strength"].default
    planned = decode_plan(_plan(), LIMIT)
    ie = by_name["interval_estimation"].params
    assert planned.bound == ie["accuracy_bound"].default
    assert planned.alpha == ie["alpha"].default and planned.epsilon == ie["epsilon"].default
    assert planned.pool_strategy == by_name["activelab"].params["pool_strategy"].default
    assert set(by_name["activelab"].params["pool_strategy"].choices) == set(
        ["activelab", "least_confidence", "margin", "ratio", "entropy"]
    )


@pytest.mark.parametrize(
    ("rpc", "field"),
    [("assess", "max_iterations"), ("assess", "tolerance"), ("assess", "accuracy_prior_strength"),
     ("plan", "alpha"), ("plan", "epsilon")],
)  # fmt: skip
def test_values_the_table_rules_out_are_refused_naming_the_field(rpc: str, field: str) -> None:
    from labelwise_server.label_quality import METHODS

    param = next(m.params[field] for m in METHODS if field in m.params)
    bad = list(param.constraint.invalid_values())
    assert bad
    for value in bad:
        with pytest.raises(InvalidArgument) as caught:
            if rpc == "assess":
                decode_assess(_assess(method=3, **{field: value}), LIMIT)
            else:
                decode_plan(_plan(**{field: value}), LIMIT)
        assert caught.value.field == field


@pytest.mark.parametrize("method", [2, 3])
def test_the_em_methods_check_their_deadline_inside_the_loop(method: int) -> None:
    """Dawid-Skene and Bayes EM ask `stop` every iteration (Bayes EM every Newton step of
    its temperature too), so a deadline ends them mid-fit."""

    class Stopped(Exception):
        pass

    calls = 0

    def stop() -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise Stopped

    inputs = decode_assess(_assess(method=method, tolerance=1e-300, max_iterations=1000), LIMIT)
    with pytest.raises(Stopped):
        assess(inputs, stop)
    assert calls == 5
