from labelwise.v1 import query_selection_pb2 as _query_selection_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LabelQualityMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LABEL_QUALITY_METHOD_UNSPECIFIED: _ClassVar[LabelQualityMethod]
    LABEL_QUALITY_METHOD_CROWDLAB: _ClassVar[LabelQualityMethod]
    LABEL_QUALITY_METHOD_DAWID_SKENE: _ClassVar[LabelQualityMethod]
    LABEL_QUALITY_METHOD_BAYES_EM: _ClassVar[LabelQualityMethod]

class AccuracyBound(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCURACY_BOUND_UNSPECIFIED: _ClassVar[AccuracyBound]
    ACCURACY_BOUND_UPPER: _ClassVar[AccuracyBound]
    ACCURACY_BOUND_MEAN: _ClassVar[AccuracyBound]
    ACCURACY_BOUND_LOWER: _ClassVar[AccuracyBound]

class LabelingKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LABELING_KIND_UNSPECIFIED: _ClassVar[LabelingKind]
    LABELING_KIND_RELABEL: _ClassVar[LabelingKind]
    LABELING_KIND_LABEL_FIRST: _ClassVar[LabelingKind]
LABEL_QUALITY_METHOD_UNSPECIFIED: LabelQualityMethod
LABEL_QUALITY_METHOD_CROWDLAB: LabelQualityMethod
LABEL_QUALITY_METHOD_DAWID_SKENE: LabelQualityMethod
LABEL_QUALITY_METHOD_BAYES_EM: LabelQualityMethod
ACCURACY_BOUND_UNSPECIFIED: AccuracyBound
ACCURACY_BOUND_UPPER: AccuracyBound
ACCURACY_BOUND_MEAN: AccuracyBound
ACCURACY_BOUND_LOWER: AccuracyBound
LABELING_KIND_UNSPECIFIED: LabelingKind
LABELING_KIND_RELABEL: LabelingKind
LABELING_KIND_LABEL_FIRST: LabelingKind

class AssessLabelsRequest(_message.Message):
    __slots__ = ("annotations", "labeled_probabilities", "method", "num_classes", "max_iterations", "tolerance", "accuracy_prior_strength")
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    LABELED_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    MAX_ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_PRIOR_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    annotations: _query_selection_pb2.Tensor
    labeled_probabilities: _query_selection_pb2.Tensor
    method: LabelQualityMethod
    num_classes: int
    max_iterations: int
    tolerance: float
    accuracy_prior_strength: float
    def __init__(self, annotations: _Optional[_Union[_query_selection_pb2.Tensor, _Mapping]] = ..., labeled_probabilities: _Optional[_Union[_query_selection_pb2.Tensor, _Mapping]] = ..., method: _Optional[_Union[LabelQualityMethod, str]] = ..., num_classes: _Optional[int] = ..., max_iterations: _Optional[int] = ..., tolerance: _Optional[float] = ..., accuracy_prior_strength: _Optional[float] = ...) -> None: ...

class AssessLabelsResponse(_message.Message):
    __slots__ = ("method", "consensus_labels", "consensus_quality", "item_agreement", "annotator_quality", "annotator_agreement", "annotator_label_counts", "annotator_weights", "model_weight", "majority_vote_labels", "iterations", "confusion", "class_priors", "model_temperature")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CONSENSUS_LABELS_FIELD_NUMBER: _ClassVar[int]
    CONSENSUS_QUALITY_FIELD_NUMBER: _ClassVar[int]
    ITEM_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_QUALITY_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_LABEL_COUNTS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAJORITY_VOTE_LABELS_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    CONFUSION_FIELD_NUMBER: _ClassVar[int]
    CLASS_PRIORS_FIELD_NUMBER: _ClassVar[int]
    MODEL_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    method: LabelQualityMethod
    consensus_labels: _containers.RepeatedScalarFieldContainer[int]
    consensus_quality: _containers.RepeatedScalarFieldContainer[float]
    item_agreement: _containers.RepeatedScalarFieldContainer[float]
    annotator_quality: _containers.RepeatedScalarFieldContainer[float]
    annotator_agreement: _containers.RepeatedScalarFieldContainer[float]
    annotator_label_counts: _containers.RepeatedScalarFieldContainer[int]
    annotator_weights: _containers.RepeatedScalarFieldContainer[float]
    model_weight: float
    majority_vote_labels: _containers.RepeatedScalarFieldContainer[int]
    iterations: int
    confusion: _query_selection_pb2.Tensor
    class_priors: _containers.RepeatedScalarFieldContainer[float]
    model_temperature: float
    def __init__(self, method: _Optional[_Union[LabelQualityMethod, str]] = ..., consensus_labels: _Optional[_Iterable[int]] = ..., consensus_quality: _Optional[_Iterable[float]] = ..., item_agreement: _Optional[_Iterable[float]] = ..., annotator_quality: _Optional[_Iterable[float]] = ..., annotator_agreement: _Optional[_Iterable[float]] = ..., annotator_label_counts: _Optional[_Iterable[int]] = ..., annotator_weights: _Optional[_Iterable[float]] = ..., model_weight: _Optional[float] = ..., majority_vote_labels: _Optional[_Iterable[int]] = ..., iterations: _Optional[int] = ..., confusion: _Optional[_Union[_query_selection_pb2.Tensor, _Mapping]] = ..., class_priors: _Optional[_Iterable[float]] = ..., model_temperature: _Optional[float] = ...) -> None: ...

class PlanLabelingRequest(_message.Message):
    __slots__ = ("annotations", "labeled_probabilities", "pool_probabilities", "annotator_costs", "budget", "k", "clamp_k", "pool_strategy", "accuracy_bound", "alpha", "epsilon", "max_tasks_per_annotator", "exclude_labeled", "exclude_pool")
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    LABELED_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    POOL_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_COSTS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    CLAMP_K_FIELD_NUMBER: _ClassVar[int]
    POOL_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_BOUND_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    MAX_TASKS_PER_ANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_LABELED_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_POOL_FIELD_NUMBER: _ClassVar[int]
    annotations: _query_selection_pb2.Tensor
    labeled_probabilities: _query_selection_pb2.Tensor
    pool_probabilities: _query_selection_pb2.Tensor
    annotator_costs: _query_selection_pb2.Tensor
    budget: float
    k: int
    clamp_k: bool
    pool_strategy: str
    accuracy_bound: AccuracyBound
    alpha: float
    epsilon: float
    max_tasks_per_annotator: int
    exclude_labeled: _containers.RepeatedScalarFieldContainer[int]
    exclude_pool: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, annotations: _Optional[_Union[_query_selection_pb2.Tensor, _Mapping]] = ..., labeled_probabilities: _Optional[_Union[_query_selection_pb2.Tensor, _Mapping]] = ..., pool_probabilities: _Optional[_Union[_query_selection_pb2.Tensor, _Mapping]] = ..., annotator_costs: _Optional[_Union[_query_selection_pb2.Tensor, _Mapping]] = ..., budget: _Optional[float] = ..., k: _Optional[int] = ..., clamp_k: _Optional[bool] = ..., pool_strategy: _Optional[str] = ..., accuracy_bound: _Optional[_Union[AccuracyBound, str]] = ..., alpha: _Optional[float] = ..., epsilon: _Optional[float] = ..., max_tasks_per_annotator: _Optional[int] = ..., exclude_labeled: _Optional[_Iterable[int]] = ..., exclude_pool: _Optional[_Iterable[int]] = ...) -> None: ...

class LabelingTask(_message.Message):
    __slots__ = ("kind", "index", "score", "annotator", "expected_accuracy", "cost")
    KIND_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    kind: LabelingKind
    index: int
    score: float
    annotator: int
    expected_accuracy: float
    cost: float
    def __init__(self, kind: _Optional[_Union[LabelingKind, str]] = ..., index: _Optional[int] = ..., score: _Optional[float] = ..., annotator: _Optional[int] = ..., expected_accuracy: _Optional[float] = ..., cost: _Optional[float] = ...) -> None: ...

class AnnotatorEstimate(_message.Message):
    __slots__ = ("accuracy_mean", "accuracy_lower", "accuracy_upper", "observations", "quality", "eligible", "cost", "tasks")
    ACCURACY_MEAN_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_LOWER_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_UPPER_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    accuracy_mean: float
    accuracy_lower: float
    accuracy_upper: float
    observations: int
    quality: float
    eligible: bool
    cost: float
    tasks: int
    def __init__(self, accuracy_mean: _Optional[float] = ..., accuracy_lower: _Optional[float] = ..., accuracy_upper: _Optional[float] = ..., observations: _Optional[int] = ..., quality: _Optional[float] = ..., eligible: _Optional[bool] = ..., cost: _Optional[float] = ..., tasks: _Optional[int] = ...) -> None: ...

class PlanLabelingResponse(_message.Message):
    __slots__ = ("tasks", "total_cost", "annotators", "temperature", "candidates_considered", "consensus_labels")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_FIELD_NUMBER: _ClassVar[int]
    ANNOTATORS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_CONSIDERED_FIELD_NUMBER: _ClassVar[int]
    CONSENSUS_LABELS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[LabelingTask]
    total_cost: float
    annotators: _containers.RepeatedCompositeFieldContainer[AnnotatorEstimate]
    temperature: float
    candidates_considered: int
    consensus_labels: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, tasks: _Optional[_Iterable[_Union[LabelingTask, _Mapping]]] = ..., total_cost: _Optional[float] = ..., annotators: _Optional[_Iterable[_Union[AnnotatorEstimate, _Mapping]]] = ..., temperature: _Optional[float] = ..., candidates_considered: _Optional[int] = ..., consensus_labels: _Optional[_Iterable[int]] = ...) -> None: ...
