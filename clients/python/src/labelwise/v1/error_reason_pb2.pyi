from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    INVALID_FIELD: _ClassVar[ErrorReason]
    MISSING_INPUT: _ClassVar[ErrorReason]
    UNKNOWN_STRATEGY: _ClassVar[ErrorReason]
    UNKNOWN_PARAMETER: _ClassVar[ErrorReason]
    TOO_MANY_STRATEGIES: _ClassVar[ErrorReason]
    TOO_MANY_ELEMENTS: _ClassVar[ErrorReason]
    TOO_MANY_DIMENSIONS: _ClassVar[ErrorReason]
    TOO_MANY_CHUNKS: _ClassVar[ErrorReason]
    RESPONSE_TOO_LARGE: _ClassVar[ErrorReason]
    NO_MODEL_MODE: _ClassVar[ErrorReason]
    TOO_MANY_MODELS: _ClassVar[ErrorReason]
    MODEL_MISSING: _ClassVar[ErrorReason]
    MODEL_TOO_LARGE: _ClassVar[ErrorReason]
    MODEL_MALFORMED: _ClassVar[ErrorReason]
    MODEL_VERSION: _ClassVar[ErrorReason]
    MODEL_CUSTOM_OP: _ClassVar[ErrorReason]
    MODEL_EXTERNAL_DATA: _ClassVar[ErrorReason]
    MODEL_SIGNATURE: _ClassVar[ErrorReason]
    MODEL_INPUT_MISMATCH: _ClassVar[ErrorReason]
    MODEL_REJECTED: _ClassVar[ErrorReason]
    MODEL_RUN_FAILED: _ClassVar[ErrorReason]
    MODEL_OUTPUT_TOO_LARGE: _ClassVar[ErrorReason]
    MODEL_WORKING_MEMORY_TOO_LARGE: _ClassVar[ErrorReason]
    MODEL_NON_FINITE_OUTPUT: _ClassVar[ErrorReason]
    MODEL_OUTPUT_NOT_PROBABILITIES: _ClassVar[ErrorReason]
    UNSUPPORTED_GRADIENT_OP: _ClassVar[ErrorReason]
    MODEL_NOT_CACHED: _ClassVar[ErrorReason]
    STREAM_IDLE: _ClassVar[ErrorReason]
    TOO_MANY_REQUESTS: _ClassVar[ErrorReason]
    TOO_MANY_STREAMS: _ClassVar[ErrorReason]
    WORK_MEMORY_EXCEEDED: _ClassVar[ErrorReason]
    WORK_PROCESS_DIED: _ClassVar[ErrorReason]
ERROR_REASON_UNSPECIFIED: ErrorReason
INVALID_FIELD: ErrorReason
MISSING_INPUT: ErrorReason
UNKNOWN_STRATEGY: ErrorReason
UNKNOWN_PARAMETER: ErrorReason
TOO_MANY_STRATEGIES: ErrorReason
TOO_MANY_ELEMENTS: ErrorReason
TOO_MANY_DIMENSIONS: ErrorReason
TOO_MANY_CHUNKS: ErrorReason
RESPONSE_TOO_LARGE: ErrorReason
NO_MODEL_MODE: ErrorReason
TOO_MANY_MODELS: ErrorReason
MODEL_MISSING: ErrorReason
MODEL_TOO_LARGE: ErrorReason
MODEL_MALFORMED: ErrorReason
MODEL_VERSION: ErrorReason
MODEL_CUSTOM_OP: ErrorReason
MODEL_EXTERNAL_DATA: ErrorReason
MODEL_SIGNATURE: ErrorReason
MODEL_INPUT_MISMATCH: ErrorReason
MODEL_REJECTED: ErrorReason
MODEL_RUN_FAILED: ErrorReason
MODEL_OUTPUT_TOO_LARGE: ErrorReason
MODEL_WORKING_MEMORY_TOO_LARGE: ErrorReason
MODEL_NON_FINITE_OUTPUT: ErrorReason
MODEL_OUTPUT_NOT_PROBABILITIES: ErrorReason
UNSUPPORTED_GRADIENT_OP: ErrorReason
MODEL_NOT_CACHED: ErrorReason
STREAM_IDLE: ErrorReason
TOO_MANY_REQUESTS: ErrorReason
TOO_MANY_STREAMS: ErrorReason
WORK_MEMORY_EXCEEDED: ErrorReason
WORK_PROCESS_DIED: ErrorReason
