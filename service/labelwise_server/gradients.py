"""Reverse-mode gradients of ONNX graphs in float64 NumPy, for deepfool.

ONNX Runtime computes no gradients, so GradientModel (onnx_runner.py) evaluates the nodes a
class output depends on with the forward functions here and runs reverse mode for all c
outputs at once. Nodes arrive as plain `Node`s (onnx_runner converts the protos), so this
module never imports onnx. Every supported operator is one row of OPS: its forward, its
backward, and which inputs may carry a gradient (an input-dependent value anywhere else, a
Reshape shape computed from the pool rows, say, makes the graph unsupported).

Conventions: values keep the batch axis first; the gradient of a value of shape S is
[c, *S], one slice per differentiated output; `need[i]` says whether input i depends on the
pool rows. A backward returns one gradient (or None) per input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise_server import reasons
from labelwise_server.errors import ModelRejected

Array = npt.NDArray[Any]
Grad = npt.NDArray[np.float64]
ML = "ai.onnx.ml"


@dataclass(frozen=True)
class Node:
    """One ONNX node, with its attributes as Python values (tensors as NumPy arrays)."""

    op: str  # "Conv", or "ai.onnx.ml.LinearClassifier" for the ML domain
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    opset: int = 17  # the model's opset for the node's domain

    def attr(self, name: str, default: Any) -> Any:
        value = self.attrs.get(name, default)
        return value.decode() if isinstance(value, bytes) else value


class Unsupported(Exception):
    """A node this module cannot evaluate or differentiate as the graph uses it."""


Forward = Callable[[Node, list[Any]], list[Any]]
Backward = Callable[
    [Node, list[Any], list[Any], list["Grad | None"], list[bool]], list["Grad | None"]
]


@dataclass(frozen=True)
class Op:
    forward: Forward
    backward: Backward
    # Input positions that may depend on the pool rows; None: all of them.
    differentiable: tuple[int, ...] | None = (0,)
    # False for ops whose outputs carry no gradient (Shape).
    smooth: bool = True


def _f64(x: Any) -> Array:
    return np.asarray(x, dtype=np.float64)


def _unbroadcast(grad: Grad, shape: tuple[int, ...]) -> Grad:
    """Sum grad [c, *broadcast] down to [c, *shape] (the inverse of NumPy broadcasting)."""
    extra = grad.ndim - 1 - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(1, 1 + extra)))
    axes = tuple(i + 1 for i, size in enumerate(shape) if size == 1 and grad.shape[i + 1] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


def _ints(value: Any) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise Unsupported(f"axis {axis} out of range for rank {ndim}")
    return axis % ndim


# ---- elementwise unary ops: y = f(x), dy/dx from x and y -----------------------------------

UnaryF = Callable[[Node, Array], Array]
UnaryD = Callable[[Node, Array, Array], Array]


def _unary(f: UnaryF, df: UnaryD) -> Op:
    def forward(node: Node, x: list[Any]) -> list[Any]:
        return [f(node, _f64(x[0]))]

    def backward(
        node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
    ) -> list[Grad | None]:
        assert g[0] is not None
        return [g[0] * df(node, _f64(x[0]), y[0])]

    return Op(forward, backward)


def _erf(x: Array) -> Array:
    from scipy import special  # on first use: a server without models never imports SciPy

    return np.asarray(special.erf(x), dtype=np.float64)


def _gelu(node: Node, x: Array) -> Array:
    if node.attr("approximate", "none") == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _gelu_d(node: Node, x: Array, y: Array) -> Array:
    if node.attr("approximate", "none") == "tanh":
        k = math.sqrt(2.0 / math.pi)
        t = np.tanh(k * (x + 0.044715 * x**3))
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3 * 0.044715 * x * x)
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(
        2.0 * math.pi
    )


def _hard_sigmoid_inner(node: Node, x: Array) -> Array:
    return float(node.attr("alpha", 0.2)) * x + float(node.attr("beta", 0.5))


def _sigmoid(x: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


UNARY: dict[str, Op] = {
    "Relu": _unary(lambda n, x: np.maximum(x, 0.0), lambda n, x, y: (x > 0).astype(np.float64)),
    "LeakyRelu": _unary(
        lambda n, x: np.where(x > 0, x, float(n.attr("alpha", 0.01)) * x),
        lambda n, x, y: np.where(x > 0, 1.0, float(n.attr("alpha", 0.01))),
    ),
    "Sigmoid": _unary(lambda n, x: _sigmoid(x), lambda n, x, y: y * (1.0 - y)),
    "HardSigmoid": _unary(
        lambda n, x: np.clip(_hard_sigmoid_inner(n, x), 0.0, 1.0),
        lambda n, x, y: (
            float(n.attr("alpha", 0.2))
            * ((_hard_sigmoid_inner(n, x) > 0) & (_hard_sigmoid_inner(n, x) < 1))
        ),
    ),
    "Tanh": _unary(lambda n, x: np.tanh(x), lambda n, x, y: 1.0 - y * y),
    "Exp": _unary(lambda n, x: np.exp(x), lambda n, x, y: y),
    "Log": _unary(lambda n, x: np.log(x), lambda n, x, y: 1.0 / x),
    "Neg": _unary(lambda n, x: -x, lambda n, x, y: -np.ones_like(x)),
    "Sqrt": _unary(lambda n, x: np.sqrt(x), lambda n, x, y: 0.5 / y),
    "Reciprocal": _unary(lambda n, x: 1.0 / x, lambda n, x, y: -y * y),
    "Erf": _unary(lambda n, x: _erf(x), lambda n, x, y: 2.0 / math.sqrt(math.pi) * np.exp(-x * x)),
    "Gelu": _unary(_gelu, _gelu_d),
    "Softplus": _unary(lambda n, x: np.logaddexp(0.0, x), lambda n, x, y: _sigmoid(x)),
}


def _identity_forward(node: Node, x: list[Any]) -> list[Any]:
    return [_f64(x[0])]


def _pass_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    return [g[0]]


_FLOAT_CASTS = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def _cast_forward(node: Node, x: list[Any]) -> list[Any]:
    if int(node.attr("to", 1)) in _FLOAT_CASTS:
        return [_f64(x[0])]
    kinds = {6: np.int32, 7: np.int64, 9: np.bool_}
    to = kinds.get(int(node.attr("to", 1)))
    if to is None:
        raise Unsupported(f"Cast to type {node.attr('to', 1)}")
    return [np.asarray(x[0]).astype(to)]


def _cast_backward(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    return [g[0] if int(node.attr("to", 1)) in _FLOAT_CASTS else None]


def _clip_bounds(node: Node, x: list[Any]) -> tuple[float, float]:
    lo = x[1] if len(x) > 1 and x[1] is not None else node.attr("min", -np.inf)
    hi = x[2] if len(x) > 2 and x[2] is not None else node.attr("max", np.inf)
    return float(np.asarray(lo)), float(np.asarray(hi))


def _clip_forward(node: Node, x: list[Any]) -> list[Any]:
    lo, hi = _clip_bounds(node, x)
    return [np.minimum(np.maximum(_f64(x[0]), lo), hi)]


def _clip_backward(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    assert g[0] is not None
    lo, hi = _clip_bounds(node, x)
    v = _f64(x[0])
    return [g[0] * ((v > lo) & (v < hi)), None, None]


# ---- broadcasting binary and variadic ops ---------------------------------------------------


def _binary_forward(fn: Callable[[Array, Array], Array]) -> Forward:
    return lambda node, x: [fn(_f64(x[0]), _f64(x[1]))]


def _add_back(sign: float) -> Backward:
    def backward(
        node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
    ) -> list[Grad | None]:
        assert g[0] is not None
        return [
            _unbroadcast(g[0], np.shape(x[0])) if need[0] else None,
            _unbroadcast(sign * g[0], np.shape(x[1])) if need[1] else None,
        ]

    return backward


def _mul_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    assert g[0] is not None
    a, b = _f64(x[0]), _f64(x[1])
    return [
        _unbroadcast(g[0] * b, a.shape) if need[0] else None,
        _unbroadcast(g[0] * a, b.shape) if need[1] else None,
    ]


def _div_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    assert g[0] is not None
    a, b = _f64(x[0]), _f64(x[1])
    return [
        _unbroadcast(g[0] / b, a.shape) if need[0] else None,
        _unbroadcast(-g[0] * a / (b * b), b.shape) if need[1] else None,
    ]


def _pow_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    assert g[0] is not None
    a, b = _f64(x[0]), _f64(x[1])
    grad_b = None
    if need[1]:
        with np.errstate(divide="ignore", invalid="ignore"):
            grad_b = _unbroadcast(
                g[0] * np.where(a > 0, y[0] * np.log(np.where(a > 0, a, 1.0)), 0.0), b.shape
            )
    return [_unbroadcast(g[0] * b * np.power(a, b - 1.0), a.shape) if need[0] else None, grad_b]


def _variadic_forward(fn: Callable[[Array, Array], Array]) -> Forward:
    def forward(node: Node, x: list[Any]) -> list[Any]:
        out = _f64(x[0])
        for v in x[1:]:
            out = fn(out, _f64(v))
        if node.op == "Mean":
            out = out / len(x)
        return [out]

    return forward


def _variadic_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    assert g[0] is not None
    out: list[Grad | None] = []
    if node.op in ("Sum", "Mean"):
        scale = 1.0 / len(x) if node.op == "Mean" else 1.0
        return [
            _unbroadcast(scale * g[0], np.shape(v)) if n else None
            for v, n in zip(x, need, strict=True)
        ]
    taken = np.zeros(np.shape(y[0]), dtype=bool)  # Min/Max: the first input that equals y
    for v, n in zip(x, need, strict=True):
        hit = (np.broadcast_to(_f64(v), taken.shape) == y[0]) & ~taken
        taken |= hit
        out.append(_unbroadcast(g[0] * hit, np.shape(v)) if n else None)
    return out


def _where_forward(node: Node, x: list[Any]) -> list[Any]:
    return [np.where(np.asarray(x[0], bool), _f64(x[1]), _f64(x[2]))]


def _where_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    assert g[0] is not None
    mask = np.asarray(x[0], bool)
    return [
        None,
        _unbroadcast(g[0] * mask, np.shape(x[1])) if need[1] else None,
        _unbroadcast(g[0] * ~mask, np.shape(x[2])) if need[2] else None,
    ]


# ---- matrix products ------------------------------------------------------------------------


def _matmul_forward(node: Node, x: list[Any]) -> list[Any]:
    a, b = _f64(x[0]), _f64(x[1])
    if a.ndim < 2 or b.ndim < 2:
        raise Unsupported("MatMul of a vector")
    return [a @ b]


def _matmul_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    gy = g[0]
    assert gy is not None
    a, b = _f64(x[0]), _f64(x[1])
    grad_a = grad_b = None
    if need[0] and a.ndim == 2 and b.ndim == 2:  # the usual case: one BLAS call
        grad_a = (gy.reshape(-1, gy.shape[-1]) @ np.ascontiguousarray(b.T)).reshape(
            (gy.shape[0], *a.shape)
        )
    elif need[0]:
        grad_a = _unbroadcast(gy @ np.swapaxes(b, -1, -2), a.shape)
    if need[1]:
        grad_b = _unbroadcast(np.swapaxes(a, -1, -2) @ gy, b.shape)
    return [grad_a, grad_b]


def _gemm_forward(node: Node, x: list[Any]) -> list[Any]:
    a, b = _f64(x[0]), _f64(x[1])
    a = a.T if node.attr("transA", 0) else a
    b = b.T if node.attr("transB", 0) else b
    y = float(node.attr("alpha", 1.0)) * (a @ b)
    if len(x) > 2 and x[2] is not None:
        y = y + float(node.attr("beta", 1.0)) * _f64(x[2])
    return [y]


def _gemm_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    gy = g[0]
    assert gy is not None
    a, b = _f64(x[0]), _f64(x[1])
    alpha = float(node.attr("alpha", 1.0))
    trans_a, trans_b = node.attr("transA", 0), node.attr("transB", 0)
    b_used = b.T if trans_b else b
    a_used = a.T if trans_a else a
    grads: list[Grad | None] = [None, None, None]
    if need[0]:
        flat = gy.reshape(-1, gy.shape[-1]) @ np.ascontiguousarray(b_used.T)
        grad_a = alpha * flat.reshape(gy.shape[0], gy.shape[1], -1)
        grads[0] = np.swapaxes(grad_a, 1, 2) if trans_a else grad_a
    if need[1]:
        grad_b = alpha * (a_used.T @ gy)
        grads[1] = np.swapaxes(grad_b, 1, 2) if trans_b else grad_b
    if len(x) > 2 and x[2] is not None and need[2]:
        grads[2] = _unbroadcast(float(node.attr("beta", 1.0)) * gy, np.shape(x[2]))
    return grads


# ---- shape ops --------------------------------------------------------------------------------


def _reshape_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    assert g[0] is not None
    return [g[0].reshape((g[0].shape[0], *np.shape(x[0])))] + [None] * (len(x) - 1)


def _reshape_forward(node: Node, x: list[Any]) -> list[Any]:
    data = np.asarray(x[0])
    shape = _ints(x[1])
    if not node.attr("allowzero", 0):
        shape = [data.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [data.reshape(shape)]


def _flatten_forward(node: Node, x: list[Any]) -> list[Any]:
    data = np.asarray(x[0])
    axis = int(node.attr("axis", 1))
    axis = axis + data.ndim if axis < 0 else axis
    return [data.reshape((math.prod(data.shape[:axis]), -1))]


def _transpose_perm(node: Node, ndim: int) -> list[int]:
    perm = node.attr("perm", None)
    return list(range(ndim))[::-1] if perm is None else [int(p) for p in perm]


def _transpose_forward(node: Node, x: list[Any]) -> list[Any]:
    data = np.asarray(x[0])
    return [np.transpose(data, _transpose_perm(node, data.ndim))]


def _transpose_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    assert g[0] is not None
    perm = _transpose_perm(node, np.ndim(x[0]))
    inverse = np.argsort(perm)
    return [np.transpose(g[0], [0, *(int(i) + 1 for i in inverse)])]


def _axes_of(node: Node, x: list[Any], position: int) -> list[int] | None:
    if len(x) > position and x[position] is not None:
        return _ints(x[position])
    axes = node.attr("axes", None)
    return None if axes is None else [int(a) for a in axes]


def _squeeze_forward(node: Node, x: list[Any]) -> list[Any]:
    data = np.asarray(x[0])
    axes = _axes_of(node, x, 1)
    if axes is None:
        return [np.squeeze(data)]
    return [np.squeeze(data, axis=tuple(_axis(a, data.ndim) for a in axes))]


def _unsqueeze_forward(node: Node, x: list[Any]) -> list[Any]:
    data = np.asarray(x[0])
    axes = _axes_of(node, x, 1) or []
    rank = data.ndim + len(axes)
    return [np.expand_dims(data, tuple(_axis(a, rank) for a in axes))]


def _concat_forward(node: Node, x: list[Any]) -> list[Any]:
    parts = [np.asarray(v) for v in x]
    if any(p.dtype.kind == "f" for p in parts):
        parts = [_f64(p) for p in parts]
    return [np.concatenate(parts, axis=int(node.attr("axis", 0)))]


def _concat_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    assert g[0] is not None
    axis = _axis(int(node.attr("axis", 0)), np.ndim(y[0])) + 1
    edges = np.cumsum([np.shape(v)[axis - 1] for v in x])[:-1]
    parts = np.split(g[0], edges, axis=axis)
    return [p if n else None for p, n in zip(parts, need, strict=True)]


def _split_sizes(node: Node, x: list[Any], length: int) -> list[int]:
    if len(x) > 1 and x[1] is not None:
        return _ints(x[1])
    split = node.attr("split", None)
    if split is not None:
        return [int(s) for s in split]
    parts = int(node.attr("num_outputs", len(node.outputs)))
    size = -(-length // parts)
    return [min(size, length - i * size) for i in range(parts)]


def _split_forward(node: Node, x: list[Any]) -> list[Any]:
    data = np.asarray(x[0])
    axis = _axis(int(node.attr("axis", 0)), data.ndim)
    sizes = _split_sizes(node, x, data.shape[axis])
    return list(np.split(data, np.cumsum(sizes)[:-1], axis=axis))


def _split_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    c = next(v for v in g if v is not None).shape[0]
    parts = [
        v if v is not None else np.zeros((c, *np.shape(out))) for v, out in zip(g, y, strict=True)
    ]
    axis = _axis(int(node.attr("axis", 0)), np.ndim(x[0])) + 1
    return [np.concatenate(parts, axis=axis), None]


def _slices(node: Node, x: list[Any]) -> tuple[slice, ...]:
    data = np.asarray(x[0])
    if len(x) > 1:  # opset >= 10: starts, ends, axes, steps as inputs
        starts, ends = _ints(x[1]), _ints(x[2])
        axes = _ints(x[3]) if len(x) > 3 and x[3] is not None else list(range(len(starts)))
        steps = _ints(x[4]) if len(x) > 4 and x[4] is not None else [1] * len(starts)
    else:
        starts, ends = (
            [int(s) for s in node.attr("starts", [])],
            [int(e) for e in node.attr("ends", [])],
        )
        axes = [int(a) for a in node.attr("axes", range(len(starts)))]
        steps = [1] * len(starts)
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis = _axis(axis, data.ndim)
        dim = data.shape[axis]
        if step == 0:
            raise Unsupported("Slice with step 0")
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
            index[axis] = slice(start, end, step)
        else:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
            index[axis] = slice(start, end if end >= 0 else None, step)
    return tuple(index)


def _slice_forward(node: Node, x: list[Any]) -> list[Any]:
    return [np.asarray(x[0])[_slices(node, x)]]


def _slice_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    assert g[0] is not None
    grad = np.zeros((g[0].shape[0], *np.shape(x[0])))
    grad[(slice(None), *_slices(node, x))] = g[0]
    return [grad] + [None] * (len(x) - 1)


def _gather_forward(node: Node, x: list[Any]) -> list[Any]:
    data = np.asarray(x[0])
    axis = _axis(int(node.attr("axis", 0)), data.ndim)
    index = np.asarray(x[1]).astype(np.int64)
    index = np.where(index < 0, index + data.shape[axis], index)
    return [np.take(data, index, axis=axis)]


def _gather_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    gy = g[0]
    assert gy is not None
    shape = np.shape(x[0])
    axis = _axis(int(node.attr("axis", 0)), len(shape))
    index = np.asarray(x[1]).astype(np.int64)
    index = np.where(index < 0, index + shape[axis], index)
    grad = np.zeros((gy.shape[0], *shape))
    moved = np.moveaxis(gy, list(range(axis + 1, axis + 1 + index.ndim)), list(range(index.ndim)))
    np.add.at(np.moveaxis(grad, axis + 1, 0), index, moved)
    return [grad, None]


def _feature_extractor_forward(node: Node, x: list[Any]) -> list[Any]:
    data = _f64(x[0])
    index = np.asarray(x[1]).astype(np.int64).reshape(-1)
    return [np.take(data, index, axis=-1)]


def _feature_extractor_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    gy = g[0]
    assert gy is not None
    index = np.asarray(x[1]).astype(np.int64).reshape(-1)
    grad = np.zeros((gy.shape[0], *np.shape(x[0])))
    np.add.at(np.moveaxis(grad, -1, 0), index, np.moveaxis(gy, -1, 0))
    return [grad, None]


def _pads(node: Node, x: list[Any], ndim: int) -> list[tuple[int, int]]:
    pads = (
        _ints(x[1]) if len(x) > 1 and x[1] is not None else [int(p) for p in node.attr("pads", [])]
    )
    axes = _ints(x[3]) if len(x) > 3 and x[3] is not None else list(range(ndim))
    if node.attr("mode", "constant") != "constant":
        raise Unsupported(f"Pad mode {node.attr('mode', 'constant')!r}")
    if any(p < 0 for p in pads):
        raise Unsupported("Pad with negative pads")
    widths = [(0, 0)] * ndim
    half = len(pads) // 2
    for i, axis in enumerate(axes):
        widths[_axis(axis, ndim)] = (pads[i], pads[i + half])
    return widths


def _pad_forward(node: Node, x: list[Any]) -> list[Any]:
    data = _f64(x[0])
    value = (
        float(np.asarray(x[2]).reshape(-1)[0])
        if len(x) > 2 and x[2] is not None
        else float(node.attr("value", 0.0))
    )
    return [np.pad(data, _pads(node, x, data.ndim), constant_values=value)]


def _pad_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    assert g[0] is not None
    widths = _pads(node, x, np.ndim(x[0]))
    index = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, np.shape(x[0]), strict=True))
    return [g[0][(slice(None), *index)]] + [None] * (len(x) - 1)


def _shape_forward(node: Node, x: list[Any]) -> list[Any]:
    shape = np.array(np.shape(x[0]), dtype=np.int64)
    start, end = node.attr("start", 0), node.attr("end", None)
    return [shape[start:end]]


def _no_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    return [None for _ in x]


def _constant_forward(node: Node, x: list[Any]) -> list[Any]:
    for name in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if name in node.attrs:
            return [np.asarray(node.attrs[name])]
    raise Unsupported("Constant without a numeric value")


# ---- reductions and normalisations ----------------------------------------------------------


def _reduce_axes(node: Node, x: list[Any], ndim: int) -> tuple[int, ...]:
    axes = _axes_of(node, x, 1)
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            return ()
        return tuple(range(ndim))
    return tuple(sorted(_axis(a, ndim) for a in axes))


def _reduce_forward(node: Node, x: list[Any]) -> list[Any]:
    data = _f64(x[0])
    axes = _reduce_axes(node, x, data.ndim)
    if not axes:
        return [data]
    keep = bool(node.attr("keepdims", 1))
    fn = np.mean if node.op == "ReduceMean" else np.sum
    return [fn(data, axis=axes, keepdims=keep)]


def _reduce_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    gy = g[0]
    assert gy is not None
    shape = np.shape(x[0])
    axes = _reduce_axes(node, x, len(shape))
    if not axes:
        return [gy, None]
    kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
    grad = np.broadcast_to(gy.reshape((gy.shape[0], *kept)), (gy.shape[0], *shape))
    if node.op == "ReduceMean":
        grad = grad / math.prod(shape[a] for a in axes)
    return [np.array(grad), None]


def _softmax_axis(node: Node, ndim: int) -> int:
    default = 1 if node.opset < 13 else -1
    axis = _axis(int(node.attr("axis", default)), ndim)
    if node.opset < 13 and axis != ndim - 1:
        raise Unsupported(f"{node.op} (opset < 13) over more than the last axis")
    return axis


def _softmax_forward(node: Node, x: list[Any]) -> list[Any]:
    data = _f64(x[0])
    axis = _softmax_axis(node, data.ndim)
    shifted = data - np.max(data, axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return [np.exp(out) if node.op == "Softmax" else out]


def _softmax_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    gy = g[0]
    assert gy is not None
    axis = _softmax_axis(node, np.ndim(x[0])) + 1
    if node.op == "Softmax":
        return [y[0] * (gy - (gy * y[0]).sum(axis=axis, keepdims=True))]
    return [gy - np.exp(y[0]) * gy.sum(axis=axis, keepdims=True)]


def _channel_shape(ndim: int, lead: int = 0) -> tuple[int, ...]:
    return (1,) * lead + (1, -1) + (1,) * (ndim - 2)


def _batch_norm_forward(node: Node, x: list[Any]) -> list[Any]:
    data = _f64(x[0])
    scale, bias, mean, var = (_f64(v) for v in x[1:5])
    factor = scale / np.sqrt(var + float(node.attr("epsilon", 1e-5)))
    shape = _channel_shape(data.ndim)
    return [(data - mean.reshape(shape)) * factor.reshape(shape) + bias.reshape(shape)]


def _batch_norm_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    assert g[0] is not None
    factor = _f64(x[1]) / np.sqrt(_f64(x[4]) + float(node.attr("epsilon", 1e-5)))
    return [g[0] * factor.reshape(_channel_shape(np.ndim(x[0]), 1))]


def _layer_norm_parts(node: Node, data: Array) -> tuple[tuple[int, ...], Array, Array]:
    axis = _axis(int(node.attr("axis", -1)), data.ndim)
    axes = tuple(range(axis, data.ndim))
    mean = data.mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(
        ((data - mean) ** 2).mean(axis=axes, keepdims=True) + float(node.attr("epsilon", 1e-5))
    )
    return axes, mean, inv_std


def _layer_norm_forward(node: Node, x: list[Any]) -> list[Any]:
    data = _f64(x[0])
    _, mean, inv_std = _layer_norm_parts(node, data)
    y = (data - mean) * inv_std * _f64(x[1])
    if len(x) > 2 and x[2] is not None:
        y = y + _f64(x[2])
    return [y, mean, inv_std]


def _layer_norm_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    if any(v is not None for v in g[1:]):
        raise Unsupported("LayerNormalization's Mean or InvStdDev output used downstream")
    gy = g[0]
    assert gy is not None
    data = _f64(x[0])
    axes, mean, inv_std = _layer_norm_parts(node, data)
    xhat = (data - mean) * inv_std
    gh = gy * _f64(x[1])
    axes1 = tuple(a + 1 for a in axes)
    grad = inv_std * (
        gh - gh.mean(axis=axes1, keepdims=True) - xhat * (gh * xhat).mean(axis=axes1, keepdims=True)
    )
    return [grad] + [None] * (len(x) - 1)


# ---- convolution and pooling: loops over kernel offsets, strided slices per offset ----------


@dataclass(frozen=True)
class _Window:
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    declared: tuple[tuple[int, int], ...]  # (begin, end) padding per spatial axis
    pads: tuple[tuple[int, int], ...]  # the same with ceil_mode's extra end padding
    out: tuple[int, ...]

    def offsets(self) -> list[tuple[int, ...]]:
        return [tuple(int(i) for i in idx) for idx in np.ndindex(*self.kernel)]

    def index(self, offset: tuple[int, ...], lead: int) -> tuple[slice, ...]:
        """The strided slice of the padded input that meets kernel offset `offset`."""
        spatial = tuple(
            slice(k * d, k * d + (o - 1) * s + 1, s)
            for k, d, s, o in zip(offset, self.dilations, self.strides, self.out, strict=True)
        )
        return (slice(None),) * lead + spatial

    def inner(self, spatial: tuple[int, ...]) -> tuple[slice, ...]:
        """The input's place inside the padded input."""
        return tuple(slice(lo, lo + n) for (lo, _), n in zip(self.pads, spatial, strict=True))


def _window(node: Node, spatial: tuple[int, ...], kernel: tuple[int, ...]) -> _Window:
    n = len(spatial)
    if len(kernel) != n:
        raise Unsupported("kernel rank differs from the input's spatial rank")
    strides = tuple(int(s) for s in node.attr("strides", [1] * n))
    dilations = tuple(int(d) for d in node.attr("dilations", [1] * n))
    auto_pad = node.attr("auto_pad", "NOTSET")
    ceil = bool(node.attr("ceil_mode", 0))
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
    elif auto_pad == "VALID":
        pads = [(0, 0)] * n
    else:
        flat = [int(p) for p in node.attr("pads", [0] * (2 * n))]
        pads = [(flat[i], flat[i + n]) for i in range(n)]
    outs, full = [], []
    for size, k, s, d, (lo, hi) in zip(spatial, kernel, strides, dilations, pads, strict=True):
        span = size + lo + hi - (k - 1) * d - 1
        out = (-(-span // s) if ceil else span // s) + 1
        if ceil and (out - 1) * s >= size + lo:  # the last window must start inside the input
            out -= 1
        if out < 1:
            raise Unsupported("a window larger than its padded input")
        outs.append(out)
        full.append((lo, max(hi, (out - 1) * s + (k - 1) * d + 1 - size - lo)))
    return _Window(kernel, strides, dilations, tuple(pads), tuple(full), tuple(outs))


def _padded(data: Array, window: _Window, value: float) -> Array:
    return np.pad(data, [(0, 0), (0, 0), *window.pads], constant_values=value)


def _kernel_index(group: int, per_out: int, offset: tuple[int, ...]) -> tuple[Any, ...]:
    """The weights [per_out, per_in] of one group at one kernel offset."""
    return (slice(group * per_out, (group + 1) * per_out), slice(None), *offset)


def _conv_forward(node: Node, x: list[Any]) -> list[Any]:
    data, weight = _f64(x[0]), _f64(x[1])
    groups = int(node.attr("group", 1))
    window = _window(node, data.shape[2:], weight.shape[2:])
    padded = _padded(data, window, 0.0)
    b, cin = data.shape[:2]
    cout = weight.shape[0]
    per_in, per_out = cin // groups, cout // groups
    out = np.zeros((b, cout, *window.out))
    for offset in window.offsets():
        part = padded[window.index(offset, 2)]  # [b, cin, *out]
        for group in range(groups):
            w = weight[_kernel_index(group, per_out, offset)]  # [per_out, per_in]
            chunk = part[:, group * per_in : (group + 1) * per_in]
            out[:, group * per_out : (group + 1) * per_out] += np.einsum(
                "oi,bi...->bo...", w, chunk
            )
    if len(x) > 2 and x[2] is not None:
        out += _f64(x[2]).reshape(_channel_shape(out.ndim))
    return [out]


def _conv_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    gy = g[0]
    assert gy is not None
    data, weight = np.asarray(x[0]), _f64(x[1])
    groups = int(node.attr("group", 1))
    window = _window(node, data.shape[2:], weight.shape[2:])
    c, b, cin = gy.shape[0], data.shape[0], data.shape[1]
    per_in, per_out = cin // groups, weight.shape[0] // groups
    padded_shape = tuple(
        n + lo + hi for n, (lo, hi) in zip(data.shape[2:], window.pads, strict=True)
    )
    grad = np.zeros((c, b, cin, *padded_shape))
    for offset in window.offsets():
        target = grad[window.index(offset, 3)]  # a view [c, b, cin, *out]
        for group in range(groups):
            w = weight[_kernel_index(group, per_out, offset)]
            part = gy[:, :, group * per_out : (group + 1) * per_out]
            target[:, :, group * per_in : (group + 1) * per_in] += np.einsum(
                "oi,cbo...->cbi...", w, part
            )
    inner = window.inner(data.shape[2:])
    return [grad[(slice(None), slice(None), slice(None), *inner)], None, None]


@dataclass(frozen=True)
class _Transposed:
    """ConvTranspose's geometry: the full output before pads are cropped, and each kernel
    offset's strided slice of it."""

    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    full: tuple[int, ...]
    crop: tuple[slice, ...]

    def index(
        self, offset: tuple[int, ...], spatial: tuple[int, ...], lead: int
    ) -> tuple[slice, ...]:
        return (slice(None),) * lead + tuple(
            slice(k * d, k * d + (n - 1) * s + 1, s)
            for k, d, s, n in zip(offset, self.dilations, self.strides, spatial, strict=True)
        )


def _transposed(node: Node, spatial: tuple[int, ...], kernel: tuple[int, ...]) -> _Transposed:
    n = len(spatial)
    if node.attr("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or "output_shape" in node.attrs:
        raise Unsupported("ConvTranspose with auto_pad SAME or output_shape")
    strides = tuple(int(v) for v in node.attr("strides", [1] * n))
    dilations = tuple(int(v) for v in node.attr("dilations", [1] * n))
    extra = [int(v) for v in node.attr("output_padding", [0] * n)]
    flat = [int(p) for p in node.attr("pads", [0] * (2 * n))]
    if node.attr("auto_pad", "NOTSET") == "VALID":
        flat = [0] * (2 * n)
    full = tuple(
        (size - 1) * s + (k - 1) * d + 1 + e
        for size, s, k, d, e in zip(spatial, strides, kernel, dilations, extra, strict=True)
    )
    crop = tuple(slice(flat[i], full[i] - flat[i + n]) for i in range(n))
    if any(c.stop <= c.start for c in crop):
        raise Unsupported("ConvTranspose pads larger than its output")
    return _Transposed(strides, dilations, full, crop)


def _conv_transpose_forward(node: Node, x: list[Any]) -> list[Any]:
    data, weight = _f64(x[0]), _f64(x[1])  # weight [cin, cout / groups, *kernel]
    groups = int(node.attr("group", 1))
    spatial, kernel = data.shape[2:], weight.shape[2:]
    geometry = _transposed(node, spatial, kernel)
    b, cin = data.shape[:2]
    per_in, per_out = cin // groups, weight.shape[1]
    full = np.zeros((b, per_out * groups, *geometry.full))
    for offset in np.ndindex(*kernel):
        target = full[geometry.index(offset, spatial, 2)]
        for group in range(groups):
            w = weight[(slice(group * per_in, (group + 1) * per_in), slice(None), *offset)]
            part = data[:, group * per_in : (group + 1) * per_in]
            target[:, group * per_out : (group + 1) * per_out] += np.einsum(
                "io,bi...->bo...", w, part
            )
    out = full[(slice(None), slice(None), *geometry.crop)]
    if len(x) > 2 and x[2] is not None:
        out = out + _f64(x[2]).reshape(_channel_shape(out.ndim))
    return [out]


def _conv_transpose_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    gy = g[0]
    assert gy is not None
    data, weight = np.asarray(x[0]), _f64(x[1])
    groups = int(node.attr("group", 1))
    spatial, kernel = data.shape[2:], weight.shape[2:]
    geometry = _transposed(node, spatial, kernel)
    per_in, per_out = data.shape[1] // groups, weight.shape[1]
    full = np.zeros((*gy.shape[:3], *geometry.full))
    full[(slice(None), slice(None), slice(None), *geometry.crop)] = gy
    grad = np.zeros((gy.shape[0], *data.shape))
    for offset in np.ndindex(*kernel):
        part_all = full[geometry.index(offset, spatial, 3)]
        for group in range(groups):
            w = weight[(slice(group * per_in, (group + 1) * per_in), slice(None), *offset)]
            part = part_all[:, :, group * per_out : (group + 1) * per_out]
            grad[:, :, group * per_in : (group + 1) * per_in] += np.einsum(
                "io,cbo...->cbi...", w, part
            )
    return [grad, None, None]


def _pool_kernel(node: Node) -> tuple[int, ...]:
    return tuple(int(k) for k in node.attr("kernel_shape", []))


def _max_pool_forward(node: Node, x: list[Any]) -> list[Any]:
    data = _f64(x[0])
    window = _window(node, data.shape[2:], _pool_kernel(node))
    padded = _padded(data, window, -np.inf)
    out = np.full((*data.shape[:2], *window.out), -np.inf)
    for offset in window.offsets():
        np.maximum(out, padded[window.index(offset, 2)], out=out)
    return [out]


def _max_pool_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    """Each window's gradient goes to its first maximal element (argmax routing)."""
    gy = g[0]
    assert gy is not None
    data = _f64(x[0])
    window = _window(node, data.shape[2:], _pool_kernel(node))
    padded = _padded(data, window, -np.inf)
    grad = np.zeros((gy.shape[0], *padded.shape))
    taken = np.zeros(y[0].shape, dtype=bool)
    for offset in window.offsets():
        index = window.index(offset, 2)
        hit = (padded[index] == y[0]) & ~taken
        taken |= hit
        grad[(slice(None), *index)] += gy * hit
    inner = window.inner(data.shape[2:])
    return [grad[(slice(None), slice(None), slice(None), *inner)]]


def _average_divisor(node: Node, spatial: tuple[int, ...], window: _Window) -> Array:
    """Elements each window averages: the input's, plus the declared padding's when
    count_include_pad (ceil_mode's extra end padding never counts)."""
    counted = window.declared if node.attr("count_include_pad", 0) else [(0, 0)] * len(spatial)
    ones = np.pad(np.ones(spatial), counted, constant_values=1.0)
    extra = [
        (lo - clo, hi - chi) for (lo, hi), (clo, chi) in zip(window.pads, counted, strict=True)
    ]
    ones = np.pad(ones, extra)
    count = np.zeros(window.out)
    for offset in window.offsets():
        count += ones[window.index(offset, 0)]
    return count


def _average_pool_forward(node: Node, x: list[Any]) -> list[Any]:
    data = _f64(x[0])
    window = _window(node, data.shape[2:], _pool_kernel(node))
    padded = _padded(data, window, 0.0)
    out = np.zeros((*data.shape[:2], *window.out))
    for offset in window.offsets():
        out += padded[window.index(offset, 2)]
    return [out / _average_divisor(node, data.shape[2:], window)]


def _average_pool_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    gy = g[0]
    assert gy is not None
    data_shape = np.shape(x[0])
    window = _window(node, data_shape[2:], _pool_kernel(node))
    scaled = gy / _average_divisor(node, data_shape[2:], window)
    padded_shape = tuple(
        n + lo + hi for n, (lo, hi) in zip(data_shape[2:], window.pads, strict=True)
    )
    grad = np.zeros((gy.shape[0], *data_shape[:2], *padded_shape))
    for offset in window.offsets():
        grad[window.index(offset, 3)] += scaled
    inner = window.inner(data_shape[2:])
    return [grad[(slice(None), slice(None), slice(None), *inner)]]


def _global_forward(node: Node, x: list[Any]) -> list[Any]:
    data = _f64(x[0])
    axes = tuple(range(2, data.ndim))
    fn = np.mean if node.op == "GlobalAveragePool" else np.max
    return [fn(data, axis=axes, keepdims=True)]


def _global_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    gy = g[0]
    assert gy is not None
    data = _f64(x[0])
    if node.op == "GlobalAveragePool":
        return [np.broadcast_to(gy, (gy.shape[0], *data.shape)) / math.prod(data.shape[2:])]
    hit = data == y[0]
    first = hit & (np.cumsum(hit.reshape(*data.shape[:2], -1), axis=-1).reshape(data.shape) == 1)
    return [gy * first]


# ---- ai.onnx.ml: the operators scikit-learn exports (skl2onnx) ------------------------------


def _post_transform(node: Node, scores: Array, binary: bool) -> Array:
    kind = node.attr("post_transform", "NONE")
    if binary:  # one score column s for two classes
        s = scores[:, :1]
        if kind == "NONE":  # ONNX Runtime's second column for labels 0 and 1
            return np.concatenate([1.0 - s, s], axis=1)
        if kind == "LOGISTIC":
            p = _sigmoid(s)
            return np.concatenate([1.0 - p, p], axis=1)
        raise Unsupported(f"{node.op} post_transform {kind} for two classes")
    if kind == "NONE":
        return scores
    if kind == "LOGISTIC":
        return _sigmoid(scores)
    if kind == "SOFTMAX":
        shifted = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        return np.asarray(e / e.sum(axis=1, keepdims=True))
    raise Unsupported(f"{node.op} post_transform {kind}")


def _post_transform_back(node: Node, scores: Array, out: Array, g: Grad, binary: bool) -> Grad:
    kind = node.attr("post_transform", "NONE")
    if binary:
        if kind == "NONE":
            return (g[..., 1] - g[..., 0])[..., None]
        p = out[:, 1:]
        return (g[..., 1:] - g[..., :1]) * p * (1.0 - p)
    if kind == "NONE":
        return g
    if kind == "LOGISTIC":
        return g * out * (1.0 - out)
    return np.asarray(out * (g - (g * out).sum(axis=-1, keepdims=True)))  # SOFTMAX


def _classes(node: Node) -> int:
    labels = node.attrs.get("classlabels_ints") or node.attrs.get("classlabels_strings") or []
    return len(labels)


def _linear_parts(node: Node, d: int) -> tuple[Array, Array, bool]:
    coef = _f64(node.attrs.get("coefficients", [])).reshape(-1, d)
    intercepts = node.attrs.get("intercepts")
    bias = _f64(intercepts) if intercepts is not None else np.zeros(coef.shape[0])
    binary = node.op.endswith("LinearClassifier") and coef.shape[0] == 1 and _classes(node) == 2
    return coef, bias, binary


def _linear_classifier_forward(node: Node, x: list[Any]) -> list[Any]:
    data = _f64(x[0])
    data = data.reshape(data.shape[0], -1)
    coef, bias, binary = _linear_parts(node, data.shape[1])
    scores = data @ coef.T + bias
    out = _post_transform(node, scores, binary)
    label = np.argmax(out, axis=1)
    return [label, out]


def _linear_classifier_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    gy = g[1]
    assert gy is not None
    data = _f64(x[0])
    coef, bias, binary = _linear_parts(node, data.reshape(data.shape[0], -1).shape[1])
    scores = data.reshape(data.shape[0], -1) @ coef.T + bias
    gs = _post_transform_back(node, scores, y[1], gy, binary)
    return [(gs @ coef).reshape((gy.shape[0], *data.shape))]


def _linear_regressor_forward(node: Node, x: list[Any]) -> list[Any]:
    if node.attr("post_transform", "NONE") != "NONE":
        raise Unsupported("LinearRegressor post_transform")
    data = _f64(x[0])
    coef, bias, _ = _linear_parts(node, data.shape[1])
    return [data @ coef.T + bias]


def _linear_regressor_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    gy = g[0]
    assert gy is not None
    coef, _, _ = _linear_parts(node, np.shape(x[0])[1])
    return [gy @ coef]


def _normalizer_forward(node: Node, x: list[Any]) -> list[Any]:
    data = _f64(x[0])
    norm = node.attr("norm", "MAX")
    if norm == "L1":
        scale = np.abs(data).sum(axis=1, keepdims=True)
    elif norm == "L2":
        scale = np.sqrt((data * data).sum(axis=1, keepdims=True))
    elif norm == "MAX":
        scale = data.max(axis=1, keepdims=True)
    else:
        raise Unsupported(f"Normalizer norm {norm}")
    return [data / scale]


def _normalizer_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    gy = g[0]
    assert gy is not None
    data = _f64(x[0])
    norm = node.attr("norm", "MAX")
    out = y[0]
    if norm == "L1":
        scale = np.abs(data).sum(axis=1, keepdims=True)
        return [gy / scale - (gy * out).sum(axis=-1, keepdims=True) * np.sign(data) / scale]
    if norm == "L2":
        scale = np.sqrt((data * data).sum(axis=1, keepdims=True))
        return [gy / scale - (gy * out).sum(axis=-1, keepdims=True) * out / scale]
    scale = data.max(axis=1, keepdims=True)
    first = np.argmax(data, axis=1)
    grad = gy / scale
    back = -(gy * out).sum(axis=-1) / scale[:, 0]  # [c, b]
    grad[:, np.arange(data.shape[0]), first] += back
    return [grad]


def _scaler_parts(node: Node, d: int) -> tuple[Array, Array]:
    offset = _f64(node.attrs.get("offset", [0.0]))
    scale = _f64(node.attrs.get("scale", [1.0]))
    return np.broadcast_to(offset, (d,)), np.broadcast_to(scale, (d,))


def _scaler_forward(node: Node, x: list[Any]) -> list[Any]:
    data = _f64(x[0])
    offset, scale = _scaler_parts(node, data.shape[1])
    return [(data - offset) * scale]


def _scaler_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    assert g[0] is not None
    _, scale = _scaler_parts(node, np.shape(x[0])[1])
    return [g[0] * scale]


@dataclass(frozen=True)
class _Svm:
    vectors: Array  # [s, d]
    pair_coef: Array  # [p, s]: pair p's coefficient of each support vector
    rho: Array  # [p]
    kernel: str
    gamma: float
    coef0: float
    degree: float
    binary: bool


def _svm(node: Node, d: int) -> _Svm:
    if node.attrs.get("prob_a") is not None and len(node.attrs["prob_a"]):
        raise Unsupported("SVMClassifier with probability estimates (prob_a)")
    if node.attr("post_transform", "NONE") != "NONE":
        raise Unsupported("SVMClassifier post_transform")
    counts = [int(v) for v in node.attrs.get("vectors_per_class", [])]
    if not counts:
        raise Unsupported("SVMClassifier in linear mode (no support vectors)")
    vectors = _f64(node.attrs["support_vectors"]).reshape(-1, d)
    classes = len(counts)
    coef = _f64(node.attrs["coefficients"]).reshape(classes - 1, -1)
    starts = np.concatenate([[0], np.cumsum(counts)])
    pairs = []
    for i in range(classes):
        for j in range(i + 1, classes):
            row = np.zeros(vectors.shape[0])
            row[starts[i] : starts[i + 1]] = coef[j - 1, starts[i] : starts[i + 1]]
            row[starts[j] : starts[j + 1]] = coef[i, starts[j] : starts[j + 1]]
            pairs.append(row)
    params = [float(v) for v in node.attrs.get("kernel_params", [0.0, 0.0, 0.0])] + [0.0] * 3
    kernel = node.attr("kernel_type", "LINEAR")
    rho = _f64(node.attrs["rho"])
    return _Svm(
        vectors, np.array(pairs), rho, kernel, params[0], params[1], params[2], classes == 2
    )


def _svm_kernel(svm: _Svm, data: Array) -> tuple[Array, Array]:
    """K [b, s] and what its gradient needs: the inner derivative k'(b, s)."""
    dots = data @ svm.vectors.T
    if svm.kernel == "LINEAR":
        return dots, np.ones_like(dots)
    if svm.kernel == "POLY":
        inner = svm.gamma * dots + svm.coef0
        return inner**svm.degree, svm.degree * inner ** (svm.degree - 1.0) * svm.gamma
    if svm.kernel == "SIGMOID":
        k = np.tanh(svm.gamma * dots + svm.coef0)
        return k, (1.0 - k * k) * svm.gamma
    if svm.kernel == "RBF":
        sq = (data * data).sum(1)[:, None] + (svm.vectors * svm.vectors).sum(1)[None] - 2.0 * dots
        k = np.exp(-svm.gamma * np.maximum(sq, 0.0))
        return k, k
    raise Unsupported(f"SVMClassifier kernel {svm.kernel}")


def _svm_forward(node: Node, x: list[Any]) -> list[Any]:
    data = _f64(x[0])
    svm = _svm(node, data.shape[1])
    k, _ = _svm_kernel(svm, data)
    decision = k @ svm.pair_coef.T + svm.rho  # [b, p]
    out = np.concatenate([-decision, decision], axis=1) if svm.binary else decision
    return [np.argmax(out, axis=1), out]


def _svm_back(
    node: Node, x: list[Any], y: list[Any], g: list[Grad | None], need: list[bool]
) -> list[Grad | None]:
    gy = g[1]
    assert gy is not None
    data = _f64(x[0])
    svm = _svm(node, data.shape[1])
    _, dk = _svm_kernel(svm, data)
    gd = (gy[..., 1] - gy[..., 0])[..., None] if svm.binary else gy  # [c, b, p]
    weight = (gd @ svm.pair_coef) * dk  # [c, b, s]: d out / d K times K's inner derivative
    if svm.kernel == "RBF":  # dK/dx = -2 gamma (x - v) K
        return [-2.0 * svm.gamma * (weight.sum(-1)[..., None] * data - weight @ svm.vectors)]
    return [weight @ svm.vectors]


# ---- the table --------------------------------------------------------------------------------

OPS: dict[str, Op] = {
    **UNARY,
    "Identity": Op(_identity_forward, _pass_back),
    "Dropout": Op(_identity_forward, _pass_back),
    "Cast": Op(_cast_forward, _cast_backward),
    "Clip": Op(_clip_forward, _clip_backward),
    "Constant": Op(_constant_forward, _no_back, differentiable=()),
    "Shape": Op(_shape_forward, _no_back, differentiable=(0,), smooth=False),
    "Add": Op(_binary_forward(np.add), _add_back(1.0), differentiable=None),
    "Sub": Op(_binary_forward(np.subtract), _add_back(-1.0), differentiable=None),
    "Mul": Op(_binary_forward(np.multiply), _mul_back, differentiable=None),
    "Div": Op(_binary_forward(np.divide), _div_back, differentiable=None),
    "Pow": Op(_binary_forward(np.power), _pow_back, differentiable=None),
    "Sum": Op(_variadic_forward(np.add), _variadic_back, differentiable=None),
    "Mean": Op(_variadic_forward(np.add), _variadic_back, differentiable=None),
    "Min": Op(_variadic_forward(np.minimum), _variadic_back, differentiable=None),
    "Max": Op(_variadic_forward(np.maximum), _variadic_back, differentiable=None),
    "Where": Op(_where_forward, _where_back, differentiable=(1, 2)),
    "MatMul": Op(_matmul_forward, _matmul_back, differentiable=None),
    "Gemm": Op(_gemm_forward, _gemm_back, differentiable=None),
    "Reshape": Op(_reshape_forward, _reshape_back),
    "Flatten": Op(_flatten_forward, _reshape_back),
    "Transpose": Op(_transpose_forward, _transpose_back),
    "Squeeze": Op(_squeeze_forward, _reshape_back),
    "Unsqueeze": Op(_unsqueeze_forward, _reshape_back),
    "Concat": Op(_concat_forward, _concat_back, differentiable=None),
    "Split": Op(_split_forward, _split_back),
    "Slice": Op(_slice_forward, _slice_back),
    "Gather": Op(_gather_forward, _gather_back),
    "Pad": Op(_pad_forward, _pad_back),
    "ReduceMean": Op(_reduce_forward, _reduce_back),
    "ReduceSum": Op(_reduce_forward, _reduce_back),
    "Softmax": Op(_softmax_forward, _softmax_back),
    "LogSoftmax": Op(_softmax_forward, _softmax_back),
    "BatchNormalization": Op(_batch_norm_forward, _batch_norm_back),
    "LayerNormalization": Op(_layer_norm_forward, _layer_norm_back),
    "Conv": Op(_conv_forward, _conv_back),
    "ConvTranspose": Op(_conv_transpose_forward, _conv_transpose_back),
    "MaxPool": Op(_max_pool_forward, _max_pool_back),
    "AveragePool": Op(_average_pool_forward, _average_pool_back),
    "GlobalAveragePool": Op(_global_forward, _global_back),
    "GlobalMaxPool": Op(_global_forward, _global_back),
    f"{ML}.ArrayFeatureExtractor": Op(_feature_extractor_forward, _feature_extractor_back),
    f"{ML}.LinearClassifier": Op(_linear_classifier_forward, _linear_classifier_back),
    f"{ML}.LinearRegressor": Op(_linear_regressor_forward, _linear_regressor_back),
    f"{ML}.Normalizer": Op(_normalizer_forward, _normalizer_back),
    f"{ML}.Scaler": Op(_scaler_forward, _scaler_back),
    f"{ML}.SVMClassifier": Op(_svm_forward, _svm_back),
}
GRADIENT_OPS: tuple[str, ...] = tuple(sorted(OPS))


def op_key(op_type: str, domain: str) -> str:
    """The OPS key of an ONNX node: its op_type, prefixed with "ai.onnx.ml." in that domain."""
    return f"{ML}.{op_type}" if domain == ML else op_type


def forward(node: Node, inputs: Sequence[Any]) -> list[Any]:
    try:
        return OPS[node.op].forward(node, list(inputs))
    except Unsupported:
        raise
    except (ValueError, IndexError, KeyError, TypeError) as err:
        raise Unsupported(f"{node.op} failed: {type(err).__name__}") from err


def backward(
    node: Node,
    inputs: Sequence[Any],
    outputs: Sequence[Any],
    grads: list[Grad | None],
    need: list[bool],
) -> list[Grad | None]:
    return OPS[node.op].backward(
        node, list(inputs), list(outputs), grads, need + [False] * (len(inputs) - len(need))
    )


def unsupported(node: Node, field: str, detail: str) -> ModelRejected:
    return ModelRejected(
        field,
        f"must use only operators deepfool can differentiate (StrategyInfo.gradient_ops); node "
        f"{(node.name or node.op)[:60]!r} is {node.op}: {detail[:120]}",
        reason=reasons.UNSUPPORTED_GRADIENT_OP,
    )
