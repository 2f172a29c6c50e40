"""Bayesian strategies on MC-dropout samples (or any committee) [m, n, c].

Score functions return float64 scores [n], higher meaning "label this first".
Batch functions (BatchBALD, power sampling) return pool indices in pick order,
pick only among the candidates and never past the budget. Gal, Islam &
Ghahramani (2017); Houlsby et al. (2011); Kirsch et al. (2019, 2023).
"""

import numpy as np

from labelwise_server.strategies._types import (
    BatchSelect,
    FloatArray,
    IntArray,
    Params,
    Pool,
    RealArray,
    StopCheck,
    Task,
    needed,
    never_stop,
)
from labelwise_server.strategies.bases import OFFSETS, BaseScores
from labelwise_server.strategies.committee import consensus, mean_member_entropy, vote_counts
from labelwise_server.strategies.greedy import Budget
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


# Floats of one [rows, candidates · c] block of predictive probabilities, so a block
# of BatchBALD's work stays a few MiB however many samples or classes there are.
_BLOCK_FLOATS = 1 << 20
# Candidates scored together at first; the chunk doubles while pruning goes on.
_FIRST_CHUNK = 8
# What a float32 gain may be off by: candidates whose bound is within it are scored.
_SLACK = 1e-4
# Groups of configurations whose mean posteriors bound the gains, and the Lloyd steps
# that form them.
_GROUPS = 256
_LLOYD_STEPS = 3
# Floats of the [S, m] joint-label posteriors: caps S (configurations, draws) at 2^24 / m.
_MAX_POSTERIOR_FLOATS = 1 << 24
# Power sampling raises scores to at least this share of the largest.
_POWER_FLOOR = 1e-12


class _JointLabels:
    """The labels of the chosen batch: configurations ŷ, their weights and posteriors.

    Holds S configurations of the chosen items' labels with weights ω [S] (summing
    to 1) and, for each, the posterior over the m samples, W_sk = p(ŷ_s | w_k) /
    Σ_k' p(ŷ_s | w_k'). Exact: every configuration of nonzero probability, ω_s =
    (1/m) Σ_k p(ŷ_s | w_k). Sampled: M' = m · max(1, ⌊M/m⌋) draws, ⌊M/m⌋ from each
    sample w_k (the paper's estimator; when m alone passes the cap below, each draw
    from a uniform w_k), each draw extended with a label of every new pick from its
    own w_k; equal draws are merged, ω = count / M'. Both kinds keep
    S · m <= 2^24 (M and max_exact are capped at 2^24 / m), so memory stays bounded.
    """

    def __init__(self, probs: RealArray, seed: int, num_samples: int, max_exact: int) -> None:
        self._probs = probs  # [m, n, c], work dtype
        self._m = probs.shape[0]
        self._num_samples = num_samples
        # At most this many configurations, so the [S, m] posteriors stay <= 128 MiB.
        self._max_rows = max(1, _MAX_POSTERIOR_FLOATS // self._m)
        self._max_exact = min(max_exact, self._max_rows)
        self._seed = seed
        self._chosen: list[int] = []
        self._joint: FloatArray | None = np.ones((1, self._m))  # [S, m] p(ŷ_s | w_k), exact
        self._rng: np.random.Generator | None = None
        self._members: IntArray | None = None  # [M'] the sample each draw came from
        self._configuration: IntArray | None = None  # [M'] which distinct ŷ each draw is
        self._log_joint: FloatArray | None = None  # [M', m] log p(ŷ_s | w_k)
        self.weights = np.ones(1)  # ω [S], float64
        self.posterior: RealArray = np.full((1, self._m), 1.0 / self._m, dtype=probs.dtype)

    @property
    def exact(self) -> bool:
        return self._joint is not None

    def add(self, item: int) -> None:
        """Condition on one more chosen item (a position into probs)."""
        self._chosen.append(item)
        item_probs = self._probs[:, item, :].astype(np.float64)  # [m, c]
        if (
            self._joint is not None
            and self._joint.shape[0] * item_probs.shape[1] <= self._max_exact
        ):
            joint = (self._joint[:, None, :] * item_probs.T[None, :, :]).reshape(-1, self._m)
            total = joint.sum(axis=1)
            joint = joint[total > 0]
            self._joint = joint
            self.weights = joint.sum(axis=1) / self._m
            self.posterior = (joint / joint.sum(axis=1, keepdims=True)).astype(self._probs.dtype)
            return
        self._joint = None
        if self._configuration is None:
            self._start_sampling()
        else:
            self._extend(item)
        self._merge()

    def _draw(self, item: int) -> IntArray:
        """One label of item per draw, from the draw's own sample (inverse CDF)."""
        assert self._rng is not None and self._members is not None
        cdf = np.cumsum(self._probs[:, item, :].astype(np.float64), axis=1)  # [m, c]
        rows = cdf[self._members]  # [M', c]
        # u in (0, total]: never a class of zero probability, whose CDF step is empty.
        u = (1.0 - self._rng.random(self._members.shape[0])) * rows[:, -1]
        labels: IntArray = (rows < u[:, None]).sum(axis=1).astype(np.int64)
        return labels

    def _log_likelihood(self, item: int, labels: IntArray) -> FloatArray:
        with np.errstate(divide="ignore"):  # a label impossible under some w_k: log 0 = −inf
            logs: FloatArray = np.log(self._probs[:, item, :].astype(np.float64))
        return logs[:, labels].T  # [M', m]

    def _start_sampling(self) -> None:
        self._rng = np.random.default_rng(self._seed)
        per_sample = max(1, min(self._num_samples, self._max_rows) // self._m)
        if per_sample * self._m <= self._max_rows:
            self._members = np.repeat(np.arange(self._m, dtype=np.int64), per_sample)
        else:  # more samples than draws allowed: each draw from a uniform sample instead
            self._members = np.sort(self._rng.integers(0, self._m, size=self._max_rows))
        draws = self._members.shape[0]
        self._configuration = np.zeros(draws, dtype=np.int64)
        self._log_joint = np.zeros((draws, self._m))
        for item in self._chosen:
            self._extend(item)

    def _extend(self, item: int) -> None:
        assert self._configuration is not None and self._log_joint is not None
        labels = self._draw(item)
        # Distinct (configuration, label) pairs, renumbered 0..S-1: < M' · c, no overflow.
        keys = self._configuration * self._probs.shape[2] + labels
        _, self._configuration = np.unique(keys, return_inverse=True)
        self._log_joint += self._log_likelihood(item, labels)

    def _merge(self) -> None:
        assert self._configuration is not None and self._log_joint is not None
        _, first, counts = np.unique(self._configuration, return_index=True, return_counts=True)
        log_joint = self._log_joint[first]
        log_joint -= log_joint.max(axis=1, keepdims=True)  # the drawing sample's term is finite
        posterior = np.exp(log_joint)
        posterior /= posterior.sum(axis=1, keepdims=True)
        self.posterior = posterior.astype(self._probs.dtype)
        self.weights = counts / self._configuration.shape[0]


def _expected_entropies(posterior: RealArray, weights: FloatArray, probs: RealArray) -> FloatArray:
    """Σ_s ω_s H(Σ_k W_sk P_kb·) for each item b of probs [m, B, c]: [B], float64.

    The entropy of an item's label given each configuration of the chosen labels,
    averaged over configurations: H(y_b | ŷ) = H(ŷ, y_b) − H(ŷ). One [S, m]·[m, B·c]
    matmul per block of configurations.
    """
    m, count, c = probs.shape
    per_block = max(1, _BLOCK_FLOATS // (16 * c))  # items per block: >= 16 rows of work
    if count > per_block:
        return np.concatenate(
            [
                _expected_entropies(posterior, weights, probs[:, start : start + per_block])
                for start in range(0, count, per_block)
            ]
        )
    flat = np.ascontiguousarray(probs.reshape(m, count * c))
    total = np.zeros(count * c)
    rows = max(1, _BLOCK_FLOATS // (count * c))
    tiny = np.finfo(probs.dtype).tiny
    w = weights.astype(probs.dtype)
    for start in range(0, posterior.shape[0], rows):
        predictive = posterior[start : start + rows] @ flat  # [s, B·c]
        plogp = np.maximum(predictive, tiny)  # 0 · log(tiny) = 0
        np.log(plogp, out=plogp)
        plogp *= predictive
        total += w[start : start + rows] @ plogp
    entropies: FloatArray = 0.0 - total.reshape(count, c).sum(axis=1)
    return entropies


def _group_means(
    posterior: RealArray, weights: FloatArray, labels: IntArray, count: int
) -> tuple[FloatArray, FloatArray]:
    """Each group's ω-weighted mean posterior [count, m] and its weight [count] (0: empty)."""
    mass = np.bincount(labels, weights=weights, minlength=count).astype(np.float64)
    sums = np.stack(
        [np.bincount(labels, weights=weights * column, minlength=count) for column in posterior.T],
        axis=1,
    ).astype(np.float64)
    means = np.zeros_like(sums)
    np.divide(sums, mass[:, None], out=means, where=mass[:, None] > 0)
    return means, mass


def _groups(posterior: RealArray, weights: FloatArray, count: int) -> IntArray:
    """A group per configuration, of similar posteriors: a few weighted Lloyd steps.

    Only pruning depends on it (any grouping gives a valid bound), so it is
    deterministic but need not be good: the start means are evenly spaced rows.
    """
    rows = posterior.shape[0]
    means = posterior[np.linspace(0, rows - 1, count).astype(np.int64)].astype(np.float64)
    labels = np.zeros(rows, dtype=np.int64)
    step = max(1, _BLOCK_FLOATS // count)
    for _ in range(_LLOYD_STEPS):
        centres = means.T.astype(posterior.dtype)
        norms = (means * means).sum(axis=1).astype(posterior.dtype)
        for start in range(0, rows, step):
            distances = posterior[start : start + step] @ centres  # [s, G]
            distances *= -2.0
            distances += norms
            labels[start : start + step] = distances.argmin(axis=1)
        fresh, mass = _group_means(posterior, weights, labels, count)
        means[mass > 0] = fresh[mass > 0]  # an empty group keeps its mean
    return labels


def _gain_bounds(
    posterior: RealArray, weights: FloatArray, probs: RealArray, conditional: FloatArray
) -> FloatArray:
    """An upper bound on every item's gain [n]: Jensen over groups of configurations.

    Σ_{s ∈ g} ω_s H(W_s P_x) <= ω_g H(W̄_g P_x), W̄_g the ω-weighted mean posterior of
    group g, since entropy is concave and W_s P_x is linear in W_s.
    """
    if posterior.shape[0] <= _GROUPS:
        return _expected_entropies(posterior, weights, probs) - conditional
    labels = _groups(posterior, weights, _GROUPS)
    means, mass = _group_means(posterior, weights, labels, _GROUPS)
    filled = mass > 0
    grouped = means[filled].astype(posterior.dtype)
    return _expected_entropies(grouped, mass[filled], probs) - conditional


def batch_bald_select(
    committee: RealArray,
    candidates: IntArray,
    k: int,
    seed: int,
    *,
    num_samples: int = 10_000,
    max_exact: int = 10_000,
    costs: FloatArray | None = None,
    budget: float | None = None,
    prune: bool = True,
    stop: StopCheck = never_stop,
) -> tuple[IntArray, FloatArray]:
    """BatchBALD: greedily grow the batch of largest joint mutual information (Kirsch et al. 2019).

    Each pick maximises a(B ∪ {x}) = H(ŷ_B, y_x) − Σ_{i ∈ B ∪ {x}} (1/m) Σ_k H(P_ki)
    over committee / MC samples P [m, n, c]; the score is the gain
    a(B ∪ {x}) − a(B) = H(y_x | ŷ_B) − (1/m) Σ_k H(P_kx), the first pick's being its
    BALD score, so a batch's scores add up to its joint mutual information. H(ŷ_B)
    sums over every label configuration of B while those of nonzero probability
    number at most max_exact, then is the paper's estimate from num_samples draws
    (seeded; see _JointLabels). Concavity bounds each gain by H(Σ_s ω_s W_s P_x) −
    (1/m) Σ_k H(P_kx), so candidates are scored best bound first and the rest
    skipped once no bound can beat the best gain (prune=False scores them all).
    Work in float32 for float32 input. A pick that no longer fits the budget is
    skipped; ties go to the lower pool index. Returns (indices in pick order, gains).
    """
    dtype = np.float64 if committee.dtype == np.float64 else np.float32
    probs: RealArray = np.ascontiguousarray(committee[:, candidates], dtype=dtype)  # [m, n', c]
    _, n, c = probs.shape
    conditional = mean_member_entropy(probs)  # [n'] (1/m) Σ_k H(P_kx)
    spend = Budget(None if costs is None else costs[candidates], budget)
    alive = np.ones(n, dtype=bool)
    joint = _JointLabels(probs, seed, num_samples, max_exact)
    picks: list[int] = []
    gains: list[float] = []
    while len(picks) < k:
        stop()
        spend.narrow(alive)
        positions = np.flatnonzero(alive)
        if positions.size == 0:
            break
        bounds = _gain_bounds(joint.posterior, joint.weights, probs, conditional)[positions]
        order = positions[np.lexsort((positions, -bounds))]
        ordered_bounds = np.sort(bounds)[::-1]
        best, best_gain = -1, -np.inf
        most = max(1, _BLOCK_FLOATS // (256 * c))  # candidates per chunk: >= 256 rows a block
        start, size = 0, min(_FIRST_CHUNK, most) if prune else most
        while start < order.size:
            if prune and ordered_bounds[start] < best_gain - _SLACK:
                break
            chunk = order[start : start + size]
            chunk_gains = (
                _expected_entropies(joint.posterior, joint.weights, probs[:, chunk])
                - conditional[chunk]
            )
            top = int(np.argmax(chunk_gains))  # the first of equal gains: chunks are not sorted
            ties = np.flatnonzero(chunk_gains == chunk_gains[top])
            top = int(ties[np.argmin(chunk[ties])])
            if chunk_gains[top] > best_gain or (
                chunk_gains[top] == best_gain and chunk[top] < best
            ):
                best, best_gain = int(chunk[top]), float(chunk_gains[top])
            start += size
            size = min(2 * size, most)
        picks.append(best)
        gains.append(best_gain)
        alive[best] = False
        spend.take(best)
        if len(picks) < k:
            joint.add(best)
    return candidates[np.asarray(picks, dtype=np.int64)], np.asarray(gains, dtype=np.float64)


def power_sample(
    scores: FloatArray,
    candidates: IntArray,
    k: int,
    seed: int,
    *,
    beta: float = 1.0,
    costs: FloatArray | None = None,
    budget: float | None = None,
) -> IntArray:
    """Stochastic power acquisition: k candidates drawn without replacement ∝ score^β.

    Kirsch et al. (2023), by Gumbel top-k: the k largest β log s_i + G_i, G_i
    standard Gumbel noise drawn (seeded) for every pool item i, so an item's key
    does not depend on what else is excluded. scores [n] must be >= 0 in exact
    arithmetic; anything below 1e-12 × the largest candidate score (rounding
    negatives, zeros) is raised to it, so such items come last but can still be
    drawn; if every candidate scores 0 the draw is uniform. With a budget the draw
    order is walked keeping each item that still fits, which is sequential
    sampling among the items that fit. Returns pool indices in draw order.
    """
    noise = np.asarray(np.random.default_rng(seed).gumbel(size=scores.shape[0]))[candidates]
    values = scores[candidates]
    top = float(values.max()) if values.size else 0.0
    keys = noise  # every candidate scores 0: uniform
    if top > 0:
        keys = beta * np.log(np.maximum(values, top * _POWER_FLOOR)) + noise
    order = candidates[np.lexsort((candidates, -keys))]
    return Budget(costs, budget).walk(order, k)  # costs [n] by pool index, as order is


# Registry adapters (strategies/registry.py): the validated pool and task in, the math above
# called. Validation has checked the inputs each strategy needs are present.


def batch_bald_adapter(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    return batch_bald_select(
        needed(pool.committee, "committee"),
        task.candidates,
        task.k,
        task.seed,
        num_samples=int(params["num_samples"]),
        max_exact=int(params["max_exact_configurations"]),
        costs=pool.costs,
        budget=task.budget,
        stop=task.stop,
    )


def power_bald_adapter(base_scores: BaseScores) -> BatchSelect:
    """power_bald over the row-wise base the registry's base_scores computes."""

    def select(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
        base = str(params["base"])
        scores = base_scores(pool, base, task.stop)
        picked = power_sample(
            scores + OFFSETS.get(base, 0.0),
            task.candidates,
            task.k,
            task.seed,
            beta=float(params["beta"]),
            costs=pool.costs,
            budget=task.budget,
        )
        return picked, scores[picked]

    return select
