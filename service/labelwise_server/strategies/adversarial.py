"""Adversarial strategies: distances to the model's decision boundary in its input space.

Scores are "higher means label first". The model comes in as a plain
callable, logits_jacobian(x [b, d]) -> (logits [b, c], d logits / d x
[b, c, d]); nothing here knows how it is computed (onnx_runner.py does).
"""

from collections.abc import Callable

import numpy as np

from labelwise_server.strategies._types import (
    FloatArray,
    IntArray,
    Params,
    Pool,
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


# Registry adapters (strategies/registry.py): the validated pool and task in, the math above
# called. Validation has checked the inputs each strategy needs are present.


def _deepfool_run(
    pool: Pool, rows: IntArray, params: Params, stop: StopCheck = never_stop
) -> tuple[FloatArray, FloatArray]:
    """DeepFool distances [len(rows)] and adversarial points [len(rows), d], chunk by chunk."""
    model = needed(pool.model, "models")
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


def deepfool_adapter(pool: Pool, task: Task, params: Params) -> FloatArray:
    scores = np.zeros(pool.n)  # only candidates are ranked
    distances, _ = _deepfool_run(pool, task.candidates, params, task.stop)
    scores[task.candidates] = deepfool_scores(distances)
    return scores


def deepfool_points(pool: Pool, indices: IntArray, params: Params) -> FloatArray | None:
    """The adversarial points of the selected items [k, d], when return_points asks."""
    if not params["return_points"]:
        return None
    return _deepfool_run(pool, indices, params)[1]
