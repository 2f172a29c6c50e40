"""Simulated annotations and naive loop implementations for tests/strategies/test_annotators.py."""

from dataclasses import dataclass

import numpy as np
from scipy import stats

MISSING = -1


@dataclass(frozen=True)
class Crowd:
    annotations: np.ndarray  # [l, a] int64, -1 missing
    probabilities: np.ndarray  # [l, c]
    pool: np.ndarray  # [n, c]
    truth: np.ndarray  # [l]

    @property
    def as_float(self) -> np.ndarray:
        """cleanlab's and scikit-activeml's format: NaN where missing."""
        return np.where(self.annotations < 0, np.nan, self.annotations).astype(float)


def make_crowd(
    seed: int,
    items: int = 150,
    annotators: int = 5,
    classes: int = 4,
    pool: int = 60,
    density: float = 0.5,
    single: bool = False,
) -> Crowd:
    """Annotators of accuracy 55-95 %, each item labeled by each with probability density (at
    least one); a model whose logits favour the true class."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, items)
    accuracy = rng.uniform(0.55, 0.95, annotators)
    labels = np.full((items, annotators), MISSING, dtype=np.int64)
    for i in range(items):
        mask = rng.random(annotators) < density
        if single or not mask.any():
            mask[:] = False
            mask[rng.integers(annotators)] = True
        for j in np.flatnonzero(mask):
            right = rng.random() < accuracy[j]
            labels[i, j] = truth[i] if right else rng.integers(0, classes)
    logits = rng.normal(size=(items + pool, classes))
    logits[np.arange(items), truth] += 1.5
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return Crowd(labels, p[:items], p[items:], truth)


def naive_majority_vote(annotations: np.ndarray, p: np.ndarray | None, c: int) -> np.ndarray:
    """cleanlab's tie-break chain, item by item; the last tie to the lower class."""
    items, a = annotations.shape
    counts = np.zeros((items, c))
    for i in range(items):
        for j in range(a):
            if annotations[i, j] >= 0:
                counts[i, annotations[i, j]] += 1
    freq = counts.sum(axis=0)
    out = np.zeros(items, dtype=np.int64)
    untied = []
    tied = {}
    for i in range(items):
        modes = [k for k in range(c) if counts[i, k] == counts[i].max()]
        if len(modes) == 1:
            out[i] = modes[0]
            untied.append(i)
            continue
        if p is not None:
            best = max(p[i, k] for k in modes)
            modes = [k for k in modes if p[i, k] == best]
        low = min(freq[k] for k in modes)
        modes = [k for k in modes if freq[k] == low]
        tied[i] = modes
    agreement = np.full(a, np.nan)
    for j in range(a):
        seen = [i for i in untied if annotations[i, j] >= 0]
        if seen:
            agreement[j] = np.mean([annotations[i, j] == out[i] for i in seen])
    if np.isnan(agreement).all():
        for i, modes in tied.items():
            out[i] = min(modes)
        return out
    agreement[np.isnan(agreement)] = np.nanmean(agreement)
    for i, modes in tied.items():
        if len(modes) > 1:
            score = [np.mean([agreement[j] for j in range(a) if annotations[i, j] == k])
                     for k in modes]  # fmt: skip
            modes = [k for k, s in zip(modes, score, strict=True) if s == max(score)]
        out[i] = min(modes)
    return out


def naive_crowdlab_posterior(
    annotations: np.ndarray, p: np.ndarray, consensus: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Goh et al. (2022) item by item: the posterior [l, c], annotator weights, model weight."""
    items, c = p.shape
    a = annotations.shape[1]
    n = (annotations >= 0).sum(axis=1)
    multi = [i for i in range(items) if n[i] > 1]
    agree = [np.mean([annotations[i, j] == consensus[i] for j in range(a)
                      if annotations[i, j] >= 0]) for i in multi]  # fmt: skip
    p_agree = float(np.mean(agree))
    p_other = (1 - p_agree) / (c - 1)
    common = np.bincount(consensus[multi], minlength=c).argmax()
    common_error = max(np.mean([consensus[i] != common for i in multi]), 1e-6)
    mutual = np.full(a, np.nan)
    for j in range(a):
        num = den = 0.0
        for i in range(items):
            if annotations[i, j] >= 0 and n[i] > 1:
                num += sum(annotations[i, k] == annotations[i, j] for k in range(a) if k != j)
                den += n[i] - 1
        if den > 0:
            mutual[j] = num / den
    mutual[np.isnan(mutual)] = np.nanmean(mutual)
    weights = np.maximum(1 - (1 - mutual) / common_error, 1e-6)
    model_error = np.mean([p[i].argmax() != consensus[i] for i in multi])
    model_weight = max(1 - model_error / common_error, 1e-6) * np.sqrt(n.mean())
    post = np.zeros((items, c))
    for i in range(items):
        total = model_weight
        post[i] = model_weight * p[i]
        for j in range(a):
            if annotations[i, j] >= 0:
                total += weights[j]
                for k in range(c):
                    post[i, k] += weights[j] * (p_agree if annotations[i, j] == k else p_other)
        post[i] /= total
    return post, weights, float(model_weight)


def _vote_fractions(annotations: np.ndarray, c: int) -> np.ndarray:
    """Each item's share of votes per class [l, c], item by item."""
    items, a = annotations.shape
    post = np.zeros((items, c))
    for i in range(items):
        for j in range(a):
            if annotations[i, j] >= 0:
                post[i, annotations[i, j]] += 1
        post[i] /= post[i].sum()
    return post


def naive_dawid_skene(annotations: np.ndarray, c: int, iterations: int) -> np.ndarray:
    """Dawid & Skene (1979) EM with loops, from vote fractions, a fixed number of iterations
    (confusion entries clipped at 1e-10 as crowd-kit); the posterior [l, c]."""
    items, a = annotations.shape
    post = _vote_fractions(annotations, c)

    def m_step(post: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        conf = np.zeros((a, c, c))
        for i in range(items):
            for j in range(a):
                if annotations[i, j] >= 0:
                    conf[j, :, annotations[i, j]] += post[i]
        conf = np.maximum(conf, 1e-10)
        conf /= conf.sum(axis=2, keepdims=True)
        return post.mean(axis=0), conf

    priors, conf = m_step(post)
    for _ in range(iterations):
        for i in range(items):
            log = np.log(np.maximum(priors, 1e-10)).copy()
            for j in range(a):
                if annotations[i, j] >= 0:
                    log += np.log(conf[j, :, annotations[i, j]])
            post[i] = np.exp(log - log.max())
            post[i] /= post[i].sum()
        priors, conf = m_step(post)
    return post


def naive_intervals(
    annotations: np.ndarray, reference: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and upper end of each annotator's agreement interval, with the two pseudo labels."""
    a = annotations.shape[1]
    means, uppers = np.zeros(a), np.zeros(a)
    for j in range(a):
        outcomes = [float(annotations[i, j] == reference[i])
                    for i in range(annotations.shape[0]) if annotations[i, j] >= 0]  # fmt: skip
        outcomes += [0.0, 1.0]
        m, s = np.mean(outcomes), np.std(outcomes)
        half = stats.t.ppf(1 - alpha / 2, len(outcomes) - 1) * s / np.sqrt(len(outcomes))
        means[j], uppers[j] = m, m + half
    return means, uppers


def naive_bayes_em(
    annotations: np.ndarray,
    c: int,
    p: np.ndarray | None,
    strength: float,
    iterations: int,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Bayes EM with loops, a fixed number of iterations: posterior [l, c], accuracies [a] and
    the model's temperature. The temperature's M-step by SciPy's bounded scalar search on the
    expected complete log likelihood instead of Newton steps."""
    from scipy.optimize import minimize_scalar

    items, a = annotations.shape
    post = _vote_fractions(annotations, c)
    log_p = None if p is None else np.log(p / p.sum(axis=1, keepdims=True))
    if p is not None:  # the model as half a vote
        for i in range(items):
            votes = post[i] * (annotations[i] >= 0).sum()
            post[i] = (votes + 0.5 * p[i] / p[i].sum()) / ((annotations[i] >= 0).sum() + 0.5)

    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def m_step(post: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        hits, seen = np.zeros(a), np.zeros(a)
        for i in range(items):
            for j in range(a):
                if annotations[i, j] >= 0:
                    hits[j] += post[i, annotations[i, j]]
                    seen[j] += 1
        pooled = hits.sum() / seen.sum()
        accuracy = np.array(
            [(hits[j] + strength * pooled) / (seen[j] + strength) if seen[j] + strength > 0
             else pooled for j in range(a)]
        )  # fmt: skip
        accuracy = np.clip(accuracy, 1 / c, 1 - 1e-10)
        if log_p is None:
            return accuracy, np.tile(np.log(np.maximum(post.mean(axis=0), 1e-10)), (items, 1)), 0
        found = minimize_scalar(
            lambda beta: -(post * log_softmax(beta * log_p)).sum(),
            bounds=(1e-3, 10.0),
            method="bounded",
            options={"xatol": 1e-10},
        )
        return accuracy, log_softmax(found.x * log_p), 1 / found.x

    accuracy, log_prior, temperature = m_step(post)
    for _ in range(iterations):
        for i in range(items):
            log = log_prior[i].copy()
            for j in range(a):
                if annotations[i, j] >= 0:
                    for k in range(c):
                        right = annotations[i, j] == k
                        log[k] += np.log(accuracy[j] if right else (1 - accuracy[j]) / (c - 1))
            post[i] = np.exp(log - log.max())
            post[i] /= post[i].sum()
        accuracy, log_prior, temperature = m_step(post)
    return post, accuracy, temperature
