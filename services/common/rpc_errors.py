"""Errors from calls to other fleet services, turned back into domain errors.

A peer's own answers (INVALID_ARGUMENT, NOT_FOUND, ...) keep their message: it was written for
the caller. UNAVAILABLE, INTERNAL and the codes gRPC itself produces (UNKNOWN, CANCELLED,
DATA_LOSS) get a fixed message instead: gRPC's details for them name internal addresses
("ipv4:10.0.3.7:50053: Connection refused") and TLS internals. The details are logged here.
"""

from __future__ import annotations

import logging

import grpc

from fleet.v1 import inference_pb2
from services.common import errors
from services.common.context import current_request_id

log = logging.getLogger("fleet.rpc.client")

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
    """The domain error matching a peer's status; never gRPC's own details for transport failures."""
    code = exc.code()
    cls = _BY_CODE.get(code, errors.Internal)
    if cls is errors.Unavailable or cls is errors.Internal:
        log.warning("call to the %s failed", peer, extra={"peer": peer, "code": code.name,
                                                          "details": (exc.details() or "")[:1000]})
        if cls is errors.Unavailable:
            return errors.Unavailable(f"the {peer} is unavailable; retry shortly")
        return errors.Internal(f"internal error in the {peer}; quote request id {current_request_id()}")
    return cls(exc.details() or code.name)


def error_for(code: grpc.StatusCode, message: str) -> errors.FleetError:
    """The domain error of a status as a peer answered it, its message kept (a peer that writes its errors for
    the caller, such as the workflow engine behind a gateway)."""
    return _BY_CODE.get(code, errors.Internal)(message or code.name)


# ---- one encoding of a per-item failure (a batch item, a stream item) ------------------------------------
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def error_status(exc: errors.FleetError) -> inference_pb2.ErrorStatus:
    """How a failed batch or stream item is answered on every edge: its status code and message."""
    return inference_pb2.ErrorStatus(code=exc.code.value[0], message=exc.message)


def error_text(exc: errors.FleetError) -> str:
    """The same failure as one line ("INVALID_ARGUMENT: ..."), for protocols whose item errors are text (OIP)."""
    return f"{exc.code.name}: {exc.message}"


def error_of(status: inference_pb2.ErrorStatus, prefix: str = "") -> errors.FleetError:
    """The domain error an ErrorStatus encodes (``prefix`` added to its message)."""
    cls = _BY_CODE.get(_BY_NUMBER.get(status.code, grpc.StatusCode.INTERNAL), errors.Internal)
    return cls(prefix + status.message)
