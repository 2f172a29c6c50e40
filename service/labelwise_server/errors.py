"""The exceptions the core raises; grpc/errors.py maps each to a status once."""

from labelwise_server import reasons


class InvalidArgument(ValueError):
    """A request field is wrong; maps to INVALID_ARGUMENT with a BadRequest detail.

    field is the proto field path (``strategies[2].params.beta``), description
    says what it must be and what it got.
    """

    def __init__(self, field: str, description: str, reason: str = reasons.INVALID_FIELD) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description
        self.reason = reason


class DeadlineExceeded(Exception):
    """The caller's deadline passed before the work was done; the work was abandoned."""


class Cancelled(Exception):
    """The caller went away before the work was done; the work was abandoned."""


class ModelRejected(InvalidArgument):
    """A model sent with the request is malformed, unsafe or does not fit the pool."""


class ModelNotCached(Exception):
    """A model sent by SHA-256 is not in the server's cache; maps to NOT_FOUND.

    The client resends the request with the model's bytes.
    """

    def __init__(self, field: str, sha256: str) -> None:
        super().__init__(f"{field}: no cached model has SHA-256 {sha256}; resend its bytes")
        self.field = field
        self.sha256 = sha256


class StreamIdle(Exception):
    """A client stream sent no chunk for `idle_seconds`; maps to DEADLINE_EXCEEDED."""

    def __init__(self, idle_seconds: float, chunks: int) -> None:
        super().__init__(
            f"the stream sent no chunk for {idle_seconds:g} s after {chunks} chunks "
            "(--stream-idle-seconds); it was ended"
        )
        self.idle_seconds = idle_seconds
        self.chunks = chunks


class WorkFailed(Exception):
    """The request's work ran out of a server resource (its work process's memory, or the
    process died under it); maps to RESOURCE_EXHAUSTED with an ErrorInfo giving the reason."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description
