"""Hostile ONNX models for the corpus, built with the onnx helper API (a few hundred bytes each).

Every model takes one float input x [n, d] and gives `probabilities` [n, c] (or `logits`), so
each passes the service's signature checks and reaches the runtime; the hostile part is a
side branch whose scalar result is added to the logits times zero, so the runtime cannot
prune it. Data-dependent sizes come from the input values, where static shape inference
cannot see them.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.onnx_models import IR_VERSION, OPSET, serialize

FLOAT, INT64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def _x(d: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("x", FLOAT, ["n", d])


def _out(name: str, c: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, FLOAT, ["n", c])


def _const(name: str, value: object, dtype: type = np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(value, dtype), name)


def _with_side_branch(
    d: int, c: int, nodes: list[onnx.NodeProto], scalar: str, init: list[onnx.TensorProto]
) -> bytes:
    """softmax(x W + 0 · scalar): the side branch's result feeds the output."""
    head = [
        helper.make_node("MatMul", ["x", "W"], ["z"]),
        helper.make_node("Mul", [scalar, "zero"], ["nothing"]),
        helper.make_node("Add", ["z", "nothing"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    weights = [
        numpy_helper.from_array(np.ones((d, c), np.float32) / d, "W"),
        _const("zero", 0.0, np.float32),
    ]
    return serialize(nodes + head, [_x(d)], [_out("probabilities", c)], init + weights)


def _sum_of_x() -> onnx.NodeProto:
    # A scalar that depends on the input, so nothing below it is constant-folded at load.
    return helper.make_node("ReduceSum", ["x"], ["sx"], keepdims=0)


def _counting_body(name: str, inner: list[onnx.NodeProto] | None = None) -> onnx.GraphProto:
    """Loop body (i, cond, v) -> (cond, v + 1), or `inner` producing v_out from v.

    Names carry the body's name: ONNX wants them unique across nested scopes too.
    """
    one, v, v_out = f"{name}_one", f"{name}_v", f"{name}_v_out"
    nodes = inner or [
        helper.make_node(
            "Constant", [], [one], value=numpy_helper.from_array(np.array(1.0, np.float32))
        ),
        helper.make_node("Add", [v, one], [v_out]),
    ]
    nodes = [helper.make_node("Identity", [f"{name}_cond"], [f"{name}_cond_out"]), *nodes]
    return helper.make_graph(
        nodes,
        name,
        [
            helper.make_tensor_value_info(f"{name}_i", INT64, []),
            helper.make_tensor_value_info(f"{name}_cond", BOOL, []),
            helper.make_tensor_value_info(v, FLOAT, []),
        ],
        [
            helper.make_tensor_value_info(f"{name}_cond_out", BOOL, []),
            helper.make_tensor_value_info(v_out, FLOAT, []),
        ],
    )


def loop_bomb(d: int, c: int, trips: int = 10**12) -> bytes:
    """A Loop of `trips` iterations adding 1 to a scalar: no memory, endless CPU."""
    nodes = [
        _sum_of_x(),
        helper.make_node("Loop", ["trips", "true", "sx"], ["spun"], body=_counting_body("spin")),
    ]
    init = [_const("trips", trips), _const("true", True, np.bool_)]
    return _with_side_branch(d, c, nodes, "spun", init)


def nested_loop_if_bomb(d: int, c: int, trips: int = 10**6) -> bytes:
    """Loop(trips) whose body is an If whose then-branch is another Loop(trips): trips² steps."""
    inner_loop = helper.make_node(
        "Loop",
        ["inner_trips", "inner_true", "outer_v"],
        ["inner_result"],
        body=_counting_body("inner"),
    )
    then_branch = helper.make_graph(
        [
            helper.make_node("Constant", [], ["inner_trips"], value=_const("t", trips)),
            helper.make_node("Constant", [], ["inner_true"], value=_const("b", True, np.bool_)),
            inner_loop,
        ],
        "then",
        [],
        [helper.make_tensor_value_info("inner_result", FLOAT, [])],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Identity", ["outer_v"], ["same"])],
        "else",
        [],
        [helper.make_tensor_value_info("same", FLOAT, [])],
    )
    body = _counting_body(
        "outer",
        [
            helper.make_node(
                "If",
                ["outer_cond"],
                ["outer_v_out"],
                then_branch=then_branch,
                else_branch=else_branch,
            )
        ],
    )
    nodes = [_sum_of_x(), helper.make_node("Loop", ["trips", "true", "sx"], ["spun"], body=body)]
    init = [_const("trips", trips), _const("true", True, np.bool_)]
    return _with_side_branch(d, c, nodes, "spun", init)


def scan_bomb(d: int, c: int, steps: int = 10_000_000, width: int = 64) -> bytes:
    """Scan over `steps` rows, each step a [width, width] MatMul: 40 MB of input, minutes of CPU."""
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["s", "s"], ["ss"]),
            helper.make_node("Tanh", ["ss"], ["t"]),
            helper.make_node("Add", ["t", "row"], ["s_out"]),
        ],
        "step",
        [
            helper.make_tensor_value_info("s", FLOAT, [width, width]),
            helper.make_tensor_value_info("row", FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("s_out", FLOAT, [width, width])],
    )
    nodes = [
        _sum_of_x(),
        helper.make_node("Expand", ["sx", "rows_shape"], ["rows"]),  # [steps, 1]
        helper.make_node("Scan", ["s0", "rows"], ["s_final"], body=body, num_scan_inputs=1),
        helper.make_node("ReduceSum", ["s_final"], ["scanned"], keepdims=0),
    ]
    init = [
        _const("rows_shape", [steps, 1]),
        numpy_helper.from_array(np.eye(width, dtype=np.float32), "s0"),
    ]
    return _with_side_branch(d, c, nodes, "scanned", init)


def tile_bomb(d: int, c: int, repeats: tuple[int, int] = (5_000, 20_000)) -> bytes:
    """Tile x [n, d] by `repeats`: with n = 2, d = 4 and the default, 8·10⁸ floats (3.2 GB)."""
    nodes = [
        helper.make_node("Tile", ["x", "repeats"], ["tiled"]),
        helper.make_node("ReduceSum", ["tiled"], ["tsum"], keepdims=0),
    ]
    return _with_side_branch(d, c, nodes, "tsum", [_const("repeats", list(repeats))])


def expand_bomb(d: int, c: int, shape: tuple[int, int] = (40_000, 20_000)) -> bytes:
    """Expand a scalar of the input to `shape`: 8·10⁸ floats (3.2 GB) by default."""
    nodes = [
        _sum_of_x(),
        helper.make_node("Expand", ["sx", "shape"], ["expanded"]),
        helper.make_node("ReduceSum", ["expanded"], ["esum"], keepdims=0),
    ]
    return _with_side_branch(d, c, nodes, "esum", [_const("shape", list(shape))])


def constant_of_shape_bomb(d: int, c: int) -> bytes:
    """ConstantOfShape whose size is the input's first value: x[0, 0] = 1e9 asks for 4 GB.

    No static analysis sees the size: it is data.
    """
    nodes = [
        helper.make_node("Slice", ["x", "zero_i", "one_i", "zero_i"], ["first_row"]),
        helper.make_node("Slice", ["first_row", "zero_i", "one_i", "one_i"], ["first"]),  # [1, 1]
        helper.make_node("Reshape", ["first", "flat"], ["first_flat"]),  # [1]
        helper.make_node("Cast", ["first_flat"], ["size"], to=INT64),
        helper.make_node(
            "ConstantOfShape",
            ["size"],
            ["filled"],
            value=numpy_helper.from_array(np.array([1.0], np.float32)),
        ),
        helper.make_node("ReduceSum", ["filled"], ["csum"], keepdims=0),
    ]
    init = [_const("zero_i", [0]), _const("one_i", [1]), _const("flat", [1])]
    return _with_side_branch(d, c, nodes, "csum", init)


def resize_bomb(d: int, c: int, scale: float = 10_000.0) -> bytes:
    """Resize x as a [1, 1, n, d] image by `scale` on both axes: n = 2, d = 4 gives 3.2 GB."""
    nodes = [
        helper.make_node("Reshape", ["x", "image_shape"], ["image"]),
        helper.make_node("Resize", ["image", "", "scales"], ["big"], mode="nearest"),
        helper.make_node("ReduceSum", ["big"], ["rsum"], keepdims=0),
    ]
    init = [
        _const("image_shape", [1, 1, -1, d]),
        _const("scales", [1.0, 1.0, scale, scale], np.float32),
    ]
    return _with_side_branch(d, c, nodes, "rsum", init)


def wide_output_model(d: int, classes: int = 1 << 20) -> bytes:
    """logits = x · ones[d, classes]: a 4 MB-at-most weight made at load, [n, 2^20] output."""
    nodes = [
        helper.make_node(
            "ConstantOfShape",
            ["w_shape"],
            ["W"],
            value=numpy_helper.from_array(np.array([0.001], np.float32)),
        ),
        helper.make_node("MatMul", ["x", "W"], ["logits"]),
    ]
    return serialize(nodes, [_x(d)], [_out("logits", classes)], [_const("w_shape", [d, classes])])


def padded_initializer_model(d: int, c: int, extra_bytes: int) -> bytes:
    """A linear softmax model carrying an unused initializer of extra_bytes."""
    pad = numpy_helper.from_array(np.zeros(extra_bytes // 4, np.float32), "pad")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["z"]),
        helper.make_node("Softmax", ["z"], ["probabilities"], axis=-1),
    ]
    w = numpy_helper.from_array(np.ones((d, c), np.float32), "W")
    return serialize(nodes, [_x(d)], [_out("probabilities", c)], [w, pad])


def recursive_function_model(d: int, c: int, domain: str) -> bytes:
    """A model-local function `Recur` in `domain` that calls itself; the graph calls it once."""
    recur = helper.make_function(
        domain,
        "Recur",
        ["a"],
        ["b"],
        [helper.make_node("Recur", ["a"], ["b"], domain=domain)],
        opset_imports=[*OPSET, helper.make_opsetid(domain, 1)] if domain else OPSET,
    )
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["z"]),
        helper.make_node("Recur", ["z"], ["logits"], domain=domain),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "test",
        [_x(d)],
        [_out("probabilities", c)],
        [numpy_helper.from_array(np.ones((d, c), np.float32), "W")],
    )
    opset = [*OPSET, helper.make_opsetid(domain, 1)] if domain else OPSET
    model = helper.make_model(graph, opset_imports=opset, ir_version=IR_VERSION, functions=[recur])
    return model.SerializeToString()


def typed_output_model(d: int, c: int, kind: str) -> bytes:
    """A model whose only output is not a float tensor: int64, string, sequence or map."""
    w = numpy_helper.from_array(np.ones((d, c), np.float32), "W")
    base = [helper.make_node("MatMul", ["x", "W"], ["z"])]
    if kind == "int64":
        nodes = [*base, helper.make_node("Cast", ["z"], ["out"], to=INT64)]
        out = helper.make_tensor_value_info("out", INT64, ["n", c])
    elif kind == "string":
        nodes = [*base, helper.make_node("Cast", ["z"], ["out"], to=TensorProto.STRING)]
        out = helper.make_tensor_value_info("out", TensorProto.STRING, ["n", c])
    elif kind == "sequence":
        nodes = [*base, helper.make_node("SequenceConstruct", ["z", "z"], ["out"])]
        out = helper.make_tensor_sequence_value_info("out", FLOAT, ["n", c])
    elif kind == "map":
        # ai.onnx.ml ZipMap: what scikit-learn classifiers export (a sequence of maps).
        nodes = [
            *base,
            helper.make_node(
                "ZipMap", ["z"], ["out"], domain="ai.onnx.ml", classlabels_int64s=list(range(c))
            ),
        ]
        out = helper.make_value_info(
            "out",
            helper.make_sequence_type_proto(
                helper.make_map_type_proto(INT64, helper.make_tensor_type_proto(FLOAT, []))
            ),
        )
    elif kind == "lying_float":
        # Declared float, computed int64: the runtime's type check must refuse it.
        nodes = [*base, helper.make_node("Cast", ["z"], ["out"], to=INT64)]
        out = _out("out", c)
    else:
        raise ValueError(kind)
    opset = [*OPSET, helper.make_opsetid("ai.onnx.ml", 3)]
    return serialize(nodes, [_x(d)], [out], [w], opset)


def int_input_model(c: int) -> bytes:
    """An int64 input [n, d]: the pool rows must be floating point."""
    nodes = [
        helper.make_node("Cast", ["x"], ["xf"], to=FLOAT),
        helper.make_node("Softmax", ["xf"], ["probabilities"], axis=-1),
    ]
    x = helper.make_tensor_value_info("x", INT64, ["n", c])
    return serialize(nodes, [x], [_out("probabilities", c)], [])
