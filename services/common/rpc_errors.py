"""Errors from calls to other fleet services, turned back into domain errors."""

from __future__ import annotations

import grpc

from services.common import errors

_BY_CODE: dict[grpc.StatusCode, type[errors.FleetError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DeadlineExceeded,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.UNIMPLEMENTED: errors.Unimplemented,
}


def from_rpc_error(exc: grpc.aio.AioRpcError, peer: str) -> errors.FleetError:
    """The domain error matching a peer's status, keeping its user-facing message."""
    cls = _BY_CODE.get(exc.code(), errors.Internal)
    details = exc.details() or ""
    if cls in (errors.Unavailable, errors.Internal):
        details = f"{peer}: {details or exc.code().name}"
    return cls(details)
