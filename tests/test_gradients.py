"""gradients: every operator of GRADIENT_OPS (the list ListStrategies reports) has a row here.

Each row builds one node on random inputs and checks two things: its forward pass equals
ONNX Runtime's on the same node (so the gradient is of the function the model computes),
and its backward pass equals float64 central finite differences of that forward pass.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from labelwise_server import gradients
from labelwise_server.gradients import GRADIENT_OPS, Node

F = TensorProto.FLOAT
I64 = TensorProto.INT64
RNG = np.random.default_rng(20260)


def f32(*shape: int, scale: float = 1.0, positive: bool = False) -> npt.NDArray[np.float32]:
    x = RNG.normal(size=shape) * scale
    return (np.abs(x) + 0.5 if positive else x).astype(np.float32)


def i64(values: Any) -> npt.NDArray[np.int64]:
    return np.asarray(values, dtype=np.int64)


@dataclass
class Case:
    """One node: op (gradients.OPS key), the input x at position `at`, constant inputs, attrs."""

    op: str
    x: npt.NDArray[np.float32]
    consts: dict[int, npt.NDArray[Any] | None] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    at: int = 0
    outputs: int = 1
    out_types: tuple[int, ...] = ()  # per output; FLOAT when empty
    loss_outputs: tuple[int, ...] = (0,)  # the outputs the checked scalar sums over
    opset: int = 17
    differentiable: bool = True

    @property
    def domain(self) -> str:
        return gradients.ML if self.op.startswith(gradients.ML + ".") else ""

    @property
    def op_type(self) -> str:
        return self.op.split(".")[-1]

    def names(self) -> list[str]:
        count = max([self.at, *self.consts]) + 1
        return [
            "x" if i == self.at else ("" if self.consts.get(i) is None else f"c{i}")
            for i in range(count)
        ]

    def node(self) -> Node:
        outputs = tuple(f"y{i}" for i in range(self.outputs))
        attrs = {
            k: numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v
            for k, v in self.attrs.items()
        }
        return Node(self.op, tuple(self.names()), outputs, attrs, opset=self.opset)

    def inputs(self, x: npt.NDArray[Any]) -> list[Any]:
        return [x if i == self.at else self.consts.get(i) for i in range(len(self.names()))]

    def onnx_outputs(self) -> list[npt.NDArray[Any]]:
        nodes = [
            helper.make_node(
                self.op_type,
                self.names(),
                [f"y{i}" for i in range(self.outputs)],
                domain=self.domain,
                **self.attrs,
            )
        ]
        init = [
            numpy_helper.from_array(v, f"c{i}") for i, v in self.consts.items() if v is not None
        ]
        types = self.out_types or (F,) * self.outputs
        outs = [helper.make_tensor_value_info(f"y{i}", t, None) for i, t in enumerate(types)]
        graph = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", F, self.x.shape)], outs, init
        )
        opsets = [helper.make_opsetid("", self.opset), helper.make_opsetid(gradients.ML, 3)]
        model = helper.make_model(graph, opset_imports=opsets, ir_version=9)
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        return [np.asarray(v) for v in session.run(None, {"x": self.x})]


def _svm(kernel: str, classes: int, d: int = 3, per_class: int = 3) -> Case:
    s = classes * per_class
    attrs = {
        "kernel_type": kernel,
        "kernel_params": [0.4, 0.3, 3.0],
        "support_vectors": f32(s, d).reshape(-1).tolist(),
        "vectors_per_class": [per_class] * classes,
        "coefficients": f32(classes - 1, s).reshape(-1).tolist(),
        "rho": f32(classes * (classes - 1) // 2).tolist(),
        "classlabels_ints": list(range(classes)),
    }
    return Case(
        "ai.onnx.ml.SVMClassifier",
        f32(4, d),
        attrs=attrs,
        outputs=2,
        out_types=(I64, F),
        loss_outputs=(1,),
    )


def _linear(post: str, classes: int, rows: int, d: int = 3) -> Case:
    attrs = {
        "coefficients": f32(rows, d).reshape(-1).tolist(),
        "intercepts": f32(rows).tolist(),
        "post_transform": post,
        "classlabels_ints": list(range(classes)),
    }
    return Case(
        "ai.onnx.ml.LinearClassifier",
        f32(4, d),
        attrs=attrs,
        outputs=2,
        out_types=(I64, F),
        loss_outputs=(1,),
    )


UNARY = ["Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Erf", "Softplus", "Identity", "Dropout"]
CASES: dict[str, Case] = {
    **{op: Case(op, f32(3, 4)) for op in UNARY},
    "LeakyRelu": Case("LeakyRelu", f32(3, 4), attrs={"alpha": 0.1}),
    "HardSigmoid": Case("HardSigmoid", f32(3, 4), attrs={"alpha": 0.3, "beta": 0.4}),
    "Log": Case("Log", f32(3, 4, positive=True)),
    "Sqrt": Case("Sqrt", f32(3, 4, positive=True)),
    "Reciprocal": Case("Reciprocal", f32(3, 4, positive=True)),
    "Gelu": Case("Gelu", f32(3, 4), opset=20),
    "Gelu-tanh": Case("Gelu", f32(3, 4), attrs={"approximate": "tanh"}, opset=20),
    "Cast": Case("Cast", f32(3, 4), attrs={"to": F}),
    "Clip": Case("Clip", f32(3, 4), {1: np.array(-0.5, np.float32), 2: np.array(0.6, np.float32)}),
    "Constant": Case(
        "Constant",
        f32(2, 2),
        attrs={"value": numpy_helper.from_array(f32(2, 3))},
        differentiable=False,
    ),
    "Shape": Case("Shape", f32(2, 3), out_types=(I64,), differentiable=False),
    "Add": Case("Add", f32(3, 4), {1: f32(4)}),
    "Add-second": Case("Add", f32(3, 4), {0: f32(4)}, at=1),
    "Sub": Case("Sub", f32(3, 4), {0: f32(1, 4)}, at=1),
    "Mul": Case("Mul", f32(3, 4), {1: f32(4)}),
    "Div": Case("Div", f32(3, 4), {1: f32(4, positive=True)}),
    "Div-denominator": Case("Div", f32(3, 4, positive=True), {0: f32(4)}, at=1),
    "Pow": Case("Pow", f32(3, 4, positive=True), {1: np.array(2.5, np.float32)}),
    "Pow-exponent": Case("Pow", f32(3, 4), {0: f32(4, positive=True)}, at=1),
    "Sum": Case("Sum", f32(3, 4), {1: f32(4), 2: f32(3, 4)}),
    "Mean": Case("Mean", f32(3, 4), {0: f32(3, 1)}, at=1),
    "Min": Case("Min", f32(3, 4), {1: f32(4), 2: f32(3, 4)}),
    "Max": Case("Max", f32(3, 4), {0: f32(4)}, at=1),
    "Where": Case("Where", f32(3, 4), {0: RNG.random((3, 4)) > 0.5, 2: f32(4)}, at=1),
    "MatMul": Case("MatMul", f32(3, 4), {1: f32(4, 5)}),
    "MatMul-batched": Case("MatMul", f32(2, 3, 4), {1: f32(4, 2)}),
    "Gemm": Case(
        "Gemm", f32(3, 4), {1: f32(5, 4), 2: f32(5)}, attrs={"transB": 1, "alpha": 0.7, "beta": 1.3}
    ),
    "Reshape": Case("Reshape", f32(2, 3, 4), {1: i64([0, -1, 2])}),
    "Flatten": Case("Flatten", f32(2, 3, 4), attrs={"axis": 2}),
    "Transpose": Case("Transpose", f32(2, 3, 4), attrs={"perm": [0, 2, 1]}),
    "Squeeze": Case("Squeeze", f32(2, 1, 3), {1: i64([1])}),
    "Unsqueeze": Case("Unsqueeze", f32(2, 3), {1: i64([1, -1])}),
    "Concat": Case("Concat", f32(2, 3), {0: f32(2, 2)}, attrs={"axis": 1}, at=1),
    "Split": Case(
        "Split", f32(2, 6), {1: i64([2, 4])}, attrs={"axis": 1}, outputs=2, loss_outputs=(0, 1)
    ),
    "Split-one-used": Case("Split", f32(2, 6), attrs={"axis": 1}, outputs=3, loss_outputs=(2,)),
    "Slice": Case(
        "Slice", f32(3, 7), {1: i64([0, 1]), 2: i64([2, -1]), 3: i64([0, 1]), 4: i64([1, 2])}
    ),
    "Slice-reversed": Case(
        "Slice", f32(3, 7), {1: i64([-2]), 2: i64([-100]), 3: i64([1]), 4: i64([-2])}
    ),
    "Gather": Case("Gather", f32(3, 5), {1: i64([[0, 2], [4, -1]])}, attrs={"axis": 1}),
    "Pad": Case(
        "Pad", f32(1, 2, 3, 3), {1: i64([0, 0, 1, 2, 0, 0, 2, 1]), 2: np.array(0.5, np.float32)}
    ),
    "ReduceMean": Case("ReduceMean", f32(2, 3, 4), attrs={"axes": [1], "keepdims": 0}),
    "ReduceSum": Case("ReduceSum", f32(2, 3, 4), {1: i64([-1])}),
    "ReduceSum-all": Case("ReduceSum", f32(2, 3), attrs={"keepdims": 0}),
    "Softmax": Case("Softmax", f32(3, 5)),
    "LogSoftmax": Case("LogSoftmax", f32(2, 3, 5), attrs={"axis": 1}),
    "BatchNormalization": Case(
        "BatchNormalization",
        f32(2, 3, 4, 4),
        {1: f32(3), 2: f32(3), 3: f32(3), 4: f32(3, positive=True)},
    ),
    "LayerNormalization": Case("LayerNormalization", f32(2, 3, 4), {1: f32(4), 2: f32(4)}),
    "LayerNormalization-2axes": Case(
        "LayerNormalization", f32(2, 3, 4), {1: f32(3, 4)}, attrs={"axis": 1}
    ),
    "Conv": Case(
        "Conv",
        f32(2, 2, 5, 5),
        {1: f32(4, 1, 3, 3), 2: f32(4)},
        attrs={"group": 2, "strides": [2, 1], "pads": [1, 0, 0, 1], "dilations": [1, 2]},
    ),
    "Conv-1d-same": Case(
        "Conv", f32(2, 3, 7), {1: f32(2, 3, 3)}, attrs={"auto_pad": "SAME_UPPER", "strides": [2]}
    ),
    "ConvTranspose": Case(
        "ConvTranspose",
        f32(2, 2, 3, 4),
        {1: f32(2, 3, 3, 2), 2: f32(6)},
        attrs={
            "group": 2,
            "strides": [2, 1],
            "pads": [1, 0, 0, 1],
            "output_padding": [1, 0],
            "dilations": [1, 2],
        },
    ),
    "ConvTranspose-1d": Case(
        "ConvTranspose", f32(1, 3, 5), {1: f32(3, 2, 3)}, attrs={"strides": [3]}
    ),
    "MaxPool": Case(
        "MaxPool",
        f32(2, 2, 5, 5),
        attrs={"kernel_shape": [2, 3], "strides": [2, 2], "pads": [0, 1, 1, 0], "ceil_mode": 1},
    ),
    "AveragePool": Case(
        "AveragePool",
        f32(2, 2, 5, 5),
        attrs={"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    ),
    "AveragePool-include-pad": Case(
        "AveragePool",
        f32(1, 2, 6, 5),
        attrs={
            "kernel_shape": [3, 2],
            "strides": [2, 2],
            "pads": [1, 0, 0, 1],
            "count_include_pad": 1,
        },
    ),
    "GlobalAveragePool": Case("GlobalAveragePool", f32(2, 3, 4, 4)),
    "GlobalMaxPool": Case("GlobalMaxPool", f32(2, 3, 4, 4)),
    "ai.onnx.ml.ArrayFeatureExtractor": Case(
        "ai.onnx.ml.ArrayFeatureExtractor", f32(3, 5), {1: i64([4, 0, 2, 0])}
    ),
    "ai.onnx.ml.LinearClassifier": _linear("SOFTMAX", 3, 3),
    "ai.onnx.ml.LinearClassifier-ovr": _linear("LOGISTIC", 3, 3),
    "ai.onnx.ml.LinearClassifier-scores": _linear("NONE", 4, 4),
    "ai.onnx.ml.LinearClassifier-binary-logistic": _linear("LOGISTIC", 2, 1),
    "ai.onnx.ml.LinearClassifier-binary-scores": _linear("NONE", 2, 1),
    "ai.onnx.ml.LinearRegressor": Case(
        "ai.onnx.ml.LinearRegressor",
        f32(4, 3),
        attrs={"coefficients": f32(6).tolist(), "targets": 2, "intercepts": f32(2).tolist()},
    ),
    "ai.onnx.ml.Normalizer": Case(
        "ai.onnx.ml.Normalizer", f32(3, 4, positive=True), attrs={"norm": "L1"}
    ),
    "ai.onnx.ml.Normalizer-L2": Case("ai.onnx.ml.Normalizer", f32(3, 4), attrs={"norm": "L2"}),
    "ai.onnx.ml.Normalizer-MAX": Case("ai.onnx.ml.Normalizer", f32(3, 4), attrs={"norm": "MAX"}),
    "ai.onnx.ml.Scaler": Case(
        "ai.onnx.ml.Scaler", f32(3, 4), attrs={"offset": f32(4).tolist(), "scale": f32(4).tolist()}
    ),
    "ai.onnx.ml.SVMClassifier": _svm("RBF", 2),
    **{
        f"ai.onnx.ml.SVMClassifier-{k.lower()}-{c}": _svm(k, c)
        for k in ("LINEAR", "POLY", "RBF", "SIGMOID")
        for c in (2, 3, 4)
    },
}


def _loss(case: Case, weights: list[npt.NDArray[np.float64]]) -> Callable[[Any], float]:
    node = case.node()

    def loss(x: npt.NDArray[np.float64]) -> float:
        out = gradients.forward(node, case.inputs(x))
        return float(
            sum((w * out[i]).sum() for i, w in zip(case.loss_outputs, weights, strict=True))
        )

    return loss


def test_the_table_covers_exactly_the_operators_reported() -> None:
    assert {case.op for case in CASES.values()} == set(GRADIENT_OPS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_onnx_runtime(name: str) -> None:
    case = CASES[name]
    ours = gradients.forward(case.node(), case.inputs(case.x.astype(np.float64)))
    theirs = case.onnx_outputs()
    assert len(theirs) == case.outputs
    for mine, ort_out in zip(ours, theirs, strict=False):
        assert np.shape(mine) == ort_out.shape, name
        if ort_out.dtype.kind == "f":
            np.testing.assert_allclose(mine, ort_out, rtol=2e-5, atol=2e-5, err_msg=name)
        elif case.loss_outputs and ort_out.dtype.kind == "i" and case.outputs > 1:
            pass  # class labels: how a runtime maps scores to labels is not the gradient's concern
        else:
            np.testing.assert_array_equal(mine, ort_out, err_msg=name)


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.differentiable))
def test_backward_matches_central_finite_differences(name: str) -> None:
    case = CASES[name]
    node = case.node()
    x = case.x.astype(np.float64)
    outs = gradients.forward(node, case.inputs(x))
    weights = [RNG.normal(size=np.shape(outs[i])) for i in case.loss_outputs]
    grads: list[Any] = [None] * case.outputs
    for i, w in zip(case.loss_outputs, weights, strict=True):
        grads[i] = w[None]  # c = 1: one reverse pass
    need = [i == case.at for i in range(len(case.names()))]
    back = gradients.backward(node, case.inputs(x), outs, grads, need)
    analytic = back[case.at]
    assert analytic is not None and analytic.shape == (1, *x.shape)
    loss = _loss(case, weights)
    h = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[index] = h
        numeric[index] = (loss(x + step) - loss(x - step)) / (2 * h)
    np.testing.assert_allclose(analytic[0], numeric, rtol=1e-5, atol=1e-6, err_msg=name)


def test_an_op_outside_the_table_is_not_differentiable() -> None:
    assert "Abs" not in gradients.OPS and "ai.onnx.ml.TreeEnsembleClassifier" not in gradients.OPS
    assert gradients.op_key("Scaler", "ai.onnx.ml") == "ai.onnx.ml.Scaler"


def test_unsupported_modes_are_refused_not_guessed() -> None:
    pad = Node("Pad", ("x", "p"), ("y",), {"mode": b"reflect"})
    with pytest.raises(gradients.Unsupported, match="reflect"):
        gradients.forward(pad, [np.zeros((1, 3)), i64([0, 1, 0, 1])])
    svm = CASES["ai.onnx.ml.SVMClassifier"]
    proba = Node(svm.op, ("x",), ("l", "p"), {**svm.attrs, "prob_a": [1.0], "prob_b": [0.0]})
    with pytest.raises(gradients.Unsupported, match="probability"):
        gradients.forward(proba, [svm.x.astype(np.float64)])
    assert onnx.defs.has("Gelu")  # the onnx package knows every op the table names


def test_list_strategies_reports_this_table() -> None:
    from labelwise_server.grpc.codec import GRADIENT_OPS as REPORTED

    assert tuple(REPORTED) == GRADIENT_OPS
