"""strategies/annotators.py against cleanlab, crowd-kit, scikit-activeml and naive loops."""

import warnings

import numpy as np
import pandas as pd
import pytest
from cleanlab.internal.multiannotator_utils import (
    compute_soft_cross_entropy,
    find_best_temp_scaler,
    temp_scale_pred_probs,
)
from cleanlab.multiannotator import (
    get_active_learning_scores,
    get_label_quality_multiannotator,
    get_majority_vote_label,
)
from crowdkit.aggregation import DawidSkene, OneCoinDawidSkene
from scipy.stats import spearmanr
from skactiveml.classifier import ParzenWindowClassifier
from skactiveml.pool.multiannotator import IntervalEstimationThreshold
from skactiveml.pool.multiannotator._interval_estimation_threshold import (
    IntervalEstimationAnnotModel,
)
from skactiveml.utils import majority_vote as skactiveml_majority_vote

from labelwise_server.strategies import annotators as ann
from tests.strategies.annotator_support import (
    Crowd,
    make_crowd,
    naive_bayes_em,
    naive_crowdlab_posterior,
    naive_dawid_skene,
    naive_intervals,
    naive_majority_vote,
)

# crowd-kit's pandas code warns of pandas 4 deprecations on every step.
pytestmark = pytest.mark.filterwarnings("ignore::Warning")
SEEDS = range(3)
SHAPES = [  # items, annotators, classes, density
    (150, 5, 4, 0.5),
    (120, 3, 2, 0.7),
    (200, 8, 6, 0.25),
]


def _crowd(seed: int, shape: tuple[int, int, int, float]) -> Crowd:
    items, a, c, density = shape
    return make_crowd(seed, items=items, annotators=a, classes=c, density=density)


def _cleanlab(crowd: Crowd) -> dict:  # type: ignore[type-arg]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_label_quality_multiannotator(
            crowd.as_float, crowd.probabilities, return_weights=True, verbose=False
        )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_crowdlab_equals_cleanlab(seed: int, shape: tuple[int, int, int, float]) -> None:
    crowd = _crowd(seed, shape)
    ours = ann.crowdlab(crowd.annotations, crowd.probabilities)
    ref = _cleanlab(crowd)
    quality = ref["label_quality"]
    stats = ref["annotator_stats"].sort_index()
    np.testing.assert_array_equal(ours.consensus, quality["consensus_label"].to_numpy())
    np.testing.assert_allclose(ours.quality, quality["consensus_quality_score"], atol=1e-12)
    np.testing.assert_allclose(ours.agreement, quality["annotator_agreement"], atol=1e-12)
    np.testing.assert_allclose(ours.model_weight, ref["model_weight"], rtol=1e-12)
    np.testing.assert_allclose(ours.annotator_weights, ref["annotator_weight"], rtol=1e-12)
    np.testing.assert_allclose(ours.annotator_quality, stats["annotator_quality"], atol=1e-12)
    np.testing.assert_allclose(
        ours.annotator_agreement, stats["agreement_with_consensus"], atol=1e-12
    )
    assert spearmanr(ours.quality, quality["consensus_quality_score"])[0] >= 0.99


@pytest.mark.parametrize("seed", SEEDS)
def test_crowdlab_posterior_equals_the_papers_formulas_item_by_item(seed: int) -> None:
    crowd = make_crowd(seed, items=60, annotators=4, classes=3)
    ours = ann.crowdlab(crowd.annotations, crowd.probabilities)
    post, weights, model_weight = naive_crowdlab_posterior(
        crowd.annotations, crowd.probabilities, ours.consensus
    )
    np.testing.assert_allclose(ours.posterior, post, atol=1e-12)
    np.testing.assert_allclose(ours.annotator_weights, weights, rtol=1e-12)
    assert ours.model_weight == pytest.approx(model_weight, rel=1e-12)
    np.testing.assert_allclose(ours.quality, post[np.arange(60), ours.consensus], atol=1e-12)


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("seed", SEEDS)
def test_majority_vote_breaks_ties_as_cleanlab_then_by_the_lower_class(
    seed: int, classes: int
) -> None:
    # Few classes and two labels per item: many ties, through every tie-break.
    crowd = make_crowd(seed, items=200, annotators=4, classes=classes, density=0.4)
    rounded = np.round(crowd.probabilities, 1)  # equal probabilities reach the later breaks
    rounded /= rounded.sum(axis=1, keepdims=True)
    obs = ann.observe(crowd.annotations, classes)
    for p in (None, rounded):
        ours = ann.majority_vote(obs, p)
        np.testing.assert_array_equal(ours, naive_majority_vote(crowd.annotations, p, classes))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            theirs = get_majority_vote_label(crowd.as_float, p, verbose=False)
        random = set()
        for w in caught:  # cleanlab draws these at random; ours takes the lower class
            if "random" in str(w.message):
                text = str(w.message)
                random |= {int(x) for x in text[text.index("[") + 1 : text.index("]")].split(",")}
        keep = np.array([i not in random for i in range(200)])
        np.testing.assert_array_equal(ours[keep], theirs[keep])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_dawid_skene_equals_crowd_kit(seed: int, shape: tuple[int, int, int, float]) -> None:
    crowd = _crowd(seed, shape)
    c = shape[2]
    item, worker = np.nonzero(crowd.annotations >= 0)
    data = pd.DataFrame({"task": item, "worker": worker, "label": crowd.annotations[item, worker]})
    ref = DawidSkene(n_iter=100, tol=1e-5).fit(data)
    ours = ann.dawid_skene(crowd.annotations, c)
    classes = sorted(ref.probas_.columns)
    assert classes == list(range(c))  # every class observed, so the columns line up
    probas = ref.probas_.sort_index()[classes].to_numpy()
    assert ours.iterations == len(ref.loss_history_)
    np.testing.assert_allclose(ours.posterior, probas, atol=1e-9)  # crowd-kit clips at 1e-10
    np.testing.assert_array_equal(ours.consensus, ref.labels_.sort_index().to_numpy())
    np.testing.assert_allclose(ours.priors, ref.priors_.sort_index().to_numpy(), atol=1e-12)
    confusion = np.zeros_like(ours.confusion)
    for (j, said), row in ref.errors_.iterrows():
        confusion[j, :, said] = row[classes].to_numpy()
    np.testing.assert_allclose(ours.confusion, confusion, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_dawid_skene_equals_naive_em(seed: int) -> None:
    crowd = make_crowd(seed, items=50, annotators=4, classes=3)
    ours = ann.dawid_skene(crowd.annotations, 3, max_iterations=7, tolerance=-np.inf)
    assert ours.iterations == 7
    np.testing.assert_allclose(
        ours.posterior, naive_dawid_skene(crowd.annotations, 3, 7), atol=1e-12
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_bayes_em_without_model_or_shrinkage_equals_crowd_kits_one_coin(
    seed: int, shape: tuple[int, int, int, float]
) -> None:
    crowd = _crowd(seed, shape)
    c = shape[2]
    item, worker = np.nonzero(crowd.annotations >= 0)
    data = pd.DataFrame({"task": item, "worker": worker, "label": crowd.annotations[item, worker]})
    ref = OneCoinDawidSkene(n_iter=100, tol=1e-5).fit(data)
    ours = ann.bayes_em(crowd.annotations, c, prior_strength=0.0)
    classes = sorted(ref.probas_.columns)
    assert classes == list(range(c))
    assert ours.iterations == len(ref.loss_history_)
    np.testing.assert_allclose(ours.posterior, ref.probas_.sort_index()[classes], atol=1e-9)
    np.testing.assert_array_equal(ours.consensus, ref.labels_.sort_index().to_numpy())
    np.testing.assert_allclose(ours.accuracy, ref.skills_.sort_index().to_numpy(), atol=1e-9)
    assert ours.temperature == 0.0


@pytest.mark.parametrize("strength", [0.0, 10.0])
@pytest.mark.parametrize("with_model", [True, False])
@pytest.mark.parametrize("seed", SEEDS)
def test_bayes_em_equals_naive_em(seed: int, with_model: bool, strength: float) -> None:
    crowd = make_crowd(seed, items=50, annotators=4, classes=3, density=0.4)
    p = crowd.probabilities if with_model else None
    ours = ann.bayes_em(
        crowd.annotations, 3, p, prior_strength=strength, max_iterations=6, tolerance=-np.inf
    )
    assert ours.iterations == 6
    post, accuracy, temperature = naive_bayes_em(crowd.annotations, 3, p, strength, 6)
    np.testing.assert_allclose(ours.posterior, post, atol=1e-6)
    np.testing.assert_allclose(ours.accuracy, accuracy, atol=1e-6)
    np.testing.assert_allclose(ours.temperature, temperature, rtol=1e-5)


@pytest.mark.parametrize("true_temperature", [0.5, 2.0])
def test_bayes_em_recovers_the_temperature_that_drew_the_labels(
    true_temperature: float,
) -> None:
    """Truth drawn from p^(1/T0), each item labeled by two good annotators: the fitted
    temperature lands near T0, and the consensus beats the majority vote."""
    rng = np.random.default_rng(5)
    items, c = 4000, 4
    p = rng.dirichlet(np.full(c, 0.7), size=items)
    drawn = ann.temperature_scale(p, true_temperature)
    truth = (drawn.cumsum(axis=1) > rng.random((items, 1))).argmax(axis=1)
    annotations = np.full((items, 3), -1, dtype=np.int64)
    accuracy = np.array([0.85, 0.75, 0.65])
    for i in range(items):
        for j in rng.choice(3, size=2, replace=False):
            right = rng.random() < accuracy[j]
            annotations[i, j] = truth[i] if right else rng.choice(np.delete(np.arange(c), truth[i]))
    em = ann.bayes_em(annotations, c, p)
    assert abs(np.log(em.temperature / true_temperature)) < 0.15
    np.testing.assert_allclose(em.accuracy, accuracy, atol=0.03)
    vote = ann.majority_vote(ann.observe(annotations, c), p)
    assert np.mean(em.consensus == truth) > np.mean(vote == truth) + 0.01


def test_bayes_em_with_one_label_per_item_overrules_labels_the_model_contradicts() -> None:
    """Each item labeled once by a 70 % crowd, a model whose confidence varies from item to
    item (77 % right): EM does not stay at 'everyone is always right' (where it would stay
    had it started from the bare labels), the accuracies come out near 70 %, and the
    consensus is right more often than the labels and than the model. (With the same
    confidence on every item the model's calibration and the annotators' accuracy trade off,
    and the labels are kept.)"""
    rng = np.random.default_rng(3)
    items, c = 2000, 3
    truth = rng.integers(0, c, items)
    annotations = np.full((items, 2), -1, dtype=np.int64)
    who = rng.integers(0, 2, items)
    right = rng.random(items) < 0.7
    wrong = (truth + rng.integers(1, c, items)) % c
    annotations[np.arange(items), who] = np.where(right, truth, wrong)
    logits = rng.normal(size=(items, c))
    logits[np.arange(items), truth] += 1.5
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    em = ann.bayes_em(annotations, c, p)
    labels = annotations.max(axis=1)
    assert np.mean(em.consensus == truth) > np.mean(labels == truth) + 0.1
    assert np.mean(em.consensus == truth) > np.mean(p.argmax(axis=1) == truth) + 0.03
    np.testing.assert_allclose(em.accuracy, 0.7, atol=0.07)
    from_labels = ann.bayes_em(annotations, c, None)  # no model: nothing to overrule with
    np.testing.assert_array_equal(from_labels.consensus, labels)


def test_bayes_em_lets_two_agreeing_labels_outvote_a_confident_model() -> None:
    """Two labels of 80 % annotators against an overconfident model: the labels win unless
    the model's odds at the fitted temperature beat theirs ((0.8 / 0.1) ** 2 = 64 for c = 3);
    CROWDLAB follows the model."""
    items = 300
    annotations = np.full((items, 2), -1, dtype=np.int64)
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, items)
    annotations[:, 0] = np.where(rng.random(items) < 0.8, truth, (truth + 1) % 3)
    annotations[:, 1] = np.where(rng.random(items) < 0.8, truth, (truth + 2) % 3)
    # An overconfident model: 0.9 on its pick, right on 70 % of the items.
    said = np.where(rng.random(items) < 0.7, truth, (truth + 1) % 3)
    p = np.full((items, 3), 0.05)
    p[np.arange(items), said] = 0.9
    # One item where both say 1 and the model says 0 at 0.9.
    annotations[0] = 1
    p[0] = [0.9, 0.05, 0.05]
    em = ann.bayes_em(annotations, 3, p, prior_strength=0.0)
    odds = (em.accuracy[0] / ((1 - em.accuracy[0]) / 2)) * (
        em.accuracy[1] / ((1 - em.accuracy[1]) / 2)
    )
    prior = ann.temperature_scale(p[:1], em.temperature)[0]
    assert (em.consensus[0] == 1) == (odds > prior[0] / prior[1])
    crowdlab = ann.crowdlab(annotations, p)
    assert em.consensus[0] == 1 and crowdlab.consensus[0] == 0  # CROWDLAB trusts the model


def test_cleanlab_misplaces_vote_fractions_of_float_labels() -> None:
    # One item labeled 2 and 2 (of c = 4): its vote fractions are [0, 0, 1, 0]. cleanlab's
    # soft cross-entropy, fed the NaN-marked float matrix its API takes, puts them at class 0.
    p = np.array([[0.7, 0.1, 0.1, 0.1]])
    labels = np.array([[2.0, 2.0]])
    theirs = compute_soft_cross_entropy(labels, p)[0]
    at_zero = -np.log(0.7) / np.log(4)
    at_two = -np.log(0.1) / np.log(4)
    assert theirs == pytest.approx(at_zero)
    obs = ann.observe(np.array([[2, 2]]), 4)
    ours = ann._soft_cross_entropy(obs.counts / obs.per_item[:, None], np.log(p), 1.0)
    assert ours == pytest.approx(at_two)


def _misplaced(obs: ann.Observed) -> ann.Observed:
    """obs with cleanlab's vote fractions: each item's counts of its distinct labels, in class
    order, moved to classes 0, 1, ..."""
    counts = np.zeros_like(obs.counts)
    for i, row in enumerate(obs.counts):
        present = row[row > 0]
        counts[i, : present.shape[0]] = present
    return ann.Observed(
        obs.item, obs.annotator, obs.label, counts, obs.per_item, obs.per_annotator, obs.starts
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_temperature_search_is_cleanlabs_given_its_vote_fractions(
    seed: int, shape: tuple[int, int, int, float]
) -> None:
    crowd = _crowd(seed, shape)
    obs = ann.observe(crowd.annotations, shape[2])
    theirs = find_best_temp_scaler(crowd.as_float, crowd.probabilities)
    assert ann.best_temperature(_misplaced(obs), crowd.probabilities) == pytest.approx(theirs)
    np.testing.assert_allclose(
        ann.temperature_scale(crowd.probabilities, theirs),
        temp_scale_pred_probs(crowd.probabilities, theirs),
        rtol=1e-12,
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_activelab_equals_cleanlab_at_cleanlabs_temperature(
    seed: int, shape: tuple[int, int, int, float]
) -> None:
    crowd = _crowd(seed, shape)
    theirs_labeled, theirs_pool = get_active_learning_scores(
        crowd.as_float, crowd.probabilities, crowd.pool
    )
    temperature = find_best_temp_scaler(crowd.as_float, crowd.probabilities)
    ours = ann.activelab_priorities(
        crowd.annotations, crowd.probabilities, crowd.pool, temperature=temperature
    )
    np.testing.assert_allclose(ours.labeled, 1 - theirs_labeled, atol=1e-12)
    np.testing.assert_allclose(ours.pool, 1 - theirs_pool, atol=1e-12)
    both = np.concatenate([ours.labeled, ours.pool])
    assert spearmanr(both, -np.concatenate([theirs_labeled, theirs_pool]))[0] >= 0.99


@pytest.mark.parametrize("seed", SEEDS)
def test_activelab_with_one_label_per_item_equals_cleanlab(seed: int) -> None:
    crowd = make_crowd(seed, single=True)
    theirs_labeled, theirs_pool = get_active_learning_scores(
        crowd.as_float, crowd.probabilities, crowd.pool
    )
    ours = ann.activelab_priorities(crowd.annotations, crowd.probabilities, crowd.pool)
    assert ours.temperature == 1.0
    np.testing.assert_allclose(ours.labeled, 1 - theirs_labeled, atol=1e-12)
    np.testing.assert_allclose(ours.pool, 1 - theirs_pool, atol=1e-12)


def test_activelab_puts_relabels_and_first_labels_on_one_scale() -> None:
    crowd = make_crowd(1)
    ours = ann.activelab_priorities(crowd.annotations, crowd.probabilities, crowd.pool)
    c = crowd.probabilities.shape[1]
    for scores in (ours.labeled, ours.pool):
        assert np.all((scores >= 0) & (scores <= 1 - 1 / c + 1e-12))
    # An item the model and every annotator agree on needs another label less than a pool item
    # the model cannot tell.
    sure = ann.activelab_priorities(
        np.array([[0, 0, 0], [1, 1, -1]]),
        np.array([[0.98, 0.02], [0.1, 0.9]]),
        np.array([[0.5, 0.5]]),
    )
    assert sure.pool[0] > sure.labeled.max()


def _without_ties(crowd: Crowd) -> Crowd:
    counts = ann.observe(crowd.annotations, crowd.probabilities.shape[1]).counts
    top = np.sort(counts, axis=1)
    keep = top[:, -1] > top[:, -2]
    return Crowd(crowd.annotations[keep], crowd.probabilities[keep], crowd.pool, crowd.truth[keep])


@pytest.mark.parametrize("alpha", [0.05, 0.2])
@pytest.mark.parametrize("seed", SEEDS)
def test_intervals_equal_scikit_activeml_and_naive(seed: int, alpha: float) -> None:
    crowd = _without_ties(make_crowd(seed, items=100, classes=3))  # its vote draws ties
    c = 3
    reference = skactiveml_majority_vote(crowd.as_float, classes=np.arange(c))
    obs = ann.observe(crowd.annotations, c)
    ours = ann.annotator_intervals(obs, reference.astype(np.int64), alpha=alpha)
    features = np.zeros((crowd.annotations.shape[0], 1))
    model = IntervalEstimationAnnotModel(classes=np.arange(c), alpha=alpha).fit(
        features, crowd.as_float
    )
    np.testing.assert_allclose(ours.lower, model.A_perf_[:, 0], rtol=1e-12)
    np.testing.assert_allclose(ours.mean, model.A_perf_[:, 1], rtol=1e-12)
    np.testing.assert_allclose(ours.upper, model.A_perf_[:, 2], rtol=1e-12)
    means, uppers = naive_intervals(crowd.annotations, reference, alpha)
    np.testing.assert_allclose(ours.mean, means, rtol=1e-12)
    np.testing.assert_allclose(ours.upper, uppers, rtol=1e-12)


@pytest.mark.parametrize("epsilon", [0.9, 0.97, 0.99])
@pytest.mark.parametrize("seed", SEEDS)
def test_threshold_picks_iethreshs_annotators(seed: int, epsilon: float) -> None:
    crowd = _without_ties(make_crowd(seed, items=100, classes=3))
    c, labeled = 3, crowd.annotations.shape[0]
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(labeled + 20, 2))
    y = np.vstack([crowd.as_float, np.full((20, crowd.annotations.shape[1]), np.nan)])
    reference = skactiveml_majority_vote(crowd.as_float, classes=np.arange(c))
    clf = ParzenWindowClassifier(classes=np.arange(c)).fit(features[:labeled], reference)
    picks = IntervalEstimationThreshold(epsilon=epsilon, random_state=0).query(
        features, y, clf, fit_clf=False, candidates=np.arange(labeled, labeled + 20)
    )
    assert len(set(picks[:, 0])) == 1  # IEThresh sends one item to every chosen annotator
    obs = ann.observe(crowd.annotations, c)
    upper = ann.annotator_intervals(obs, reference.astype(np.int64)).upper
    # scikit-activeml compares upper + 1 (a shift it adds to its utilities) with epsilon.
    expected = np.flatnonzero(ann.threshold_annotators(upper + 1, epsilon))
    assert sorted(picks[:, 1]) == expected.tolist()
    ours = np.flatnonzero(ann.threshold_annotators(upper, epsilon))
    assert set(ours) <= set(expected)  # on the unshifted bound the paper's rule is stricter


def test_assignment_maximises_accuracy_per_cost_within_budget_and_capacity() -> None:
    accuracy = np.array([0.9, 0.8, 0.6])
    costs = np.array([3.0, 1.0, 1.0])
    eligible = np.array([True, True, True])
    labeled = {0: np.array([False, True, False])}  # candidate 0 was labeled by annotator 1

    def already(candidate: int) -> np.ndarray:
        return labeled.get(candidate, np.zeros(3, dtype=bool))

    order = np.array([0, 1, 2, 3, 4])
    got = ann.assign_annotators(
        order, already, accuracy, costs, eligible, k=5, budget=4.5, capacity=2
    )
    # 0: annotator 1 labeled it -> the next ratio, annotator 2 (0.6 / 1); 1 and 2: annotator 1
    # (0.8); 3: annotator 1 is full -> annotator 2; 4: 0.5 left, nobody fits.
    assert got.annotator.tolist() == [2, 1, 1, 2]
    assert got.chosen.tolist() == [0, 1, 2, 3]
    assert got.total_cost == 4.0


def _naive_assignment(
    order: list[int],
    labeled: dict[int, set[int]],
    value: list[float],
    costs: list[float],
    eligible: list[bool],
    k: int,
    budget: float,
    capacity: int,
) -> list[tuple[int, int]]:
    """The weighted round robin as the docs word it, one candidate and annotator at a time."""
    given = [0] * len(costs)
    out: list[tuple[int, int]] = []
    for position, candidate in enumerate(order):
        if len(out) == k:
            break
        best = None
        for j in range(len(costs)):
            if not eligible[j] or j in labeled.get(candidate, set()) or given[j] >= capacity:
                continue
            if costs[j] > budget:
                continue
            ratio = value[j] / costs[j]
            load = (given[j] + 1) / ratio if ratio > 0 else float("inf")
            key = (load, -ratio, costs[j], j)
            if best is None or key < best[0]:
                best = (key, j)
        if best is not None:
            j = best[1]
            given[j] += 1
            budget -= costs[j]
            out.append((position, j))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_assignment_equals_a_naive_weighted_round_robin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, m = int(rng.integers(2, 6)), int(rng.integers(5, 60))
    value = rng.choice([0.0, 0.2, 0.5, 0.9, 1.0], a)
    costs = rng.choice([0.5, 1.0, 1.5, 3.0], a)
    eligible = rng.random(a) < 0.8
    labeled = {int(i): set(np.flatnonzero(rng.random(a) < 0.3).tolist()) for i in range(m // 2)}
    order = rng.permutation(m)
    k, budget, capacity = int(rng.integers(1, m + 1)), float(rng.uniform(1, 40)), 1 + seed % 7

    def already(candidate: int) -> np.ndarray:
        mask = np.zeros(a, dtype=bool)
        mask[list(labeled.get(candidate, set()))] = True
        return mask

    got = ann.assign_annotators(
        order, already, value, costs, eligible, k=k, budget=budget, capacity=capacity
    )
    expected = _naive_assignment(
        order.tolist(), labeled, value.tolist(), costs.tolist(), eligible.tolist(), k, budget,
        capacity,
    )  # fmt: skip
    assert list(zip(got.chosen.tolist(), got.annotator.tolist(), strict=True)) == expected
    assert got.total_cost <= budget + 1e-9
    assert got.total_cost == pytest.approx(float(costs[got.annotator].sum()))


def test_assignment_shares_are_proportional_to_value_per_cost() -> None:
    value = np.array([0.8, 0.6, 0.4, 0.0])
    costs = np.array([2.0, 1.0, 1.0, 0.5])  # value per cost 0.4, 0.6, 0.4, 0 (at chance)
    got = ann.assign_annotators(
        np.arange(1400), lambda _: np.zeros(4, dtype=bool), value, costs,
        np.ones(4, dtype=bool), k=1400, budget=None, capacity=None,
    )  # fmt: skip
    shares = np.bincount(got.annotator, minlength=4) / 1400
    np.testing.assert_allclose(shares, [0.4 / 1.4, 0.6 / 1.4, 0.4 / 1.4, 0.0], atol=1e-3)


def test_rank_map_keeps_the_values_and_takes_the_order() -> None:
    values = np.array([0.1, 0.5, 0.3])
    out = ann.rank_map(values, np.array([2.0, 0.0, 1.0]))
    np.testing.assert_array_equal(out, [0.5, 0.1, 0.3])


@pytest.mark.parametrize("seed", range(3))
def test_permuting_annotators_permutes_their_scores_and_leaves_items_alone(seed: int) -> None:
    crowd = make_crowd(seed)
    perm = np.random.default_rng(seed).permutation(crowd.annotations.shape[1])
    before = ann.crowdlab(crowd.annotations, crowd.probabilities)
    after = ann.crowdlab(crowd.annotations[:, perm], crowd.probabilities)
    np.testing.assert_array_equal(before.consensus, after.consensus)
    np.testing.assert_allclose(before.quality, after.quality, atol=1e-12)
    np.testing.assert_allclose(before.annotator_quality[perm], after.annotator_quality, atol=1e-12)
    ds_before = ann.dawid_skene(crowd.annotations, 4)
    ds_after = ann.dawid_skene(crowd.annotations[:, perm], 4)
    np.testing.assert_allclose(ds_before.posterior, ds_after.posterior, atol=1e-9)


def test_inputs_are_not_mutated_and_results_repeat() -> None:
    crowd = make_crowd(4)
    annotations, p, pool = (x.copy() for x in (crowd.annotations, crowd.probabilities, crowd.pool))
    for x in (annotations, p, pool):
        x.flags.writeable = False
    first = ann.activelab_priorities(annotations, p, pool)
    second = ann.activelab_priorities(annotations, p, pool)
    np.testing.assert_array_equal(first.labeled, second.labeled)
    np.testing.assert_array_equal(first.pool, second.pool)
    ann.dawid_skene(annotations, 4)
    ann.crowdlab(annotations, p)


def test_an_annotator_without_labels_gets_the_others_mean_quality() -> None:
    crowd = make_crowd(5, annotators=4)
    annotations = np.hstack([crowd.annotations, np.full((150, 1), -1)])
    result = ann.crowdlab(annotations, crowd.probabilities)
    assert result.annotator_quality[4] == pytest.approx(result.annotator_quality[:4].mean())
    assert np.isnan(result.annotator_agreement[4])
    reference = ann.crowdlab(crowd.annotations, crowd.probabilities)
    np.testing.assert_array_equal(result.consensus, reference.consensus)
