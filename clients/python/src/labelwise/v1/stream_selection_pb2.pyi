from labelwise.v1 import options_pb2 as _options_pb2
from labelwise.v1 import query_selection_pb2 as _query_selection_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamWindowCap(_message.Message):
    __slots__ = ("window_items", "max_labels")
    WINDOW_ITEMS_FIELD_NUMBER: _ClassVar[int]
    MAX_LABELS_FIELD_NUMBER: _ClassVar[int]
    window_items: int
    max_labels: int
    def __init__(self, window_items: _Optional[int] = ..., max_labels: _Optional[int] = ...) -> None: ...

class DecideRequest(_message.Message):
    __slots__ = ("strategy", "budget", "window_cap", "token", "seed", "probabilities", "logits", "temperature", "committee", "committee_logits", "utilities", "frequencies")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    WINDOW_CAP_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    LOGITS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    COMMITTEE_FIELD_NUMBER: _ClassVar[int]
    COMMITTEE_LOGITS_FIELD_NUMBER: _ClassVar[int]
    UTILITIES_FIELD_NUMBER: _ClassVar[int]
    FREQUENCIES_FIELD_NUMBER: _ClassVar[int]
    strategy: _query_selection_pb2.StrategySpec
    budget: float
    window_cap: StreamWindowCap
    token: bytes
    seed: int
    probabilities: _query_selection_pb2.Tensor
    logits: _query_selection_pb2.Tensor
    temperature: float
    committee: _query_selection_pb2.Tensor
    committee_logits: _query_selection_pb2.Tensor
    utilities: _query_selection_pb2.Tensor
    frequencies: _query_selection_pb2.Tensor
    def __init__(self, strategy: _Optional[_Union[_query_selection_pb2.StrategySpec, _Mapping]] = ..., budget: _Optional[float] = ..., window_cap: _Optional[_Union[StreamWindowCap, _Mapping]] = ..., token: _Optional[bytes] = ..., seed: _Optional[int] = ..., probabilities: _Optional[_Union[_query_selection_pb2.Tensor, _Mapping]] = ..., logits: _Optional[_Union[_query_selection_pb2.Tensor, _Mapping]] = ..., temperature: _Optional[float] = ..., committee: _Optional[_Union[_query_selection_pb2.Tensor, _Mapping]] = ..., committee_logits: _Optional[_Union[_query_selection_pb2.Tensor, _Mapping]] = ..., utilities: _Optional[_Union[_query_selection_pb2.Tensor, _Mapping]] = ..., frequencies: _Optional[_Union[_query_selection_pb2.Tensor, _Mapping]] = ...) -> None: ...

class DecideResponse(_message.Message):
    __slots__ = ("label", "utilities", "label_probabilities", "token", "items_seen", "items_labeled")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    UTILITIES_FIELD_NUMBER: _ClassVar[int]
    LABEL_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ITEMS_SEEN_FIELD_NUMBER: _ClassVar[int]
    ITEMS_LABELED_FIELD_NUMBER: _ClassVar[int]
    label: _containers.RepeatedScalarFieldContainer[bool]
    utilities: _containers.RepeatedScalarFieldContainer[float]
    label_probabilities: _containers.RepeatedScalarFieldContainer[float]
    token: bytes
    items_seen: int
    items_labeled: int
    def __init__(self, label: _Optional[_Iterable[bool]] = ..., utilities: _Optional[_Iterable[float]] = ..., label_probabilities: _Optional[_Iterable[float]] = ..., token: _Optional[bytes] = ..., items_seen: _Optional[int] = ..., items_labeled: _Optional[int] = ...) -> None: ...

class DecideStreamRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: DecideRequest
    def __init__(self, request: _Optional[_Union[DecideRequest, _Mapping]] = ...) -> None: ...

class DecideStreamResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: DecideResponse
    def __init__(self, response: _Optional[_Union[DecideResponse, _Mapping]] = ...) -> None: ...
