"""Every check a request passes before any strategy runs, in one place.

decode_request turns a WireRequest into a Selection (the Pool, the strategy calls, the Task
and, in model mode, the ModelRun the inference stage will do), or raises InvalidArgument
naming the field and saying what it must be and what it got. Each input family is decoded
by its module in labelwise_server.decode; here they are called in order and checked
against each other and against what the strategies need. Strategies then assume valid
input. No model runs here (labelwise_server.inference does).
"""

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import reasons
from labelwise_server.config import Config
from labelwise_server.decode.committee import check_committee_classes, decode_committee
from labelwise_server.decode.costs import check_costs
from labelwise_server.decode.embeddings import (
    check_labeled_embeddings,
    check_labeled_width,
    decode_embeddings,
)
from labelwise_server.decode.fields import Fields
from labelwise_server.decode.history import decode_history
from labelwise_server.decode.models import decode_models
from labelwise_server.decode.multilabel import decode_multilabel
from labelwise_server.decode.probabilities import decode_probabilities
from labelwise_server.decode.regression import decode_regression
from labelwise_server.decode.spec import decode_spec
from labelwise_server.decode.structured import decode_structured
from labelwise_server.decode.weights import check_item_weights
from labelwise_server.errors import InvalidArgument, ModelRejected
from labelwise_server.request import (
    MAX_MODELS,
    MAX_STRATEGIES,
    ModelRun,
    Pool,
    Selection,
    StrategyCall,
    Task,
)
from labelwise_server.strategies import STRATEGIES
from labelwise_server.strategies._types import (
    FloatArray,
    Input,
    IntArray,
    RealArray,
)
from labelwise_server.tensors import RawTensor, WireRequest, oversize_model

# Estimated response bytes: per selected item its index (varint) and score (double), per
# strategy its name and parameters, per adversarial point coordinate a double.
_ITEM_BYTES = 10 + 8
_STRATEGY_BYTES = 512


def decode_request(
    request: WireRequest,
    max_elements: int,
    *,
    model_mode: bool = False,
    max_response_bytes: int = Config.max_message_bytes,
) -> Selection:
    """Decode and check every field of request; raise InvalidArgument on the first bad one.

    In model mode (request.models; refused unless model_mode) the Selection carries the
    checked ModelRun, and its pool the caller's other inputs: labelwise_server.inference
    runs the models and adds their outputs. Counts that cost work (strategies, models) and
    the estimated response size (against max_response_bytes) are checked before any tensor
    is decoded.
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
    calls = strategy_calls(header, max_response_bytes)
    needs_model = any(Input.MODEL in call.strategy.needs for call in calls)
    pool, run = _decode_pool(request.tensors, header, max_elements, model_mode, needs_model)
    present = _present_inputs(pool, run)
    for call in calls:
        _check_inputs(call, present)
        if pool.item_weights is not None and not call.strategy.reads_item_weights:
            raise InvalidArgument(
                "item_weights",
                f"is read by badge only; {call.field} is {call.strategy.name}, which would "
                "ignore it",
            )
    if len(header.history):
        classes = None if pool.probabilities is None else int(pool.probabilities.shape[1])
        known = frozenset(name for name in STRATEGIES if name != "auto")
        pool = replace(pool, history=decode_history(header.history, known, classes))
    task = _task(header, pool)
    width = None if run is None or not needs_model else run.inputs.shape[1]
    _check_response_size(calls, task.k, width, max_response_bytes)
    return Selection(pool, calls, task, run)


def strategy_calls(
    header: pb.SelectQueriesRequest, max_response_bytes: int
) -> tuple[StrategyCall, ...]:
    """The request's strategy calls, checked, and its response size when k is as sent."""
    calls = tuple(_strategy_call(spec, i) for i, spec in enumerate(header.strategies))
    if not calls:
        raise InvalidArgument("strategies", "must name at least one strategy; got none")
    if not header.clamp_k and header.k > 0:  # k stays as sent: refuse before any work
        _check_response_size(calls, header.k, None, max_response_bytes)
    return calls


def check_response_size(calls: tuple[StrategyCall, ...], k: int, max_bytes: int) -> None:
    _check_response_size(calls, k, None, max_bytes)


def check_temperature(header: pb.SelectQueriesRequest) -> float:
    temperature = header.temperature if header.HasField("temperature") else 1.0
    if not (np.isfinite(temperature) and temperature > 0):
        raise InvalidArgument("temperature", f"must be finite and > 0; got {temperature}")
    return temperature


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
        if call.strategy.represented is not None and call.params.get("report_weights"):
            item += 8
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
    model_mode: bool,
    needs_model: bool,
) -> tuple[Pool, ModelRun | None]:
    """The caller's pool inputs, checked and agreeing on n; the models' run in model mode."""
    fields = Fields(tensors, max_elements)
    temperature = check_temperature(header)

    sizes: dict[str, int] = {}  # field -> its n
    embeddings = decode_embeddings(fields)
    run: ModelRun | None = None
    probabilities: RealArray | None = None
    committee: RealArray | None = None
    if len(header.models):
        run = decode_models(fields, header, temperature, needs_model, model_mode)
        sizes[run.input_field] = run.inputs.shape[0]  # the models' outputs have its rows
    else:
        if "model_inputs" in fields:
            raise InvalidArgument("model_inputs", "must come with models; the request has none")
        probabilities = decode_probabilities(fields, temperature)
        committee = decode_committee(fields, temperature)
    labeled = fields.get("labeled_embeddings")
    costs = fields.get("costs", allow_int=True)
    weights = fields.get("item_weights", allow_int=True)

    if probabilities is not None:
        sizes[fields.present("probabilities", "logits")] = probabilities.shape[0]
    if committee is not None:
        sizes[fields.present("committee", "committee_logits")] = committee.shape[1]
        check_committee_classes(fields, committee, probabilities)
    if embeddings is not None:
        sizes.setdefault("embeddings", embeddings.shape[0])
    if labeled is not None:
        check_labeled_embeddings(labeled)
        # With embeddings_output the models' embeddings replace the caller's: the inference
        # stage checks labeled_embeddings against them.
        if embeddings is not None and not (run is not None and run.embeddings_output):
            check_labeled_width(labeled, embeddings, "embeddings")
    cost_values: FloatArray | None = None
    if costs is not None:
        cost_values = check_costs(costs)
        sizes["costs"] = cost_values.shape[0]
    weight_values: FloatArray | None = None
    if weights is not None:
        weight_values = check_item_weights(weights)
        sizes["item_weights"] = weight_values.shape[0]

    multilabel = decode_multilabel(fields, header, temperature, sizes)
    regression = decode_regression(fields, sizes)
    targets = regression.labeled_targets
    structured = decode_structured(fields, temperature, sizes)
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
    pool = Pool(
        n=n,
        probabilities=probabilities,
        committee=committee,
        embeddings=embeddings,
        labeled_embeddings=labeled,
        costs=cost_values,
        item_weights=weight_values,
        multilabel=multilabel.probabilities,
        multilabel_committee=multilabel.committee,
        labeled_label_cardinality=multilabel.labeled_label_cardinality,
        regression_mean=regression.mean,
        regression_std=regression.std,
        regression_samples=regression.samples,
        labeled_targets=targets,
        structured=structured.probabilities,
        structured_committee=structured.committee,
        structured_mask=structured.mask,
    )
    return pool, run


def _strategy_call(spec: pb.StrategySpec, i: int) -> StrategyCall:
    field = f"strategies[{i}]"
    strategy, params = decode_spec(spec, STRATEGIES, field)
    return StrategyCall(strategy, params, field)


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


def _present_inputs(pool: Pool, run: ModelRun | None) -> Mapping[Input, bool]:
    """Which inputs the request carries, counting what its models will compute."""
    return {
        Input.ANY: True,
        Input.PROBABILITIES: pool.probabilities is not None or run is not None,
        Input.COMMITTEE: pool.committee is not None or (run is not None and run.committee),
        Input.EMBEDDINGS: pool.embeddings is not None
        or (run is not None and bool(run.embeddings_output)),
        Input.LABELED_EMBEDDINGS: pool.labeled_embeddings is not None,
        Input.MULTILABEL_PROBABILITIES: pool.multilabel is not None,
        Input.MULTILABEL_COMMITTEE: pool.multilabel_committee is not None,
        Input.LABELED_LABEL_CARDINALITY: pool.labeled_label_cardinality is not None,
        Input.REGRESSION_PREDICTION: pool.regression_mean is not None,
        Input.REGRESSION_SPREAD: pool.regression_std is not None,
        Input.LABELED_TARGETS: pool.labeled_targets is not None,
        Input.STRUCTURED_PROBABILITIES: pool.structured is not None,
        Input.STRUCTURED_COMMITTEE: pool.structured_committee is not None,
        Input.MODEL: run is not None,
    }


def _check_inputs(call: StrategyCall, present: Mapping[Input, bool]) -> None:
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
    return make_task(header, pool.n, np.asarray(header.exclude, dtype=np.int64))


def check_exclude(exclude: IntArray, n: int) -> None:
    """Every exclude entry indexes the pool of n items (InvalidArgument at the first that does
    not)."""
    outside = (exclude < 0) | (exclude >= n)
    if outside.any():
        position = int(np.flatnonzero(outside)[0])
        raise InvalidArgument(
            f"exclude[{position}]", f"must be in [0, {n}); got {int(exclude[position])}"
        )


def make_task(header: pb.SelectQueriesRequest, n: int, exclude: IntArray) -> Task:
    """The Task of a pool of n items, exclude being the request's exclude list (in order)."""
    excluded = np.zeros(n, dtype=bool)
    if exclude.shape[0]:
        check_exclude(exclude, n)
        excluded[exclude] = True
    candidates = np.flatnonzero(~excluded).astype(np.int64)
    k = task_k(header, n, candidates.shape[0])
    budget: float | None = None
    if header.HasField("budget"):
        budget = header.budget
        if not (np.isfinite(budget) and budget >= 0):
            raise InvalidArgument("budget", f"must be finite and >= 0; got {budget}")
    return Task(k=k, candidates=candidates, seed=header.seed, budget=budget)


def task_k(header: pb.SelectQueriesRequest, n: int, candidates: int) -> int:
    """The k a request gets among its candidates (k clamped with clamp_k), or InvalidArgument."""
    k = header.k
    if k <= 0:
        raise InvalidArgument("k", f"must be >= 1; got {k}")
    if k > candidates:
        if not header.clamp_k:
            raise InvalidArgument(
                "k",
                f"must be at most the {candidates} candidate items "
                f"(n = {n} minus {n - candidates} excluded), "
                f"or set clamp_k; got {k}",
            )
        k = candidates
    if k == 0:
        raise InvalidArgument("exclude", "must leave at least one candidate item; all are excluded")
    return k
