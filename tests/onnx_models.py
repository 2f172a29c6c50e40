"""ONNX models built in the tests with the onnx helper API (no downloads), and their NumPy twins."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 9  # what the pinned onnxruntime reads
OPSET = [helper.make_opsetid("", 17)]


def serialize(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: list[onnx.TensorProto],
    opset: list[onnx.OperatorSetIdProto] | None = None,
) -> bytes:
    graph = helper.make_graph(nodes, "test", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=opset or OPSET, ir_version=IR_VERSION)
    return model.SerializeToString()


def _input(d: int | str, dtype: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("x", dtype, ["n", d])


def _output(name: str, width: int | str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", width])


@dataclass(frozen=True)
class Linear:
    """logits = x W + b, optionally followed by a Softmax: the model and its NumPy forward pass."""

    w: npt.NDArray[np.float32]  # [d, c]
    b: npt.NDArray[np.float32]  # [c]
    softmax: bool = True

    @classmethod
    def random(cls, rng: np.random.Generator, d: int, c: int, softmax: bool = True) -> "Linear":
        return cls(
            rng.normal(size=(d, c)).astype(np.float32),
            rng.normal(size=c).astype(np.float32),
            softmax,
        )

    def onnx(self) -> bytes:
        d, c = self.w.shape
        nodes = [helper.make_node("MatMul", ["x", "W"], ["z"]),
                 helper.make_node("Add", ["z", "b"], ["logits"])]  # fmt: skip
        out = "logits"
        if self.softmax:
            nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1))
            out = "probabilities"
        init = [numpy_helper.from_array(self.w, "W"), numpy_helper.from_array(self.b, "b")]
        return serialize(nodes, [_input(d)], [_output(out, c)], init)

    def logits(self, x: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        return np.asarray(x, np.float64) @ self.w.astype(np.float64) + self.b

    def logits_jacobian(
        self, x: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        jac = np.broadcast_to(self.w.T.astype(np.float64), (x.shape[0], *self.w.T.shape))
        return self.logits(x), jac.copy()


@dataclass(frozen=True)
class Mlp:
    """x -> Gemm -> Tanh (the embeddings) -> MatMul + Add -> Softmax, with a NumPy twin."""

    w1: npt.NDArray[np.float32]  # [d, h]
    b1: npt.NDArray[np.float32]
    w2: npt.NDArray[np.float32]  # [h, c]
    b2: npt.NDArray[np.float32]
    activation: str = "Tanh"

    @classmethod
    def random(
        cls, rng: np.random.Generator, d: int, h: int, c: int, activation: str = "Tanh"
    ) -> "Mlp":
        def f32(*shape: int, scale: float = 1.0) -> npt.NDArray[np.float32]:
            return (scale * rng.normal(size=shape)).astype(np.float32)

        return cls(
            f32(d, h, scale=d**-0.5), f32(h), f32(h, c, scale=h**-0.5 * 3), f32(c), activation
        )

    def onnx(self, embeddings: bool = True) -> bytes:
        d, h = self.w1.shape
        c = self.w2.shape[1]
        nodes = [
            # Gemm with transB: the weight is stored [h, d], as PyTorch exports Linear.
            helper.make_node("Gemm", ["x", "W1t", "b1"], ["pre"], transB=1),
            helper.make_node(self.activation, ["pre"], ["hidden"]),
            helper.make_node("MatMul", ["hidden", "W2"], ["z"]),
            helper.make_node("Add", ["z", "b2"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ]
        outputs = [_output("probabilities", c)]
        if embeddings:
            outputs.append(_output("hidden", h))
        init = [
            numpy_helper.from_array(np.ascontiguousarray(self.w1.T), "W1t"),
            numpy_helper.from_array(self.b1, "b1"),
            numpy_helper.from_array(self.w2, "W2"),
            numpy_helper.from_array(self.b2, "b2"),
        ]
        return serialize(nodes, [_input(d)], outputs, init)

    def hidden(self, x: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        pre = np.asarray(x, np.float64) @ self.w1.astype(np.float64) + self.b1
        return np.tanh(pre) if self.activation == "Tanh" else np.maximum(pre, 0.0)

    def logits(self, x: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        return self.hidden(x) @ self.w2.astype(np.float64) + self.b2

    def probabilities(self, x: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        z = self.logits(x)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def dropout_model(rng: np.random.Generator, d: int, c: int, *, training_input: bool) -> bytes:
    """x W1 -> Relu -> Dropout(0.5, active) -> W2 -> Softmax.

    training_input: dropout is switched on by a boolean `training_mode` graph input; otherwise
    the graph is exported in training mode (Dropout's training_mode is a constant true).
    """
    h = 16
    w1 = numpy_helper.from_array(rng.normal(size=(d, h)).astype(np.float32), "W1")
    w2 = numpy_helper.from_array(rng.normal(size=(h, c)).astype(np.float32), "W2")
    ratio = numpy_helper.from_array(np.array(0.5, np.float32), "ratio")
    init = [w1, w2, ratio]
    inputs = [_input(d)]
    if training_input:
        inputs.append(helper.make_tensor_value_info("training_mode", TensorProto.BOOL, []))
    else:
        init.append(numpy_helper.from_array(np.array(True), "training_mode"))
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Dropout", ["r", "ratio", "training_mode"], ["dropped"]),
        helper.make_node("MatMul", ["dropped", "W2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    return serialize(nodes, inputs, [_output("probabilities", c)], init)


def external_data_model(d: int, c: int, location: str = "../../etc/passwd") -> bytes:
    """A linear model whose weight claims to live in an external file."""
    weight = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[d, c])
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(4 * d * c))):
        weight.external_data.add(key=key, value=value)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["logits"])]
    return serialize(nodes, [_input(d)], [_output("logits", c)], [weight])


def external_constant_model(d: int, c: int) -> bytes:
    """The same trick hidden in a Constant node's tensor attribute."""
    weight = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[d, c])
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="../../etc/passwd")
    nodes = [helper.make_node("Constant", [], ["W"], value=weight),
             helper.make_node("MatMul", ["x", "W"], ["logits"])]  # fmt: skip
    return serialize(nodes, [_input(d)], [_output("logits", c)], [])


def custom_op_model(d: int, c: int) -> bytes:
    nodes = [helper.make_node("EvilKernel", ["x"], ["logits"], domain="com.example.evil")]
    opset = [*OPSET, helper.make_opsetid("com.example.evil", 1)]
    return serialize(nodes, [_input(d)], [_output("logits", c)], [], opset)


def contrib_op_model(d: int, c: int) -> bytes:
    """A com.microsoft contrib op (FusedMatMul): refused by the domain allowlist."""
    w = numpy_helper.from_array(np.ones((d, c), np.float32), "W")
    nodes = [helper.make_node("FusedMatMul", ["x", "W"], ["logits"], domain="com.microsoft")]
    opset = [*OPSET, helper.make_opsetid("com.microsoft", 1)]
    return serialize(nodes, [_input(d)], [_output("logits", c)], [w], opset)


def nan_model(d: int, c: int) -> bytes:
    """log(x W − 10): NaN wherever x W < 10, i.e. almost everywhere."""
    w = numpy_helper.from_array(np.ones((d, c), np.float32), "W")
    ten = numpy_helper.from_array(np.array(10.0, np.float32), "ten")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["z"]),
             helper.make_node("Sub", ["z", "ten"], ["shifted"]),
             helper.make_node("Log", ["shifted"], ["logits"])]  # fmt: skip
    return serialize(nodes, [_input(d)], [_output("logits", c)], [w, ten])


def new_opset_model(d: int, c: int) -> bytes:
    w = numpy_helper.from_array(np.ones((d, c), np.float32), "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["logits"])]
    return serialize(nodes, [_input(d)], [_output("logits", c)], [w],
                     [helper.make_opsetid("", 99)])  # fmt: skip


def padded_model(d: int, c: int, extra_bytes: int) -> bytes:
    """A linear model carrying an unused initializer of extra_bytes (an oversize model)."""
    w = numpy_helper.from_array(np.ones((d, c), np.float32), "W")
    pad = numpy_helper.from_array(np.zeros(extra_bytes // 4, np.float32), "pad")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["logits"])]
    return serialize(nodes, [_input(d)], [_output("logits", c)], [w, pad])


def fixed_batch_model(d: int, c: int) -> bytes:
    w = numpy_helper.from_array(np.ones((d, c), np.float32), "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["logits"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, d])]
    return serialize(nodes, inputs, [_output("logits", c)], [w])


def unsupported_gradient_model(d: int, c: int) -> bytes:
    """Softmax(Abs(x W)): runs fine, but deepfool cannot differentiate Abs."""
    w = numpy_helper.from_array(np.ones((d, c), np.float32), "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["z"]),
             helper.make_node("Abs", ["z"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["p"], axis=-1)]  # fmt: skip
    return serialize(nodes, [_input(d)], [_output("p", c)], [w])


# ---- Hostile sizes (issue 13): outputs and intermediates far larger than the input ----------


def _softmax_of(node_output: str) -> onnx.NodeProto:
    return helper.make_node("Softmax", [node_output], ["probabilities"], axis=-1)


def wide_output_model(d: int, c: int) -> bytes:
    """[n, c] class scores for any c from a few bytes: ReduceSum(x) [n, 1] expanded to [1, c]."""
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=1),
        helper.make_node("Expand", ["s", "shape"], ["z"]),
        _softmax_of("z"),
    ]
    init = [numpy_helper.from_array(np.array([1], np.int64), "axes"),
            numpy_helper.from_array(np.array([1, c], np.int64), "shape")]  # fmt: skip
    return serialize(nodes, [_input(d)], [_output("probabilities", c)], init)


def tile_model(d: int, repeats: int) -> bytes:
    """Tile x [n, d] to [n, d * repeats]: the output grows with the rows."""
    nodes = [helper.make_node("Tile", ["x", "repeats"], ["z"]), _softmax_of("z")]
    init = [numpy_helper.from_array(np.array([1, repeats], np.int64), "repeats")]
    return serialize(nodes, [_input(d)], [_output("probabilities", "c")], init)


def resize_model(d: int, scale: float) -> bytes:
    """Resize x [n, d] by [1, scale] (nearest): the output widens by scale."""
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["z"], mode="nearest"),
             _softmax_of("z")]  # fmt: skip
    init = [numpy_helper.from_array(np.array([1.0, scale], np.float32), "scales")]
    return serialize(nodes, [_input(d)], [_output("probabilities", "c")], init)


def constant_bomb_model(d: int, shape: list[int], in_if: bool = False) -> bytes:
    """A ConstantOfShape of a constant shape (bytes: 4 * prod(shape)) added to the pool's
    scores, so it is live in every run; in_if puts it in both branches of an If."""
    shape_init = numpy_helper.from_array(np.array(shape, np.int64), "big_shape")
    bomb = helper.make_node("ConstantOfShape", ["big_shape"], ["big"])
    reduce = helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0)
    nodes: list[onnx.NodeProto] = []
    if in_if:

        def branch(name: str) -> onnx.GraphProto:
            return helper.make_graph(
                [helper.make_node("ConstantOfShape", ["big_shape"], ["big_" + name])], name, [],
                [helper.make_tensor_value_info("big_" + name, TensorProto.FLOAT, shape)],
            )  # fmt: skip

        nodes += [
            helper.make_node("ReduceSum", ["x"], ["xsum"], keepdims=0),
            helper.make_node("Greater", ["xsum", "zero"], ["cond"]),
            helper.make_node("If", ["cond"], ["big"], then_branch=branch("a"),
                             else_branch=branch("b")),
        ]  # fmt: skip
    else:
        nodes.append(bomb)
    nodes += [reduce, helper.make_node("Add", ["x", "total"], ["z"]), _softmax_of("z")]
    init = [shape_init, numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    return serialize(nodes, [_input(d)], [_output("probabilities", d)], init)


def value_sized_model(d: int) -> bytes:
    """[n, w] scores where w = max(x): a width only the input's values decide
    (ConstantOfShape of a shape computed from x), so only a run can tell it."""
    nodes = [
        helper.make_node("Shape", ["x"], ["xshape"]),
        helper.make_node("Slice", ["xshape", "s0", "s1"], ["rows"]),
        helper.make_node("ReduceMax", ["x"], ["peak"], keepdims=0),
        helper.make_node("Cast", ["peak"], ["peak_int"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["peak_int", "one"], ["width"]),
        helper.make_node("Concat", ["rows", "width"], ["out_shape"], axis=0),
        helper.make_node("ConstantOfShape", ["out_shape"], ["z"],
                         value=numpy_helper.from_array(np.array([1.0], np.float32))),
        _softmax_of("z"),
    ]  # fmt: skip
    init = [numpy_helper.from_array(np.array([0], np.int64), "s0"),
            numpy_helper.from_array(np.array([1], np.int64), "s1"),
            numpy_helper.from_array(np.array([1], np.int64), "one")]  # fmt: skip
    return serialize(nodes, [_input(d)], [_output("probabilities", "w")], init)


def reshape_failure_model(d: int) -> bytes:
    """A model ONNX Runtime accepts but cannot run: Reshape [n, d] to [-1, d + 1]."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["z"]), _softmax_of("z")]
    init = [numpy_helper.from_array(np.array([-1, d + 1], np.int64), "shape")]
    return serialize(nodes, [_input(d)], [_output("probabilities", d + 1)], init)


@dataclass(frozen=True)
class Cnn:
    """A small vision head as exporters write it: x [n, s*s] -> Reshape [n, 1, s, s] -> Conv
    (3×3, padded) -> Gelu -> MaxPool 2×2 -> LayerNormalization over [C, H, W] -> AveragePool
    2×2 -> Flatten -> Gemm -> logits [n, c]."""

    side: int
    conv: npt.NDArray[np.float32]  # [k, 1, 3, 3]
    conv_bias: npt.NDArray[np.float32]  # [k]
    scale: npt.NDArray[np.float32]  # [k, s/2, s/2]
    bias: npt.NDArray[np.float32]
    dense: npt.NDArray[np.float32]  # [c, k * (s/4)^2]
    dense_bias: npt.NDArray[np.float32]  # [c]

    @classmethod
    def random(cls, rng: np.random.Generator, side: int = 8, k: int = 4, c: int = 3) -> "Cnn":
        def f32(*shape: int, scale: float = 1.0) -> npt.NDArray[np.float32]:
            return (scale * rng.normal(size=shape)).astype(np.float32)

        half, quarter = side // 2, side // 4
        scale = (1.0 + f32(k, half, half, scale=0.1)).astype(np.float32)
        conv, conv_bias = f32(k, 1, 3, 3, scale=0.5), f32(k, scale=0.1)
        dense = f32(c, k * quarter * quarter)
        return cls(side, conv, conv_bias, scale, f32(k, half, half, scale=0.1), dense, f32(c))

    def onnx(self) -> bytes:
        s = self.side
        nodes = [
            helper.make_node("Reshape", ["x", "shape"], ["image"]),
            helper.make_node("Conv", ["image", "K", "Kb"], ["conv"], pads=[1, 1, 1, 1]),
            helper.make_node("Gelu", ["conv"], ["act"]),
            helper.make_node("MaxPool", ["act"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("LayerNormalization", ["pooled", "S", "B"], ["normed"], axis=1),
            helper.make_node(
                "AveragePool", ["normed"], ["small"], kernel_shape=[2, 2], strides=[2, 2]
            ),
            helper.make_node("Flatten", ["small"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "b"], ["logits"], transB=1),
        ]
        init = [
            numpy_helper.from_array(np.array([-1, 1, s, s], np.int64), "shape"),
            numpy_helper.from_array(self.conv, "K"),
            numpy_helper.from_array(self.conv_bias, "Kb"),
            numpy_helper.from_array(self.scale, "S"),
            numpy_helper.from_array(self.bias, "B"),
            numpy_helper.from_array(self.dense, "W"),
            numpy_helper.from_array(self.dense_bias, "b"),
        ]
        c = self.dense.shape[0]
        return serialize(nodes, [_input(s * s)], [_output("logits", c)], init,
                         [helper.make_opsetid("", 20)])  # fmt: skip


def wide_conv_model(side: int, channels: int, c: int) -> bytes:
    """x -> Reshape -> Conv with many channels -> GlobalAveragePool -> Flatten: an intermediate
    of channels × side² values a row, too many for deepfool's gradient memory bound."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["image"]),
        helper.make_node("Conv", ["image", "K"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["conv"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "W"], ["logits"], transB=1),
    ]
    init = [
        numpy_helper.from_array(np.array([-1, 1, side, side], np.int64), "shape"),
        numpy_helper.from_array(rng.normal(size=(channels, 1, 3, 3)).astype(np.float32), "K"),
        numpy_helper.from_array(rng.normal(size=(c, channels)).astype(np.float32), "W"),
    ]
    return serialize(nodes, [_input(side * side)], [_output("logits", c)], init)


def attention_head_model(rng: np.random.Generator, tokens: int = 4, width: int = 6,
                         c: int = 3) -> bytes:  # fmt: skip
    """A text head as older PyTorch exports write it: x [n, tokens*width] -> Reshape -> a
    hand-written LayerNorm (ReduceMean, Sub, Pow, Sqrt, Div) -> MatMul to queries and keys
    (Split) -> Transpose, MatMul, Softmax attention -> Gelu by Erf -> Slice of the first token,
    Concat with the mean token (ReduceMean), Squeeze -> Where-masked Gemm -> HardSigmoid, Clip,
    Reciprocal, Min/Max, Softplus mixed in -> logits [n, c]."""

    def f32(*shape: int, scale: float = 1.0) -> npt.NDArray[np.float32]:
        return (scale * rng.normal(size=shape)).astype(np.float32)

    t, w = tokens, width
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["seq"]),
        helper.make_node("ReduceMean", ["seq"], ["mu"], axes=[-1], keepdims=1),
        helper.make_node("Sub", ["seq", "mu"], ["centred"]),
        helper.make_node("Pow", ["centred", "two"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["var"], axes=[-1], keepdims=1),
        helper.make_node("Add", ["var", "eps"], ["var_eps"]),
        helper.make_node("Sqrt", ["var_eps"], ["std"]),
        helper.make_node("Div", ["centred", "std"], ["normed"]),
        helper.make_node("MatMul", ["normed", "Wqk"], ["qk"]),
        helper.make_node("Split", ["qk", "halves"], ["q", "k"], axis=-1),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["attn"], axis=-1),
        helper.make_node("MatMul", ["attn", "normed"], ["mixed"]),
        helper.make_node("Div", ["mixed", "sqrt2"], ["scaled"]),
        helper.make_node("Erf", ["scaled"], ["erf"]),
        helper.make_node("Add", ["erf", "one"], ["erf1"]),
        helper.make_node("Mul", ["mixed", "erf1"], ["gelu2"]),
        helper.make_node("Mul", ["gelu2", "half"], ["gelu"]),
        helper.make_node("Slice", ["gelu", "s0", "s1", "s_axis"], ["first"]),
        helper.make_node("ReduceMean", ["gelu"], ["mean_token"], axes=[1], keepdims=1),
        helper.make_node("Concat", ["first", "mean_token"], ["pair"], axis=1),
        helper.make_node("Reshape", ["pair", "flat_shape"], ["flat"]),
        helper.make_node("Where", ["mask", "flat", "zero"], ["kept"]),
        helper.make_node("Gemm", ["kept", "W", "b"], ["pre"], transB=1),
        helper.make_node("HardSigmoid", ["pre"], ["hs"]),
        helper.make_node("Softplus", ["pre"], ["sp"]),
        helper.make_node("Clip", ["pre", "lo", "hi"], ["clipped"]),
        helper.make_node("Add", ["sp", "one"], ["sp1"]),
        helper.make_node("Reciprocal", ["sp1"], ["rec"]),
        helper.make_node("Max", ["clipped", "hs"], ["mx"]),
        helper.make_node("Min", ["mx", "rec"], ["mn"]),
        helper.make_node("Sum", ["pre", "mn", "rec"], ["logits"]),
    ]
    init = [
        numpy_helper.from_array(np.array([-1, t, w], np.int64), "shape"),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
        numpy_helper.from_array(np.array(1e-5, np.float32), "eps"),
        numpy_helper.from_array(f32(w, 2 * w, scale=w**-0.5), "Wqk"),
        numpy_helper.from_array(np.array([w, w], np.int64), "halves"),
        numpy_helper.from_array(np.array(np.sqrt(2.0), np.float32), "sqrt2"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array([0], np.int64), "s0"),
        numpy_helper.from_array(np.array([1], np.int64), "s1"),
        numpy_helper.from_array(np.array([1], np.int64), "s_axis"),
        numpy_helper.from_array(np.array([-1, 2 * w], np.int64), "flat_shape"),
        numpy_helper.from_array(rng.random((1, 2 * w)) > 0.2, "mask"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(f32(c, 2 * w), "W"),
        numpy_helper.from_array(f32(c), "b"),
        numpy_helper.from_array(np.array(-0.5, np.float32), "lo"),
        numpy_helper.from_array(np.array(0.5, np.float32), "hi"),
    ]
    return serialize(nodes, [_input(t * w)], [_output("logits", c)], init)
