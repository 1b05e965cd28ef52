"""The fleet's one error hierarchy.

Every domain error carries the gRPC status code it maps to. Transport code maps
them once (see ``services.common.rpc``); domain code raises them and never
touches gRPC status objects itself. Messages are meant for the caller: they say
what was wrong and what to do, never contain secrets, internal addresses or paths,
and are bounded (``services.common.messages``) whatever the caller sent. Every URL in
a message loses its userinfo, query string and fragment (``services.common.redact``).
"""

from __future__ import annotations

import grpc

from services.common.messages import bounded
from services.common.redact import redact_urls


class FleetError(Exception):
    """Base class: an error with a gRPC status and a user-facing message."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        message = bounded(redact_urls(message))
        super().__init__(message)
        self.message = message

    @property
    def kind(self) -> str:
        """A bounded label for metrics (the class name)."""
        return type(self).__name__


class InvalidArgument(FleetError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class InvalidImage(InvalidArgument):
    """The image could not be decoded or is outside the configured limits."""


class Unauthenticated(FleetError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(FleetError):
    code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(FleetError):
    code = grpc.StatusCode.NOT_FOUND


class ModelNotFound(NotFound):
    pass


class AlreadyExists(FleetError):
    code = grpc.StatusCode.ALREADY_EXISTS


class ResourceExhausted(FleetError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(FleetError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(FleetError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class FailedPrecondition(FleetError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ModelPackageError(FailedPrecondition):
    """A model package or artifact is malformed, corrupt or inconsistent."""


class ModelLoadError(FailedPrecondition):
    """A model could not be loaded (bad artifact, wrong outputs, runtime failure)."""


class Unimplemented(FleetError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(FleetError):
    code = grpc.StatusCode.INTERNAL


class CacheUnavailable(Unavailable):
    """Redis could not be reached or answered with an error."""
