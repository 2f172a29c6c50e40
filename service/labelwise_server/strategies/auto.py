"""auto: choose among candidate strategies (arms) from the caller's own labeling history.

Stateless: the request carries every past round (History): which arm picked each labeled
item, the label it received and what the model predicted for it before labeling. The
bandit is TAILOR's (Zhang et al. 2023, "Algorithm Selection for Deep Active Learning with
Imbalanced Datasets"), for single-label classes; the default reward is the model's surprise:

- Reward. surprise (the default): an item of class y is worth 1 − p̂_y, p̂_y the model's
  probability of y before labeling: arms are credited for the items the model got wrong,
  and an arm that starves a class the model is wrong about loses to one (random) that finds
  its items. class_diversity (TAILOR): v_y = 1 / max(1, N_y), N_y the labeled items of
  class y so far (every history round, seed rounds included); it needs no predictions, but
  on balanced classes v is flat and it cannot tell arms apart. rare_surprise: the product
  v_y · (1 − p̂_y). It was the default until the 10-seed savings runs showed why not: on
  small imbalanced data (seattle_weather, 5 weather classes, two of them 2–4% of the days
  and barely separable) the class weight pays most for items of classes the model cannot
  learn, which makes the reward noisy. On fresh seeds (10–59, not those of the committed
  evidence) surprise recovered more of margin's gain there (1.34 and 1.40 of it, against
  0.90 and 0.87 for rare_surprise) and the same elsewhere (segment, digits; mnist_5k 0.70
  against 0.76); docs/strategy-selection.md has the figures.
- Bandit, Thompson sampling on each arm's label distribution: arm a's picks are modelled
  as draws from a distribution μ_a over the classes (plus, for surprise and rare_surprise, a
  last category "the model knew", worth 0: an item adds 1 − p̂_y to class y and p̂_y to it) with
  a Dirichlet posterior: prior prior_items · p̂ (p̂ the smoothed class distribution of every
  label so far: an arm with no evidence is expected to pick like the average) plus the
  arm's evidence, each history round weighted discount^(rounds since). v changes every round
  but μ_a slowly, so the posterior is kept over μ_a and the reward <v, μ_a> is formed with
  today's v (TAILOR's choice). Each of the k picks of the batch is one Thompson draw: the arm
  with the largest <v, μ̃_a> takes its next item, so the batch mixes arms in proportion to
  their posterior probability of being best.

The draws come from PCG64 seeded by the request's seed; each arm runs with its default
parameters and its own seed derived from the request's. Same request, same bytes.
"""

from collections.abc import Callable, Sequence

import numpy as np

from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies._types import (
    ArmReport,
    AutoReport,
    FloatArray,
    History,
    IntArray,
    Params,
    Pool,
    StopCheck,
    Task,
    needed,
    never_stop,
)

REWARDS = ("surprise", "rare_surprise", "class_diversity")
# The rewards that read what the model predicted for each item before labeling.
SURPRISE_REWARDS = ("surprise", "rare_surprise")
DEFAULT_ARMS = ("margin", "random")
MAX_ARMS = 16
# At most this many Thompson draws per request; a larger k is shared out by the draws' wins.
MAX_DRAWS = 1024
# Dirichlet samples per chunk of draws are at most this many floats (draws × arms × c).
_CHUNK_ELEMENTS = 1 << 20
# Rewards this close (relative) to the best tie.
_TIE = 1e-9
# Spawn key of the bandit's random stream, apart from the arms' own streams.
_STREAM = 0xA070

# An arm's ranking of the candidates: (pool indices in pick order, their scores), up to k.
RunArm = Callable[[Pool, Task, str], tuple[IntArray, FloatArray]]


def parse_arms(text: str) -> tuple[str, ...]:
    """The arm names of the comma-separated `arms` parameter (spaces around names ignored)."""
    return tuple(name.strip() for name in text.split(","))


def class_counts(history: History | None, c: int) -> FloatArray:
    """N [c]: labeled items of each class over every history round."""
    counts = np.zeros(c)
    if history is not None:
        for round_ in history.rounds:
            counts += np.bincount(round_.labels, minlength=c)[:c]
    return counts


def class_weights(counts: FloatArray) -> FloatArray:
    """TAILOR's class-diversity reward vector v_y = 1 / max(1, N_y)."""
    return 1.0 / np.maximum(counts, 1.0)


def arm_evidence(
    history: History | None, arms: Sequence[str], c: int, discount: float, reward: str = ""
) -> FloatArray:
    """S [A, c] (class_diversity) or [A, c + 1] (rare_surprise): each arm's discounted
    evidence, weight discount^age (age 0 for the latest round). class_diversity: an item of
    class y adds 1 to column y. rare_surprise: it adds 1 − p̂_y to column y and p̂_y to the
    last column (the part the model already knew), p̂_y the model's probability of the
    item's label before labeling. Items of other strategies, or of none, credit no arm."""
    surprise = reward in SURPRISE_REWARDS
    evidence = np.zeros((len(arms), c + 1 if surprise else c))
    if history is None:
        return evidence
    column = {name: a for a, name in enumerate(arms)}
    last = len(history.rounds) - 1
    for r, round_ in enumerate(history.rounds):
        weight = discount ** (last - r)
        names = round_.strategies
        if len(names) == 1:
            names = names * round_.labels.shape[0]
        rows = [(j, column[name]) for j, name in enumerate(names) if name in column]
        if not rows:
            continue
        if surprise and round_.probabilities is None:
            raise InvalidArgument(
                f"history[{r}].probabilities",
                f"must be sent for the items an arm picked when auto's reward is {reward}",
            )
        for j, a in rows:
            label = int(round_.labels[j])
            if surprise:
                assert round_.probabilities is not None
                known = float(round_.probabilities[j, label])
                evidence[a, label] += weight * (1.0 - known)
                evidence[a, c] += weight * known
            else:
                evidence[a, label] += weight
    return evidence


def posterior(evidence: FloatArray, counts: FloatArray, prior_items: float) -> FloatArray:
    """Dirichlet parameters [A, c] (or [A, c + 1]): prior_items · p̂ + each arm's evidence,
    with p̂ = (N + 1) / (ΣN + c) the add-one smoothed class distribution of every label so
    far; with a last (surprise) column, p̂ is halved and the other half goes to it."""
    c = counts.shape[0]
    prior = prior_items * (counts + 1.0) / (counts.sum() + c)
    if evidence.shape[1] == c + 1:
        prior = np.append(prior / 2.0, prior_items / 2.0)
    alpha: FloatArray = evidence + prior[None, :]
    return alpha


def thompson_draws(
    alpha: FloatArray, weights: FloatArray, draws: int, rng: np.random.Generator
) -> tuple[IntArray, FloatArray]:
    """(winner [draws], its sampled reward [draws]): for each draw, μ̃_a ~ Dir(alpha_a) for every
    arm and the arm of the largest <v, μ̃_a>, ties (within 1e-9 relative) drawn uniformly."""
    arms, c = alpha.shape
    winners = np.empty(draws, dtype=np.int64)
    rewards = np.empty(draws)
    chunk = max(1, _CHUNK_ELEMENTS // (arms * c))
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        sampled = np.stack([rng.dirichlet(alpha[a], size=size) @ weights for a in range(arms)])
        best = sampled.max(axis=0)
        # Arms within rounding of the best tie (all do when every class weighs the same, as
        # before any label: Σ_y μ̃_y = 1); a tie goes to a uniform choice among them.
        tied = sampled >= best - _TIE * np.abs(best)
        winners[start : start + size] = np.argmax(
            np.where(tied, rng.random(tied.shape), -1.0), axis=0
        )
        rewards[start : start + size] = best
    return winners, rewards


def pick_order(winners: IntArray, arms: int, k: int) -> IntArray:
    """The arm of each of the k picks: the draws themselves when k <= draws; otherwise k
    shared by the draws' wins (largest remainders, ties to the earlier arm), interleaved so
    each arm's picks are evenly spread (arm a's j-th pick at (j + ½) / picks_a)."""
    if winners.shape[0] >= k:
        return winners[:k]
    share = np.bincount(winners, minlength=arms) / winners.shape[0]
    exact = share * k
    picks = np.floor(exact).astype(np.int64)
    remainder = exact - picks
    order = np.lexsort((np.arange(arms), -remainder))
    picks[order[: k - int(picks.sum())]] += 1
    arm_of = np.repeat(np.arange(arms, dtype=np.int64), picks)
    position = np.concatenate([(np.arange(p) + 0.5) / p for p in picks if p > 0])
    return arm_of[np.lexsort((arm_of, position))]


def assemble(
    order: IntArray,
    rankings: Sequence[IntArray | None],
    stop: StopCheck = never_stop,
    costs: FloatArray | None = None,
    budget: float | None = None,
) -> tuple[IntArray, IntArray]:
    """(pool indices, the arm of each) for the picks in order: each arm takes its best item
    no earlier pick took (and, with a budget, that still fits it: an item that does not fit
    never will, so it is passed over for good). An arm whose ranking runs out passes its
    pick to the first arm, in arm order, that has an item left."""
    taken: set[int] = set()
    cursor = [0] * len(rankings)
    indices: list[int] = []
    chosen_arms: list[int] = []
    left = budget

    def affordable(item: int) -> bool:
        return left is None or costs is None or float(costs[item]) <= left

    def next_of(a: int) -> int | None:
        ranking = rankings[a]
        if ranking is None:
            return None
        while cursor[a] < ranking.shape[0]:
            item = int(ranking[cursor[a]])
            cursor[a] += 1
            if item not in taken and affordable(item):
                return item
        return None

    for a in order.tolist():
        stop()
        item = next_of(a)
        if item is None:
            for other in range(len(rankings)):
                item = next_of(other)
                if item is not None:
                    a = other
                    break
        if item is None:
            break
        taken.add(item)
        indices.append(item)
        chosen_arms.append(a)
        if left is not None and costs is not None:
            left -= float(costs[item])
    return np.asarray(indices, dtype=np.int64), np.asarray(chosen_arms, dtype=np.int64)


def arm_seed(seed: int, arm: int) -> int:
    """The seed arm number `arm` runs with, derived from the request's seed."""
    return int(np.random.SeedSequence([seed, arm + 1]).generate_state(1, np.uint64)[0])


def check_history_labels(history: History | None, c: int) -> None:
    """Every history label must be a class of the pool's probabilities (c columns)."""
    if history is None:
        return
    for r, round_ in enumerate(history.rounds):
        outside = np.flatnonzero(round_.labels >= c)
        if outside.shape[0]:
            j = int(outside[0])
            raise InvalidArgument(
                f"history[{r}].labels[{j}]",
                f"must be in [0, {c}) (the classes of probabilities); got {int(round_.labels[j])}",
            )
        if round_.probabilities is not None and round_.probabilities.shape[1] != c:
            raise InvalidArgument(
                f"history[{r}].probabilities",
                f"must have c = {c} values per item (the classes of probabilities); "
                f"got {round_.probabilities.shape[1]}",
            )


def auto_select(
    pool: Pool, task: Task, params: Params, run_arm: RunArm
) -> tuple[IntArray, FloatArray, AutoReport]:
    """The k picks of the arms the bandit chooses, in pick order; score = the Thompson sample
    of the winning arm's reward at that pick's draw (for k > MAX_DRAWS, the mean of its wins)."""
    probabilities = needed(pool.probabilities, "probabilities")
    c = probabilities.shape[1]
    history = pool.history
    check_history_labels(history, c)
    arms = parse_arms(str(params["arms"]))
    counts = class_counts(history, c)
    reward = str(params["reward"])
    # surprise: every class weighs the same (v = 1); the others: TAILOR's 1 / max(1, N_y).
    weights = np.ones(c) if reward == "surprise" else class_weights(counts)
    evidence = arm_evidence(history, arms, c, float(params["discount"]), reward)
    alpha = posterior(evidence, counts, float(params["prior_items"]))
    if reward in SURPRISE_REWARDS:  # the last column, what the model knew, is worth nothing
        weights = np.append(weights, 0.0)

    rng = np.random.default_rng([task.seed, _STREAM])
    draws = min(task.k, MAX_DRAWS)
    winners, sampled = thompson_draws(alpha, weights, draws, rng)
    order = pick_order(winners, len(arms), task.k)
    wins = np.bincount(winners, minlength=len(arms))
    mean_sampled = np.bincount(winners, weights=sampled, minlength=len(arms)) / np.maximum(wins, 1)

    rankings: list[IntArray | None] = []
    for a, name in enumerate(arms):
        task.stop()
        if not np.any(order == a):
            rankings.append(None)
            continue
        arm_task = Task(k=task.k, candidates=task.candidates, seed=arm_seed(task.seed, a),
                        budget=task.budget, stop=task.stop)  # fmt: skip
        rankings.append(run_arm(pool, arm_task, name)[0])
    costs = None
    if task.budget is not None:
        costs = pool.costs if pool.costs is not None else np.ones(pool.n)
    indices, chosen = assemble(order, rankings, task.stop, costs, task.budget)
    scores = sampled[: indices.shape[0]] if draws >= task.k else mean_sampled[chosen]

    picks = np.bincount(chosen, minlength=len(arms))
    expected = (alpha / alpha.sum(axis=1, keepdims=True)) @ weights
    report = AutoReport(
        arms=tuple(
            ArmReport(
                name=name,
                picks=int(picks[a]),
                weight=float(wins[a] / draws),
                expected_reward=float(expected[a]),
                evidence=float(evidence[a].sum()),
            )
            for a, name in enumerate(arms)
        ),
        strategies=tuple(arms[a] for a in chosen.tolist()),
        reward=str(params["reward"]),
        history_rounds=0 if history is None else len(history.rounds),
        history_items=0 if history is None else history.items,
    )
    return indices, scores.astype(np.float64), report
