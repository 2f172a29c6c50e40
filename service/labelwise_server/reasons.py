"""The google.rpc.ErrorInfo reasons the server sends: labelwise.v1.ErrorReason value names.

The proto (labelwise/v1/error_reason.proto) declares and documents every reason; each
constant here is read from the generated enum, so a reason the proto does not declare fails
at import, and clients match the same names. tests/test_reasons.py keeps the two in step and
refuses a reason written as a string literal anywhere in the server.
"""

from labelwise.v1 import error_reason_pb2 as _pb


def _name(value: int) -> str:
    return _pb.ErrorReason.Name(value)


INVALID_FIELD = _name(_pb.INVALID_FIELD)
MISSING_INPUT = _name(_pb.MISSING_INPUT)
UNKNOWN_STRATEGY = _name(_pb.UNKNOWN_STRATEGY)
UNKNOWN_PARAMETER = _name(_pb.UNKNOWN_PARAMETER)
TOO_MANY_STRATEGIES = _name(_pb.TOO_MANY_STRATEGIES)
TOO_MANY_ELEMENTS = _name(_pb.TOO_MANY_ELEMENTS)
TOO_MANY_DIMENSIONS = _name(_pb.TOO_MANY_DIMENSIONS)
TOO_MANY_CHUNKS = _name(_pb.TOO_MANY_CHUNKS)
RESPONSE_TOO_LARGE = _name(_pb.RESPONSE_TOO_LARGE)
NO_MODEL_MODE = _name(_pb.NO_MODEL_MODE)
TOO_MANY_MODELS = _name(_pb.TOO_MANY_MODELS)
MODEL_MISSING = _name(_pb.MODEL_MISSING)
MODEL_TOO_LARGE = _name(_pb.MODEL_TOO_LARGE)
MODEL_MALFORMED = _name(_pb.MODEL_MALFORMED)
MODEL_VERSION = _name(_pb.MODEL_VERSION)
MODEL_CUSTOM_OP = _name(_pb.MODEL_CUSTOM_OP)
MODEL_EXTERNAL_DATA = _name(_pb.MODEL_EXTERNAL_DATA)
MODEL_SIGNATURE = _name(_pb.MODEL_SIGNATURE)
MODEL_INPUT_MISMATCH = _name(_pb.MODEL_INPUT_MISMATCH)
MODEL_REJECTED = _name(_pb.MODEL_REJECTED)
MODEL_RUN_FAILED = _name(_pb.MODEL_RUN_FAILED)
MODEL_OUTPUT_TOO_LARGE = _name(_pb.MODEL_OUTPUT_TOO_LARGE)
MODEL_WORKING_MEMORY_TOO_LARGE = _name(_pb.MODEL_WORKING_MEMORY_TOO_LARGE)
MODEL_NON_FINITE_OUTPUT = _name(_pb.MODEL_NON_FINITE_OUTPUT)
MODEL_OUTPUT_NOT_PROBABILITIES = _name(_pb.MODEL_OUTPUT_NOT_PROBABILITIES)
UNSUPPORTED_GRADIENT_OP = _name(_pb.UNSUPPORTED_GRADIENT_OP)
MODEL_NOT_CACHED = _name(_pb.MODEL_NOT_CACHED)
STREAM_IDLE = _name(_pb.STREAM_IDLE)
TOO_MANY_REQUESTS = _name(_pb.TOO_MANY_REQUESTS)
TOO_MANY_STREAMS = _name(_pb.TOO_MANY_STREAMS)
WORK_MEMORY_EXCEEDED = _name(_pb.WORK_MEMORY_EXCEEDED)
WORK_PROCESS_DIED = _name(_pb.WORK_PROCESS_DIED)
