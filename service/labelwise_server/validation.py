"""Every check a request passes before any strategy runs, in one place.

decode_request turns a WireRequest into a Pool, the strategy calls and the
Task, or raises InvalidArgument naming the field and saying what it must be
and what it got. Strategies then assume valid input.
"""

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import reasons
from labelwise_server.config import Config
from labelwise_server.errors import DeadlineExceeded, InvalidArgument, ModelRejected
from labelwise_server.onnx_runner import (
    MAX_MC_SAMPLES,
    MAX_MODELS,
    ModelStore,
    OnnxModel,
    class_output,
    run_models,
)
from labelwise_server.request import MAX_STRATEGIES, Selection, StrategyCall
from labelwise_server.strategies import STRATEGIES
from labelwise_server.strategies._types import (
    FloatArray,
    Input,
    ModelAccess,
    Param,
    ParamValue,
    Pool,
    RealArray,
    Task,
)
from labelwise_server.tensors import RawTensor, WireRequest, decode_tensor, oversize_model

# Row sums of probabilities must be within this of 1, by the wire dtype.
SUM_TOLERANCE: dict[int, float] = {
    pb.DATA_TYPE_FLOAT16: 1e-2,
    pb.DATA_TYPE_BFLOAT16: 1e-2,
    pb.DATA_TYPE_FLOAT32: 1e-3,
    pb.DATA_TYPE_FLOAT64: 1e-3,
}
# Bytes of rows checked per block, so the checks' temporaries stay small.
_CHECK_BYTES = 1 << 22
# Estimated response bytes: per selected item its index (varint) and score (double), per
# strategy its name and parameters, per adversarial point coordinate a double.
_ITEM_BYTES = 10 + 8
_STRATEGY_BYTES = 512


def _no_stop() -> None:
    return None


def decode_request(
    request: WireRequest,
    max_elements: int,
    models: ModelStore | None = None,
    stop: Callable[[], None] = _no_stop,
    max_response_bytes: int = Config.max_message_bytes,
) -> Selection:
    """Decode and check every field of request; raise InvalidArgument on the first bad one.

    In model mode (request.models) the models run here, on model_inputs or embeddings, and
    their outputs go through the same checks as probabilities, logits and committee sent
    by the caller. Counts that cost work (strategies, models) and the estimated response
    size (against max_response_bytes) are checked before any tensor is decoded.
    """
    header = request.header
    if len(header.strategies) > MAX_STRATEGIES:
        raise InvalidArgument(
            "strategies",
            f"must name at most {MAX_STRATEGIES} strategies; got {len(header.strategies)}",
            reason=reasons.TOO_MANY_STRATEGIES,
        )
    if len(header.models) > MAX_MODELS:
        raise InvalidArgument(
            "models",
            f"must be at most {MAX_MODELS} models; got {len(header.models)}",
            reason=reasons.TOO_MANY_MODELS,
        )
    for i, spec in enumerate(header.models):
        oversize = oversize_model(spec)  # its bytes were dropped unread (tensors.py)
        if oversize is not None:
            size, limit = oversize
            raise ModelRejected(
                f"models[{i}].onnx",
                f"must be at most {limit} bytes (the server's model size limit); got {size}",
                reason=reasons.MODEL_TOO_LARGE,
            )
    calls = tuple(_strategy_call(spec, i) for i, spec in enumerate(header.strategies))
    if not calls:
        raise InvalidArgument("strategies", "must name at least one strategy; got none")
    if not header.clamp_k and header.k > 0:  # k stays as sent: refuse before any work
        _check_response_size(calls, header.k, None, max_response_bytes)
    needs_model = any(Input.MODEL in call.strategy.needs for call in calls)
    pool = _decode_pool(request.tensors, header, max_elements, models, stop, needs_model)
    for call in calls:
        _check_inputs(call, pool)
    task = _task(header, pool)
    width = None if pool.model is None else pool.model.inputs.shape[1]
    _check_response_size(calls, task.k, width, max_response_bytes)
    return Selection(pool, calls, task)


def _check_response_size(
    calls: tuple[StrategyCall, ...], k: int, width: int | None, max_bytes: int
) -> None:
    """Refuse a request whose response (k items per strategy, adversarial points of width
    coordinates where asked for; width None: not known yet) would pass max_bytes."""
    total = 0
    for call in calls:
        item = _ITEM_BYTES
        if call.strategy.points is not None and call.params.get("return_points") and width:
            item += 8 * width
        total += _STRATEGY_BYTES + k * item
    if total > max_bytes:
        raise InvalidArgument(
            "k",
            f"must keep the response within {max_bytes} bytes (the server's message limit); "
            f"{len(calls)} strategies of k = {k} would take about {total}",
            reason=reasons.RESPONSE_TOO_LARGE,
        )


def _decode_pool(
    tensors: Mapping[str, RawTensor],
    header: pb.SelectQueriesRequest,
    max_elements: int,
    models: ModelStore | None = None,
    stop: Callable[[], None] = _no_stop,
    needs_model: bool = False,
) -> Pool:
    def get(name: str, allow_int: bool = False) -> npt.NDArray[Any] | None:
        raw = tensors.get(name)
        return None if raw is None else decode_tensor(raw, name, max_elements, allow_int=allow_int)

    temperature = header.temperature if header.HasField("temperature") else 1.0
    if not (np.isfinite(temperature) and temperature > 0):
        raise InvalidArgument("temperature", f"must be finite and > 0; got {temperature}")

    sizes: dict[str, int] = {}  # field -> its n
    embeddings = get("embeddings")
    if embeddings is not None:
        _check_matrix(embeddings, "embeddings", "[n, d]")
        _check_embedding_values(embeddings, "embeddings")
    embeddings_n = None if embeddings is None else embeddings.shape[0]
    model_access: ModelAccess | None = None
    probabilities: RealArray | None
    committee: RealArray | None
    if len(header.models):
        outputs = _model_mode(
            tensors, header, get, models, stop, temperature, needs_model, max_elements
        )
        probabilities, committee, model_embeddings, model_access, input_field = outputs
        sizes[input_field] = probabilities.shape[0]
        if model_embeddings is not None:
            _check_embedding_values(model_embeddings, "embeddings_output")
            embeddings = model_embeddings
    else:
        if "model_inputs" in tensors:
            raise InvalidArgument("model_inputs", "must come with models; the request has none")
        probabilities = _class_scores(
            tensors, get, "probabilities", "logits", ndim=2, temperature=temperature
        )
        committee = _class_scores(
            tensors, get, "committee", "committee_logits", ndim=3, temperature=temperature
        )
    labeled = get("labeled_embeddings")
    costs = get("costs", allow_int=True)

    if probabilities is not None and not len(header.models):
        sizes[_present(tensors, "probabilities", "logits")] = probabilities.shape[0]
    if committee is not None and not len(header.models):
        sizes[_present(tensors, "committee", "committee_logits")] = committee.shape[1]
        if probabilities is not None and committee.shape[2] != probabilities.shape[1]:
            raise InvalidArgument(
                f"{_present(tensors, 'committee', 'committee_logits')}.shape",
                f"must have the same number of classes c as "
                f"{_present(tensors, 'probabilities', 'logits')} ({probabilities.shape[1]}); "
                f"got {committee.shape[2]}",
            )
    if embeddings_n is not None:
        sizes.setdefault("embeddings", embeddings_n)
    if labeled is not None:
        _check_matrix(labeled, "labeled_embeddings", "[l, d]", allow_empty=True)
        _check_embedding_values(labeled, "labeled_embeddings")
        if embeddings is not None and labeled.shape[1] != embeddings.shape[1]:
            source = "the models' embeddings_output" if header.embeddings_output else "embeddings"
            raise InvalidArgument(
                "labeled_embeddings.shape",
                f"must have the same d as {source} ({embeddings.shape[1]}); got {labeled.shape[1]}",
            )
    cost_values: FloatArray | None = None
    if costs is not None:
        if costs.ndim != 1:
            raise InvalidArgument("costs.shape", f"must be [n]; got {list(costs.shape)}")
        cost_values = costs.astype(np.float64)
        if not np.isfinite(cost_values).all() or (cost_values <= 0).any():
            bad = int(np.flatnonzero(~(np.isfinite(cost_values) & (cost_values > 0)))[0])
            raise InvalidArgument(
                "costs", f"must all be finite and > 0; got {cost_values[bad]} at index {bad}"
            )
        sizes["costs"] = cost_values.shape[0]

    extra = _decode_extra_outputs(tensors, header, get, temperature, sizes)
    targets = extra.labeled_targets
    if labeled is not None and targets is not None and labeled.shape[0] != targets.shape[0]:
        raise InvalidArgument(
            "labeled_targets.shape",
            f"must have the same l as labeled_embeddings ({labeled.shape[0]}); "
            f"got {targets.shape[0]}",
        )

    if not sizes:
        raise InvalidArgument(
            "probabilities",
            "the request carries no pool input: send probabilities, logits, committee, "
            "committee_logits, embeddings, or a multi-label, regression or structured output",
            reason=reasons.MISSING_INPUT,
        )
    first_field, n = next(iter(sizes.items()))
    for name, size in sizes.items():
        if size != n:
            raise InvalidArgument(
                f"{name}.shape",
                f"must have the same pool size n as {first_field} ({n}); got {size}",
            )
    if n == 0:
        raise InvalidArgument(f"{first_field}.shape", "must describe a non-empty pool; got n = 0")
    return Pool(
        n=n,
        probabilities=probabilities,
        committee=committee,
        embeddings=embeddings,
        labeled_embeddings=labeled,
        costs=cost_values,
        multilabel=extra.multilabel,
        multilabel_committee=extra.multilabel_committee,
        labeled_label_cardinality=extra.labeled_label_cardinality,
        regression_mean=extra.regression_mean,
        regression_std=extra.regression_std,
        regression_samples=extra.regression_samples,
        labeled_targets=extra.labeled_targets,
        structured=extra.structured,
        structured_committee=extra.structured_committee,
        structured_mask=extra.structured_mask,
        model=model_access,
    )


@dataclass
class _Extra:
    """The multi-label, regression and structured outputs of a request, checked."""

    multilabel: RealArray | None = None
    multilabel_committee: RealArray | None = None
    labeled_label_cardinality: float | None = None
    regression_mean: FloatArray | None = None
    regression_std: FloatArray | None = None
    regression_samples: FloatArray | None = None
    labeled_targets: FloatArray | None = None
    structured: RealArray | None = None
    structured_committee: RealArray | None = None
    structured_mask: npt.NDArray[np.bool_] | None = None


def _decode_extra_outputs(
    tensors: Mapping[str, RawTensor],
    header: pb.SelectQueriesRequest,
    get: Any,
    temperature: float,
    sizes: dict[str, int],
) -> _Extra:
    extra = _Extra()
    # Multi-label: per-label probabilities in [0, 1], or logits through a sigmoid.
    extra.multilabel = _unit_interval(
        tensors, get, "multilabel_probabilities", "multilabel_logits", 2, temperature
    )
    extra.multilabel_committee = _unit_interval(
        tensors, get, "multilabel_committee", "multilabel_committee_logits", 3, temperature
    )
    if extra.multilabel is not None:
        sizes[_present(tensors, "multilabel_probabilities", "multilabel_logits")] = (
            extra.multilabel.shape[0]
        )
    if extra.multilabel_committee is not None:
        name = _present(tensors, "multilabel_committee", "multilabel_committee_logits")
        sizes[name] = extra.multilabel_committee.shape[1]
        if extra.multilabel is not None and (
            extra.multilabel_committee.shape[2] != extra.multilabel.shape[1]
        ):
            raise InvalidArgument(
                f"{name}.shape",
                f"must have the same number of labels L as "
                f"{_present(tensors, 'multilabel_probabilities', 'multilabel_logits')} "
                f"({extra.multilabel.shape[1]}); got {extra.multilabel_committee.shape[2]}",
            )
    if header.HasField("labeled_label_cardinality"):
        cardinality = header.labeled_label_cardinality
        if not (np.isfinite(cardinality) and cardinality >= 0):
            raise InvalidArgument(
                "labeled_label_cardinality", f"must be finite and >= 0; got {cardinality}"
            )
        extra.labeled_label_cardinality = cardinality

    # Regression: mean (+ std), or samples.
    mean = get("regression_mean")
    std = get("regression_std")
    samples = get("regression_samples")
    if samples is not None:
        for other in ("regression_mean", "regression_std"):
            if other in tensors:
                raise InvalidArgument(
                    other,
                    "must not be sent together with regression_samples; their mean and "
                    "standard deviation stand for it",
                )
        if samples.ndim != 2 or samples.shape[0] < 2:
            raise InvalidArgument(
                "regression_samples.shape",
                f"must be [m, n] with m >= 2 samples; got {list(samples.shape)}",
            )
        _check_regression_values(samples, "regression_samples")
        extra.regression_samples = samples.astype(np.float64)
        extra.regression_mean = extra.regression_samples.mean(axis=0)
        extra.regression_std = extra.regression_samples.std(axis=0)
        sizes["regression_samples"] = samples.shape[1]
    if mean is not None:
        extra.regression_mean = _vector(mean, "regression_mean")
        sizes["regression_mean"] = mean.shape[0]
    if std is not None:
        if mean is None:
            raise InvalidArgument(
                "regression_mean", "must be sent with regression_std (the mean it spreads about)"
            )
        extra.regression_std = _vector(std, "regression_std")
        if (extra.regression_std < 0).any():
            where = int(np.flatnonzero(extra.regression_std < 0)[0])
            raise InvalidArgument(
                "regression_std",
                f"must be >= 0; got {extra.regression_std[where]} at index {where}",
            )
        sizes["regression_std"] = std.shape[0]
    targets = get("labeled_targets")
    if targets is not None:
        extra.labeled_targets = _vector(targets, "labeled_targets")
        if targets.shape[0] == 0:
            raise InvalidArgument(
                "labeled_targets.shape", "must be [l] with l >= 1 labeled items; got [0]"
            )

    # Structured: per-element class distributions along the class axis.
    extra.structured = _structured(
        tensors, get, "structured_probabilities", "structured_logits", 1, temperature
    )
    extra.structured_committee = _structured(
        tensors, get, "structured_committee", "structured_committee_logits", 2, temperature
    )
    element_shape: tuple[int, ...] | None = None
    source = ""
    if extra.structured is not None:
        source = _present(tensors, "structured_probabilities", "structured_logits")
        sizes[source] = extra.structured.shape[0]
        element_shape = extra.structured.shape[2:]
    if extra.structured_committee is not None:
        name = _present(tensors, "structured_committee", "structured_committee_logits")
        sizes[name] = extra.structured_committee.shape[1]
        shape = extra.structured_committee.shape
        if extra.structured is not None and (
            shape[2] != extra.structured.shape[1] or shape[3:] != element_shape
        ):
            raise InvalidArgument(
                f"{name}.shape",
                f"must be [m, {', '.join(map(str, extra.structured.shape))}] to match "
                f"{source}; got {list(shape)}",
            )
        if element_shape is None:
            source, element_shape = name, shape[3:]
    mask = get("structured_mask", True)
    if mask is not None:
        if element_shape is None:
            raise InvalidArgument(
                "structured_mask",
                "must be sent only with structured_probabilities, structured_logits, "
                "structured_committee or structured_committee_logits",
            )
        n_items = sizes[source]
        expected = [n_items, *element_shape]
        if list(mask.shape) != expected:
            raise InvalidArgument(
                "structured_mask.shape",
                f"must be [n, ...] = {expected}, the item and element axes of {source}; "
                f"got {list(mask.shape)}",
            )
        binary = (mask == 0) | (mask == 1)  # NaN compares False: not binary
        if not binary.all():
            bad_at = _first_bad(~binary, mask.shape)
            raise InvalidArgument(
                "structured_mask", f"must be 0 or 1; got {mask[tuple(bad_at)]} at {bad_at}"
            )
        valid = mask.astype(bool)
        empty = ~valid.reshape(n_items, -1).any(axis=1)
        if empty.any():
            raise InvalidArgument(
                "structured_mask",
                f"must leave every item at least one valid element; item "
                f"{int(np.flatnonzero(empty)[0])} has none",
            )
        extra.structured_mask = valid
    return extra


# With every regression value (means, spreads, samples, targets) at most this in size, the
# greedy distances (and iGS's products of input and output distances), the variances and
# Gaussian BALD all stay finite.
REGRESSION_BOUND = 1e15


def _check_regression_values(array: npt.NDArray[Any], field: str) -> None:
    """Finite, and every |value| <= REGRESSION_BOUND."""
    _check_finite(array, field)
    large = np.abs(array) > REGRESSION_BOUND
    if large.any():
        where = _first_bad(large, array.shape)
        raise InvalidArgument(
            field,
            f"must have every |value| <= {REGRESSION_BOUND:g}; got {array[tuple(where)]:g} "
            f"at {where}",
        )


def _vector(array: npt.NDArray[Any], field: str) -> FloatArray:
    if array.ndim != 1:
        raise InvalidArgument(f"{field}.shape", f"must be [n]; got {list(array.shape)}")
    _check_regression_values(array, field)
    return array.astype(np.float64)


def sigmoid(logits: RealArray, temperature: float) -> RealArray:
    """1 / (1 + exp(−x / temperature)) elementwise, in logits' precision."""
    scaled: RealArray = np.divide(logits, np.asarray(temperature, dtype=logits.dtype))
    with np.errstate(over="ignore"):  # exp(large) = inf gives 1 / inf = 0: the right limit
        np.negative(scaled, out=scaled)
        np.exp(scaled, out=scaled)
    scaled += 1
    np.reciprocal(scaled, out=scaled)
    return scaled


def _unit_interval(
    tensors: Mapping[str, RawTensor],
    get: Any,
    probs_name: str,
    logits_name: str,
    ndim: int,
    temperature: float,
) -> RealArray | None:
    """Per-label probabilities from the probabilities or the logits field, checked."""
    name = _one_of(tensors, probs_name, logits_name)
    if name is None:
        return None
    array = get(name)
    layout = "[n, L]" if ndim == 2 else "[m, n, L]"
    if array.ndim != ndim or array.shape[-1] < 1:
        raise InvalidArgument(
            f"{name}.shape", f"must be {layout} with L >= 1; got {list(array.shape)}"
        )
    if ndim == 3 and array.shape[0] < 2:
        raise InvalidArgument(
            f"{name}.shape", f"must be {layout} with m >= 2 members; got {list(array.shape)}"
        )
    _check_finite(array, name)
    if name == logits_name:
        return sigmoid(array, temperature)
    outside = (array < 0) | (array > 1)
    if outside.any():
        where = _first_bad(outside, array.shape)
        raise InvalidArgument(
            name, f"must be in [0, 1]; got {float(array[tuple(where)])} at {where}"
        )
    return array  # type: ignore[no-any-return]


def _structured(
    tensors: Mapping[str, RawTensor],
    get: Any,
    probs_name: str,
    logits_name: str,
    class_axis: int,
    temperature: float,
) -> RealArray | None:
    """Per-element class probabilities [(m,) n, c, E...] from probabilities or logits, checked."""
    name = _one_of(tensors, probs_name, logits_name)
    if name is None:
        return None
    array = get(name)
    layout = "[n, c, ...]" if class_axis == 1 else "[m, n, c, ...]"
    shape = list(array.shape)
    if array.ndim < class_axis + 2:
        raise InvalidArgument(
            f"{name}.shape", f"must be {layout} with at least one element axis; got {shape}"
        )
    if array.shape[class_axis] < 2:
        raise InvalidArgument(f"{name}.shape", f"must be {layout} with c >= 2 classes; got {shape}")
    if class_axis == 2 and array.shape[0] < 2:
        raise InvalidArgument(f"{name}.shape", f"must be {layout} with m >= 2 members; got {shape}")
    if math.prod(array.shape[class_axis + 1 :]) == 0:
        raise InvalidArgument(
            f"{name}.shape", f"must be {layout} with at least one element per item; got {shape}"
        )
    if name == logits_name:
        _check_finite(array, name)
        moved = softmax(np.moveaxis(array, class_axis, -1), temperature)
        return np.moveaxis(moved, -1, class_axis)
    _check_stochastic_along(array, name, class_axis, SUM_TOLERANCE[tensors[name].dtype])
    return array  # type: ignore[no-any-return]


def _check_stochastic_along(
    array: npt.NDArray[Any], field: str, axis: int, tolerance: float
) -> None:
    """Finite, non-negative, and summing to 1 within tolerance along axis, in blocks of items."""
    pool_axis = axis - 1
    n = array.shape[pool_axis]
    per_item = max(array.nbytes // max(n, 1), 1)
    step = max(1, _CHECK_BYTES // per_item)
    for start in range(0, n, step):
        index = [slice(None)] * array.ndim
        index[pool_axis] = slice(start, start + step)
        block = array[tuple(index)]
        if not np.isfinite(block).all():
            where = _first_bad(~np.isfinite(array), array.shape)
            raise InvalidArgument(field, f"must be finite; got NaN or Inf at {where}")
        if block.min() < 0:
            where = _first_bad(array < 0, array.shape)
            raise InvalidArgument(field, f"must be >= 0; got a negative value at {where}")
        sums = block.sum(axis=axis, dtype=np.float64)
        bad = ~(np.abs(sums - 1.0) <= tolerance)
        if bad.any():
            where = _first_bad(bad, sums.shape)
            where[pool_axis] += start
            raise InvalidArgument(
                field,
                f"must sum to 1 within {tolerance} over the classes (axis {axis}); element "
                f"{where} sums to {float(sums[tuple(_first_bad(bad, sums.shape))]):.6g}",
            )


_CALLER_OUTPUTS = ("probabilities", "logits", "committee", "committee_logits")


def _model_mode(
    tensors: Mapping[str, RawTensor],
    header: pb.SelectQueriesRequest,
    get: Any,
    store: ModelStore | None,
    stop: Callable[[], None],
    temperature: float,
    needs_model: bool,
    max_elements: int,
) -> tuple[RealArray, RealArray | None, RealArray | None, ModelAccess | None, str]:
    """Run the request's models: probabilities, committee, embeddings, the model for deepfool."""
    for name in _CALLER_OUTPUTS:
        if name in tensors:
            raise InvalidArgument(
                "models", f"must not be sent together with {name}: the models compute it"
            )
    if store is None:
        raise InvalidArgument(
            "models", "are not accepted by this server", reason=reasons.NO_MODEL_MODE
        )
    input_field = "model_inputs" if "model_inputs" in tensors else "embeddings"
    x = get(input_field)
    if x is None:
        raise InvalidArgument(
            "model_inputs",
            "model mode needs the models' input rows: send model_inputs or embeddings",
            reason=reasons.MISSING_INPUT,
        )
    if input_field == "model_inputs":
        _check_matrix(x, "model_inputs", "[n, d]")
        _check_finite(x, "model_inputs")
    if x.shape[0] == 0:
        raise InvalidArgument(f"{input_field}.shape", "must describe a non-empty pool; got n = 0")
    samples = header.mc_dropout_samples
    if samples and not (2 <= samples <= MAX_MC_SAMPLES):
        raise InvalidArgument(
            "mc_dropout_samples", f"must be 0 or in [2, {MAX_MC_SAMPLES}]; got {samples}"
        )
    if samples and len(header.models) != 1:
        raise InvalidArgument(
            "mc_dropout_samples",
            f"must come with exactly one model; got {len(header.models)} (an ensemble is "
            "already a committee)",
        )
    if header.inference_batch_rows < 0:
        raise InvalidArgument(
            "inference_batch_rows", f"must be >= 0; got {header.inference_batch_rows}"
        )
    deadline = None
    if header.HasField("inference_timeout_seconds"):
        timeout = header.inference_timeout_seconds
        if not (np.isfinite(timeout) and timeout > 0):
            raise InvalidArgument(
                "inference_timeout_seconds", f"must be finite and > 0; got {timeout}"
            )
        deadline = time.monotonic() + timeout
    if header.model_output not in (
        pb.MODEL_OUTPUT_UNSPECIFIED,
        pb.MODEL_OUTPUT_PROBABILITIES,
        pb.MODEL_OUTPUT_LOGITS,
    ):
        raise InvalidArgument("model_output", f"must be a ModelOutput; got {header.model_output}")
    logits_out = header.model_output == pb.MODEL_OUTPUT_LOGITS

    fields = [f"models[{i}]" for i in range(len(header.models))]
    loaded: list[OnnxModel] = []
    for spec, field in zip(header.models, fields, strict=True):
        source = spec.WhichOneof("source")
        loaded.append(
            store.resolve(
                spec.onnx if source == "onnx" else None,
                spec.sha256 if source == "sha256" else None,
                field,
            )
        )
    outputs = run_models(
        loaded,
        fields,
        x,
        embeddings_output=header.embeddings_output,
        mc_samples=samples,
        seed=header.seed,
        batch_rows=header.inference_batch_rows,
        stop=stop,
        deadline=deadline,
        max_elements=max_elements,
    )
    scores = outputs.scores
    if logits_out:
        probabilities_all: RealArray = softmax(scores, temperature)
    else:
        members = scores if scores.ndim == 3 else scores[None]
        for i, member in enumerate(members):
            where = fields[0] if samples else fields[i]
            try:
                _check_row_stochastic(member, where, SUM_TOLERANCE[pb.DATA_TYPE_FLOAT32])
            except InvalidArgument as err:
                raise ModelRejected(
                    where,
                    f"class output {err.description} (model_output is PROBABILITIES; set "
                    "MODEL_OUTPUT_LOGITS if the model returns logits)",
                    reason=reasons.MODEL_OUTPUT_NOT_PROBABILITIES,
                ) from err
        probabilities_all = scores
    committee: RealArray | None = None
    if probabilities_all.ndim == 3:
        committee = probabilities_all
        probabilities: RealArray = committee.mean(axis=0, dtype=committee.dtype)
    else:
        probabilities = probabilities_all
    access = None
    if needs_model:
        model = loaded[0]
        gradient = model.gradient(
            fields[0], class_output(model, header.embeddings_output), not logits_out
        )

        def logits_jacobian(rows: FloatArray) -> tuple[FloatArray, FloatArray]:
            stop()
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded()
            return gradient(rows)

        access = ModelAccess(
            inputs=x,
            logits_jacobian=logits_jacobian,
            chunk_rows=gradient.chunk_rows(x.shape[1], probabilities.shape[1]),
        )
    return probabilities, committee, outputs.embeddings, access, input_field


def _present(tensors: Mapping[str, RawTensor], probs_name: str, logits_name: str) -> str:
    return probs_name if probs_name in tensors else logits_name


def _one_of(tensors: Mapping[str, RawTensor], probs_name: str, logits_name: str) -> str | None:
    """The one of a probabilities/logits pair the request sent (None: neither); not both."""
    if probs_name in tensors and logits_name in tensors:
        raise InvalidArgument(
            logits_name, f"must not be sent together with {probs_name}; send one of them"
        )
    name = _present(tensors, probs_name, logits_name)
    return name if name in tensors else None


def _class_scores(
    tensors: Mapping[str, RawTensor],
    get: Any,
    probs_name: str,
    logits_name: str,
    *,
    ndim: int,
    temperature: float,
) -> RealArray | None:
    """Probabilities from either the probabilities field or the logits field, checked."""
    _one_of(tensors, probs_name, logits_name)
    layout = "[n, c]" if ndim == 2 else "[m, n, c]"
    if probs_name in tensors:
        probabilities = get(probs_name)
        _check_class_shape(probabilities, probs_name, layout)
        _check_row_stochastic(probabilities, probs_name, SUM_TOLERANCE[tensors[probs_name].dtype])
        return probabilities  # type: ignore[no-any-return]
    if logits_name in tensors:
        logits = get(logits_name)
        _check_class_shape(logits, logits_name, layout)
        _check_finite(logits, logits_name)
        return softmax(logits, temperature)
    return None


def _check_class_shape(array: npt.NDArray[Any], field: str, layout: str) -> None:
    ndim = 2 if layout == "[n, c]" else 3
    if array.ndim != ndim:
        raise InvalidArgument(f"{field}.shape", f"must be {layout}; got {list(array.shape)}")
    if array.shape[-1] < 2:
        raise InvalidArgument(
            f"{field}.shape", f"must be {layout} with c >= 2 classes; got {list(array.shape)}"
        )
    if ndim == 3 and array.shape[0] < 2:
        raise InvalidArgument(
            f"{field}.shape", f"must be {layout} with m >= 2 members; got {list(array.shape)}"
        )


def _check_matrix(
    array: npt.NDArray[Any], field: str, layout: str, allow_empty: bool = False
) -> None:
    if array.ndim != 2 or (array.shape[1] < 1 and not allow_empty):
        raise InvalidArgument(f"{field}.shape", f"must be {layout}; got {list(array.shape)}")


def _rows(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The array as rows of its last axis: [..., c] -> [r, c] (a view for C-ordered input)."""
    rows = math.prod(array.shape[:-1])  # not -1: NumPy cannot infer it when c = 0
    return array.reshape(rows, array.shape[-1])


def _first_bad(mask: npt.NDArray[np.bool_], shape: tuple[int, ...]) -> list[int]:
    flat = int(np.flatnonzero(mask)[0])
    return [int(i) for i in np.unravel_index(flat, shape)]


def _block_rows(rows: npt.NDArray[Any]) -> int:
    return max(1, _CHECK_BYTES // max(int(rows.shape[1]) * rows.itemsize, 1))


def _check_finite(array: npt.NDArray[Any], field: str) -> None:
    rows = _rows(array)
    step = _block_rows(rows)
    for start in range(0, rows.shape[0], step):
        if not np.isfinite(rows[start : start + step]).all():
            where = _first_bad(~np.isfinite(array), array.shape)
            raise InvalidArgument(field, f"must be finite; got NaN or Inf at {where}")


# Embedding strategies work in float32: with every |value| at most this, squared distances
# (sums of d squared differences) stay finite for any d the element limit allows.
EMBEDDING_BOUND = 1e15


def _check_embedding_values(array: npt.NDArray[Any], field: str) -> None:
    """Finite, and every |value| <= EMBEDDING_BOUND."""
    _check_finite(array, field)
    rows = _rows(array)
    step = _block_rows(rows)
    for start in range(0, rows.shape[0], step):
        if (np.abs(rows[start : start + step]) > EMBEDDING_BOUND).any():
            where = _first_bad(np.abs(array) > EMBEDDING_BOUND, array.shape)
            raise InvalidArgument(
                field,
                f"must have every |value| <= {EMBEDDING_BOUND:g} (distances are computed in "
                f"float32); got {array[tuple(where)]:g} at {where}",
            )


def _check_row_stochastic(array: npt.NDArray[Any], field: str, tolerance: float) -> None:
    """Finite, non-negative, and each row (last axis) summing to 1 within tolerance."""
    rows = _rows(array)
    ones = np.ones(rows.shape[1], dtype=rows.dtype)
    step = _block_rows(rows)
    for start in range(0, rows.shape[0], step):
        block = rows[start : start + step]
        with np.errstate(invalid="ignore", over="ignore"):  # bad rows are reported below
            sums = block @ ones  # NaN/Inf anywhere in a row makes its sum non-finite
        bad = ~(np.abs(sums - 1.0) <= tolerance)
        if bad.any():
            if not np.isfinite(array).all():
                where = _first_bad(~np.isfinite(array), array.shape)
                raise InvalidArgument(field, f"must be finite; got NaN or Inf at {where}")
            row = start + int(np.flatnonzero(bad)[0])
            where = [int(i) for i in np.unravel_index(row, array.shape[:-1])]
            raise InvalidArgument(
                field,
                f"rows must sum to 1 within {tolerance}; row {where} "
                f"sums to {float(sums[row - start]):.6g}",
            )
        if block.min() < 0:
            where = _first_bad(array < 0, array.shape)
            raise InvalidArgument(field, f"must be >= 0; got a negative value at {where}")


def check_class_probabilities(
    array: npt.NDArray[Any], field: str, layout: str, tolerance: float
) -> None:
    """c >= 2 classes on the last axis; finite, non-negative rows summing to 1 within tolerance."""
    if array.shape[-1] < 2:
        raise InvalidArgument(
            f"{field}.shape", f"must be {layout} with c >= 2 classes; got {list(array.shape)}"
        )
    _check_row_stochastic(array, field, tolerance)


def softmax(logits: RealArray, temperature: float) -> RealArray:
    """Row-wise softmax of logits / temperature along the last axis, in logits' precision."""
    # Shift before scaling: each row's largest entry is then exactly 0 whatever the
    # temperature, so a small temperature cannot overflow logits / t to inf (and inf − inf
    # to NaN); the rest only go towards −inf, whose exp is 0.
    with np.errstate(over="ignore", divide="ignore"):  # overflow here goes to −inf: harmless
        scaled: RealArray = logits - logits.max(axis=-1, keepdims=True)
        # A temperature that underflows to 0 in float32 would make the 0 entries 0/0.
        np.divide(scaled, np.asarray(temperature, dtype=logits.dtype), out=scaled,
                  where=scaled != 0)  # fmt: skip
    np.exp(scaled, out=scaled)
    scaled /= scaled.sum(axis=-1, keepdims=True)
    return scaled


def _strategy_call(spec: pb.StrategySpec, i: int) -> StrategyCall:
    field = f"strategies[{i}]"
    strategy = STRATEGIES.get(spec.name)
    if strategy is None:
        known = ", ".join(STRATEGIES)
        raise InvalidArgument(
            f"{field}.name",
            f"must be one of {known}; got {spec.name!r}",
            reason=reasons.UNKNOWN_STRATEGY,
        )
    params: dict[str, ParamValue] = {}
    for name in sorted(spec.params):
        if name not in strategy.params:
            allowed = ", ".join(strategy.params) or "none"
            raise InvalidArgument(
                f"{field}.params[{name}]",
                f"is not a parameter of {spec.name} (its parameters: {allowed})",
                reason=reasons.UNKNOWN_PARAMETER,
            )
        params[name] = _param_value(
            strategy.params[name], spec.params[name], f"{field}.params[{name}]"
        )
    for name, param in strategy.params.items():
        params.setdefault(name, param.default)
    return StrategyCall(strategy, params, field)


def _param_value(param: Param, value: pb.ParamValue, field: str) -> ParamValue:
    kind = value.WhichOneof("kind")
    return param.coerce(None if kind is None else getattr(value, kind), field)


_INPUT_FIELDS = {
    Input.PROBABILITIES: "probabilities or logits",
    Input.COMMITTEE: "committee or committee_logits",
    Input.EMBEDDINGS: "embeddings",
    Input.LABELED_EMBEDDINGS: "labeled_embeddings",
    Input.MULTILABEL_PROBABILITIES: "multilabel_probabilities or multilabel_logits",
    Input.MULTILABEL_COMMITTEE: "multilabel_committee or multilabel_committee_logits",
    Input.LABELED_LABEL_CARDINALITY: "labeled_label_cardinality",
    Input.REGRESSION_PREDICTION: "regression_mean or regression_samples",
    Input.REGRESSION_SPREAD: "regression_std (with regression_mean) or regression_samples",
    Input.LABELED_TARGETS: "labeled_targets",
    Input.STRUCTURED_PROBABILITIES: "structured_probabilities or structured_logits",
    Input.STRUCTURED_COMMITTEE: "structured_committee or structured_committee_logits",
    Input.MODEL: "models (model mode)",
}


def _check_inputs(call: StrategyCall, pool: Pool) -> None:
    present = {
        Input.ANY: True,
        Input.PROBABILITIES: pool.probabilities is not None,
        Input.COMMITTEE: pool.committee is not None,
        Input.EMBEDDINGS: pool.embeddings is not None,
        Input.LABELED_EMBEDDINGS: pool.labeled_embeddings is not None,
        Input.MULTILABEL_PROBABILITIES: pool.multilabel is not None,
        Input.MULTILABEL_COMMITTEE: pool.multilabel_committee is not None,
        Input.LABELED_LABEL_CARDINALITY: pool.labeled_label_cardinality is not None,
        Input.REGRESSION_PREDICTION: pool.regression_mean is not None,
        Input.REGRESSION_SPREAD: pool.regression_std is not None,
        Input.LABELED_TARGETS: pool.labeled_targets is not None,
        Input.STRUCTURED_PROBABILITIES: pool.structured is not None,
        Input.STRUCTURED_COMMITTEE: pool.structured_committee is not None,
        Input.MODEL: pool.model is not None,
    }
    base = call.params.get("base")
    over = "" if call.strategy.needs_of is None or base is None else f" (over {base})"
    for needed in sorted(call.strategy.inputs(call.params), key=lambda i: i.value):
        if not present[needed]:
            raise InvalidArgument(
                f"{call.field}.name",
                f"strategy {call.strategy.name}{over} needs {_INPUT_FIELDS[needed]}, "
                "which the request does not carry",
                reason=reasons.MISSING_INPUT,
            )


def _task(header: pb.SelectQueriesRequest, pool: Pool) -> Task:
    excluded = np.zeros(pool.n, dtype=bool)
    if len(header.exclude):
        exclude = np.asarray(header.exclude, dtype=np.int64)
        outside = (exclude < 0) | (exclude >= pool.n)
        if outside.any():
            position = int(np.flatnonzero(outside)[0])
            raise InvalidArgument(
                f"exclude[{position}]", f"must be in [0, {pool.n}); got {int(exclude[position])}"
            )
        excluded[exclude] = True
    candidates = np.flatnonzero(~excluded).astype(np.int64)
    k = header.k
    if k <= 0:
        raise InvalidArgument("k", f"must be >= 1; got {k}")
    if k > candidates.shape[0]:
        if not header.clamp_k:
            raise InvalidArgument(
                "k",
                f"must be at most the {candidates.shape[0]} candidate items "
                f"(n = {pool.n} minus {pool.n - candidates.shape[0]} excluded), "
                f"or set clamp_k; got {k}",
            )
        k = candidates.shape[0]
    budget: float | None = None
    if header.HasField("budget"):
        budget = header.budget
        if not (np.isfinite(budget) and budget >= 0):
            raise InvalidArgument("budget", f"must be finite and >= 0; got {budget}")
    if k == 0:
        raise InvalidArgument("exclude", "must leave at least one candidate item; all are excluded")
    return Task(k=k, candidates=candidates, seed=header.seed, budget=budget)
