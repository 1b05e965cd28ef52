"""Prometheus instruments shared by every service (module-level, bounded labels)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RPC_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

RPC_DURATION = Histogram(
    "fleet_rpc_duration_seconds",
    "Server-side duration of gRPC calls.",
    ["service", "method", "code"],
    buckets=RPC_LATENCY_BUCKETS,
)
RPC_IN_FLIGHT = Gauge("fleet_rpc_in_flight", "gRPC calls being handled now.", ["service", "method"])
ERRORS = Counter("fleet_errors_total", "Errors answered to callers, by kind.", ["service", "kind"])
READY = Gauge("fleet_ready", "1 while the service reports SERVING.", ["service"])
