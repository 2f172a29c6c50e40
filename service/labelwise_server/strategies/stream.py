"""Stream strategies: for each arriving item, label it or not, at a target labeling rate.

Conventions of this module:
- A utility is "higher = more worth a label", in [0, 1]; a budget manager turns utilities into
  decisions. Each decision function walks its batch in arrival order and updates a StreamState
  in place, so one batch of n items decides exactly as n calls of one item would.
- Random draws come from `uniforms(seed, first, n)`: a counter-based generator (SplitMix64 of
  the seed and the item's position), so resuming a stream needs only the seed and the number of
  items seen (the RNG position), never a generator's internal state.
- Every decision comes with the probability that it was "label" given the state before the
  item: 0 or 1 for deterministic rules, the rule's chance for randomised ones.

Budget managers follow scikit-activeml 1.0.1's definitions (Žliobaitė et al. 2014: the
estimated-budget family; Kottke et al. 2015/2021: the balanced incremental quantile filter);
the entropy sampler is river's `active.EntropySampler`. Definitions and references:
docs/streams.md.
"""

import bisect
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from labelwise_server.strategies._types import (
    FloatArray,
    Params,
    RealArray,
    StopCheck,
    never_stop,
)
from labelwise_server.strategies.params import Boolean, Interval, Options, Param

# Uniform draws reserved per item (the RNG position advances by this much per item).
DRAWS = 4
# Largest window of the quantile filter: its utilities travel in the token (8 bytes each).
MAX_HISTORY = 256
UTILITIES = ("least_confidence", "margin", "entropy")

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def uniforms(seed: int, first: int, n: int) -> FloatArray:
    """Uniform [0, 1) draws for the n items at positions first, first+1, …: [n, DRAWS].

    Draw j of the item at position t is SplitMix64's output for the counter
    seed + (t·DRAWS + j + 1)·γ (mod 2^64), its top 53 bits scaled to [0, 1).
    """
    start = np.uint64((first * DRAWS + 1) % (1 << 64))
    with np.errstate(over="ignore"):
        counters = np.arange(n * DRAWS, dtype=np.uint64) + start
        z = np.uint64(seed) + counters * _GOLDEN  # [n·DRAWS], wraps mod 2^64
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) * 2.0**-53).reshape(n, DRAWS)


# ---------------------------------------------------------------------------------------------
# Utilities: probabilities [n, c] (rows sum to 1) -> [n] in [0, 1], higher = label first.


def least_confidence_utilities(probabilities: RealArray) -> FloatArray:
    """1 − max_j p_ij (scikit-activeml's stream uncertainty); [n, c] -> [n]."""
    out: FloatArray = 1.0 - np.max(np.asarray(probabilities, dtype=np.float64), axis=1)
    return out


def margin_utilities(probabilities: RealArray) -> FloatArray:
    """1 − (p(1) − p(2)), the top-2 gap turned into a utility in [0, 1]; [n, c] -> [n]."""
    top2 = np.partition(np.asarray(probabilities, dtype=np.float64), -2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def normalized_entropy_utilities(probabilities: RealArray) -> FloatArray:
    """H₂(p) / log₂(#{j: p_j > 0}), 0 when one class has all the mass (river's EntropySampler
    normalisation over the non-zero classes); [n, c] -> [n]."""
    p = np.asarray(probabilities, dtype=np.float64)
    positive = p > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(positive, p * np.log2(np.where(positive, p, 1.0)), 0.0)
    entropy = -terms.sum(axis=1)  # [n]
    support = positive.sum(axis=1)
    out = np.zeros(p.shape[0])
    spread = (entropy != 0) & (support > 1)
    out[spread] = entropy[spread] / np.log2(support[spread])
    return np.clip(out, 0.0, 1.0)


def label_vectors(classes: int, m: int) -> npt.NDArray[np.int64]:
    """Every way to draw m labels among c classes, as count vectors [L, c] (L = C(c+m-1, m))."""
    draws = list(itertools.combinations_with_replacement(range(classes), m))
    out = np.zeros((len(draws), classes), dtype=np.int64)
    for row, draw in enumerate(draws):
        for j in draw:
            out[row, j] += 1
    return out


def pal_vector_count(classes: int, m_max: int) -> int:
    """Label vectors PAL weighs per item: Σ_{m ≤ m_max} C(c + m − 1, m)."""
    return sum(math.comb(classes + m - 1, m) for m in range(m_max + 1))


def pal_utilities(
    frequencies: RealArray, prior: float, m_max: int, stop: StopCheck = never_stop
) -> FloatArray:
    """Probabilistic gain (Krempl et al. 2014; Kottke et al. 2015, 2021): the expected
    reduction of the 0/1 misclassification cost per hypothetical label, maximised over 1..m_max
    labels, under a Dirichlet(k + α) posterior of the item's label, k its kernel frequency
    estimates [n, c] and α the prior. E_m = Σ_{|l|=m} Mult(l) Σ_{y ≠ ŷ(k+l)} B(k+α+l+e_y)/B(k+α),
    utility = max_m (E_0 − E_m)/m; [n, c] -> [n]."""
    k = np.asarray(frequencies, dtype=np.float64)
    n, classes = k.shape
    cost = 1.0 - np.eye(classes)  # 0/1 loss: C[y, ŷ]
    vectors = [label_vectors(classes, m) for m in range(m_max + 1)]
    per_item = sum(len(v) for v in vectors) * classes
    block = max(1, (1 << 20) // per_item)  # rows per block: about 8 MB of [b, L, c] floats
    out = np.empty(n)
    for start in range(0, n, block):
        stop()
        kb = k[start : start + block]  # [b, c]
        a = kb + prior
        a0 = a.sum(axis=1)  # [b]
        log_beta_a = gammaln(a).sum(axis=1) - gammaln(a0)  # [b]
        expected = []
        for m, ls in enumerate(vectors):
            log_mult = gammaln(m + 1) - gammaln(ls + 1).sum(axis=1)  # [L]
            decision = np.argmin((kb[:, None, :] + ls[None]) @ cost, axis=2)  # [b, L]: ŷ(k + l)
            al = a[:, None, :] + ls[None]  # [b, L, c]
            # B(a + l + e_y) / B(a) = exp(Σ ln Γ(a + l) − ln Γ(a0 + m + 1) − ln B(a)) · (a + l)_y
            log_ratio = gammaln(al).sum(axis=2) - gammaln(a0 + m + 1)[:, None]
            weight = np.exp(log_ratio - log_beta_a[:, None] + log_mult[None])[:, :, None] * al
            wrong = weight.sum(axis=2) - np.take_along_axis(weight, decision[:, :, None], 2)[..., 0]
            expected.append(wrong.sum(axis=1))  # [b]
        gains = [(expected[0] - expected[m]) / m for m in range(1, m_max + 1)]
        out[start : start + len(kb)] = np.max(np.stack(gains), axis=0)
    return np.clip(out, 0.0, 1.0)  # a gain of 0 may come out as −1e-15


UTILITY_FUNCTIONS: Mapping[str, Callable[[RealArray], FloatArray]] = {
    "least_confidence": least_confidence_utilities,
    "margin": margin_utilities,
    "entropy": normalized_entropy_utilities,
}


# ---------------------------------------------------------------------------------------------
# The state that travels with the caller (in the token).


@dataclass
class StreamState:
    """Everything a stream's next decision depends on besides the items and the configuration.

    seen/labeled count items since the stream began (seen is also the RNG position);
    estimate is Žliobaitė's labeling-rate estimate û·w; theta the variable threshold;
    window_* count the current tumbling window's items and labels; history the quantile
    filter's last w utilities, oldest first.
    """

    seed: int
    seen: int = 0
    labeled: int = 0
    estimate: float = 0.0
    theta: float = 0.0
    window_seen: int = 0
    window_labeled: int = 0
    history: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class WindowCap:
    """At most max_labels labels in each tumbling window of `items` consecutive items
    (windows start at the stream's first item); items == 0: no cap."""

    items: int = 0
    max_labels: int = 0


@dataclass(frozen=True)
class Decisions:
    label: np.ndarray  # [n] bool
    utility: FloatArray  # [n]
    probability: FloatArray  # [n] the chance that the item is labeled, given the state


class _Walk:
    """Per-item bookkeeping shared by every budget manager: counters and the window cap."""

    def __init__(self, state: StreamState, cap: WindowCap, n: int) -> None:
        self.state = state
        self.cap = cap
        self.label = np.zeros(n, dtype=bool)
        self.probability = np.zeros(n)

    def capped(self) -> bool:
        """True when the current window has spent its labels (checked before the item)."""
        s = self.state
        if self.cap.items == 0:
            return False
        if s.window_seen >= self.cap.items:  # the item opens a new window
            s.window_seen = 0
            s.window_labeled = 0
        return s.window_labeled >= self.cap.max_labels

    def record(self, i: int, label: bool, probability: float) -> None:
        s = self.state
        s.seen += 1
        s.window_seen += 1
        if label:
            s.labeled += 1
            s.window_labeled += 1
        self.label[i] = label
        self.probability[i] = probability


def _estimate_step(estimate: float, w: int, label: bool) -> float:
    # The same expression as scikit-activeml's EstimatedBudgetZliobaite, for equal floats.
    return estimate * ((w - 1) / w) + label


# ---------------------------------------------------------------------------------------------
# Budget managers. Each: utilities [n], state (updated), params -> Decisions.


def stream_random_decide(
    utilities: FloatArray, state: StreamState, budget: float, cap: WindowCap, params: Params
) -> Decisions:
    """Label when a uniform draw u ≥ 1 − b (scikit-activeml StreamRandomSampling); with
    allow_exceeding_budget false, only while t·b − q > 1. The utility is the draw."""
    n = utilities.shape[0]
    draws = uniforms(state.seed, state.seen, n)[:, 0]
    walk = _Walk(state, cap, n)
    exceed = bool(params["allow_exceeding_budget"])
    for i in range(n):
        capped = walk.capped()
        available = (state.seen + 1) * budget - state.labeled
        allowed = (exceed or available > 1) and not capped
        walk.record(i, allowed and bool(draws[i] >= 1 - budget), budget if allowed else 0.0)
    return Decisions(walk.label, draws, walk.probability)


def periodic_decide(
    utilities: FloatArray, state: StreamState, budget: float, cap: WindowCap, params: Params
) -> Decisions:
    """Label when (t + 1)·b − q ≥ 1 (scikit-activeml PeriodicSampling): every 1/b-th item."""
    n = utilities.shape[0]
    walk = _Walk(state, cap, n)
    for i in range(n):
        capped = walk.capped()
        label = (state.seen + 1) * budget - state.labeled >= 1 and not capped
        walk.record(i, label, float(label))
    return Decisions(walk.label, walk.label.astype(np.float64), walk.probability)


def fixed_uncertainty_decide(
    utilities: FloatArray, state: StreamState, budget: float, cap: WindowCap, params: Params
) -> Decisions:
    """Label when 1 − u ≤ θ = 1/c + b·(1 − 1/c) while û < b (Žliobaitė et al. 2014, fixed
    uncertainty; scikit-activeml FixedUncertaintyBudgetManager)."""
    w, classes = int(params["w"]), int(params["classes"])
    theta = 1 / classes + budget * (1 - 1 / classes)
    walk = _Walk(state, cap, utilities.shape[0])
    for i, utility in enumerate(utilities.tolist()):
        capped = walk.capped()
        open_ = state.estimate / w < budget and not capped
        label = open_ and (1 - utility) <= theta
        state.estimate = _estimate_step(state.estimate, w, label)
        walk.record(i, label, float(label))
    return Decisions(walk.label, utilities, walk.probability)


def variable_uncertainty_decide(
    utilities: FloatArray, state: StreamState, budget: float, cap: WindowCap, params: Params
) -> Decisions:
    """Label when 1 − u < θ while û < b; θ ← θ(1 − s) after a label, θ(1 + s) after none
    (Žliobaitė et al. 2014, variable uncertainty; VariableUncertaintyBudgetManager)."""
    w, s = int(params["w"]), float(params["s"])
    walk = _Walk(state, cap, utilities.shape[0])
    for i, utility in enumerate(utilities.tolist()):
        capped = walk.capped()
        label = False
        if budget > state.estimate / w and not capped:
            label = (1 - utility) < state.theta
            state.theta *= (1 - s) if label else (1 + s)
        state.estimate = _estimate_step(state.estimate, w, label)
        walk.record(i, label, float(label))
    return Decisions(walk.label, utilities, walk.probability)


def random_variable_uncertainty_decide(
    utilities: FloatArray, state: StreamState, budget: float, cap: WindowCap, params: Params
) -> Decisions:
    """Variable uncertainty with a randomised threshold θ·η, η ~ N(1, δ²) (Žliobaitė et al.
    2014; RandomVariableUncertaintyBudgetManager). η by Box–Muller from the item's draws."""
    w, s, delta = int(params["w"]), float(params["s"]), float(params["delta"])
    n = utilities.shape[0]
    draws = uniforms(state.seed, state.seen, n)
    # [n] standard normals: √(−2 ln(1 − u₀))·cos(2π u₁), u₀ ∈ [0, 1) so the log is finite.
    normals = np.sqrt(-2.0 * np.log1p(-draws[:, 0])) * np.cos(2.0 * np.pi * draws[:, 1])
    walk = _Walk(state, cap, n)
    for i, utility in enumerate(utilities.tolist()):
        capped = walk.capped()
        label, chance = False, 0.0
        if budget > state.estimate / w and not capped:
            confidence = 1 - utility
            eta = 1.0 + delta * float(normals[i])
            label = confidence < state.theta * eta
            # P(confidence < θ·η) = P(η > confidence / θ); θ may underflow to 0 after a long
            # run of labels on utilities of 1, where no η can make 0 < 0.
            ratio = confidence / state.theta if state.theta > 0 else math.inf
            chance = 0.5 * math.erfc((ratio - 1.0) / (delta * math.sqrt(2)))
            state.theta *= (1 - s) if label else (1 + s)
        state.estimate = _estimate_step(state.estimate, w, label)
        walk.record(i, label, chance)
    return Decisions(walk.label, utilities, walk.probability)


def split_decide(
    utilities: FloatArray, state: StreamState, budget: float, cap: WindowCap, params: Params
) -> Decisions:
    """With chance v label at random (with chance b), else variable uncertainty; while û < b
    (Žliobaitė et al. 2014, split; SplitBudgetManager). θ moves only on the uncertainty arm."""
    w, s, v = int(params["w"]), float(params["s"]), float(params["v"])
    n = utilities.shape[0]
    draws = uniforms(state.seed, state.seen, n)
    walk = _Walk(state, cap, n)
    for i, utility in enumerate(utilities.tolist()):
        capped = walk.capped()
        label, chance = False, 0.0
        if state.estimate / w < budget and not capped:
            uncertain = (1 - utility) < state.theta
            chance = v * budget + (1 - v) * float(uncertain)
            if v > draws[i, 0]:
                label = bool(draws[i, 1] <= budget)
            else:
                label = uncertain
                state.theta *= (1 - s) if label else (1 + s)
        state.estimate = _estimate_step(state.estimate, w, label)
        walk.record(i, label, chance)
    return Decisions(walk.label, utilities, walk.probability)


def quantile_filter_decide(
    utilities: FloatArray, state: StreamState, budget: float, cap: WindowCap, params: Params
) -> Decisions:
    """Balanced incremental quantile filter (Kottke et al. 2015; scikit-activeml
    BalancedIncrementalQuantileFilter): label when u ≥ θ − range·(b·t − q)/w_tol, θ the
    (1 − b)-quantile and range the spread of the last w utilities, this one included."""
    w, w_tol = int(params["w"]), float(params["w_tol"])
    walk = _Walk(state, cap, utilities.shape[0])
    history = state.history  # arrival order
    ordered = sorted(history)  # the same values, ascending
    for i, utility in enumerate(utilities.tolist()):
        capped = walk.capped()
        history.append(utility)
        bisect.insort(ordered, utility)
        if len(history) > w:
            del ordered[bisect.bisect_left(ordered, history.pop(0))]
        theta = linear_quantile(ordered, 1 - budget)
        spread = ordered[-1] - ordered[0]
        acquisitions_left = budget * (state.seen + 1) - state.labeled
        label = utility >= theta - spread * (acquisitions_left / w_tol) and not capped
        walk.record(i, label, float(label))
    return Decisions(walk.label, utilities, walk.probability)


def linear_quantile(ordered: list[float], q: float) -> float:
    """The q-quantile of ascending values by linear interpolation, computed as np.quantile's
    default method computes it (index (n − 1)·q, its two-sided lerp), so equal to the float."""
    n = len(ordered)
    virtual = (n - 1) * q
    if virtual >= n - 1:
        return ordered[-1]
    low = math.floor(virtual)
    a, b = ordered[low], ordered[low + 1]
    t = virtual - low
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def entropy_sampler_decide(
    utilities: FloatArray, state: StreamState, budget: float, cap: WindowCap, params: Params
) -> Decisions:
    """Label with probability u^d, u the normalised entropy (river active.EntropySampler with
    discount_factor d); no budget: the rate follows from d and the model's uncertainty."""
    discount = float(params["discount_factor"])
    n = utilities.shape[0]
    draws = uniforms(state.seed, state.seen, n)[:, 0]
    walk = _Walk(state, cap, n)
    chances = np.where(utilities > 0, utilities**discount, 0.0)  # river: 0 entropy -> 0
    for i in range(n):
        capped = walk.capped()
        chance = 0.0 if capped else float(chances[i])
        walk.record(i, bool(draws[i] < chance), chance)
    return Decisions(walk.label, utilities, walk.probability)


# ---------------------------------------------------------------------------------------------
# The table's entries (registry.py lists them in STREAM_STRATEGIES).

Decide = Callable[[FloatArray, StreamState, float, WindowCap, Params], Decisions]

W = Param(
    Interval(int, 1, 1 << 20),
    default=100,
    description="Window of the labeling-rate estimate û (items): û decays by (w − 1)/w per item.",
)
W_HISTORY = Param(
    Interval(int, 1, MAX_HISTORY),
    default=100,
    description=f"Utilities kept for the quantile (at most {MAX_HISTORY}: they travel in the "
    "token).",
)
W_TOL = Param(
    Interval(float, 0.0, 1e9, closed="right"),
    default=50.0,
    description="Tolerance of the balancing: a deficit (or surplus) of w_tol labels moves the "
    "threshold by the whole utility range.",
)
THETA = Param(
    Interval(float, 0.0, 1e6, closed="right"),
    default=1.0,
    description="Initial confidence threshold θ (> 0).",
)
S = Param(
    Interval(float, 0.0, 0.99, closed="right"),
    default=0.01,
    description="Threshold adjustment step s in (0, 0.99] (s = 1 would zero the threshold "
    "after one label, for good).",
)
UTILITY = Param(
    Options(str, UTILITIES),
    default="least_confidence",
    description="How an item's probabilities become its utility: 'least_confidence' "
    "(1 − max p), 'margin' (1 − (p(1) − p(2))) or 'entropy' (normalised entropy). Ignored when "
    "the request carries utilities.",
)


@dataclass(frozen=True)
class StreamStrategy:
    """A stream registry entry: a utility measure and a budget manager."""

    name: str
    summary: str
    decide: Decide
    params: Mapping[str, Param]
    utility: str | None = "least_confidence"  # fixed utility; None: the `utility` param
    budgeted: bool = True  # False: the target rate is not used (entropy_sampler)
    seeded: bool = False
    initial_theta: bool = False  # the state's theta starts at params["theta"]
    reads_items: bool = True  # False: only the number of items matters (random, periodic)
    needs_frequencies: bool = False  # pal: utilities from the request's frequencies
    family: str = "stream"

    def utility_name(self, params: Params) -> str:
        return str(params["utility"]) if self.utility is None else self.utility


STREAM_ENTRIES: tuple[StreamStrategy, ...] = (
    StreamStrategy(
        "stream_random",
        "Label when a uniform draw u ≥ 1 − b: rate b in expectation (scikit-activeml "
        "StreamRandomSampling); the baseline.",
        stream_random_decide,
        {
            "allow_exceeding_budget": Param(
                Boolean(),
                default=True,
                description="When false, label only while (t + 1)·b − q > 1 (never ahead of "
                "the budget).",
            )
        },
        seeded=True,
        reads_items=False,
    ),
    StreamStrategy(
        "periodic",
        "Label every 1/b-th item: when (t + 1)·b − q ≥ 1 (scikit-activeml PeriodicSampling).",
        periodic_decide,
        {},
        reads_items=False,
    ),
    StreamStrategy(
        "fixed_uncertainty",
        "Label when max p ≤ 1/c + b(1 − 1/c) while the rate estimate is under b (Žliobaitė et "
        "al. 2014).",
        fixed_uncertainty_decide,
        {
            "w": W,
            "classes": Param(
                Interval(int, 0, 1 << 20),
                default=0,
                description="The number of classes c of the threshold; 0: the width of the "
                "probabilities (required, >= 2, when the request carries utilities).",
            ),
        },
    ),
    StreamStrategy(
        "variable_uncertainty",
        "Label when 1 − u < θ while the rate estimate is under b; θ shrinks by (1 − s) after "
        "a label and grows by (1 + s) after none (Žliobaitė et al. 2014).",
        variable_uncertainty_decide,
        {"theta": THETA, "s": S, "w": W, "utility": UTILITY},
        utility=None,
        initial_theta=True,
    ),
    StreamStrategy(
        "random_variable_uncertainty",
        "Variable uncertainty with a randomised threshold θ·η, η ~ N(1, δ²) (Žliobaitė et al. "
        "2014).",
        random_variable_uncertainty_decide,
        {
            "delta": Param(
                Interval(float, 0.0, 1e3, closed="right"),
                default=1.0,
                description="Standard deviation δ of the threshold's multiplier η ~ N(1, δ²).",
            ),
            "theta": THETA,
            "s": S,
            "w": W,
            "utility": UTILITY,
        },
        utility=None,
        seeded=True,
        initial_theta=True,
    ),
    StreamStrategy(
        "split",
        "With chance v label at random (chance b), else variable uncertainty, while the rate "
        "estimate is under b (Žliobaitė et al. 2014).",
        split_decide,
        {
            "v": Param(
                Interval(float, 0.0, 1.0, closed="right"),
                default=0.1,
                description="Share v of items decided at random, in (0, 1].",
            ),
            "theta": THETA,
            "s": S,
            "w": W,
            "utility": UTILITY,
        },
        utility=None,
        seeded=True,
        initial_theta=True,
    ),
    StreamStrategy(
        "quantile_filter",
        "Balanced incremental quantile filter: label when u reaches the (1 − b)-quantile of the "
        "last w utilities, shifted by the label deficit (Kottke et al. 2015).",
        quantile_filter_decide,
        {"w": W_HISTORY, "w_tol": W_TOL, "utility": UTILITY},
        utility=None,
    ),
    StreamStrategy(
        "stream_margin",
        "Margin for streams: utility 1 − (p(1) − p(2)) through the balanced incremental "
        "quantile filter (Kottke et al. 2015), so the rate follows b whatever the margins' scale.",
        quantile_filter_decide,
        {"w": W_HISTORY, "w_tol": W_TOL},
        utility="margin",
    ),
    StreamStrategy(
        "pal",
        "Probabilistic active learning for streams: the probabilistic gain of the item's kernel "
        "frequency estimates (request field frequencies) through the balanced incremental "
        "quantile filter (Kottke et al. 2015; scikit-activeml StreamProbabilisticAL).",
        quantile_filter_decide,
        {
            "prior": Param(
                Interval(float, 0.0, 1e6, closed="right"),
                default=1e-3,
                description="Dirichlet prior α added to every class's frequency (> 0).",
            ),
            "m_max": Param(
                Interval(int, 1, 3),
                default=2,
                description="Most hypothetical labels the gain looks ahead (1 to 3).",
            ),
            "w": W_HISTORY,
            "w_tol": W_TOL,
        },
        utility="pal",
        needs_frequencies=True,
    ),
    StreamStrategy(
        "entropy_sampler",
        "Label with probability H^d, H the entropy normalised over the non-zero classes (river "
        "active.EntropySampler); no target rate: d sets it.",
        entropy_sampler_decide,
        {
            "discount_factor": Param(
                Interval(float, 0.0, 1e3),
                default=3.0,
                description="Exponent d: higher asks less (0 asks for every item with any "
                "entropy).",
            )
        },
        utility="entropy",
        budgeted=False,
        seeded=True,
    ),
)
