"""References for deepfool's distances, shared by tests/grpc/test_deepfool_exports.py and
bench/adversarial.py: closed forms, float64 DeepFool on scikit-learn's own parameters, and a
brute-force grid search through ONNX Runtime."""

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from tests.strategies.test_adversarial import naive_deepfool

FloatArray = npt.NDArray[np.float64]


def class_output(data: bytes, rows: npt.NDArray[Any]) -> npt.NDArray[Any]:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: rows.astype(np.float32)})
    return np.asarray(next(o for o in outputs if np.asarray(o).dtype.kind == "f"))


def linear_closed_form(scores: Callable[[FloatArray], FloatArray], w: FloatArray,
                        x: FloatArray) -> FloatArray:  # fmt: skip
    """min_{j≠ŷ} |z_j − z_ŷ| / ‖w_j − w_ŷ‖, z = scores(x) linear with rows w [c, d]."""
    z = scores(x)
    y = z.argmax(1)
    out = []
    for i in range(x.shape[0]):
        out.append(min(abs(z[i, j] - z[i, y[i]]) / np.linalg.norm(w[j] - w[y[i]])
                       for j in range(z.shape[1]) if j != y[i]))  # fmt: skip
    return np.array(out)


def _or_inf(f: Any, grad: Any, row: FloatArray) -> float:
    """naive_deepfool's distance, inf where the gradient vanishes (far from every vector)."""
    try:
        return naive_deepfool(f, grad, row)[0]
    except AssertionError:  # no class's gradient differs from the predicted one's
        return float("inf")


def rbf_svc_reference(svc: Any, x: FloatArray) -> FloatArray:
    """DeepFool in float64 on scikit-learn's decision function, its gradient by hand."""
    vectors, alpha = svc.support_vectors_.astype(np.float64), svc.dual_coef_[0]
    gamma, bias = svc._gamma, svc.intercept_[0]

    def f(row: FloatArray) -> FloatArray:
        k = np.exp(-gamma * ((row - vectors) ** 2).sum(1))
        return np.array([0.0, alpha @ k + bias])

    def grad(row: FloatArray) -> FloatArray:
        k = np.exp(-gamma * ((row - vectors) ** 2).sum(1))
        return np.stack([np.zeros_like(row), (alpha * k) @ (-2 * gamma * (row - vectors))])

    return np.array([_or_inf(f, grad, row) for row in x])


def mlp_reference(mlp: Any, x: FloatArray) -> FloatArray:
    """DeepFool in float64 on scikit-learn's weights (ReLU hidden layers, logits out)."""

    def f(row: FloatArray) -> FloatArray:
        h = row
        for w, b in zip(mlp.coefs_[:-1], mlp.intercepts_[:-1], strict=True):
            h = np.maximum(h @ w + b, 0.0)
        return np.asarray(h @ mlp.coefs_[-1] + mlp.intercepts_[-1])

    def grad(row: FloatArray) -> FloatArray:
        jac = np.eye(row.shape[0])
        h = row
        for w, b in zip(mlp.coefs_[:-1], mlp.intercepts_[:-1], strict=True):
            pre = h @ w + b
            jac = (jac @ w) * (pre > 0)
            h = np.maximum(pre, 0.0)
        return np.asarray((jac @ mlp.coefs_[-1]).T)

    return np.array([naive_deepfool(f, grad, row)[0] for row in x])


def grid_distance(data: bytes, x: npt.NDArray[np.float32], radius: FloatArray,
                   steps: int) -> FloatArray:  # fmt: skip
    """Brute force: for each row of x, the distance to the nearest point of a grid of steps^d
    points over the cube of half-width radius around it that the model puts in another class
    (inf when none). The nearest boundary point is within the service's distance, so the
    cube holds it, at a spacing of 2 radius / (steps - 1)."""
    d = x.shape[1]
    offsets = np.stack(np.meshgrid(*[np.linspace(-1, 1, steps)] * d, indexing="ij"), -1)
    offsets = offsets.reshape(-1, d)
    labels = class_output(data, x).argmax(1)
    out = []
    for row, label, r in zip(x.astype(np.float64), labels, radius, strict=True):
        grid = row + r * offsets
        other = class_output(data, grid).argmax(1) != label
        out.append(np.sqrt(((grid[other] - row) ** 2).sum(1)).min() if other.any() else np.inf)
    return np.array(out)
