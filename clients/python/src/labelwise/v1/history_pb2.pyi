from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SelectionRound(_message.Message):
    __slots__ = ("strategies", "labels", "probabilities")
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    strategies: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.RepeatedScalarFieldContainer[int]
    probabilities: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, strategies: _Optional[_Iterable[str]] = ..., labels: _Optional[_Iterable[int]] = ..., probabilities: _Optional[_Iterable[float]] = ...) -> None: ...

class AutoSelection(_message.Message):
    __slots__ = ("arms", "strategies", "reward", "history_rounds", "history_items")
    ARMS_FIELD_NUMBER: _ClassVar[int]
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    HISTORY_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_ITEMS_FIELD_NUMBER: _ClassVar[int]
    arms: _containers.RepeatedCompositeFieldContainer[AutoArm]
    strategies: _containers.RepeatedScalarFieldContainer[str]
    reward: str
    history_rounds: int
    history_items: int
    def __init__(self, arms: _Optional[_Iterable[_Union[AutoArm, _Mapping]]] = ..., strategies: _Optional[_Iterable[str]] = ..., reward: _Optional[str] = ..., history_rounds: _Optional[int] = ..., history_items: _Optional[int] = ...) -> None: ...

class AutoArm(_message.Message):
    __slots__ = ("name", "picks", "weight", "expected_reward", "evidence")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PICKS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REWARD_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    picks: int
    weight: float
    expected_reward: float
    evidence: float
    def __init__(self, name: _Optional[str] = ..., picks: _Optional[int] = ..., weight: _Optional[float] = ..., expected_reward: _Optional[float] = ..., evidence: _Optional[float] = ...) -> None: ...
