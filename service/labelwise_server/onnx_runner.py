"""The one module that touches onnx and onnxruntime: checking, caching and running models.

Models come from callers, so they are hostile input (grpc-service-facts.md §5).
load_model parses the bytes with protobuf alone (no file access) and rejects,
before any session exists: models over the size limit, external data anywhere
(initializers, sparse initializers, tensor attributes, subgraphs, functions),
operator domains other than "", "ai.onnx" and "ai.onnx.ml", opsets newer than
the runtime's, too many nodes, and inputs or outputs that cannot fit a pool.
Sessions run on the CPU provider only, from ONNX format only, with no custom-op
libraries, a fixed thread count and no spinning. Every rejection is a
ModelRejected naming the request field.

run_models feeds the pool through the models chunk by chunk, so memory stays
O(chunk) for any n, and checks the stop callback between chunks. Strategies
never see this module: deepfool gets a plain logits-and-Jacobian callable
(GradientModel, a NumPy forward and backward pass over the ops of gradients.py).
"""

from __future__ import annotations  # onnx and onnxruntime types without importing them

import hashlib
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from labelwise_server import gradients, reasons
from labelwise_server.errors import DeadlineExceeded, ModelNotCached, ModelRejected
from labelwise_server.request import MAX_MODELS
from labelwise_server.strategies._types import StopCheck

if TYPE_CHECKING:
    import onnx
    import onnxruntime as ort

# onnx and onnxruntime are imported on first use (they take seconds to import): a server
# that never gets a model, and every request without one, never loads them.

ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
# Newest opsets the pinned onnxruntime implements; newer ones are refused up front.
MAX_OPSET = {"": 23, "ai.onnx": 23, "ai.onnx.ml": 5}
MIN_IR_VERSION, MAX_IR_VERSION = 3, 11
MAX_NODES = 100_000
TRAINING_MODE_INPUT = "training_mode"
# Bytes of model input per inference call when the request does not say.
DEFAULT_CHUNK_BYTES = 4 << 20
# Largest tensor a model may compute independently of the pool (shape inference on load),
# and largest bytes of outputs (or of one intermediate) one inference chunk may hold;
# the default chunk shrinks below it, a requested inference_batch_rows over it is refused.
MAX_STATIC_TENSOR_BYTES = 256 << 20
MAX_CHUNK_OUTPUT_BYTES = 256 << 20
# Rows of the probe run that measures a model's actual output widths before the pool runs;
# one row when shape inference found sizes that depend on the input's values.
PROBE_ROWS = 16
# Elements a request's model outputs may hold when the caller passes no limit (the default
# of --max-pool-elements).
DEFAULT_MAX_ELEMENTS = 1 << 28
# The batch size symbol given to the model input for shape inference.
_BATCH = "__labelwise_n__"
# Initializers bigger than this are left out of shape inference (as typed inputs): weights,
# not shapes, and copying them would double a large model's memory.
_INFERENCE_INITIALIZER_BYTES = 64 << 10
# onnx.TensorProto.DataType numbers (FLOAT, DOUBLE, FLOAT16, BOOL) and DataLocation.EXTERNAL.
_FLOAT_TYPES: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.float32),
    11: np.dtype(np.float64),
    10: np.dtype(np.float16),
}
_BOOL = 9
# Bytes per element by onnx.TensorProto.DataType number (8 for any other).
_ITEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}
_EXTERNAL = 1
_SHA256_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class ModelLimits:
    max_bytes: int = 64 << 20
    intra_op_threads: int = 1


@dataclass
class OnnxModel:
    """A checked model: its proto, input and outputs, and a session made on first use."""

    sha256: str
    nbytes: int
    proto: onnx.ModelProto
    input_name: str
    input_dtype: np.dtype[Any]
    input_width: int | None  # None: not fixed by the graph
    outputs: list[str]  # floating-point graph outputs, in graph order
    training_mode_input: bool
    dropout_nodes: int
    limits: ModelLimits
    _session: ort.InferenceSession | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _gradient: GradientModel | None = None

    session_bytes: int = 0  # resident memory the session took when made (measured)
    # From shape inference on load: each output's static width (its [n, w] w), the bytes per
    # pool row of the largest intermediate, and whether some size depends on input values.
    output_widths: dict[str, int] = field(default_factory=dict)
    row_bytes: int = 0
    data_dependent: bool = True

    def session(self, field: str) -> ort.InferenceSession:
        with self._lock:
            if self._session is None:
                before = resident_bytes()
                self._session = _make_session(self.proto.SerializeToString(), self.limits, field)
                self.session_bytes = max(0, resident_bytes() - before)
            return self._session

    @property
    def cost(self) -> int:
        """What keeping this model costs: its bytes and its session's measured memory."""
        return self.nbytes + self.session_bytes

    def gradient(self, field: str, output: str, output_is_probabilities: bool) -> GradientModel:
        with self._lock:
            if self._gradient is None or self._gradient.output != output:
                self._gradient = GradientModel(self, field, output, output_is_probabilities)
            return self._gradient


def import_runtime() -> None:
    """Import onnx and onnxruntime now (a work process does, before its limits, once its
    worker has seen a model), so that the first call with a model does not pay for it."""
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401


def _reject(field: str, description: str, reason: str) -> ModelRejected:
    return ModelRejected(field, description, reason=reason)


_ORT_PREFIX = re.compile(r"\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*")
_SOURCE_PATH = re.compile(r"(?:[\w.+-]*/)+[\w.+-]+\.(?:cc|cpp|cxx|c|h|hpp|cu|py)(?::\d+)?")
_CPP_SIGNATURE = re.compile(r"(?:[\w~<>*&]+::)+[\w~<>]+\s*\([^()]*\)(?:\s*const)?")
_CPP_NAME = re.compile(r"(?:\w+::)+[\w~]+(?:<[^<>]*>)?[&*]?")
_ENFORCE = " was false."  # ORT_ENFORCE's condition comes before it: source, not a reason
_CONTROL = re.compile(r"\x1b\[[0-9;]*m|[\x00-\x1f\x7f]+")
MAX_MESSAGE_CHARS = 200


def runtime_message(err: BaseException) -> str:
    """What onnx or onnxruntime said, fit for a caller: no source paths, no C++ signatures,
    no status prefixes, one line, at most MAX_MESSAGE_CHARS characters."""
    text = _CONTROL.sub(" ", str(err))
    text = text.strip()
    running = re.search(r"while running (\w+) node\b", text)
    if "Status Message:" in text:
        text = text.split("Status Message:", 1)[1]
    text = _CPP_NAME.sub("", _CPP_SIGNATURE.sub("", _SOURCE_PATH.sub("", text)))
    text = _ORT_PREFIX.sub("", text)  # once per status ORT wrapped in another
    if _ENFORCE in text:
        text = text.split(_ENFORCE, 1)[1]
    if running:
        text = f"{running.group(1)} node: {text}"
    text = " ".join(text.split()).strip(" :")
    if not text:
        return type(err).__name__
    if len(text) > MAX_MESSAGE_CHARS:
        cut = text[:MAX_MESSAGE_CHARS]
        end = cut.rfind(". ")
        text = (
            cut[: end + 1]
            if end >= MAX_MESSAGE_CHARS // 2
            else cut[: MAX_MESSAGE_CHARS - 3] + "..."
        )
    return text


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tensors_of_attribute(attr: onnx.AttributeProto) -> Iterator[onnx.TensorProto]:
    if attr.HasField("t"):
        yield attr.t
    yield from attr.tensors
    if attr.HasField("sparse_tensor"):
        yield attr.sparse_tensor.values
        yield attr.sparse_tensor.indices
    for sparse in attr.sparse_tensors:
        yield sparse.values
        yield sparse.indices


def _graphs_of_attribute(attr: onnx.AttributeProto) -> Iterator[onnx.GraphProto]:
    if attr.HasField("g"):
        yield attr.g
    yield from attr.graphs


def _walk_nodes(nodes: Sequence[onnx.NodeProto]) -> Iterator[tuple[onnx.NodeProto, list[Any]]]:
    """Every node, with the tensors and subgraphs of its attributes, recursively."""
    for node in nodes:
        tensors: list[Any] = []
        for attr in node.attribute:
            tensors.extend(_tensors_of_attribute(attr))
            for graph in _graphs_of_attribute(attr):
                yield from _walk_graph(graph)
        yield node, tensors


def _walk_graph(graph: onnx.GraphProto) -> Iterator[tuple[onnx.NodeProto, list[Any]]]:
    loose: list[Any] = list(graph.initializer)
    for sparse in graph.sparse_initializer:
        loose += [sparse.values, sparse.indices]
    import onnx

    yield onnx.NodeProto(op_type="<initializers>"), loose
    yield from _walk_nodes(graph.node)


def _check_structure(model: onnx.ModelProto, field: str) -> None:
    if not MIN_IR_VERSION <= model.ir_version <= MAX_IR_VERSION:
        raise _reject(
            field,
            f"must have an IR version in [{MIN_IR_VERSION}, {MAX_IR_VERSION}]; "
            f"got {model.ir_version}",
            reasons.MODEL_VERSION,
        )
    for opset in model.opset_import:
        if opset.domain not in ALLOWED_DOMAINS:
            raise _reject(
                field,
                f"must import only the standard operator domains {sorted(ALLOWED_DOMAINS)} "
                f"(custom operators are not loaded); got domain {opset.domain!r}",
                reasons.MODEL_CUSTOM_OP,
            )
        if opset.version > MAX_OPSET[opset.domain]:
            raise _reject(
                field,
                f"must use opset <= {MAX_OPSET[opset.domain]} for domain {opset.domain!r}; "
                f"got {opset.version}",
                reasons.MODEL_VERSION,
            )
    count = 0
    walks = [_walk_graph(model.graph)] + [_walk_nodes(f.node) for f in model.functions]
    for walk in walks:
        for node, tensors in walk:
            count += 1
            if node.domain not in ALLOWED_DOMAINS:
                raise _reject(
                    field,
                    f"must use only standard operators; node {node.name or node.op_type!r} "
                    f"is {node.op_type} from domain {node.domain!r}",
                    reasons.MODEL_CUSTOM_OP,
                )
            for tensor in tensors:
                if tensor.data_location == _EXTERNAL or len(tensor.external_data):
                    where = {entry.key: entry.value for entry in tensor.external_data}
                    raise _reject(
                        field,
                        "must hold all its weights inline; tensor "
                        f"{tensor.name!r} refers to external data "
                        f"{where.get('location', '')!r}, which the server never reads",
                        reasons.MODEL_EXTERNAL_DATA,
                    )
    if count > MAX_NODES:
        raise _reject(
            field, f"must have at most {MAX_NODES} nodes; got {count}", reasons.MODEL_TOO_LARGE
        )


def _dims(value: onnx.ValueInfoProto) -> list[int | None] | None:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]


@dataclass(frozen=True)
class _Shapes:
    """What shape inference says of a model's main graph."""

    output_widths: dict[str, int]  # graph output -> w of its [n, w], where static
    row_bytes: int  # bytes per pool row of the largest value whose only free size is n
    data_dependent: bool  # some value has a size inference could not tie to n or a constant


def _inference_copy(model: onnx.ModelProto, input_name: str) -> onnx.ModelProto:
    """The model for shape inference: the batch size named, big initializers as typed inputs
    (no copy of their bytes)."""
    import onnx

    slim = onnx.ModelProto()
    slim.ir_version = model.ir_version
    slim.opset_import.extend(model.opset_import)
    slim.functions.extend(model.functions)
    graph = model.graph
    target = slim.graph
    target.name = graph.name
    target.node.extend(graph.node)
    for value in graph.output:  # declared shapes are promises: let inference say
        copy = target.output.add()
        copy.name = value.name
        copy.type.tensor_type.elem_type = value.type.tensor_type.elem_type
    target.sparse_initializer.extend(graph.sparse_initializer)
    declared = {value.name for value in graph.input}
    for value in graph.input:
        copy = target.input.add()
        copy.CopyFrom(value)
        if value.name == input_name and len(copy.type.tensor_type.shape.dim):
            copy.type.tensor_type.shape.dim[0].Clear()
            copy.type.tensor_type.shape.dim[0].dim_param = _BATCH
    for tensor in graph.initializer:
        if tensor.ByteSize() <= _INFERENCE_INITIALIZER_BYTES:
            target.initializer.append(tensor)
            continue
        if tensor.name not in declared:
            target.input.append(
                onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims)
            )
    return slim


def _infer_shapes(model: onnx.ModelProto, input_name: str, field: str) -> _Shapes:
    """Output widths and working memory from ONNX shape inference; refuse any value that
    holds more than MAX_STATIC_TENSOR_BYTES whatever the pool."""
    import onnx

    slim = _inference_copy(model, input_name)
    try:
        inferred = onnx.shape_inference.infer_shapes(slim, strict_mode=True, data_prop=True)
    except Exception:  # inference's own errors: ONNX Runtime has the last word on the model
        try:
            inferred = onnx.shape_inference.infer_shapes(slim, data_prop=True)
        except Exception:
            return _Shapes({}, 0, True)
    graph = inferred.graph
    widths: dict[str, int] = {}
    row_bytes = 0
    data_dependent = False
    for value in [*graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        if not tensor.HasField("shape"):
            data_dependent = True
            continue
        itemsize = _ITEM_BYTES.get(tensor.elem_type, 8)
        static = 1
        batch_axes = 0
        unknown = False
        for dim in tensor.shape.dim:
            if dim.HasField("dim_value"):
                static *= max(dim.dim_value, 0)
            elif dim.dim_param == _BATCH:
                batch_axes += 1
            else:
                unknown = True
        if unknown or batch_axes > 1:
            data_dependent = True
            continue
        if batch_axes == 0 and static * itemsize > MAX_STATIC_TENSOR_BYTES:
            raise _reject(
                field,
                f"must compute tensors of at most {MAX_STATIC_TENSOR_BYTES} bytes; shape "
                f"inference gives a tensor of {static * itemsize} bytes",
                reasons.MODEL_WORKING_MEMORY_TOO_LARGE,
            )
        if batch_axes == 1:
            row_bytes = max(row_bytes, static * itemsize)
    for value in graph.output:
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 2 and dims[0].dim_param == _BATCH and dims[1].HasField("dim_value"):
            widths[value.name] = dims[1].dim_value
    return _Shapes(widths, row_bytes, data_dependent)


def load_model(
    data: bytes, limits: ModelLimits, field: str, sha256: str | None = None
) -> OnnxModel:
    """Check ONNX bytes from a caller; raise ModelRejected naming field for anything unsafe."""
    import onnx

    if len(data) > limits.max_bytes:
        raise _reject(
            field,
            f"must be at most {limits.max_bytes} bytes (the server's model size limit); "
            f"got {len(data)}",
            reasons.MODEL_TOO_LARGE,
        )
    try:
        model = onnx.ModelProto.FromString(data)  # protobuf only: reads no files
    except Exception as err:  # DecodeError, or others on hostile bytes
        raise _reject(field, "must be a serialized ONNX ModelProto; it does not parse",
                      reasons.MODEL_MALFORMED) from err  # fmt: skip
    if not model.HasField("graph") or not len(model.graph.output):
        raise _reject(field, "must be an ONNX model with a graph and outputs; got none",
                      reasons.MODEL_MALFORMED)  # fmt: skip
    _check_structure(model, field)

    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    features = [v for v in inputs if v.name != TRAINING_MODE_INPUT]
    training = [v for v in inputs if v.name == TRAINING_MODE_INPUT]
    if len(features) != 1:
        raise _reject(
            field,
            "must have exactly one input for the pool rows (plus an optional boolean "
            f"{TRAINING_MODE_INPUT!r}); got {[v.name for v in inputs]}",
            reasons.MODEL_SIGNATURE,
        )
    feature = features[0]
    dtype = _FLOAT_TYPES.get(feature.type.tensor_type.elem_type)
    dims = _dims(feature)
    if dtype is None:
        raise _reject(
            field,
            f"input {feature.name!r} must be float16, float or double; got "
            f"{onnx.TensorProto.DataType.Name(feature.type.tensor_type.elem_type)}",
            reasons.MODEL_SIGNATURE,
        )
    if dims is not None and (len(dims) != 2 or dims[0] not in (None, 0)):
        raise _reject(
            field,
            f"input {feature.name!r} must be [n, d] with a free batch size n; got "
            f"{['n' if d is None else d for d in dims]}",
            reasons.MODEL_SIGNATURE,
        )
    if training and training[0].type.tensor_type.elem_type != _BOOL:
        raise _reject(field, f"input {TRAINING_MODE_INPUT!r} must be a boolean",
                      reasons.MODEL_SIGNATURE)  # fmt: skip
    outputs = [v.name for v in model.graph.output if v.type.tensor_type.elem_type in _FLOAT_TYPES]
    if not outputs:
        raise _reject(field, "must have a floating-point output with the class scores; got none",
                      reasons.MODEL_SIGNATURE)  # fmt: skip
    limits_model = OnnxModel(
        sha256=sha256 or sha256_hex(data),
        nbytes=len(data),
        proto=model,
        input_name=feature.name,
        input_dtype=dtype,
        input_width=None if dims is None or not dims[1] else dims[1],
        outputs=outputs,
        training_mode_input=bool(training),
        dropout_nodes=sum(node.op_type == "Dropout" for node in model.graph.node),
        limits=limits,
    )
    shapes = _infer_shapes(model, feature.name, field)
    limits_model.output_widths = shapes.output_widths
    limits_model.row_bytes = shapes.row_bytes
    limits_model.data_dependent = shapes.data_dependent
    limits_model.session(field)  # the runtime's own checks, before the model is cached
    return limits_model


def _session_options(limits: ModelLimits) -> ort.SessionOptions:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = limits.intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No arena: a cached session must not keep its peak chunk's memory between requests.
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3
    options.add_session_config_entry("session.load_model_format", "ONNX")  # no .ort flatbuffers
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def _make_session(
    data: bytes, limits: ModelLimits, field: str, dropout: bool = False
) -> ort.InferenceSession:
    import onnxruntime as ort

    # ORT's graph optimiser drops every Dropout node (inference needs none); MC dropout does.
    disabled = ["EliminateDropout"] if dropout else None
    try:
        return ort.InferenceSession(
            data,
            sess_options=_session_options(limits),
            providers=["CPUExecutionProvider"],
            disabled_optimizers=disabled,
        )
    except Exception as err:  # the runtime's own rejection (type errors, unknown ops, ...)
        raise _reject(field, f"was refused by ONNX Runtime: {runtime_message(err)}",
                      reasons.MODEL_REJECTED) from err  # fmt: skip


def resident_bytes() -> int:
    """This process's resident memory (Linux /proc/self/statm; 0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0


_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class ModelCache:
    """Checked models by SHA-256, least recently used out first, bounded by their cost: model
    bytes plus the measured memory of their sessions (OnnxModel.cost)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._models: OrderedDict[str, OnnxModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sha256: str) -> OnnxModel | None:
        with self._lock:
            model = self._models.get(sha256)
            if model is not None:
                self._models.move_to_end(sha256)
            return model

    def put(self, model: OnnxModel) -> None:
        with self._lock:
            if model.sha256 in self._models or model.cost > self.max_bytes:
                return
            self._models[model.sha256] = model
            self._evict()

    def settle(self) -> None:
        """Evict by the costs measured since put (a session made after put counts now)."""
        with self._lock:
            self._evict()

    def _evict(self) -> None:
        while self._models and sum(m.cost for m in self._models.values()) > self.max_bytes:
            self._models.popitem(last=False)

    def digests(self) -> list[str]:
        with self._lock:
            return list(self._models)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(m.cost for m in self._models.values())

    def __len__(self) -> int:
        return len(self._models)


def _no_lookup_observer(source: str, hit: bool, cache_bytes: int) -> None:
    return None


# Told of every lookup: how the model came (bytes, sha256), whether the cache held it, and
# the cache's size in bytes after it.
LookupObserver = Callable[[str, bool, int], None]


class ModelStore:
    """Resolves a request's Model messages (bytes or hash) to checked models, via the cache.

    In a work process the worker provides, for each call, the bytes of models sent by hash
    that this process has not cached (provide); `resolved` lists the digests of the call's
    models in request order, for the worker's own cache of model bytes.
    """

    def __init__(
        self, limits: ModelLimits, cache_bytes: int, observe: LookupObserver = _no_lookup_observer
    ) -> None:
        self.limits = limits
        self.cache = ModelCache(cache_bytes)
        self._observe = observe
        self._provided: dict[str, bytes] = {}
        self.resolved: list[str] = []

    def provide(self, models: dict[str, bytes]) -> None:
        """Bytes by SHA-256 for this call's models sent by hash; clears the call's state."""
        self._provided = models
        self.resolved = []

    def resolve(self, onnx_bytes: bytes | None, sha256: str | None, field: str) -> OnnxModel:
        model = self._resolve(onnx_bytes, sha256, field)
        self.resolved.append(model.sha256)
        return model

    def _resolve(self, onnx_bytes: bytes | None, sha256: str | None, field: str) -> OnnxModel:
        if onnx_bytes is not None:
            digest = sha256_hex(onnx_bytes)
            cached = self.cache.get(digest)
            if cached is not None:
                self._observe("bytes", True, self.cache.nbytes)
                return cached
            model = load_model(onnx_bytes, self.limits, f"{field}.onnx", digest)
            self.cache.put(model)
            self._observe("bytes", False, self.cache.nbytes)
            return model
        if sha256 is None:
            raise _reject(field, "must set onnx or sha256; got neither", reasons.MODEL_MISSING)
        if len(sha256) != 64 or not set(sha256) <= _SHA256_HEX:
            raise _reject(
                f"{field}.sha256",
                f"must be 64 lowercase hex digits; got {sha256[:80]!r}",
                reasons.INVALID_FIELD,
            )
        cached = self.cache.get(sha256)
        if cached is None and sha256 in self._provided:
            cached = load_model(self._provided[sha256], self.limits, f"{field}.sha256", sha256)
            self.cache.put(cached)
            return cached
        self._observe("sha256", cached is not None, self.cache.nbytes)
        if cached is None:
            raise ModelNotCached(f"{field}.sha256", sha256)
        return cached


@dataclass(frozen=True)
class ModelOutputs:
    """What the models said about the pool."""

    scores: npt.NDArray[np.floating[Any]]  # [n, c] from one run, or [m, n, c] from m runs
    embeddings: npt.NDArray[np.floating[Any]] | None  # [n, d'] from the first run


def class_output(model: OnnxModel, embeddings_output: str) -> str:
    """The output with the class scores: the first floating-point one that is not embeddings."""
    for name in model.outputs:
        if name != embeddings_output:
            return name
    raise ModelRejected(
        "embeddings_output",
        f"must leave a floating-point output for the class scores; the model's are {model.outputs}",
        reason=reasons.MODEL_SIGNATURE,
    )


def chunk_rows(requested: int, width: int, itemsize: int) -> int:
    if requested > 0:
        return requested
    return max(1, DEFAULT_CHUNK_BYTES // max(width * itemsize, 1))


def _dropout_seeded(model: OnnxModel, seed: int) -> bytes:
    """The model with every Dropout node seeded from seed, so MC masks are reproducible."""
    import onnx

    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
    seeds = np.random.SeedSequence(seed).generate_state(max(model.dropout_nodes, 1), np.uint32)
    i = 0
    for node in proto.graph.node:
        if node.op_type != "Dropout":
            continue
        kept = [a for a in node.attribute if a.name != "seed"]
        del node.attribute[:]
        node.attribute.extend(kept)
        node.attribute.append(onnx.helper.make_attribute("seed", int(seeds[i])))
        i += 1
    return proto.SerializeToString()


def run_models(
    models: Sequence[OnnxModel],
    fields: Sequence[str],
    x: npt.NDArray[np.floating[Any]],
    *,
    embeddings_output: str,
    mc_samples: int,
    seed: int,
    batch_rows: int,
    stop: StopCheck,
    deadline: float | None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> ModelOutputs:
    """Run every model (or one model mc_samples times with dropout on) over x [n, d] in chunks.

    Before the pool runs, each model's output widths (from shape inference, else from a
    probe run on a few rows) are held to max_elements ([n, c] per output, [m, n, c] for a
    committee) and the chunk to MAX_CHUNK_OUTPUT_BYTES of outputs and working memory.
    """
    if len(models) > MAX_MODELS:
        raise ModelRejected(
            "models",
            f"must be at most {MAX_MODELS}; got {len(models)}",
            reason=reasons.TOO_MANY_MODELS,
        )
    n, d = x.shape
    for model, name in zip(models, fields, strict=True):
        if model.input_width is not None and model.input_width != d:
            raise ModelRejected(
                "model_inputs.shape",
                f"must have the width d = {model.input_width} that {name} takes as input "
                f"{model.input_name!r}; got [n, d] = {[n, d]}",
                reason=reasons.MODEL_INPUT_MISMATCH,
            )
    runs: list[tuple[OnnxModel, str, ort.InferenceSession, bool]] = []
    if mc_samples:
        model, name = models[0], fields[0]
        if not model.dropout_nodes:
            raise ModelRejected(
                "mc_dropout_samples",
                f"needs a model with Dropout nodes; {name} has none",
                reason=reasons.MODEL_SIGNATURE,
            )
        session = _make_session(_dropout_seeded(model, seed), model.limits, name, dropout=True)
        runs = [(model, name, session, True)] * mc_samples
    else:
        runs = [(m, f, m.session(f), False) for m, f in zip(models, fields, strict=True)]

    step = chunk_rows(batch_rows, d, max(x.itemsize, models[0].input_dtype.itemsize))
    probed: set[int] = set()
    for r, (model, name, _, _) in enumerate(runs):
        if id(model) not in probed:
            probed.add(id(model))
            wanted = _wanted(model, name, embeddings_output, r)
            widths = _output_widths(model, name, wanted, x, stop, deadline)
            step = _bounded_step(
                model, name, wanted, widths, n, len(runs), step, batch_rows, max_elements
            )
    scores: npt.NDArray[Any] | None = None
    embeddings: npt.NDArray[Any] | None = None
    for r, (model, name, session, training) in enumerate(runs):
        wanted = _wanted(model, name, embeddings_output, r)
        for start in range(0, n, step):
            stop()
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded()
            feed: dict[str, Any] = {
                model.input_name: np.ascontiguousarray(x[start : start + step], model.input_dtype)
            }
            if model.training_mode_input:
                feed[TRAINING_MODE_INPUT] = np.array(training)
            got = run_stoppable(session, name, wanted, feed, stop, deadline)
            rows = min(step, n - start)
            out = _checked(got[0], rows, name, wanted[0], 2)
            if scores is None:
                _check_elements(name, wanted[0], [len(runs), n, out.shape[1]], max_elements)
                shape = (len(runs), n, out.shape[1]) if len(runs) > 1 else (n, out.shape[1])
                scores = np.empty(shape, dtype=np.result_type(out.dtype, np.float32))
            if out.shape[1] != scores.shape[-1]:
                raise ModelRejected(
                    name,
                    f"must give {scores.shape[-1]} classes as the first model does; "
                    f"got {out.shape[1]}",
                    reason=reasons.MODEL_SIGNATURE,
                )
            (scores[r] if len(runs) > 1 else scores)[start : start + rows] = out
            if len(wanted) > 1:
                emb = _checked(got[1], rows, name, wanted[1], 1)
                if embeddings is None:
                    _check_elements(name, wanted[1], [1, n, emb.shape[1]], max_elements)
                    embeddings = np.empty((n, emb.shape[1]), np.result_type(emb.dtype, np.float32))
                if emb.shape[1] != embeddings.shape[1]:
                    raise ModelRejected(name, "must give embeddings of one width for every chunk",
                                        reason=reasons.MODEL_SIGNATURE)  # fmt: skip
                embeddings[start : start + rows] = emb
    assert scores is not None
    return ModelOutputs(scores, embeddings)


def predictor(
    model: OnnxModel,
    name: str,
    output: str,
    width: int,
    stop: StopCheck,
    deadline: float | None,
) -> tuple[Callable[[npt.NDArray[Any]], npt.NDArray[Any]], int]:
    """predict(rows [b, d]) -> the class output [b, c] from ONNX Runtime, chunk by chunk as the
    pool was run (stoppable, past the deadline too), and the rows per chunk."""
    session = model.session(name)
    cap = MAX_CHUNK_OUTPUT_BYTES // max(8 * width + model.row_bytes, 1)
    step = max(1, min(chunk_rows(0, model.input_width or 1, model.input_dtype.itemsize), cap))

    def predict(rows: npt.NDArray[Any]) -> npt.NDArray[Any]:
        step = max(1, min(chunk_rows(0, rows.shape[1], model.input_dtype.itemsize), cap))
        out = np.empty((rows.shape[0], width))
        for start in range(0, rows.shape[0], step):
            stop()
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded()
            part = np.ascontiguousarray(rows[start : start + step], model.input_dtype)
            feed: dict[str, Any] = {model.input_name: part}
            if model.training_mode_input:
                feed[TRAINING_MODE_INPUT] = np.array(False)
            got = run_stoppable(session, name, [output], feed, stop, deadline)
            scores = _checked(got[0], part.shape[0], name, output, 2)
            if scores.shape[1] != width:
                raise ModelRejected(
                    name,
                    f"must give {width} classes for every input; got {scores.shape[1]}",
                    reason=reasons.MODEL_SIGNATURE,
                )
            out[start : start + part.shape[0]] = scores
        return out

    return predict, step


def _wanted(model: OnnxModel, name: str, embeddings_output: str, run: int) -> list[str]:
    """The outputs to fetch from run number run: the class output, and embeddings from the
    first."""
    wanted = [class_output(model, embeddings_output)]
    if embeddings_output and run == 0:
        if embeddings_output not in model.outputs:
            raise ModelRejected(
                "embeddings_output",
                f"must name a floating-point output of {name}; its outputs are "
                f"{_names(model.outputs)}, got {_quoted(embeddings_output)}",
                reason=reasons.MODEL_SIGNATURE,
            )
        wanted.append(embeddings_output)
    return wanted


def _quoted(name: str, limit: int = 40) -> str:
    """A caller's name for a message: quoted, and cut short when long."""
    return repr(name if len(name) <= limit else name[: limit - 3] + "...")


def _names(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(_quoted(name) for name in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"


STOP_POLL_SECONDS = 0.02


def run_stoppable(
    session: ort.InferenceSession,
    name: str,
    wanted: list[str],
    feed: dict[str, Any],
    stop: StopCheck,
    deadline: float | None,
) -> list[Any]:
    """session.run, ended by ONNX Runtime's RunOptions.terminate within STOP_POLL_SECONDS of
    the deadline or of stop() raising (a graph with a Loop of 10^12 trips stops too); then
    the stop's own exception (DeadlineExceeded, Cancelled) is raised. A graph that ignores
    terminate is ended by the work process's kill."""
    import onnxruntime as ort

    options = ort.RunOptions()
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(STOP_POLL_SECONDS):
            try:
                stop()
                if deadline is not None and time.monotonic() > deadline:
                    raise DeadlineExceeded()
            except Exception:
                options.terminate = True
                return

    watcher = threading.Thread(target=watch, name="labelwise-run-watch", daemon=True)
    watcher.start()
    try:
        return session.run(wanted, feed, options)  # type: ignore[no-any-return]
    except Exception as err:  # shape errors inside the graph, and the like
        if options.terminate:
            stop()
            raise DeadlineExceeded() from None
        raise ModelRejected(name, f"failed to run on the pool: {runtime_message(err)}",
                            reason=reasons.MODEL_RUN_FAILED) from err  # fmt: skip
    finally:
        finished.set()
        watcher.join()


def _output_widths(
    model: OnnxModel,
    name: str,
    wanted: list[str],
    x: npt.NDArray[Any],
    stop: StopCheck,
    deadline: float | None,
) -> list[int]:
    """The widths of the wanted outputs: from shape inference where it fixed them, else from
    a probe run on the first rows of x (one row when sizes depend on input values)."""
    known = [model.output_widths.get(output) for output in wanted]
    if not model.data_dependent and all(width is not None for width in known):
        return [width for width in known if width is not None]
    rows = min(x.shape[0], 1 if model.data_dependent else PROBE_ROWS)
    feed: dict[str, Any] = {model.input_name: np.ascontiguousarray(x[:rows], model.input_dtype)}
    if model.training_mode_input:
        feed[TRAINING_MODE_INPUT] = np.array(False)
    got = run_stoppable(model.session(name), name, wanted, feed, stop, deadline)
    widths = [
        _checked(out, rows, name, output, 2 if i == 0 else 1).shape[1]
        for i, (out, output) in enumerate(zip(got, wanted, strict=True))
    ]
    del got, feed
    return widths


def _check_elements(name: str, output: str, shape: list[int], max_elements: int) -> None:
    """Refuse an output whose [m, n, w] for the pool holds more than max_elements."""
    if math.prod(shape) > max_elements:
        layout = f"[m, n, c] = {shape}" if shape[0] > 1 else f"[n, w] = {shape[1:]}"
        raise ModelRejected(
            name,
            f"output {_quoted(output)} must hold at most {max_elements} elements for the pool "
            f"(the server's limit); got {layout} = {math.prod(shape)}",
            reason=reasons.MODEL_OUTPUT_TOO_LARGE,
        )


def _bounded_step(
    model: OnnxModel,
    name: str,
    wanted: list[str],
    widths: list[int],
    n: int,
    members: int,
    step: int,
    batch_rows: int,
    max_elements: int,
) -> int:
    """Check the outputs' sizes for the pool; the chunk rows that keep a chunk's outputs and
    its largest intermediate within MAX_CHUNK_OUTPUT_BYTES."""
    for i, (output, width) in enumerate(zip(wanted, widths, strict=True)):
        _check_elements(name, output, [members if i == 0 else 1, n, width], max_elements)
    row_bytes = 8 * sum(widths) + model.row_bytes  # float64 at most per output element
    if row_bytes > MAX_CHUNK_OUTPUT_BYTES:
        raise ModelRejected(
            name,
            f"must need at most {MAX_CHUNK_OUTPUT_BYTES} bytes of outputs and working memory "
            f"per pool row; its outputs and shape inference give {row_bytes}",
            reason=reasons.MODEL_OUTPUT_TOO_LARGE,
        )
    fits = MAX_CHUNK_OUTPUT_BYTES // row_bytes
    if min(step, n) <= fits:
        return step
    if batch_rows > 0:
        raise ModelRejected(
            "inference_batch_rows",
            f"must be at most {fits} for {name}, whose outputs and working memory take "
            f"{row_bytes} bytes a row (a chunk's limit is {MAX_CHUNK_OUTPUT_BYTES}); "
            f"got {batch_rows}",
            reason=reasons.MODEL_OUTPUT_TOO_LARGE,
        )
    return fits


def _checked(
    out: Any, rows: int, name: str, output: str, min_width: int
) -> npt.NDArray[np.floating[Any]]:
    array = np.asarray(out)
    if array.ndim != 2 or array.shape[0] != rows or array.shape[1] < min_width:
        need = "[n, c] with c >= 2" if min_width == 2 else "[n, d]"
        raise ModelRejected(
            name,
            f"output {output!r} must be {need} for {rows} input rows; got {list(array.shape)}",
            reason=reasons.MODEL_SIGNATURE,
        )
    if array.dtype.kind != "f":
        raise ModelRejected(name, f"output {output!r} must be floating-point; got {array.dtype}",
                            reason=reasons.MODEL_SIGNATURE)  # fmt: skip
    if not np.isfinite(array).all():
        row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise ModelRejected(
            name,
            f"output {output!r} must be finite; the model gave NaN or Inf for a row in this chunk "
            f"(chunk row {row})",
            reason=reasons.MODEL_NON_FINITE_OUTPUT,
        )
    if array.dtype == np.float16:
        return array.astype(np.float32)
    return array


# ---- Gradients: a NumPy forward and reverse pass over the ops of gradients.OPS ------------

GRADIENT_OPS = gradients.GRADIENT_OPS
# Bytes of gradients ([c, b, *value] float64) a chunk of the gradient pass may hold, and the
# most one pool row may need before deepfool refuses the gradient method.
_GRADIENT_BYTES = 32 << 20
MAX_GRADIENT_ROW_BYTES = 64 << 20
# Gradients alive at once per value (fan-out sums, an op's temporaries): the bound's margin.
_LIVE_GRADIENTS = 4


def _node_attrs(node: onnx.NodeProto) -> dict[str, Any]:
    import onnx
    from onnx import numpy_helper

    attrs: dict[str, Any] = {}
    for attr in node.attribute:
        if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise gradients.Unsupported("a subgraph attribute")
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        attrs[attr.name] = value
    return attrs


class GradientModel:
    """logits(x) and their Jacobian d logits / d x for one model, in float64 NumPy.

    ONNX Runtime computes no gradients, so this evaluates the nodes the class output
    depends on with gradients.OPS and runs reverse mode for all c outputs at once. Dropout
    is off. When the output is probabilities, the logits are the input of a final Softmax,
    or log(p) otherwise (the same logit differences either way). A graph with an op outside
    gradients.OPS, or with a pool-dependent value where an op needs a constant (a Reshape's
    shape, a Where's mask, a Gather's indices), is refused with UNSUPPORTED_GRADIENT_OP.
    """

    def __init__(
        self, model: OnnxModel, field: str, output: str, output_is_probabilities: bool
    ) -> None:
        from onnx import numpy_helper

        graph = model.proto.graph
        self.field = field
        self.output = output
        self.input_name = model.input_name
        opsets = {o.domain or "": o.version for o in model.proto.opset_import}
        producers = {name: node for node in graph.node for name in node.output}
        self.constants: dict[str, npt.NDArray[Any]] = {
            t.name: numpy_helper.to_array(t) for t in graph.initializer
        }
        target = output
        self.take_log = False
        final = producers.get(output)
        if output_is_probabilities:
            if final is not None and final.op_type == "Softmax" and final.domain in ("", "ai.onnx"):
                target = final.input[0]
            else:
                self.take_log = True
        needed: list[onnx.NodeProto] = []
        seen: set[int] = set()
        stack = [target]
        while stack:  # the nodes target depends on
            node = producers.get(stack.pop())
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            needed.append(node)
            stack.extend(i for i in node.input if i)
        order = {id(node): i for i, node in enumerate(graph.node)}
        self.nodes: list[gradients.Node] = []
        active = {self.input_name}  # values that depend on the pool rows
        for proto in sorted(needed, key=lambda node: order[id(node)]):
            domain = "" if proto.domain == "ai.onnx" else proto.domain
            item = gradients.Node(gradients.op_key(proto.op_type, domain), tuple(proto.input),
                                  tuple(proto.output), name=proto.name,
                                  opset=opsets.get(domain, 1))  # fmt: skip
            op = gradients.OPS.get(item.op)
            if op is None:
                raise gradients.unsupported(item, field, "not a supported operator")
            try:
                item = gradients.Node(item.op, item.inputs, item.outputs, _node_attrs(proto),
                                      item.name, item.opset)  # fmt: skip
            except gradients.Unsupported as err:
                raise gradients.unsupported(item, field, str(err)) from err
            for position, name in enumerate(proto.input):
                allowed = op.differentiable
                if name in active and allowed is not None and position not in allowed:
                    raise gradients.unsupported(
                        item, field, f"its input {position} depends on the pool rows"
                    )
            if op.smooth and any(name in active for name in proto.input):
                active.update(proto.output)
            self.nodes.append(item)
        self.active = active
        self.target = target
        self.support_vectors = max(
            [len(n.attrs.get("vectors_per_class", [])) and int(sum(n.attrs["vectors_per_class"]))
             for n in self.nodes] + [0]
        )  # fmt: skip
        self._row_elements: int | None = None

    def model_output(self, logits: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """What the model's class output is, given the logits this pass computes."""
        if self.take_log:
            return np.exp(logits)
        if self.target != self.output:  # a final Softmax stripped
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))
        return logits

    def chunk_rows(self, width: int, classes: int) -> int:
        """Rows per call that keep the gradients within _GRADIENT_BYTES: the largest value a
        pool row makes, measured by a one-row forward pass before any chunk runs."""
        if self._row_elements is None:
            values = self._forward(np.zeros((1, width)), lambda: None)
            sizes = [np.size(v) for name, v in values.items() if name in self.active]
            self._row_elements = max([width, self.support_vectors, *sizes])
        per_row = 8 * classes * self._row_elements * _LIVE_GRADIENTS
        if per_row > MAX_GRADIENT_ROW_BYTES:
            raise ModelRejected(
                self.field,
                f"must need at most {MAX_GRADIENT_ROW_BYTES} bytes of gradients per pool row "
                f"for deepfool's gradient method; its largest value takes {per_row} "
                "(use method 'decision')",
                reason=reasons.MODEL_WORKING_MEMORY_TOO_LARGE,
            )
        return max(1, _GRADIENT_BYTES // per_row)

    def _forward(self, x: npt.NDArray[np.float64], check: Callable[[], None]) -> dict[str, Any]:
        values: dict[str, Any] = dict(self.constants)
        values[self.input_name] = np.asarray(x, np.float64)
        values[TRAINING_MODE_INPUT] = np.array(False)
        with np.errstate(all="ignore"):
            for node in self.nodes:
                check()
                try:
                    result = gradients.forward(
                        node, [values[i] if i else None for i in node.inputs]
                    )
                except gradients.Unsupported as err:
                    raise gradients.unsupported(node, self.field, str(err)) from err
                for name, value in zip(node.outputs, result, strict=False):
                    if name:
                        values[name] = value
        return values

    def __call__(
        self, x: npt.NDArray[np.float64], check: Callable[[], None] = lambda: None
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """logits [b, c] and Jacobian [b, c, d] at x [b, d]; check() runs between nodes."""
        values = self._forward(x, check)
        logits = np.asarray(values[self.target], np.float64)
        b, c = logits.shape
        grads: dict[str, npt.NDArray[np.float64]] = {
            self.target: np.broadcast_to(np.eye(c)[:, None, :], (c, b, c)).copy()
        }  # [c, b, c]: one reverse pass per class, side by side
        if self.take_log:
            grads[self.target] /= logits[None]
            logits = np.log(logits)
        with np.errstate(all="ignore"):
            for node in reversed(self.nodes):
                outs = [grads.pop(name, None) for name in node.outputs]
                if all(g is None for g in outs):
                    continue
                check()
                inputs = [values.get(i) if i else None for i in node.inputs]
                need = [i in self.active for i in node.inputs]
                try:
                    back = gradients.backward(
                        node, inputs, [values.get(o) for o in node.outputs], outs, need
                    )
                except gradients.Unsupported as err:
                    raise gradients.unsupported(node, self.field, str(err)) from err
                for name, g, wanted in zip(node.inputs, back, need, strict=False):
                    if g is None or not wanted:
                        continue
                    grads[name] = grads[name] + g if name in grads else g
        jac = grads.get(self.input_name)
        if jac is None:  # the logits do not depend on the input at all
            jac = np.zeros((c, *np.shape(x)))
        return logits, np.ascontiguousarray(np.moveaxis(jac, 0, 1))  # [b, c, d]
