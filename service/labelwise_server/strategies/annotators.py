"""Several annotators, noisy labels: consensus, label quality, re-label or label new, who labels.

Inputs: annotations [l, a] of class labels (int64, MISSING = -1 where annotator j did not
label item i; every item has at least one label), the model's out-of-sample class
probabilities on the labeled items [l, c] and on the unlabeled pool [n, c]. Every function
is pure (never mutates its inputs), deterministic (ties go to the lower class or index, never
to a random draw) and returns float64. Work is over the e observed annotations as (item,
annotator, label) triples, never over an [l, a, c] one-hot, so memory is O(e·c + l·c + a·c²).

- CROWDLAB (Goh, Tkachenko & Mueller 2022): the model is one more annotator; weights from
  agreement, consensus = argmax of the weighted posterior. Same computation as
  cleanlab.multiannotator.get_label_quality_multiannotator (consensus_method
  "best_quality", quality_method "crowdlab", calibrate_probs False), except that its last
  tie-break is the lower class instead of a random one.
- Dawid-Skene EM (Dawid & Skene 1979): per-annotator confusion matrices, class priors; the
  model's probabilities are not used. Initialised from vote fractions, stopped on the
  evidence lower bound per annotation as crowd-kit's DawidSkene.
- Bayes EM (ours; the E-step of Raykar et al. 2010 with the caller's model held fixed): the
  consensus is the posterior of the true class given the model's probabilities, sharpened or
  flattened by a fitted temperature, as the prior and each annotator's one-coin accuracy
  (Dawid & Skene's model with one parameter per annotator, as crowd-kit's
  OneCoinDawidSkene) as the likelihood; accuracies shrunk toward the crowd's pooled accuracy
  by prior_strength pseudo-labels, so an annotator seen a few times counts as an average one.
  Without the model: class priors, and with prior_strength 0 crowd-kit's OneCoinDawidSkene.
- ActiveLab (Goh & Mueller 2023): one scale for "label again" and "label first". Here
  priority = 1 − ActiveLab's score, so higher means label first, as every labelwise score.
- Interval estimation (Kaelbling 1993; IEThresh, Donmez, Carbonell & Schneider 2009): each
  annotator's agreement with a reference label, as the mean and a Student-t interval with one
  pseudo-agreement and one pseudo-disagreement (as scikit-activeml does), so an annotator with
  few observations has a wide interval.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from labelwise_server.strategies._types import FloatArray, IntArray, RealArray

MISSING = -1
CLIP = 1e-6  # lower bound of the CROWDLAB weights (Goh et al. 2022's clipping)
TINY = 1e-30  # probabilities are clipped here before a log (temperature scaling)
DS_EPS = 1e-10  # Dawid-Skene confusion entries and priors are clipped here
MODEL_VOTE = 0.5  # Bayes EM: the model's weight, in votes, in EM's starting posterior
BETA_BOUNDS = (1e-3, 10.0)  # Bayes EM: the model's inverse temperature stays in here
NEWTON_STEPS = 30
COARSE_TEMPERATURES = (0.1, 0.2, 0.5, 0.8, 1.0, 2.0, 3.0, 5.0, 8.0)
FINE_STEPS = 4

StopCheck = Callable[[], None]


def _never() -> None:
    return None


@dataclass(frozen=True)
class Observed:
    """The observed annotations as triples, sorted by item then annotator."""

    item: IntArray  # [e]
    annotator: IntArray  # [e]
    label: IntArray  # [e]
    counts: FloatArray  # [l, c] votes per class
    per_item: FloatArray  # [l] annotations per item (>= 1)
    per_annotator: FloatArray  # [a] annotations per annotator (may be 0)
    starts: IntArray  # [l] first triple of each item (for reduceat)


def observe(annotations: IntArray, classes: int) -> Observed:
    """The triples (item, annotator, label) of annotations [l, a] != MISSING, with counts."""
    items, a = annotations.shape
    item, annotator = np.nonzero(annotations != MISSING)  # row-major: sorted by item
    label = annotations[item, annotator].astype(np.int64)
    counts = np.bincount(item * classes + label, minlength=items * classes).astype(np.float64)
    per_item = np.bincount(item, minlength=items).astype(np.float64)
    per_annotator = np.bincount(annotator, minlength=a).astype(np.float64)
    starts = np.concatenate([[0], np.cumsum(per_item)[:-1]]).astype(np.int64)
    return Observed(
        item.astype(np.int64),
        annotator.astype(np.int64),
        label,
        counts.reshape(items, classes),
        per_item,
        per_annotator,
        starts,
    )


def _first_true(mask: npt.NDArray[np.bool_]) -> IntArray:
    return np.asarray(np.argmax(mask, axis=1), dtype=np.int64)


def _keep_best(mask: npt.NDArray[np.bool_], values: FloatArray, *, lowest: bool) -> None:
    """Narrow mask [l, c] in place, on rows with more than one candidate, to the best values."""
    tied = mask.sum(axis=1) > 1
    if not tied.any():
        return
    sub = np.where(mask[tied], values[tied], np.inf if lowest else -np.inf)
    best = sub.min(axis=1, keepdims=True) if lowest else sub.max(axis=1, keepdims=True)
    mask[tied] &= sub == best


def majority_vote(obs: Observed, probabilities: RealArray | None = None) -> IntArray:
    """The most frequent label of each item [l]; ties broken as cleanlab's
    get_majority_vote_label: the model's higher probability, then the rarer class overall,
    then the higher mean agreement (with the untied items' votes) of the annotators who gave
    it, then (ours, where cleanlab draws at random) the lower class."""
    counts = obs.counts
    modes = counts == counts.max(axis=1, keepdims=True)  # [l, c]
    untied = modes.sum(axis=1) == 1
    if probabilities is not None:
        _keep_best(modes, np.asarray(probabilities, dtype=np.float64), lowest=False)
    frequency = np.broadcast_to(counts.sum(axis=0), counts.shape)
    _keep_best(modes, frequency, lowest=True)
    if (modes.sum(axis=1) > 1).any():
        vote = _first_true(modes)
        on_untied = untied[obs.item]
        hits = np.bincount(
            obs.annotator[on_untied],
            weights=(obs.label == vote[obs.item])[on_untied].astype(np.float64),
            minlength=obs.per_annotator.shape[0],
        )
        seen = np.bincount(obs.annotator[on_untied], minlength=obs.per_annotator.shape[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            agreement = hits / seen
        known = seen > 0
        if known.any():
            agreement[~known] = agreement[known].mean()
            items, c = counts.shape
            total = np.bincount(
                obs.item * c + obs.label, weights=agreement[obs.annotator], minlength=items * c
            ).reshape(items, c)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(counts > 0, total / np.maximum(counts, 1), -np.inf)
            _keep_best(modes, mean, lowest=False)
    return _first_true(modes)


@dataclass(frozen=True)
class Crowdlab:
    consensus: IntArray  # [l]
    quality: FloatArray  # [l] posterior probability of the consensus label
    posterior: FloatArray  # [l, c]
    agreement: FloatArray  # [l] share of the item's annotators who gave the consensus label
    annotator_quality: FloatArray  # [a]
    annotator_agreement: FloatArray  # [a] share of the annotator's labels equal to consensus
    annotator_weights: FloatArray  # [a]
    model_weight: float


def _crowdlab_stats(
    obs: Observed, probabilities: FloatArray, consensus: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """Posterior [l, c], per-item agreement [l], annotator weights [a], model weight."""
    items, c = probabilities.shape
    rows = np.arange(items)
    agreement = obs.counts[rows, consensus] / obs.per_item
    multi = obs.per_item > 1
    p_agree = float(agreement[multi].mean())  # P(an annotator gives the consensus label)
    p_other = (1.0 - p_agree) / (c - 1)
    common = int(np.argmax(np.bincount(consensus[multi], minlength=c)))
    common_error = max(float(np.mean(consensus[multi] != common)), CLIP)
    # Each annotator's agreement with the others on the items they share.
    others = obs.counts[obs.item, obs.label] - 1.0  # [e]
    shared = obs.per_item[obs.item] - 1.0  # [e]
    a = obs.per_annotator.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mutual = np.bincount(obs.annotator, weights=others, minlength=a) / np.bincount(
            obs.annotator, weights=shared, minlength=a
        )
    unknown = np.isnan(mutual)
    mutual[unknown] = mutual[~unknown].mean()
    weights = np.clip(1.0 - (1.0 - mutual) / common_error, CLIP, None)  # [a]
    model_error = float(np.mean(np.argmax(probabilities[multi], axis=1) != consensus[multi]))
    model_weight = max(1.0 - model_error / common_error, CLIP) * float(np.sqrt(obs.per_item.mean()))
    w = weights[obs.annotator]  # [e]
    voted = np.bincount(obs.item * c + obs.label, weights=w, minlength=items * c).reshape(items, c)
    w_item = np.bincount(obs.item, weights=w, minlength=items)  # [l]
    posterior = probabilities * model_weight + w_item[:, None] * p_other
    posterior += voted * (p_agree - p_other)
    posterior /= (w_item + model_weight)[:, None]
    return posterior, agreement, weights, model_weight


def crowdlab(
    annotations: IntArray, probabilities: RealArray, obs: Observed | None = None
) -> Crowdlab:
    """CROWDLAB consensus, consensus quality [l] and annotator quality [a]. Goh et al. (2022).

    annotations [l, a] (MISSING = -1, every row has a label, some row has two or more),
    probabilities [l, c] out-of-sample, c >= 2.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    items, c = p.shape
    obs = observe(annotations, c) if obs is None else obs
    vote = majority_vote(obs, p)
    posterior, _, _, _ = _crowdlab_stats(obs, p, vote)
    top = posterior == posterior.max(axis=1, keepdims=True)
    consensus = np.where(top.sum(axis=1) == 1, _first_true(top), vote)
    posterior, agreement, weights, model_weight = _crowdlab_stats(obs, p, consensus)
    rows = np.arange(items)
    quality = posterior[rows, consensus]
    a = obs.per_annotator.shape[0]
    seen = obs.per_annotator > 0
    label_quality = np.bincount(
        obs.annotator, weights=posterior[obs.item, obs.label], minlength=a
    ) / np.maximum(obs.per_annotator, 1)
    hit = (obs.label == consensus[obs.item]).astype(np.float64)
    multi = obs.per_item[obs.item] > 1
    multi_seen = np.bincount(obs.annotator[multi], minlength=a)
    multi_hits = np.bincount(obs.annotator[multi], weights=hit[multi], minlength=a)
    with np.errstate(invalid="ignore", divide="ignore"):
        agree_multi = multi_hits / multi_seen
    share = float(weights.sum()) * float(obs.per_item.mean()) / a
    mix = model_weight / (model_weight + share)
    annotator_quality = mix * label_quality + (1.0 - mix) * agree_multi
    # Ours, where cleanlab leaves NaN or refuses: no shared item -> the label-quality part
    # alone; no label at all -> the mean of the others.
    alone = seen & (multi_seen == 0)
    annotator_quality[alone] = label_quality[alone]
    if (~seen).any():
        annotator_quality[~seen] = annotator_quality[seen].mean()
    annotator_agreement = np.bincount(obs.annotator, weights=hit, minlength=a) / np.maximum(
        obs.per_annotator, 1
    )
    annotator_agreement[~seen] = np.nan
    return Crowdlab(
        consensus,
        quality,
        posterior,
        agreement,
        annotator_quality,
        annotator_agreement,
        weights,
        model_weight,
    )


@dataclass(frozen=True)
class DawidSkene:
    consensus: IntArray  # [l]
    quality: FloatArray  # [l] posterior probability of the consensus label
    posterior: FloatArray  # [l, c]
    annotator_quality: FloatArray  # [a] Σ_k prior_k · confusion[j, k, k]
    confusion: FloatArray  # [a, c, c]: P(annotator j says y | true class k) at [j, k, y]
    priors: FloatArray  # [c]
    iterations: int


def _ds_m_step(obs: Observed, posterior: FloatArray, a: int) -> FloatArray:
    """Confusion matrices [a, c, c] from the posterior [l, c]."""
    c = posterior.shape[1]
    slot = obs.annotator * c + obs.label  # row of [a·c(y), c(k)]
    weights = posterior[obs.item]  # [e, c]
    stacked: FloatArray = np.stack(
        [np.bincount(slot, weights=weights[:, k], minlength=a * c) for k in range(c)], axis=1
    ).astype(np.float64)
    confusion = np.clip(stacked.reshape(a, c, c), DS_EPS, None)  # [j, y, k]
    confusion /= confusion.sum(axis=1, keepdims=True)
    return np.ascontiguousarray(confusion.transpose(0, 2, 1))  # [j, k, y]


def _ds_joint(obs: Observed, priors: FloatArray, confusion: FloatArray) -> FloatArray:
    """log prior + Σ log confusion over each item's annotations: [l, c]."""
    log_conf = np.log(confusion)[obs.annotator, :, obs.label]  # [e, c]
    summed = np.add.reduceat(log_conf, obs.starts, axis=0)  # [l, c]
    return summed + np.log(np.clip(priors, DS_EPS, None))


def _bound(posterior: FloatArray, expected: FloatArray, e: int) -> float:
    """The evidence lower bound per annotation: the expected complete log likelihood terms
    [e, c] summed, plus the posterior's entropy (clipped at DS_EPS, as crowd-kit)."""
    clipped = np.clip(posterior, DS_EPS, None)
    return (float(expected.sum()) - float((clipped * np.log(clipped)).sum())) / e


def dawid_skene(
    annotations: IntArray,
    classes: int,
    *,
    max_iterations: int = 100,
    tolerance: float = 1e-5,
    stop: StopCheck = _never,
    obs: Observed | None = None,
) -> DawidSkene:
    """Dawid-Skene EM (Dawid & Skene 1979) from vote fractions; stops when the evidence lower
    bound per annotation gains less than tolerance. annotations [l, a]; returns posteriors
    [l, c] and confusion matrices [a, c, c]."""
    items, a = annotations.shape
    obs = observe(annotations, classes) if obs is None else obs
    posterior = obs.counts / obs.per_item[:, None]
    priors = posterior.mean(axis=0)
    confusion = _ds_m_step(obs, posterior, a)
    bound = -np.inf
    iterations = 0
    e = obs.item.shape[0]
    for _ in range(max_iterations):
        stop()
        iterations += 1
        joint = _ds_joint(obs, priors, confusion)
        posterior = np.exp(joint - joint.max(axis=1, keepdims=True))
        posterior /= posterior.sum(axis=1, keepdims=True)
        priors = posterior.mean(axis=0)
        confusion = _ds_m_step(obs, posterior, a)
        # crowd-kit's stopping quantity: the prior term once per annotation, not per item.
        log_conf = np.log(confusion)[obs.annotator, :, obs.label]  # [e, c]
        log_prior = np.log(np.clip(priors, DS_EPS, None))
        new_bound = _bound(posterior, posterior[obs.item] * (log_conf + log_prior), e)
        if new_bound - bound < tolerance:
            break
        bound = new_bound
    consensus = np.argmax(posterior, axis=1).astype(np.int64)
    quality = posterior[np.arange(items), consensus]
    diagonal = np.diagonal(confusion, axis1=1, axis2=2)  # [a, c]
    annotator_quality = diagonal @ priors
    return DawidSkene(
        consensus, quality, posterior, annotator_quality, confusion, priors, iterations
    )


@dataclass(frozen=True)
class BayesEM:
    consensus: IntArray  # [l]
    quality: FloatArray  # [l] posterior probability of the consensus label
    posterior: FloatArray  # [l, c]
    accuracy: FloatArray  # [a] each annotator's one-coin accuracy (shrunk)
    priors: FloatArray  # [c] the mean posterior (the class priors without a model)
    temperature: float  # the model's fitted temperature; 0 without a model
    iterations: int


def _inverse_temperature(
    log_p: FloatArray, posterior: FloatArray, beta: float, stop: StopCheck = _never
) -> float:
    """argmax over beta of sum posterior · log softmax(beta · log_p): concave in beta (its
    second derivative is minus the variance of log_p under softmax(beta · log_p)), so a
    safeguarded Newton search within BETA_BOUNDS finds it."""
    low, high = BETA_BOUNDS
    target = float((posterior * log_p).sum())
    for _ in range(NEWTON_STEPS):
        stop()
        z = beta * log_p
        m = np.exp(z - z.max(axis=1, keepdims=True))
        m /= m.sum(axis=1, keepdims=True)
        mean = (m * log_p).sum(axis=1)
        gradient = target - float(mean.sum())
        curvature = float((m * log_p * log_p).sum() - (mean * mean).sum())
        if gradient > 0:
            low = beta
        else:
            high = beta
        step = beta + gradient / curvature if curvature > 0 else np.inf
        new = step if low < step < high else (low + high) / 2
        if abs(new - beta) <= 1e-9 * beta:
            return float(new)
        beta = float(new)
    return beta


def _bayes_m_step(
    obs: Observed,
    posterior: FloatArray,
    log_p: FloatArray | None,
    prior_strength: float,
    beta: float,
    stop: StopCheck = _never,
) -> tuple[FloatArray, FloatArray, float]:
    """Accuracies [a] shrunk toward the pooled one, log prior [l, c], inverse temperature."""
    a = obs.per_annotator.shape[0]
    hits = np.bincount(obs.annotator, weights=posterior[obs.item, obs.label], minlength=a)
    pooled = float(hits.sum()) / obs.item.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = (hits + prior_strength * pooled) / (obs.per_annotator + prior_strength)
    # At least chance: an annotator estimated worse than guessing is taken as guessing (its
    # labels say nothing), never as one whose every label points away from the truth.
    chance = 1.0 / posterior.shape[1]
    accuracy = np.clip(np.where(np.isfinite(accuracy), accuracy, pooled), chance, 1 - DS_EPS)
    if log_p is None:
        priors = np.clip(posterior.mean(axis=0), DS_EPS, None)
        return accuracy, np.broadcast_to(np.log(priors), posterior.shape), beta
    beta = _inverse_temperature(log_p, posterior, beta, stop)
    z = beta * log_p
    log_prior = z - z.max(axis=1, keepdims=True)
    log_prior -= np.log(np.exp(log_prior).sum(axis=1, keepdims=True))
    return accuracy, log_prior, beta


def _one_coin_logs(accuracy: FloatArray, classes: int) -> tuple[FloatArray, FloatArray]:
    """log P(label | true class) per annotator [a]: when the label is the class, and when it is
    any one of the other c − 1."""
    return np.log(accuracy), np.log((1 - accuracy) / (classes - 1))


def bayes_em(
    annotations: IntArray,
    classes: int,
    probabilities: RealArray | None = None,
    *,
    prior_strength: float = 10.0,
    max_iterations: int = 100,
    tolerance: float = 1e-5,
    stop: StopCheck = _never,
    obs: Observed | None = None,
) -> BayesEM:
    """The consensus as a posterior: prior = the model's probabilities at a fitted temperature
    (or class priors without a model), likelihood = each annotator's one-coin accuracy, both
    fitted by EM from vote fractions (the model counted as half a vote); stops when the
    evidence lower bound per annotation gains less than tolerance. prior_strength (>= 0)
    pseudo-labels at the pooled accuracy shrink each annotator's accuracy."""
    items = annotations.shape[0]
    obs = observe(annotations, classes) if obs is None else obs
    log_p = None
    if probabilities is not None:
        p = np.clip(np.asarray(probabilities, dtype=np.float64), TINY, None)
        log_p = np.log(p / p.sum(axis=1, keepdims=True))
    # EM starts from the vote fractions, with the model as half a vote when there is one: from
    # the bare vote fractions, a crowd that labeled each item once looks always right (every
    # label agrees with the posterior it made), a fixed point EM never leaves.
    if log_p is None:
        posterior = obs.counts / obs.per_item[:, None]
    else:
        posterior = (obs.counts + MODEL_VOTE * np.exp(log_p)) / (obs.per_item + MODEL_VOTE)[:, None]
    accuracy, log_prior, beta = _bayes_m_step(obs, posterior, log_p, prior_strength, 1.0, stop)
    bound = -np.inf
    iterations = 0
    e = obs.item.shape[0]
    for _ in range(max_iterations):
        stop()
        iterations += 1
        # E-step: log prior + Σ over the item's annotations of log P(label | true class).
        log_right, log_wrong = _one_coin_logs(accuracy, classes)
        joint = (
            log_prior
            + np.bincount(obs.item, weights=log_wrong[obs.annotator], minlength=items)[:, None]
        )
        np.add.at(joint, (obs.item, obs.label), (log_right - log_wrong)[obs.annotator])
        posterior = np.exp(joint - joint.max(axis=1, keepdims=True))
        posterior /= posterior.sum(axis=1, keepdims=True)
        accuracy, log_prior, beta = _bayes_m_step(obs, posterior, log_p, prior_strength, beta, stop)
        # The evidence lower bound per annotation, as crowd-kit counts it (the prior term
        # once per annotation).
        log_right, log_wrong = _one_coin_logs(accuracy, classes)
        right = obs.label[:, None] == np.arange(classes)  # [e, c]
        log_lik = np.where(right, log_right[obs.annotator, None], log_wrong[obs.annotator, None])
        new_bound = _bound(posterior, posterior[obs.item] * (log_lik + log_prior[obs.item]), e)
        if new_bound - bound < tolerance:
            break
        bound = new_bound
    consensus = np.argmax(posterior, axis=1).astype(np.int64)
    return BayesEM(
        consensus,
        posterior[np.arange(items), consensus],
        posterior,
        accuracy,
        posterior.mean(axis=0),
        0.0 if log_p is None else 1.0 / beta,
        iterations,
    )


def temperature_scale(probabilities: RealArray, temperature: float) -> FloatArray:
    """p^(1/T), renormalised (probabilities clipped at 1e-30 first), as cleanlab's."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), TINY, None)
    p /= p.sum(axis=1, keepdims=True)
    scaled = np.exp(np.log(p) / temperature)
    scaled /= scaled.sum(axis=1, keepdims=True)
    scaled /= scaled.sum(axis=1, keepdims=True)
    return scaled


def _soft_cross_entropy(empirical: FloatArray, log_p: FloatArray, temperature: float) -> float:
    with np.errstate(invalid="ignore", divide="ignore", over="ignore", under="ignore"):
        scaled = np.exp(log_p / temperature)
        scaled /= scaled.sum(axis=1, keepdims=True)
    logs = np.log(np.clip(scaled, TINY, None))
    c = log_p.shape[1]
    return float(np.mean(-(empirical * logs).sum(axis=1) / np.log(c)))


def best_temperature(obs: Observed, probabilities: RealArray) -> float:
    """The temperature whose scaled probabilities best fit the annotators' vote fractions
    (soft cross-entropy), by cleanlab's coarse then fine grid search (Goh & Mueller 2023)."""
    p = np.asarray(probabilities, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_p = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), -np.inf)
    empirical = obs.counts / obs.per_item[:, None]
    coarse = [_soft_cross_entropy(empirical, log_p, t) for t in COARSE_TEMPERATURES]
    best = int(np.argmin(coarse))
    fine: list[float] = []
    grid = COARSE_TEMPERATURES
    if best != 0:
        fine.extend(np.linspace(grid[best - 1], grid[best], FINE_STEPS, endpoint=False))
    if best != len(grid) - 1:
        fine.extend(np.linspace(grid[best], grid[best + 1], FINE_STEPS + 1, endpoint=True))
    losses = [_soft_cross_entropy(empirical, log_p, t) for t in fine]
    return float(fine[int(np.argmin(losses))])


@dataclass(frozen=True)
class ActiveLab:
    labeled: FloatArray  # [l] priority of one more label, higher = label first
    pool: FloatArray  # [n] priority of a first label, on the same scale
    temperature: float
    consensus: IntArray  # [l]
    model_weight: float
    annotator_weights: FloatArray  # [a]


def activelab_priorities(
    annotations: IntArray,
    probabilities: RealArray,
    pool_probabilities: RealArray,
    *,
    temperature: float | None = None,
) -> ActiveLab:
    """1 − ActiveLab score for labeled items [l] and pool items [n], on one scale. Goh &
    Mueller (2023), as cleanlab.multiannotator.get_active_learning_scores (which returns the
    score, lower = label first).

    With two or more annotations on some item: temperature-scale both probability sets
    (best_temperature), run CROWDLAB, and mix each item's consensus quality with the
    uninformative 1/c by the weights of its annotators + the model against the mean annotator
    weight; a pool item mixes its model confidence max_j p_ij with 1/c by the model weight
    against the mean annotator weight. With one annotation per item: no scaling, weights 1.
    temperature, when given, replaces the search (cleanlab's search reads vote fractions
    misplaced for float labels; see docs/label-quality.md).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    items, c = p.shape
    obs = observe(annotations, c)
    if (obs.per_item > 1).any():
        if temperature is None:
            temperature = best_temperature(obs, p)
        p = temperature_scale(p, temperature)
        result = crowdlab(annotations, p, obs)
        quality, consensus = result.quality, result.consensus
        model_weight, weights = result.model_weight, result.annotator_weights
    else:
        temperature = 1.0
        consensus = majority_vote(obs, p)
        quality = p[np.arange(items), consensus]
        model_weight, weights = 1.0, np.ones(annotations.shape[1])
    mean_weight = float(weights.mean())
    item_weight = np.bincount(obs.item, weights=weights[obs.annotator], minlength=items)
    own = item_weight + model_weight
    labeled = (quality * own + mean_weight / c) / (own + mean_weight)
    pool_p = temperature_scale(pool_probabilities, temperature)
    confidence = pool_p.max(axis=1) if pool_p.shape[0] else np.zeros(0)
    pool = (confidence * model_weight + mean_weight / c) / (model_weight + mean_weight)
    return ActiveLab(1.0 - labeled, 1.0 - pool, temperature, consensus, model_weight, weights)


@dataclass(frozen=True)
class Intervals:
    lower: FloatArray  # [a]
    mean: FloatArray  # [a]
    upper: FloatArray  # [a]
    observations: FloatArray  # [a] real observations (without the two pseudo ones)


def annotator_intervals(
    obs: Observed, reference: IntArray, *, alpha: float = 0.05, min_annotations: int = 1
) -> Intervals:
    """Each annotator's agreement with reference [l] as a 1 − alpha Student-t interval, over
    the items with at least min_annotations annotations, plus one pseudo-agreement and one
    pseudo-disagreement. Interval estimation (Kaelbling 1993; Donmez et al. 2009), as
    scikit-activeml's IntervalEstimationAnnotModel with min_annotations 1."""
    a = obs.per_annotator.shape[0]
    use = obs.per_item[obs.item] >= min_annotations
    hits = np.bincount(
        obs.annotator[use],
        weights=(obs.label == reference[obs.item])[use].astype(np.float64),
        minlength=a,
    )
    seen = np.bincount(obs.annotator[use], minlength=a).astype(np.float64)
    total = seen + 2.0
    mean = (hits + 1.0) / total
    std = np.sqrt(mean * (1.0 - mean))  # of 0/1 outcomes, population (ddof 0)
    half = stats.t.isf(alpha / 2.0, total - 1.0) * std / np.sqrt(total)
    return Intervals(mean - half, mean, mean + half, seen)


def threshold_annotators(values: FloatArray, epsilon: float) -> npt.NDArray[np.bool_]:
    """IEThresh's choice: the annotators whose value is >= epsilon · the largest. Donmez
    et al. (2009)."""
    return np.asarray(values >= epsilon * values.max())


@dataclass(frozen=True)
class Assignment:
    annotator: IntArray  # [k] annotator of each chosen candidate, in rank order
    chosen: IntArray  # [k] positions in the candidate order
    cost: FloatArray  # [k]
    total_cost: float


def assign_annotators(
    order: IntArray,
    already: Callable[[int], npt.NDArray[np.bool_]],
    value: FloatArray,
    costs: FloatArray,
    eligible: npt.NDArray[np.bool_],
    *,
    k: int,
    budget: float | None,
    capacity: int | None,
    stop: StopCheck = _never,
) -> Assignment:
    """Assignment in rank order by a weighted round robin: each candidate gets, of the eligible
    annotators who have not labeled it yet, have capacity left and fit the remaining budget,
    the one with the smallest (tasks given so far in this plan + 1) / (value_j / cost_j)
    (ties: the larger value per cost, the cheaper, the lower index), so over many candidates
    each eligible annotator's share of the tasks is proportional to its value per unit cost
    (value: expected correct labels beyond chance). A candidate no such annotator can take is
    skipped. Stops at k assignments.

    Not all to the single best ratio: that ratio rests on estimated accuracies, and giving
    every task to the annotator whose estimate is (perhaps wrongly) the best per dollar was
    what lost to random annotators in the simulation; spreading in proportion hedges and keeps
    every eligible annotator observed.

    order [m] candidate ids best first; already(id) -> [a] bool mask of who labeled it.
    """
    a = value.shape[0]
    ratio = value / costs
    useful = ratio > 0  # an annotator at chance (value 0) comes last
    safe_ratio = np.where(useful, ratio, 1.0)
    left = np.full(a, np.inf if capacity is None else float(capacity))
    given = np.zeros(a)
    remaining = np.inf if budget is None else budget
    annotators: list[int] = []
    chosen: list[int] = []
    spent: list[float] = []
    for position, candidate in enumerate(order):
        if len(chosen) >= k:
            break
        if position % 1024 == 0:
            stop()
        can = eligible & ~already(int(candidate)) & (left >= 1) & (costs <= remaining)
        if not can.any():
            continue
        load = np.where(useful, (given + 1.0) / safe_ratio, np.inf)
        preference = np.lexsort((np.arange(a), costs, -ratio, load))
        j = int(preference[np.argmax(can[preference])])
        annotators.append(j)
        chosen.append(position)
        spent.append(float(costs[j]))
        given[j] += 1
        left[j] -= 1
        remaining -= float(costs[j])
    return Assignment(
        np.asarray(annotators, dtype=np.int64),
        np.asarray(chosen, dtype=np.int64),
        np.asarray(spent, dtype=np.float64),
        float(np.sum(spent)),
    )


def rank_map(values: FloatArray, order_scores: FloatArray) -> FloatArray:
    """values [n] rearranged so that their order follows order_scores [n] (higher first, ties
    to the lower index): the largest value goes to the item with the highest order score.
    Lets another strategy order the pool while ActiveLab's values keep the one scale."""
    n = values.shape[0]
    ranks = np.lexsort((np.arange(n), -order_scores))
    out = np.empty(n)
    out[ranks] = np.sort(values)[::-1]
    return out
