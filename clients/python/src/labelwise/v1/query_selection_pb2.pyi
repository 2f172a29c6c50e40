from labelwise.v1 import history_pb2 as _history_pb2
from labelwise.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DataType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_TYPE_UNSPECIFIED: _ClassVar[DataType]
    DATA_TYPE_FLOAT16: _ClassVar[DataType]
    DATA_TYPE_FLOAT32: _ClassVar[DataType]
    DATA_TYPE_FLOAT64: _ClassVar[DataType]
    DATA_TYPE_BFLOAT16: _ClassVar[DataType]
    DATA_TYPE_INT32: _ClassVar[DataType]
    DATA_TYPE_INT64: _ClassVar[DataType]

class ModelOutput(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_OUTPUT_UNSPECIFIED: _ClassVar[ModelOutput]
    MODEL_OUTPUT_PROBABILITIES: _ClassVar[ModelOutput]
    MODEL_OUTPUT_LOGITS: _ClassVar[ModelOutput]

class PoolInput(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POOL_INPUT_UNSPECIFIED: _ClassVar[PoolInput]
    POOL_INPUT_PROBABILITIES: _ClassVar[PoolInput]
    POOL_INPUT_COMMITTEE: _ClassVar[PoolInput]
    POOL_INPUT_EMBEDDINGS: _ClassVar[PoolInput]
    POOL_INPUT_LABELED_EMBEDDINGS: _ClassVar[PoolInput]
    POOL_INPUT_ANY: _ClassVar[PoolInput]
    POOL_INPUT_MODEL: _ClassVar[PoolInput]
    POOL_INPUT_MULTILABEL_PROBABILITIES: _ClassVar[PoolInput]
    POOL_INPUT_MULTILABEL_COMMITTEE: _ClassVar[PoolInput]
    POOL_INPUT_LABELED_LABEL_CARDINALITY: _ClassVar[PoolInput]
    POOL_INPUT_REGRESSION_PREDICTION: _ClassVar[PoolInput]
    POOL_INPUT_REGRESSION_SPREAD: _ClassVar[PoolInput]
    POOL_INPUT_LABELED_TARGETS: _ClassVar[PoolInput]
    POOL_INPUT_STRUCTURED_PROBABILITIES: _ClassVar[PoolInput]
    POOL_INPUT_STRUCTURED_COMMITTEE: _ClassVar[PoolInput]

class ParamType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARAM_TYPE_UNSPECIFIED: _ClassVar[ParamType]
    PARAM_TYPE_INT: _ClassVar[ParamType]
    PARAM_TYPE_FLOAT: _ClassVar[ParamType]
    PARAM_TYPE_STRING: _ClassVar[ParamType]
    PARAM_TYPE_BOOL: _ClassVar[ParamType]

class UncertaintyAggregate(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNCERTAINTY_AGGREGATE_UNSPECIFIED: _ClassVar[UncertaintyAggregate]
    UNCERTAINTY_AGGREGATE_MEAN: _ClassVar[UncertaintyAggregate]
    UNCERTAINTY_AGGREGATE_MAX: _ClassVar[UncertaintyAggregate]

class StoppingRule(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STOPPING_RULE_UNSPECIFIED: _ClassVar[StoppingRule]
    STOPPING_RULE_ALL: _ClassVar[StoppingRule]
    STOPPING_RULE_ANY: _ClassVar[StoppingRule]
DATA_TYPE_UNSPECIFIED: DataType
DATA_TYPE_FLOAT16: DataType
DATA_TYPE_FLOAT32: DataType
DATA_TYPE_FLOAT64: DataType
DATA_TYPE_BFLOAT16: DataType
DATA_TYPE_INT32: DataType
DATA_TYPE_INT64: DataType
MODEL_OUTPUT_UNSPECIFIED: ModelOutput
MODEL_OUTPUT_PROBABILITIES: ModelOutput
MODEL_OUTPUT_LOGITS: ModelOutput
POOL_INPUT_UNSPECIFIED: PoolInput
POOL_INPUT_PROBABILITIES: PoolInput
POOL_INPUT_COMMITTEE: PoolInput
POOL_INPUT_EMBEDDINGS: PoolInput
POOL_INPUT_LABELED_EMBEDDINGS: PoolInput
POOL_INPUT_ANY: PoolInput
POOL_INPUT_MODEL: PoolInput
POOL_INPUT_MULTILABEL_PROBABILITIES: PoolInput
POOL_INPUT_MULTILABEL_COMMITTEE: PoolInput
POOL_INPUT_LABELED_LABEL_CARDINALITY: PoolInput
POOL_INPUT_REGRESSION_PREDICTION: PoolInput
POOL_INPUT_REGRESSION_SPREAD: PoolInput
POOL_INPUT_LABELED_TARGETS: PoolInput
POOL_INPUT_STRUCTURED_PROBABILITIES: PoolInput
POOL_INPUT_STRUCTURED_COMMITTEE: PoolInput
PARAM_TYPE_UNSPECIFIED: ParamType
PARAM_TYPE_INT: ParamType
PARAM_TYPE_FLOAT: ParamType
PARAM_TYPE_STRING: ParamType
PARAM_TYPE_BOOL: ParamType
UNCERTAINTY_AGGREGATE_UNSPECIFIED: UncertaintyAggregate
UNCERTAINTY_AGGREGATE_MEAN: UncertaintyAggregate
UNCERTAINTY_AGGREGATE_MAX: UncertaintyAggregate
STOPPING_RULE_UNSPECIFIED: StoppingRule
STOPPING_RULE_ALL: StoppingRule
STOPPING_RULE_ANY: StoppingRule

class Tensor(_message.Message):
    __slots__ = ("dtype", "shape", "raw_data")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    RAW_DATA_FIELD_NUMBER: _ClassVar[int]
    dtype: DataType
    shape: _containers.RepeatedScalarFieldContainer[int]
    raw_data: bytes
    def __init__(self, dtype: _Optional[_Union[DataType, str]] = ..., shape: _Optional[_Iterable[int]] = ..., raw_data: _Optional[bytes] = ...) -> None: ...

class ParamValue(_message.Message):
    __slots__ = ("int_value", "double_value", "string_value", "bool_value")
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    int_value: int
    double_value: float
    string_value: str
    bool_value: bool
    def __init__(self, int_value: _Optional[int] = ..., double_value: _Optional[float] = ..., string_value: _Optional[str] = ..., bool_value: _Optional[bool] = ...) -> None: ...

class StrategySpec(_message.Message):
    __slots__ = ("name", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ParamValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ParamValue, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    params: _containers.MessageMap[str, ParamValue]
    def __init__(self, name: _Optional[str] = ..., params: _Optional[_Mapping[str, ParamValue]] = ...) -> None: ...

class SelectQueriesRequest(_message.Message):
    __slots__ = ("strategies", "k", "seed", "exclude", "clamp_k", "budget", "probabilities", "logits", "temperature", "committee", "committee_logits", "embeddings", "labeled_embeddings", "costs", "item_weights", "multilabel_probabilities", "multilabel_logits", "multilabel_committee", "multilabel_committee_logits", "labeled_label_cardinality", "regression_mean", "regression_std", "regression_samples", "labeled_targets", "structured_probabilities", "structured_logits", "structured_committee", "structured_committee_logits", "structured_mask", "models", "model_output", "embeddings_output", "mc_dropout_samples", "model_inputs", "inference_batch_rows", "inference_timeout_seconds", "history")
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    CLAMP_K_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    LOGITS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    COMMITTEE_FIELD_NUMBER: _ClassVar[int]
    COMMITTEE_LOGITS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    LABELED_EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    COSTS_FIELD_NUMBER: _ClassVar[int]
    ITEM_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    MULTILABEL_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    MULTILABEL_LOGITS_FIELD_NUMBER: _ClassVar[int]
    MULTILABEL_COMMITTEE_FIELD_NUMBER: _ClassVar[int]
    MULTILABEL_COMMITTEE_LOGITS_FIELD_NUMBER: _ClassVar[int]
    LABELED_LABEL_CARDINALITY_FIELD_NUMBER: _ClassVar[int]
    REGRESSION_MEAN_FIELD_NUMBER: _ClassVar[int]
    REGRESSION_STD_FIELD_NUMBER: _ClassVar[int]
    REGRESSION_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    LABELED_TARGETS_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_LOGITS_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_COMMITTEE_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_COMMITTEE_LOGITS_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_MASK_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    MODEL_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    MC_DROPOUT_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MODEL_INPUTS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_BATCH_ROWS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    strategies: _containers.RepeatedCompositeFieldContainer[StrategySpec]
    k: int
    seed: int
    exclude: _containers.RepeatedScalarFieldContainer[int]
    clamp_k: bool
    budget: float
    probabilities: Tensor
    logits: Tensor
    temperature: float
    committee: Tensor
    committee_logits: Tensor
    embeddings: Tensor
    labeled_embeddings: Tensor
    costs: Tensor
    item_weights: Tensor
    multilabel_probabilities: Tensor
    multilabel_logits: Tensor
    multilabel_committee: Tensor
    multilabel_committee_logits: Tensor
    labeled_label_cardinality: float
    regression_mean: Tensor
    regression_std: Tensor
    regression_samples: Tensor
    labeled_targets: Tensor
    structured_probabilities: Tensor
    structured_logits: Tensor
    structured_committee: Tensor
    structured_committee_logits: Tensor
    structured_mask: Tensor
    models: _containers.RepeatedCompositeFieldContainer[Model]
    model_output: ModelOutput
    embeddings_output: str
    mc_dropout_samples: int
    model_inputs: Tensor
    inference_batch_rows: int
    inference_timeout_seconds: float
    history: _containers.RepeatedCompositeFieldContainer[_history_pb2.SelectionRound]
    def __init__(self, strategies: _Optional[_Iterable[_Union[StrategySpec, _Mapping]]] = ..., k: _Optional[int] = ..., seed: _Optional[int] = ..., exclude: _Optional[_Iterable[int]] = ..., clamp_k: _Optional[bool] = ..., budget: _Optional[float] = ..., probabilities: _Optional[_Union[Tensor, _Mapping]] = ..., logits: _Optional[_Union[Tensor, _Mapping]] = ..., temperature: _Optional[float] = ..., committee: _Optional[_Union[Tensor, _Mapping]] = ..., committee_logits: _Optional[_Union[Tensor, _Mapping]] = ..., embeddings: _Optional[_Union[Tensor, _Mapping]] = ..., labeled_embeddings: _Optional[_Union[Tensor, _Mapping]] = ..., costs: _Optional[_Union[Tensor, _Mapping]] = ..., item_weights: _Optional[_Union[Tensor, _Mapping]] = ..., multilabel_probabilities: _Optional[_Union[Tensor, _Mapping]] = ..., multilabel_logits: _Optional[_Union[Tensor, _Mapping]] = ..., multilabel_committee: _Optional[_Union[Tensor, _Mapping]] = ..., multilabel_committee_logits: _Optional[_Union[Tensor, _Mapping]] = ..., labeled_label_cardinality: _Optional[float] = ..., regression_mean: _Optional[_Union[Tensor, _Mapping]] = ..., regression_std: _Optional[_Union[Tensor, _Mapping]] = ..., regression_samples: _Optional[_Union[Tensor, _Mapping]] = ..., labeled_targets: _Optional[_Union[Tensor, _Mapping]] = ..., structured_probabilities: _Optional[_Union[Tensor, _Mapping]] = ..., structured_logits: _Optional[_Union[Tensor, _Mapping]] = ..., structured_committee: _Optional[_Union[Tensor, _Mapping]] = ..., structured_committee_logits: _Optional[_Union[Tensor, _Mapping]] = ..., structured_mask: _Optional[_Union[Tensor, _Mapping]] = ..., models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., model_output: _Optional[_Union[ModelOutput, str]] = ..., embeddings_output: _Optional[str] = ..., mc_dropout_samples: _Optional[int] = ..., model_inputs: _Optional[_Union[Tensor, _Mapping]] = ..., inference_batch_rows: _Optional[int] = ..., inference_timeout_seconds: _Optional[float] = ..., history: _Optional[_Iterable[_Union[_history_pb2.SelectionRound, _Mapping]]] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("onnx", "sha256")
    ONNX_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    onnx: bytes
    sha256: str
    def __init__(self, onnx: _Optional[bytes] = ..., sha256: _Optional[str] = ...) -> None: ...

class SelectQueriesResponse(_message.Message):
    __slots__ = ("results", "pool_size")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    POOL_SIZE_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[StrategyResult]
    pool_size: int
    def __init__(self, results: _Optional[_Iterable[_Union[StrategyResult, _Mapping]]] = ..., pool_size: _Optional[int] = ...) -> None: ...

class StrategyResult(_message.Message):
    __slots__ = ("name", "params", "indices", "scores", "total_cost", "candidates_considered", "adversarial_points", "represented_weights", "adversarial_method", "auto_selection")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ParamValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ParamValue, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    INDICES_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_CONSIDERED_FIELD_NUMBER: _ClassVar[int]
    ADVERSARIAL_POINTS_FIELD_NUMBER: _ClassVar[int]
    REPRESENTED_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    ADVERSARIAL_METHOD_FIELD_NUMBER: _ClassVar[int]
    AUTO_SELECTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    params: _containers.MessageMap[str, ParamValue]
    indices: _containers.RepeatedScalarFieldContainer[int]
    scores: _containers.RepeatedScalarFieldContainer[float]
    total_cost: float
    candidates_considered: int
    adversarial_points: Tensor
    represented_weights: _containers.RepeatedScalarFieldContainer[float]
    adversarial_method: str
    auto_selection: _history_pb2.AutoSelection
    def __init__(self, name: _Optional[str] = ..., params: _Optional[_Mapping[str, ParamValue]] = ..., indices: _Optional[_Iterable[int]] = ..., scores: _Optional[_Iterable[float]] = ..., total_cost: _Optional[float] = ..., candidates_considered: _Optional[int] = ..., adversarial_points: _Optional[_Union[Tensor, _Mapping]] = ..., represented_weights: _Optional[_Iterable[float]] = ..., adversarial_method: _Optional[str] = ..., auto_selection: _Optional[_Union[_history_pb2.AutoSelection, _Mapping]] = ...) -> None: ...

class SelectQueriesStreamRequest(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: SelectQueriesRequest
    def __init__(self, chunk: _Optional[_Union[SelectQueriesRequest, _Mapping]] = ...) -> None: ...

class SelectQueriesStreamResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: SelectQueriesResponse
    def __init__(self, response: _Optional[_Union[SelectQueriesResponse, _Mapping]] = ...) -> None: ...

class ListStrategiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListStrategiesResponse(_message.Message):
    __slots__ = ("strategies", "label_quality_methods")
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    LABEL_QUALITY_METHODS_FIELD_NUMBER: _ClassVar[int]
    strategies: _containers.RepeatedCompositeFieldContainer[StrategyInfo]
    label_quality_methods: _containers.RepeatedCompositeFieldContainer[LabelQualityMethodInfo]
    def __init__(self, strategies: _Optional[_Iterable[_Union[StrategyInfo, _Mapping]]] = ..., label_quality_methods: _Optional[_Iterable[_Union[LabelQualityMethodInfo, _Mapping]]] = ...) -> None: ...

class LabelQualityMethodInfo(_message.Message):
    __slots__ = ("name", "rpcs", "description", "params", "is_default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RPCS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    rpcs: _containers.RepeatedScalarFieldContainer[str]
    description: str
    params: _containers.RepeatedCompositeFieldContainer[ParamInfo]
    is_default: bool
    def __init__(self, name: _Optional[str] = ..., rpcs: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., params: _Optional[_Iterable[_Union[ParamInfo, _Mapping]]] = ..., is_default: _Optional[bool] = ...) -> None: ...

class StrategyInfo(_message.Message):
    __slots__ = ("name", "family", "description", "params", "required_inputs", "batch", "seeded", "task", "gradient_ops")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_INPUTS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    SEEDED_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_OPS_FIELD_NUMBER: _ClassVar[int]
    name: str
    family: str
    description: str
    params: _containers.RepeatedCompositeFieldContainer[ParamInfo]
    required_inputs: _containers.RepeatedScalarFieldContainer[PoolInput]
    batch: bool
    seeded: bool
    task: str
    gradient_ops: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., family: _Optional[str] = ..., description: _Optional[str] = ..., params: _Optional[_Iterable[_Union[ParamInfo, _Mapping]]] = ..., required_inputs: _Optional[_Iterable[_Union[PoolInput, str]]] = ..., batch: _Optional[bool] = ..., seeded: _Optional[bool] = ..., task: _Optional[str] = ..., gradient_ops: _Optional[_Iterable[str]] = ...) -> None: ...

class ParamInfo(_message.Message):
    __slots__ = ("name", "type", "default_value", "allowed_values", "minimum", "maximum", "description", "exclusive_minimum")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_VALUES_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIVE_MINIMUM_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: ParamType
    default_value: ParamValue
    allowed_values: _containers.RepeatedCompositeFieldContainer[ParamValue]
    minimum: float
    maximum: float
    description: str
    exclusive_minimum: bool
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[ParamType, str]] = ..., default_value: _Optional[_Union[ParamValue, _Mapping]] = ..., allowed_values: _Optional[_Iterable[_Union[ParamValue, _Mapping]]] = ..., minimum: _Optional[float] = ..., maximum: _Optional[float] = ..., description: _Optional[str] = ..., exclusive_minimum: _Optional[bool] = ...) -> None: ...

class CheckStoppingRequest(_message.Message):
    __slots__ = ("stop_set_predictions", "pool_probabilities", "kappa_threshold", "kappa_window", "uncertainty_threshold", "uncertainty_aggregate", "max_change_fraction", "rule")
    STOP_SET_PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    POOL_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    KAPPA_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    KAPPA_WINDOW_FIELD_NUMBER: _ClassVar[int]
    UNCERTAINTY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    UNCERTAINTY_AGGREGATE_FIELD_NUMBER: _ClassVar[int]
    MAX_CHANGE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    stop_set_predictions: Tensor
    pool_probabilities: Tensor
    kappa_threshold: float
    kappa_window: int
    uncertainty_threshold: float
    uncertainty_aggregate: UncertaintyAggregate
    max_change_fraction: float
    rule: StoppingRule
    def __init__(self, stop_set_predictions: _Optional[_Union[Tensor, _Mapping]] = ..., pool_probabilities: _Optional[_Union[Tensor, _Mapping]] = ..., kappa_threshold: _Optional[float] = ..., kappa_window: _Optional[int] = ..., uncertainty_threshold: _Optional[float] = ..., uncertainty_aggregate: _Optional[_Union[UncertaintyAggregate, str]] = ..., max_change_fraction: _Optional[float] = ..., rule: _Optional[_Union[StoppingRule, str]] = ...) -> None: ...

class StoppingCriterion(_message.Message):
    __slots__ = ("name", "value", "threshold", "stop", "evaluated", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    threshold: float
    stop: bool
    evaluated: bool
    detail: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., stop: _Optional[bool] = ..., evaluated: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class CheckStoppingResponse(_message.Message):
    __slots__ = ("stop", "criteria", "kappas")
    STOP_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    KAPPAS_FIELD_NUMBER: _ClassVar[int]
    stop: bool
    criteria: _containers.RepeatedCompositeFieldContainer[StoppingCriterion]
    kappas: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, stop: _Optional[bool] = ..., criteria: _Optional[_Iterable[_Union[StoppingCriterion, _Mapping]]] = ..., kappas: _Optional[_Iterable[float]] = ...) -> None: ...
