"""The exceptions the core raises; grpc/errors.py maps each to a status once."""


class InvalidArgument(ValueError):
    """A request field is wrong; maps to INVALID_ARGUMENT with a BadRequest detail.

    field is the proto field path (``strategies[2].params.beta``), description
    says what it must be and what it got.
    """

    def __init__(self, field: str, description: str, reason: str = "INVALID_FIELD") -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description
        self.reason = reason


class DeadlineExceeded(Exception):
    """The caller's deadline passed before the work was done; the work was abandoned."""


class Cancelled(Exception):
    """The caller went away before the work was done; the work was abandoned."""
