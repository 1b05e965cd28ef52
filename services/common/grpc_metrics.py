"""The standard gRPC metrics, under the names the grpc-ecosystem Prometheus interceptors use.

``grpc_server_*`` for calls a service answers (recorded by ``services.common.rpc``),
``grpc_client_*`` for calls it makes (``services.common.rpc_client``); labels ``grpc_type``
(unary, client_stream, server_stream, bidi_stream), ``grpc_service`` (the full proto name,
e.g. ``fleet.v1.GatewayService``), ``grpc_method`` and, on ``*_handled_total``, ``grpc_code``
spelled as gRPC's canonical code names (``OK``, ``InvalidArgument``, ``Canceled``...), so the
dashboards and alerts written for those interceptors work unchanged.

Each method's label children are bound once (``MethodMetrics``), so a call costs a few
increments and one observation, never a label lookup.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from prometheus_client import Counter, Histogram

from services.common.errors import FleetError

# Server and client handling time; wider than Prometheus' defaults at both ends (sub-ms hops, model loads).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# gRPC's canonical code names (as Go's codes.Code prints them, which the interceptors' grpc_code uses).
CODE_NAMES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}

# Codes that mean the service failed rather than the caller (the error-ratio alert counts these).
SERVER_FAULT_CODES = frozenset({
    grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS,
})

OK = grpc.StatusCode.OK
UNARY, BIDI_STREAM, SERVER_STREAM = "unary", "bidi_stream", "server_stream"
_LABELS = ["grpc_type", "grpc_service", "grpc_method"]


def code_of(exc: BaseException) -> grpc.StatusCode:
    """The status an exception is answered with: a FleetError's own, CANCELLED, else INTERNAL."""
    if isinstance(exc, FleetError):
        return exc.code
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.INTERNAL


@dataclass(frozen=True)
class _Side:
    """The five families of one side (server or client)."""

    started: Counter
    handled: Counter
    seconds: Histogram
    received: Counter
    sent: Counter


def _side(prefix: str, whom: str) -> _Side:
    return _Side(
        started=Counter(f"grpc_{prefix}_started_total", f"RPCs started {whom}.", _LABELS),
        handled=Counter(f"grpc_{prefix}_handled_total", f"RPCs completed {whom}, by status code.",
                        [*_LABELS, "grpc_code"]),
        seconds=Histogram(f"grpc_{prefix}_handling_seconds", f"Duration of RPCs {whom}, until the status.",
                          _LABELS, buckets=LATENCY_BUCKETS),
        received=Counter(f"grpc_{prefix}_msg_received_total", f"Stream messages received {whom}.", _LABELS),
        sent=Counter(f"grpc_{prefix}_msg_sent_total", f"Stream messages sent {whom}.", _LABELS),
    )


SERVER = _side("server", "on the server")
CLIENT = _side("client", "by this client")


class MethodMetrics:
    """One method's bound children on one side: what a call touches."""

    __slots__ = ("started", "seconds", "received", "sent", "_handled", "_labels", "_side")

    def __init__(self, side: _Side, grpc_type: str, service: str, method: str) -> None:
        self._side, self._labels = side, (grpc_type, service, method)
        self.started = side.started.labels(*self._labels)
        self.seconds = side.seconds.labels(*self._labels)
        self.received = side.received.labels(*self._labels)
        self.sent = side.sent.labels(*self._labels)
        self._handled: dict[grpc.StatusCode, Counter] = {}
        self.handled(grpc.StatusCode.OK)  # the method's series exist (at 0) before its first call

    def handled(self, code: grpc.StatusCode) -> Counter:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = self._side.handled.labels(*self._labels, CODE_NAMES.get(code, "Unknown"))
        return child
