"""A thin NumPy-facing client for the labelwise QuerySelectionService and
LabelQualityService."""

import hashlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
import numpy as np
import numpy.typing as npt
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from labelwise.tensors import (
    LABELED_AXIS,
    POOL_AXIS,
    encode_tensor,
    raw_bytes,
    tensor_field,
    varint,
    wire_dtype,
)
from labelwise.v1 import error_reason_pb2, history_pb2
from labelwise.v1 import label_quality_pb2 as lq
from labelwise.v1 import label_quality_pb2_grpc as lq_grpc
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from labelwise.stream import StreamSelector

ParamValue: TypeAlias = int | float | str | bool
StrategyArg: TypeAlias = str | tuple[str, Mapping[str, ParamValue]]
# An ONNX model: its bytes, or the path of a .onnx file.
ModelArg: TypeAlias = bytes | str | os.PathLike[str]
# The ErrorInfo reason of a model sent by hash that the server no longer holds.
MODEL_NOT_CACHED = error_reason_pb2.ErrorReason.Name(error_reason_pb2.MODEL_NOT_CACHED)
_MODEL_OUTPUTS = {"probabilities": pb.MODEL_OUTPUT_PROBABILITIES, "logits": pb.MODEL_OUTPUT_LOGITS}

_SERVICE = "/labelwise.v1.QuerySelectionService/"
_TENSOR_FIELDS = {
    fd.name: fd.number
    for fd in pb.SelectQueriesRequest.DESCRIPTOR.fields
    if fd.message_type is not None and fd.message_type.full_name == "labelwise.v1.Tensor"
}
_AGGREGATES = {"mean": pb.UNCERTAINTY_AGGREGATE_MEAN, "max": pb.UNCERTAINTY_AGGREGATE_MAX}
_RULES = {"all": pb.STOPPING_RULE_ALL, "any": pb.STOPPING_RULE_ANY}
_METHODS = {
    "crowdlab": lq.LABEL_QUALITY_METHOD_CROWDLAB,
    "dawid_skene": lq.LABEL_QUALITY_METHOD_DAWID_SKENE,
    "bayes_em": lq.LABEL_QUALITY_METHOD_BAYES_EM,
}
_BOUNDS = {
    "upper": lq.ACCURACY_BOUND_UPPER,
    "mean": lq.ACCURACY_BOUND_MEAN,
    "lower": lq.ACCURACY_BOUND_LOWER,
}
_KINDS = {lq.LABELING_KIND_RELABEL: "relabel", lq.LABELING_KIND_LABEL_FIRST: "label_first"}
# The missing-annotation marker of an annotations matrix [l, a].
MISSING = -1
_PARAM_TYPES = {
    pb.PARAM_TYPE_INT: "int",
    pb.PARAM_TYPE_FLOAT: "float",
    pb.PARAM_TYPE_STRING: "string",
    pb.PARAM_TYPE_BOOL: "bool",
}
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class LabelwiseError(Exception):
    """A call failed; code is the gRPC status, violations name the request fields at fault."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        violations: Sequence[FieldViolation] = (),
        reason: str = "",
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.violations = list(violations)
        self.reason = reason  # google.rpc.ErrorInfo.reason, when the server sent one

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "LabelwiseError":
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = error.details() if hasattr(error, "details") else str(error)
        violations: list[FieldViolation] = []
        reason = ""
        status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
        if status is not None:
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason = info.reason
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad_request = error_details_pb2.BadRequest()
                    detail.Unpack(bad_request)
                    violations += [
                        FieldViolation(v.field, v.description) for v in bad_request.field_violations
                    ]
        return cls(code, message or "", violations, reason)


@dataclass(frozen=True)
class Selection:
    """One strategy's answer: pool indices best first, their scores, and what it ran with."""

    name: str
    indices: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64]
    params: dict[str, ParamValue]
    total_cost: float
    # deepfool with return_points: the adversarial point of each selected item [k, d].
    adversarial_points: npt.NDArray[np.float64] | None = None
    # How many candidates the strategy chose among (after a batch strategy's pre-filter).
    candidates_considered: int = 0
    # "auto": the arm of each selected item and every arm's posterior weight.
    auto: "AutoSelection | None" = None
    # deepfool: the method that ran, "gradient" or "decision" ("" for other strategies).
    adversarial_method: str = ""
    # badge with report_weights: the candidates' total item_weights nearest each pick [k].
    represented_weights: npt.NDArray[np.float64] | None = None


@dataclass(frozen=True)
class Round:
    """One past labeling round, for the "auto" strategy's history (SelectionRound).

    strategies: the strategy that picked each item (aligned with labels), or one name for
    all; "" for items no strategy picked (the initial seed set). labels: the class each item
    received. probabilities: optionally, the model's [len(labels), c] predictions for them
    before labeling.
    """

    strategies: str | Sequence[str]
    labels: npt.ArrayLike
    probabilities: npt.ArrayLike | None = None

    def to_proto(self) -> history_pb2.SelectionRound:
        names = [self.strategies] if isinstance(self.strategies, str) else list(self.strategies)
        message = history_pb2.SelectionRound(
            strategies=names,
            labels=np.asarray(self.labels, dtype=np.int64).reshape(-1).tolist(),
        )
        if self.probabilities is not None:
            values = np.asarray(self.probabilities, dtype=np.float64).reshape(-1)
            message.probabilities.extend(values.tolist())
        return message


@dataclass(frozen=True)
class AutoArm:
    """One candidate strategy of "auto": its picks in this result and its posterior."""

    name: str
    picks: int
    weight: float
    expected_reward: float
    evidence: float


@dataclass(frozen=True)
class AutoSelection:
    """What "auto" reports: every arm, and the arm that picked each selected item (aligned
    with Selection.indices; send them back as Round.strategies once labeled)."""

    arms: list[AutoArm]
    strategies: list[str]
    reward: str
    history_rounds: int
    history_items: int


def _auto_selection(message: history_pb2.AutoSelection) -> AutoSelection:
    return AutoSelection(
        arms=[
            AutoArm(a.name, a.picks, a.weight, a.expected_reward, a.evidence) for a in message.arms
        ],
        strategies=list(message.strategies),
        reward=message.reward,
        history_rounds=message.history_rounds,
        history_items=message.history_items,
    )


@dataclass(frozen=True)
class StoppingCriterion:
    """One stopping criterion's measured value, its threshold and its verdict."""

    name: str
    value: float
    threshold: float
    stop: bool
    evaluated: bool
    detail: str


@dataclass(frozen=True)
class StoppingVerdict:
    """CheckStopping's answer: the combined verdict, each criterion by name, the kappas."""

    stop: bool
    criteria: dict[str, StoppingCriterion]
    kappas: npt.NDArray[np.float64]


@dataclass(frozen=True)
class LabelAssessment:
    """AssessLabels' answer: per labeled item [l] and per annotator [a]."""

    method: str  # "crowdlab", "dawid_skene" or "bayes_em"
    consensus_labels: npt.NDArray[np.int64]
    consensus_quality: npt.NDArray[np.float64]
    item_agreement: npt.NDArray[np.float64]
    annotator_quality: npt.NDArray[np.float64]
    annotator_agreement: npt.NDArray[np.float64]
    annotator_label_counts: npt.NDArray[np.int64]
    majority_vote_labels: npt.NDArray[np.int64]
    annotator_weights: npt.NDArray[np.float64]  # CROWDLAB; empty for the others
    model_weight: float  # CROWDLAB; 0 for the others
    iterations: int  # Dawid-Skene, Bayes EM; 0 for CROWDLAB
    confusion: npt.NDArray[np.float64] | None  # Dawid-Skene [a, c, c]
    class_priors: npt.NDArray[np.float64]  # Dawid-Skene; Bayes EM's mean posterior [c]
    model_temperature: float = 0.0  # Bayes EM with labeled_probabilities; 0 otherwise


@dataclass(frozen=True)
class LabelingTask:
    """One planned label: kind "relabel" (index: a labeled row) or "label_first" (a pool row)."""

    kind: str
    index: int
    score: float
    annotator: int
    expected_accuracy: float
    cost: float


@dataclass(frozen=True)
class AnnotatorEstimate:
    accuracy_mean: float
    accuracy_lower: float
    accuracy_upper: float
    observations: int
    quality: float
    eligible: bool
    cost: float
    tasks: int


@dataclass(frozen=True)
class LabelingPlan:
    """PlanLabeling's answer: the tasks best first, what it knows of each annotator."""

    tasks: list[LabelingTask]
    total_cost: float
    annotators: list[AnnotatorEstimate]
    temperature: float
    candidates_considered: int
    consensus_labels: npt.NDArray[np.int64]


@dataclass(frozen=True)
class ParamDescription:
    name: str
    type: str
    default: ParamValue | None
    allowed_values: list[ParamValue]
    minimum: float | None
    maximum: float | None
    exclusive_minimum: bool
    description: str


@dataclass(frozen=True)
class StrategyDescription:
    name: str
    family: str
    description: str
    params: dict[str, ParamDescription]
    required_inputs: list[str]
    batch: bool
    seeded: bool
    task: str = "classification"


@dataclass(frozen=True)
class LabelQualityMethodDescription:
    """A method of LabelQualityService (ListStrategiesResponse.label_quality_methods): params
    are the request fields that tune it, by field name."""

    name: str
    rpcs: list[str]
    description: str
    params: dict[str, ParamDescription]
    is_default: bool


def _param_description(p: pb.ParamInfo) -> ParamDescription:
    return ParamDescription(
        name=p.name,
        type=_PARAM_TYPES.get(p.type, "unspecified"),
        default=_from_param(p.default_value),
        allowed_values=[v for v in map(_from_param, p.allowed_values) if v is not None],
        minimum=p.minimum if p.HasField("minimum") else None,
        maximum=p.maximum if p.HasField("maximum") else None,
        exclusive_minimum=p.exclusive_minimum,
        description=p.description,
    )


@dataclass
class _Request:
    header: pb.SelectQueriesRequest
    tensors: dict[str, npt.NDArray[Any]] = field(default_factory=dict)


def _to_param(value: ParamValue) -> pb.ParamValue:
    if isinstance(value, bool):
        return pb.ParamValue(bool_value=value)
    if isinstance(value, int):
        return pb.ParamValue(int_value=value)
    if isinstance(value, float):
        return pb.ParamValue(double_value=value)
    if isinstance(value, str):
        return pb.ParamValue(string_value=value)
    raise TypeError(f"parameter values must be int, float, str or bool; got {type(value)}")


def _from_param(value: pb.ParamValue) -> ParamValue | None:
    kind = value.WhichOneof("kind")
    if kind is None:
        return None
    result: ParamValue = getattr(value, kind)
    return result


def _params(params: Mapping[str, pb.ParamValue]) -> dict[str, ParamValue]:
    values = {name: _from_param(value) for name, value in params.items()}
    return {name: value for name, value in values.items() if value is not None}


def _identity(data: bytes) -> bytes:
    return data


def _strategy_list(strategies: StrategyArg | Sequence[StrategyArg]) -> list[StrategyArg]:
    """One strategy (a name or a (name, params) pair) or a sequence of them, as a list."""
    if isinstance(strategies, str):
        return [strategies]  # a lone name is one strategy, never its characters
    if (
        isinstance(strategies, tuple)
        and len(strategies) == 2
        and isinstance(strategies[0], str)
        and isinstance(strategies[1], Mapping)
    ):
        return [strategies]
    specs = list(strategies)
    for i, spec in enumerate(specs):
        if isinstance(spec, str):
            continue
        if not (
            isinstance(spec, tuple)
            and len(spec) == 2
            and isinstance(spec[0], str)
            and isinstance(spec[1], Mapping)
        ):
            raise TypeError(
                f"strategies[{i}] must be a name or a (name, {{param: value}}) pair; "
                f"got {type(spec).__name__}"
            )
    return specs


class Client:
    """labelwise client over one gRPC channel; also a context manager that closes it.

    target is "host:port" (or any gRPC target, e.g. "dns:///svc:50051").
    Pools whose request would exceed max_message_bytes go through the
    streaming call in chunks of about chunk_bytes, on their own.
    """

    def __init__(
        self,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        channel_options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            *options,
        ]
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=channel_options)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=channel_options)
        self._max_message_bytes = max_message_bytes
        # Every stream chunk must itself fit a message, with room for the header fields.
        self._chunk_bytes = max(1, min(chunk_bytes, max_message_bytes // 2))
        self._unary = self._channel.unary_unary(
            _SERVICE + "SelectQueries",
            request_serializer=_identity,
            response_deserializer=pb.SelectQueriesResponse.FromString,
        )
        self._stream = self._channel.stream_unary(
            _SERVICE + "SelectQueriesStream",
            request_serializer=_identity,
            response_deserializer=pb.SelectQueriesStreamResponse.FromString,
        )
        self._stub = pb_grpc.QuerySelectionServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._labels = lq_grpc.LabelQualityServiceStub(self._channel)  # type: ignore[no-untyped-call]
        # SHA-256 of models this client has sent the server in full: later calls send the hash.
        self._sent_models: set[str] = set()
        self._sent_lock = threading.Lock()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def stream_selector(
        self,
        strategy: str,
        params: Mapping[str, ParamValue] | None = None,
        *,
        budget: float | None = None,
        window_items: int | None = None,
        max_labels: int | None = None,
        seed: int = 0,
        token: bytes = b"",
    ) -> "StreamSelector":
        """A stream's decisions (StreamSelectionService) that carry its token between calls;
        see labelwise.stream. Errors raise LabelwiseError."""
        from labelwise.stream import StreamSelector

        return StreamSelector(
            self._channel, strategy, params, budget=budget, window_items=window_items,
            max_labels=max_labels, seed=seed, token=token,
            errors=LabelwiseError.from_rpc_error,
        )  # fmt: skip

    def select(
        self,
        *,
        strategies: StrategyArg | Sequence[StrategyArg],
        k: int,
        probabilities: npt.ArrayLike | None = None,
        logits: npt.ArrayLike | None = None,
        committee: npt.ArrayLike | None = None,
        committee_logits: npt.ArrayLike | None = None,
        embeddings: npt.ArrayLike | None = None,
        labeled_embeddings: npt.ArrayLike | None = None,
        costs: npt.ArrayLike | None = None,
        budget: float | None = None,
        exclude: npt.ArrayLike | None = None,
        seed: int | None = None,
        temperature: float | None = None,
        clamp_k: bool = False,
        deadline: float | None = None,
        item_weights: npt.ArrayLike | None = None,
        multilabel_probabilities: npt.ArrayLike | None = None,
        multilabel_logits: npt.ArrayLike | None = None,
        multilabel_committee: npt.ArrayLike | None = None,
        multilabel_committee_logits: npt.ArrayLike | None = None,
        labeled_label_cardinality: float | None = None,
        regression_mean: npt.ArrayLike | None = None,
        regression_std: npt.ArrayLike | None = None,
        regression_samples: npt.ArrayLike | None = None,
        labeled_targets: npt.ArrayLike | None = None,
        structured_probabilities: npt.ArrayLike | None = None,
        structured_logits: npt.ArrayLike | None = None,
        structured_committee: npt.ArrayLike | None = None,
        structured_committee_logits: npt.ArrayLike | None = None,
        structured_mask: npt.ArrayLike | None = None,
        model: ModelArg | Sequence[ModelArg] | None = None,
        model_inputs: npt.ArrayLike | None = None,
        model_output: str = "probabilities",
        embeddings_output: str = "",
        mc_dropout_samples: int = 0,
        inference_batch_rows: int = 0,
        inference_timeout: float | None = None,
        history: Sequence[Round] | None = None,
    ) -> dict[str, Selection]:
        """Rank the pool with each strategy; returns {strategy name: Selection}.

        strategies: a name, a (name, {param: value}) pair, or a list of them.
        Arrays keep their float16/float32/float64 dtype on the wire (others
        travel as float64; a boolean structured_mask as int32). Shapes: multilabel_* [n, L] or
        [m, n, L]; regression_mean/std [n], regression_samples [m, n],
        labeled_targets [l]; structured_* [n, c, ...] or [m, n, c, ...] with
        structured_mask [n, ...]. deadline: seconds the call may take. Raises
        LabelwiseError.

        Model mode: model is ONNX bytes or a path (a list of them: an ensemble);
        the server runs it on model_inputs (or embeddings). model_output is
        "probabilities" or "logits". The first call with a model sends its bytes;
        later calls send only its SHA-256, and if the server no longer holds it
        (NOT_FOUND, reason MODEL_NOT_CACHED) the call is repeated with the bytes.

        history: the past rounds (oldest first) for the "auto" strategy; its Selection.auto
        says which arm picked each item.

        item_weights [n] (>= 0): how many items each pool item stands for, read by badge only
        (weighted k-means++ seeding; see docs/scale.md).
        """
        header = pb.SelectQueriesRequest(k=k, clamp_k=clamp_k)
        if history is not None:
            header.history.extend(r.to_proto() for r in history)
        names: list[str] = []
        for spec in _strategy_list(strategies):
            name, params = (spec, {}) if isinstance(spec, str) else spec
            if name in names:
                raise ValueError(f"strategy {name!r} is named twice; results are keyed by name")
            names.append(name)
            header.strategies.append(
                pb.StrategySpec(name=name, params={p: _to_param(v) for p, v in params.items()})
            )
        if seed is not None:
            header.seed = seed
        if budget is not None:
            header.budget = budget
        if temperature is not None:
            header.temperature = temperature
        if labeled_label_cardinality is not None:
            header.labeled_label_cardinality = labeled_label_cardinality
        if exclude is not None:
            header.exclude.extend(np.asarray(exclude, dtype=np.int64).reshape(-1).tolist())
        request = _Request(header)
        given = {
            "probabilities": probabilities,
            "logits": logits,
            "committee": committee,
            "committee_logits": committee_logits,
            "embeddings": embeddings,
            "labeled_embeddings": labeled_embeddings,
            "costs": costs,
            "item_weights": item_weights,
            "multilabel_probabilities": multilabel_probabilities,
            "multilabel_logits": multilabel_logits,
            "multilabel_committee": multilabel_committee,
            "multilabel_committee_logits": multilabel_committee_logits,
            "regression_mean": regression_mean,
            "regression_std": regression_std,
            "regression_samples": regression_samples,
            "labeled_targets": labeled_targets,
            "structured_probabilities": structured_probabilities,
            "structured_logits": structured_logits,
            "structured_committee": structured_committee,
            "structured_committee_logits": structured_committee_logits,
            "structured_mask": structured_mask,
        }
        given["model_inputs"] = model_inputs
        for name, value in given.items():
            if value is not None:
                array = np.asarray(value)
                request.tensors[name] = array.astype(np.int32) if array.dtype == bool else array
        blobs: list[bytes] = []
        if model is not None:
            if model_output not in _MODEL_OUTPUTS:
                raise ValueError(f"model_output must be one of {list(_MODEL_OUTPUTS)}")
            header.model_output = _MODEL_OUTPUTS[model_output]
            header.embeddings_output = embeddings_output
            header.mc_dropout_samples = mc_dropout_samples
            header.inference_batch_rows = inference_batch_rows
            if inference_timeout is not None:
                header.inference_timeout_seconds = inference_timeout
            if isinstance(model, bytes | str | os.PathLike):
                blobs = [_model_bytes(model)]
            else:
                blobs = [_model_bytes(m) for m in model]
        try:
            response = self._call_with_models(request, blobs, deadline)
        except grpc.RpcError as err:
            raise LabelwiseError.from_rpc_error(err) from None
        return {
            result.name: Selection(
                name=result.name,
                indices=np.asarray(result.indices, dtype=np.int64),
                scores=np.asarray(result.scores, dtype=np.float64),
                params=_params(result.params),
                total_cost=result.total_cost,
                adversarial_points=_decode(result.adversarial_points)
                if result.HasField("adversarial_points")
                else None,
                candidates_considered=result.candidates_considered,
                auto=_auto_selection(result.auto_selection)
                if result.HasField("auto_selection")
                else None,
                adversarial_method=result.adversarial_method,
                represented_weights=np.asarray(result.represented_weights, dtype=np.float64)
                if len(result.represented_weights)
                else None,
            )
            for result in response.results
        }

    def check_stopping(
        self,
        *,
        stop_set_predictions: npt.ArrayLike | None = None,
        pool_probabilities: npt.ArrayLike | None = None,
        kappa_threshold: float | None = None,
        kappa_window: int | None = None,
        uncertainty_threshold: float | None = None,
        uncertainty_aggregate: str | None = None,
        max_change_fraction: float | None = None,
        rule: str | None = None,
        deadline: float | None = None,
    ) -> StoppingVerdict:
        """Should labeling stop? From the last rounds' predictions on a fixed stop set.

        stop_set_predictions: [r, s] integer class labels (oldest round first) or
        [r, s, c] probabilities; pool_probabilities: [n, c] of the current model.
        Thresholds left out take the papers' defaults (kappa 0.99 over a window
        of 3; see the proto). uncertainty_aggregate: "mean" or "max"; rule:
        "all" or "any". Raises LabelwiseError.
        """
        request = pb.CheckStoppingRequest()
        if stop_set_predictions is not None:
            predictions = np.asarray(stop_set_predictions)
            if predictions.dtype.kind in "iub":
                predictions = predictions.astype(np.int64)
            request.stop_set_predictions.CopyFrom(encode_tensor(predictions))
        if pool_probabilities is not None:
            request.pool_probabilities.CopyFrom(encode_tensor(np.asarray(pool_probabilities)))
        if kappa_threshold is not None:
            request.kappa_threshold = kappa_threshold
        if kappa_window is not None:
            request.kappa_window = kappa_window
        if uncertainty_threshold is not None:
            request.uncertainty_threshold = uncertainty_threshold
        if uncertainty_aggregate is not None:
            if uncertainty_aggregate not in _AGGREGATES:
                raise ValueError(f"uncertainty_aggregate must be one of {list(_AGGREGATES)}")
            request.uncertainty_aggregate = _AGGREGATES[uncertainty_aggregate]
        if max_change_fraction is not None:
            request.max_change_fraction = max_change_fraction
        if rule is not None:
            if rule not in _RULES:
                raise ValueError(f"rule must be one of {list(_RULES)}")
            request.rule = _RULES[rule]
        try:
            response = self._stub.CheckStopping(request, timeout=deadline)
        except grpc.RpcError as err:
            raise LabelwiseError.from_rpc_error(err) from None
        return StoppingVerdict(
            stop=response.stop,
            criteria={
                c.name: StoppingCriterion(
                    c.name, c.value, c.threshold, c.stop, c.evaluated, c.detail
                )
                for c in response.criteria
            },
            kappas=np.asarray(response.kappas, dtype=np.float64),
        )

    def assess_labels(
        self,
        annotations: npt.ArrayLike,
        *,
        labeled_probabilities: npt.ArrayLike | None = None,
        method: str = "crowdlab",
        num_classes: int | None = None,
        max_iterations: int | None = None,
        tolerance: float | None = None,
        accuracy_prior_strength: float | None = None,
        deadline: float | None = None,
    ) -> LabelAssessment:
        """Consensus labels and quality scores of labels from several annotators.

        annotations: [l, a] integer class labels, MISSING (-1) where annotator j did not label
        item i; labeled_probabilities: [l, c] out-of-sample (required by "crowdlab"); method:
        "crowdlab", "dawid_skene" (which needs only num_classes) or "bayes_em" (the model as
        the prior when sent, else num_classes; accuracy_prior_strength: pseudo-labels at the
        pooled accuracy, default 10). Raises LabelwiseError.
        """
        if method not in _METHODS:
            raise ValueError(f"method must be one of {list(_METHODS)}")
        request = lq.AssessLabelsRequest(method=_METHODS[method])
        request.annotations.CopyFrom(encode_tensor(np.asarray(annotations, dtype=np.int64)))
        if labeled_probabilities is not None:
            request.labeled_probabilities.CopyFrom(encode_tensor(np.asarray(labeled_probabilities)))
        if num_classes is not None:
            request.num_classes = num_classes
        if max_iterations is not None:
            request.max_iterations = max_iterations
        if tolerance is not None:
            request.tolerance = tolerance
        if accuracy_prior_strength is not None:
            request.accuracy_prior_strength = accuracy_prior_strength
        try:
            r = self._labels.AssessLabels(request, timeout=deadline)
        except grpc.RpcError as err:
            raise LabelwiseError.from_rpc_error(err) from None
        return LabelAssessment(
            method={v: k for k, v in _METHODS.items()}[r.method],
            consensus_labels=np.asarray(r.consensus_labels, dtype=np.int64),
            consensus_quality=np.asarray(r.consensus_quality, dtype=np.float64),
            item_agreement=np.asarray(r.item_agreement, dtype=np.float64),
            annotator_quality=np.asarray(r.annotator_quality, dtype=np.float64),
            annotator_agreement=np.asarray(r.annotator_agreement, dtype=np.float64),
            annotator_label_counts=np.asarray(r.annotator_label_counts, dtype=np.int64),
            majority_vote_labels=np.asarray(r.majority_vote_labels, dtype=np.int64),
            annotator_weights=np.asarray(r.annotator_weights, dtype=np.float64),
            model_weight=r.model_weight,
            iterations=r.iterations,
            confusion=_decode(r.confusion) if r.HasField("confusion") else None,
            class_priors=np.asarray(r.class_priors, dtype=np.float64),
            model_temperature=r.model_temperature,
        )

    def plan_labeling(
        self,
        annotations: npt.ArrayLike,
        labeled_probabilities: npt.ArrayLike,
        *,
        k: int,
        pool_probabilities: npt.ArrayLike | None = None,
        annotator_costs: npt.ArrayLike | None = None,
        budget: float | None = None,
        clamp_k: bool = False,
        pool_strategy: str = "",
        accuracy_bound: str | None = None,
        alpha: float | None = None,
        epsilon: float | None = None,
        max_tasks_per_annotator: int | None = None,
        exclude_labeled: Sequence[int] = (),
        exclude_pool: Sequence[int] = (),
        deadline: float | None = None,
    ) -> LabelingPlan:
        """Which items to label again, which to label first, and by whom, within the budget.

        annotations: [l, a] as in assess_labels; labeled_probabilities: [l, c] out-of-sample;
        pool_probabilities: [n, c]; annotator_costs: [a]. accuracy_bound: "upper" (default),
        "mean" or "lower". Raises LabelwiseError.
        """
        request = lq.PlanLabelingRequest(k=k, clamp_k=clamp_k, pool_strategy=pool_strategy)
        request.annotations.CopyFrom(encode_tensor(np.asarray(annotations, dtype=np.int64)))
        request.labeled_probabilities.CopyFrom(encode_tensor(np.asarray(labeled_probabilities)))
        if pool_probabilities is not None:
            request.pool_probabilities.CopyFrom(encode_tensor(np.asarray(pool_probabilities)))
        if annotator_costs is not None:
            request.annotator_costs.CopyFrom(encode_tensor(np.asarray(annotator_costs)))
        if budget is not None:
            request.budget = budget
        if accuracy_bound is not None:
            if accuracy_bound not in _BOUNDS:
                raise ValueError(f"accuracy_bound must be one of {list(_BOUNDS)}")
            request.accuracy_bound = _BOUNDS[accuracy_bound]
        if alpha is not None:
            request.alpha = alpha
        if epsilon is not None:
            request.epsilon = epsilon
        if max_tasks_per_annotator is not None:
            request.max_tasks_per_annotator = max_tasks_per_annotator
        request.exclude_labeled.extend(exclude_labeled)
        request.exclude_pool.extend(exclude_pool)
        try:
            r = self._labels.PlanLabeling(request, timeout=deadline)
        except grpc.RpcError as err:
            raise LabelwiseError.from_rpc_error(err) from None
        return LabelingPlan(
            tasks=[
                LabelingTask(
                    _KINDS[t.kind], t.index, t.score, t.annotator, t.expected_accuracy, t.cost
                )
                for t in r.tasks
            ],
            total_cost=r.total_cost,
            annotators=[
                AnnotatorEstimate(
                    e.accuracy_mean,
                    e.accuracy_lower,
                    e.accuracy_upper,
                    e.observations,
                    e.quality,
                    e.eligible,
                    e.cost,
                    e.tasks,
                )
                for e in r.annotators
            ],
            temperature=r.temperature,
            candidates_considered=r.candidates_considered,
            consensus_labels=np.asarray(r.consensus_labels, dtype=np.int64),
        )

    def _call_with_models(
        self, request: _Request, blobs: list[bytes], deadline: float | None
    ) -> pb.SelectQueriesResponse:
        """Send models the server has seen by hash; on MODEL_NOT_CACHED, once more with bytes."""
        digests = [hashlib.sha256(blob).hexdigest() for blob in blobs]
        with self._sent_lock:
            by_hash = [digest in self._sent_models for digest in digests]
        for attempt in range(2):
            del request.header.models[:]
            for blob, digest, hashed in zip(blobs, digests, by_hash, strict=True):
                model = pb.Model(sha256=digest) if hashed else pb.Model(onnx=blob)
                request.header.models.append(model)
            try:
                response = self._call(request, deadline)
            except grpc.RpcError as err:
                stale = (
                    attempt == 0
                    and any(by_hash)
                    and err.code() == grpc.StatusCode.NOT_FOUND
                    and LabelwiseError.from_rpc_error(err).reason == MODEL_NOT_CACHED
                )
                if not stale:
                    raise
                with self._sent_lock:
                    self._sent_models.difference_update(digests)
                by_hash = [False] * len(blobs)
                continue
            with self._sent_lock:
                self._sent_models.update(digests)
            return response
        raise AssertionError("unreachable")

    def _call(self, request: _Request, deadline: float | None) -> pb.SelectQueriesResponse:
        if self._wire_size(request) <= self._max_message_bytes - 65536:
            return self._unary(_encode(request), timeout=deadline)  # type: ignore[no-any-return]
        return self._stream(self._chunks(request), timeout=deadline).response  # type: ignore[no-any-return]

    def list_strategies(self, *, deadline: float | None = None) -> list[StrategyDescription]:
        """Every strategy the server offers, with its parameters and needed inputs."""
        try:
            response = self._stub.ListStrategies(pb.ListStrategiesRequest(), timeout=deadline)
        except grpc.RpcError as err:
            raise LabelwiseError.from_rpc_error(err) from None
        return [
            StrategyDescription(
                name=info.name,
                family=info.family,
                description=info.description,
                params={p.name: _param_description(p) for p in info.params},
                required_inputs=[
                    pb.PoolInput.Name(i).removeprefix("POOL_INPUT_").lower()
                    for i in info.required_inputs
                ],
                batch=info.batch,
                seeded=info.seeded,
                task=info.task,
            )
            for info in response.strategies
        ]

    def label_quality_methods(
        self, *, deadline: float | None = None
    ) -> list[LabelQualityMethodDescription]:
        """The methods of LabelQualityService (assess_labels, plan_labeling), as ListStrategies
        describes them: crowdlab, dawid_skene, bayes_em, activelab, interval_estimation."""
        try:
            response = self._stub.ListStrategies(pb.ListStrategiesRequest(), timeout=deadline)
        except grpc.RpcError as err:
            raise LabelwiseError.from_rpc_error(err) from None
        return [
            LabelQualityMethodDescription(
                name=info.name,
                rpcs=list(info.rpcs),
                description=info.description,
                params={p.name: _param_description(p) for p in info.params},
                is_default=info.is_default,
            )
            for info in response.label_quality_methods
        ]

    def _wire_size(self, request: _Request) -> int:
        tensors = sum(array.size * 8 for array in request.tensors.values())  # an upper bound
        return request.header.ByteSize() + tensors

    def _chunks(self, request: _Request) -> Iterator[bytes]:
        """The request as stream chunks of about chunk_bytes of rows each.

        The first chunk carries the header; exclude, which may be long, follows
        in chunks of its own (the server concatenates exclude lists) before the
        rows, so a server scoring rows as they arrive skips the excluded ones.
        """
        header = pb.SelectQueriesRequest()
        header.CopyFrom(request.header)
        header.ClearField("exclude")
        exclude = list(request.header.exclude)
        step = max(1, self._chunk_bytes // 10)  # an int64 varint takes at most 10 bytes
        slices = [exclude[start : start + step] for start in range(0, len(exclude), step)]
        first = True
        for part in slices:
            chunk = pb.SelectQueriesRequest()
            if first:
                chunk.CopyFrom(header)
                first = False
            chunk.exclude.extend(part)
            yield _stream_chunk(_Request(chunk))
        for i, rows in enumerate(_split(request, self._chunk_bytes)):
            chunk = header if first and i == 0 else pb.SelectQueriesRequest()
            yield _stream_chunk(_Request(chunk, rows))
            first = False
        if first:
            yield _stream_chunk(_Request(header))


def _model_bytes(model: ModelArg) -> bytes:
    if isinstance(model, bytes):
        return model
    with open(model, "rb") as handle:
        return handle.read()


def _decode(tensor: pb.Tensor) -> npt.NDArray[np.float64]:
    values = np.frombuffer(tensor.raw_data, dtype="<f8").reshape(tuple(tensor.shape))
    return values.astype(np.float64)


def _stream_chunk(request: _Request) -> bytes:
    """One SelectQueriesStreamRequest whose chunk field holds request (its rows copied once,
    into the message, as a plain `array.tobytes()` would copy them)."""
    parts = _parts(request)
    body = sum(len(part) for part in parts)  # len of a raw_bytes view counts bytes
    return b"".join([b"\x0a", varint(body), *parts])


def _encode(request: _Request) -> bytes:
    """The serialized SelectQueriesRequest: protobuf for the header, raw views for tensors."""
    return b"".join(_parts(request))


def _parts(request: _Request) -> list[Any]:
    """The pieces of the serialized SelectQueriesRequest, tensors as views of their rows."""
    parts: list[Any] = [request.header.SerializeToString()]
    for name, array in request.tensors.items():
        dtype = wire_dtype(array)
        parts += tensor_field(_TENSOR_FIELDS[name], array.shape, dtype, raw_bytes(array, dtype))
    return parts


def _split(request: _Request, chunk_bytes: int) -> Iterator[dict[str, npt.NDArray[Any]]]:
    """Row blocks of the pool tensors, then of the labeled-set tensors, each about chunk_bytes."""
    pool = {name: a for name, a in request.tensors.items() if name in POOL_AXIS}
    if pool:
        # Every row of every tensor goes out, so the server refuses tensors of unequal n
        # as it does in a unary call (it once cut them all to the first tensor's n).
        n = max(a.shape[POOL_AXIS[name]] for name, a in pool.items())
        row_bytes = sum(
            max(a.size // max(a.shape[POOL_AXIS[name]], 1), 1) * a.itemsize
            for name, a in pool.items()
        )
        step = max(1, chunk_bytes // max(row_bytes, 1))
        for start in range(0, max(n, 1), step):
            yield {  # views: raw_bytes copies only rows that are not contiguous (axis 1)
                name: a[(slice(None),) * POOL_AXIS[name] + (slice(start, start + step),)]
                for name, a in pool.items()
            }
    for name, axis in LABELED_AXIS.items():
        labeled = request.tensors.get(name)
        if labeled is None:
            continue
        rows = labeled.shape[axis]
        row_bytes = max(labeled.size // max(rows, 1), 1) * labeled.itemsize
        step = max(1, chunk_bytes // row_bytes)
        for start in range(0, max(rows, 1), step):
            yield {name: labeled[(slice(None),) * axis + (slice(start, start + step),)]}
