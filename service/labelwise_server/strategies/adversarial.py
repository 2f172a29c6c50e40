"""Adversarial strategies: distances to the model's decision boundary in its input space.

Scores are "higher means label first". The model comes in as plain callables:
logits_jacobian(x [b, d]) -> (logits [b, c], d logits / d x [b, c, d]) for the gradient
method (DeepFool), and predict(x [b, d]) -> class scores [b, c] for the decision-based
method, which needs nothing but the model's outputs (tree ensembles, kNN, graphs with ops
that have no gradient). Nothing here knows how either is computed (onnx_runner.py does).
"""

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from labelwise_server.strategies._types import (
    FloatArray,
    IntArray,
    ModelAccess,
    Params,
    Pool,
    Predict,
    StopCheck,
    Task,
    needed,
    never_stop,
)

LogitsJacobian = Callable[[FloatArray], tuple[FloatArray, FloatArray]]
# Score of an item no gradient step can move (every logit difference has zero gradient).
UNMOVABLE_SCORE = -float(np.finfo(np.float64).max)


def deepfool(
    logits_jacobian: LogitsJacobian,
    x: FloatArray,
    *,
    overshoot: float = 0.02,
    max_iter: int = 50,
) -> tuple[FloatArray, FloatArray]:
    """DeepFool perturbations: distance ‖r_i‖ [b] and adversarial point x_i + (1+η) r_i [b, d].

    Each step, at x + (1+η) r: l* = argmin_{j≠ŷ} |f_j − f_ŷ| / ‖∇f_j − ∇f_ŷ‖ and
    r += (|f_l* − f_ŷ| / ‖w‖²) w, w = ∇f_l* − ∇f_ŷ, until argmax f ≠ ŷ or max_iter
    steps. Linear models flip in one step, exactly at the closed-form distance.
    Rows whose logit differences have zero gradient get distance inf.
    Moosavi-Dezfooli et al. (2016); Ducoffe & Precioso (2018).
    """
    x0 = np.asarray(x, dtype=np.float64)
    b = x0.shape[0]
    logits, jac = logits_jacobian(x0)
    label = np.argmax(logits, axis=1)
    r = np.zeros_like(x0)
    distance = np.zeros(b)
    active = np.arange(b)
    for _ in range(max_iter):
        if active.size == 0:
            break
        rows = np.arange(active.size)
        y = label[active]
        df = logits - logits[rows, y][:, None]  # [a, c]: f_j − f_ŷ
        dw = jac - jac[rows, y][:, None, :]  # [a, c, d]: ∇f_j − ∇f_ŷ
        norms = np.sqrt(np.einsum("acd,acd->ac", dw, dw))  # [a, c]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.abs(df) / norms
        ratio[~(norms > 0)] = np.inf
        ratio[rows, y] = np.inf
        best = np.argmin(ratio, axis=1)  # ties: the lower class
        stuck = ~np.isfinite(ratio[rows, best])
        w = dw[rows, best]  # [a, d]
        step = (np.abs(df[rows, best]) / np.where(stuck, 1.0, norms[rows, best] ** 2))[:, None] * w
        step[stuck] = 0.0
        r[active] += step
        distance[active[stuck]] = np.inf
        moving = active[~stuck]
        if moving.size == 0:
            break
        logits, jac = logits_jacobian(x0[moving] + (1.0 + overshoot) * r[moving])
        flipped = np.argmax(logits, axis=1) != label[moving]
        keep = ~flipped
        active = moving[keep]
        logits, jac = logits[keep], jac[keep]
    done = np.isfinite(distance)
    distance[done] = np.linalg.norm(r[done], axis=1)
    return distance, x0 + (1.0 + overshoot) * r


def deepfool_scores(distance: FloatArray) -> FloatArray:
    """−‖r_i‖: items nearest the decision boundary first (DFAL, Ducoffe & Precioso 2018)."""
    return np.where(np.isfinite(distance), -distance, UNMOVABLE_SCORE)


# ---- The decision-based method: the boundary from the model's predictions alone ----------

METHODS = ("auto", "gradient", "decision")
# Pool rows (a seeded sample) whose predicted classes give each item its starting points.
REFERENCE_ROWS = 4096
STARTS = 4  # nearest reference rows of another class per item, each bisected to the boundary
BISECTION_STEPS = 12  # halvings of a segment: 2^-12 of its length
GEOMETRIC_STEPS = 6  # step sizes tried per refinement, halving
SPHERE = 8  # random points at the current distance tried per refinement
# Bytes of query rows (float64) one group of items may hold at once.
_QUERY_BYTES = 32 << 20


def _samples(d: int) -> int:
    """Model evaluations per boundary-normal estimate (HopSkipJump's B, for dimension d): at
    most _QUERY_BYTES of probes for one item, however wide its rows."""
    return int(max(1, min(100, max(16, 4 * d), _QUERY_BYTES // (8 * d))))


def decision_cost(d: int) -> tuple[int, int]:
    """Model evaluations per item: (the start, each refinement step)."""
    return STARTS * BISECTION_STEPS, _samples(d) + 1 + SPHERE + GEOMETRIC_STEPS + BISECTION_STEPS


def _flipped(predict: Predict, rows: FloatArray, labels: IntArray) -> npt.NDArray[np.bool_]:
    return np.asarray(np.argmax(predict(rows), axis=1) != labels)


def _bisect(predict: Predict, x0: FloatArray, far: FloatArray, labels: IntArray) -> FloatArray:
    """Per row, the point of segment x0 → far (far flips the label) nearest x0 that still flips
    it, to 2^-BISECTION_STEPS of the segment: BISECTION_STEPS evaluations per row."""
    lo = np.zeros(x0.shape[0])
    hi = np.ones(x0.shape[0])
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        flips = _flipped(predict, x0 + mid[:, None] * (far - x0), labels)
        hi = np.where(flips, mid, hi)
        lo = np.where(flips, lo, mid)
    return x0 + hi[:, None] * (far - x0)


def decision_boundary(
    predict: Predict,
    x: FloatArray,
    labels: IntArray,
    reference: FloatArray,
    reference_labels: IntArray,
    item_ids: IntArray,
    *,
    max_queries: int,
    seed: int,
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Distance to the nearest decision boundary from predictions alone: ‖x_adv − x‖ [b], the
    adversarial points x_adv [b, d] (each one flips its item's predicted class, as a query of
    the model showed), and the model evaluations each item used [b].

    Start: bisect the segments to the STARTS nearest reference rows the model puts in another
    class (Cheng et al. 2019's boundary search from a known adversarial point). Refine, while
    the item's query budget lasts, in the manner of HopSkipJump (Chen et al. 2020): estimate
    the boundary's normal at the current point from the signs of _samples(d) random probes,
    step along it (the projection of x onto the tangent plane, then geometric steps as in the
    paper), and bisect back towards x; a step is kept only when it comes closer. Items with
    no reference row of another class get distance inf. Item i draws its probes from
    SeedSequence([seed, item_ids[i]]), so its result does not depend on the other items.
    """
    x = np.asarray(x, np.float64)
    b, d = x.shape
    distance = np.full(b, np.inf)
    points = x.copy()
    used = np.zeros(b, dtype=np.int64)
    others = reference_labels[None, :] != labels[:, None]  # [b, r]
    movable = others.any(axis=1)
    if not movable.any():
        return distance, points, used
    rows = np.flatnonzero(movable)
    start_cost, step_cost = decision_cost(d)
    # Starts: the nearest reference rows of another class, bisected to the boundary.
    sq = (x[rows] ** 2).sum(1)[:, None] + (reference**2).sum(1)[None] - 2 * x[rows] @ reference.T
    sq = np.where(others[rows], sq, np.inf)
    count = min(STARTS, reference.shape[0])
    nearest = np.argsort(sq, axis=1, kind="stable")[:, :count]  # [a, s]
    valid = np.isfinite(np.take_along_axis(sq, nearest, axis=1))
    x0 = np.repeat(x[rows], count, axis=0)
    far = reference[nearest.reshape(-1)]
    found = _bisect(predict, x0, far, np.repeat(labels[rows], count))
    lengths = np.where(valid.reshape(-1), np.linalg.norm(found - x0, axis=1), np.inf)
    best = np.argmin(lengths.reshape(-1, count), axis=1)
    current = found.reshape(len(rows), count, d)[np.arange(len(rows)), best]
    radius = lengths.reshape(-1, count)[np.arange(len(rows)), best]
    used[rows] += start_cost
    rngs = [np.random.default_rng(np.random.SeedSequence([seed, int(item_ids[i])])) for i in rows]
    probes = _samples(d)
    step = 0
    active = np.arange(len(rows))
    while True:
        active = active[(used[rows[active]] + step_cost <= max_queries) & (radius[active] > 0)]
        if active.size == 0:
            break
        step += 1
        here = current[active]
        origin = x[rows[active]]
        label = labels[rows[active]]
        r = radius[active]
        # The boundary's normal at `here`, from the signs of probes on a small sphere.
        u = np.stack([rngs[i].normal(size=(probes, d)) for i in active])  # [a, B, d]
        u /= np.linalg.norm(u, axis=2, keepdims=True)
        delta = (0.02 * r)[:, None, None]
        signs = _flipped(predict, (here[:, None, :] + delta * u).reshape(-1, d),
                         np.repeat(label, probes)).reshape(len(active), probes)  # fmt: skip
        phi = np.where(signs, 1.0, -1.0)
        centred = phi - phi.mean(axis=1, keepdims=True)
        weights = np.where(np.abs(phi.mean(axis=1, keepdims=True)) == 1.0, phi, centred)
        normal = np.einsum("ab,abd->ad", weights, u)
        norm = np.linalg.norm(normal, axis=1, keepdims=True)
        normal = np.where(norm > 0, normal / np.where(norm > 0, norm, 1.0), 0.0)
        # Candidates: the projection of x onto the tangent plane (a DeepFool step with the
        # estimated normal), pushed past it; HopSkipJump's geometric steps along the normal;
        # and SPHERE random points at the current distance from x (the way out of a facet
        # that is not the nearest, for piecewise-constant models such as trees).
        offset = np.einsum("ad,ad->a", here - origin, normal)
        projection = origin + (offset * 1.05)[:, None] * normal
        sizes = (r / np.sqrt(step))[:, None] * 0.5 ** np.arange(GEOMETRIC_STEPS)[None]
        geometric = here[:, None, :] + sizes[:, :, None] * normal[:, None, :]
        w = np.stack([rngs[i].normal(size=(SPHERE, d)) for i in active])  # [a, S, d]
        w /= np.linalg.norm(w, axis=2, keepdims=True)
        # Half on the sphere of the current distance, half uniform in its ball (points inside
        # a nearer pocket of another class flip themselves).
        inside = np.stack([rngs[i].random(SPHERE) for i in active]) ** (1.0 / d)
        scale = np.where(np.arange(SPHERE)[None] < SPHERE // 2, 1.0, inside)  # [a, S]
        sphere = origin[:, None, :] + (r[:, None] * scale)[:, :, None] * w
        candidates = np.concatenate([projection[:, None, :], sphere, geometric], axis=1)
        tried = np.repeat(label, candidates.shape[1])
        flips = _flipped(predict, candidates.reshape(-1, d), tried).reshape(len(active), -1)
        # The flipping candidate nearest x (its bisection can only come nearer); the largest
        # geometric step when only those flip.
        reach = np.linalg.norm(candidates - origin[:, None, :], axis=2)
        reach[:, 1 + SPHERE :] = np.inf  # geometric steps: only when nothing nearer flips
        near = np.where(flips, reach, np.inf)
        pick = np.where(np.isfinite(near.min(axis=1)), np.argmin(near, axis=1),
                        1 + SPHERE + np.argmax(flips[:, 1 + SPHERE :], axis=1))  # fmt: skip
        ok = flips[np.arange(len(active)), pick]
        target = np.where(ok[:, None], candidates[np.arange(len(active)), pick], here)
        moved = _bisect(predict, origin, target, label)
        length = np.linalg.norm(moved - origin, axis=1)
        better = ok & (length < r)
        current[active[better]] = moved[better]
        radius[active[better]] = length[better]
        used[rows[active]] += step_cost
    distance[rows] = radius
    points[rows] = current
    return distance, points, used


# Registry adapters (strategies/registry.py): the validated pool and task in, the math above
# called. Validation has checked the inputs each strategy needs are present.


def resolved_method(pool: Pool, params: Params) -> str:
    """The method a call uses: auto is gradient when the model is differentiable."""
    method = str(params["method"])
    if method != "auto":
        return method
    return "gradient" if needed(pool.model, "models").differentiable else "decision"


def _reference(model: ModelAccess, seed: int) -> tuple[FloatArray, IntArray]:
    """A seeded sample of at most REFERENCE_ROWS pool rows, with the classes the model gives."""
    n, d = model.inputs.shape
    most = max(STARTS, min(REFERENCE_ROWS, _QUERY_BYTES // (8 * d)))  # bounded before copying
    rows = np.arange(n)
    if n > most:
        rows = np.sort(np.random.default_rng(seed).choice(n, most, replace=False))
    reference = np.asarray(model.inputs[rows], dtype=np.float64)
    return reference, _predicted(model, reference)


def _predicted(model: ModelAccess, rows: FloatArray) -> IntArray:
    return np.asarray(np.argmax(model.predict(rows), axis=1), dtype=np.int64)


def _decision_run(
    model: ModelAccess, rows: IntArray, params: Params, seed: int, stop: StopCheck
) -> tuple[FloatArray, FloatArray]:
    d = model.inputs.shape[1]
    reference, reference_labels = _reference(model, seed)
    # Items per group: their probes [a, B, d], candidates and distances to the reference rows
    # [a, r] within _QUERY_BYTES.
    per_item = 8 * max(d * max(_samples(d), 1 + SPHERE + GEOMETRIC_STEPS, STARTS), REFERENCE_ROWS)
    group = max(1, _QUERY_BYTES // per_item)
    distances = np.empty(rows.shape[0])
    points = np.empty((rows.shape[0], d))
    for start in range(0, rows.shape[0], group):
        stop()
        part = rows[start : start + group]
        x = np.asarray(model.inputs[part], dtype=np.float64)
        found = decision_boundary(
            model.predict, x, _predicted(model, x), reference, reference_labels, part,
            max_queries=int(params["max_queries"]), seed=seed,
        )  # fmt: skip
        distances[start : start + part.shape[0]] = found[0]
        points[start : start + part.shape[0]] = found[1]
    return distances, points


def _gradient_run(
    model: ModelAccess, rows: IntArray, params: Params, stop: StopCheck
) -> tuple[FloatArray, FloatArray]:
    distances = np.empty(rows.shape[0])
    points = np.empty((rows.shape[0], model.inputs.shape[1]))
    for start in range(0, rows.shape[0], model.chunk_rows):
        stop()
        part = rows[start : start + model.chunk_rows]
        distances[start : start + part.shape[0]], points[start : start + part.shape[0]] = deepfool(
            model.logits_jacobian,
            np.asarray(model.inputs[part], dtype=np.float64),
            overshoot=float(params["overshoot"]),
            max_iter=int(params["max_iter"]),
        )
    return distances, points


# Factors of the DeepFool perturbation tried, in order, for a returned point the model does not
# yet flip (the gradient pass runs in float64; the model, often in float32).
EXTENSIONS = (1.0, 1.01, 1.1, 1.5, 2.0, 4.0)


def _verified(model: ModelAccess, x: FloatArray, points: FloatArray) -> FloatArray:
    """points, each moved out along its perturbation until the model flips x's class; NaN rows
    for the points no factor of EXTENSIONS makes flip."""
    labels = _predicted(model, x)
    out = np.full_like(points, np.nan)
    todo = np.flatnonzero(np.isfinite(points).all(axis=1))
    for factor in EXTENSIONS:
        if todo.size == 0:
            break
        trial = x[todo] + factor * (points[todo] - x[todo])
        flips = np.argmax(model.predict(trial), axis=1) != labels[todo]
        out[todo[flips]] = trial[flips]
        todo = todo[~flips]
    return out


def _deepfool_run(
    pool: Pool, rows: IntArray, params: Params, seed: int, stop: StopCheck = never_stop
) -> tuple[FloatArray, FloatArray]:
    """Distances [len(rows)] and adversarial points [len(rows), d] by the call's method."""
    model = needed(pool.model, "models")
    if resolved_method(pool, params) == "decision":
        return _decision_run(model, rows, params, seed, stop)
    return _gradient_run(model, rows, params, stop)


def deepfool_adapter(pool: Pool, task: Task, params: Params) -> FloatArray:
    scores = np.zeros(pool.n)  # only candidates are ranked
    distances, _ = _deepfool_run(pool, task.candidates, params, task.seed, task.stop)
    scores[task.candidates] = deepfool_scores(distances)
    return scores


def deepfool_points(pool: Pool, task: Task, indices: IntArray, params: Params) -> FloatArray | None:
    """The adversarial points of the selected items [k, d], when return_points asks; each one
    checked to flip the model's predicted class."""
    if not params["return_points"]:
        return None
    model = needed(pool.model, "models")
    _, points = _deepfool_run(pool, indices, params, task.seed, task.stop)
    if resolved_method(pool, params) == "decision":
        return points
    return _verified(model, np.asarray(model.inputs[indices], dtype=np.float64), points)
