"""The gateway's Prometheus instruments (module-level; labels are bounded sets).

Per-model series carry ``model_id`` through ``services.common.labels.model_label``, and only for
resolved (registered) models: a request for an id the registry does not know is counted by the
standard ``grpc_server_handled_total`` alone.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.common.metrics import PerModelSeries

REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

REQUESTS = Counter("fleet_gateway_requests_total", "Inference requests for resolved models, by model and outcome "
                   "(a gRPC code name).", ["model_id", "outcome"])
REQUEST_SECONDS = Histogram("fleet_gateway_request_seconds", "Gateway-side duration of successful inference "
                            "requests (resolve, response cache, worker calls and retries).", ["model_id"],
                            buckets=REQUEST_BUCKETS)
RESPONSE_CACHE = Counter("fleet_gateway_response_cache_total", "Response-cache lookups (when enabled) by result "
                         "(hit, miss, error: Redis unavailable).", ["result"])
WORKERS = Gauge("fleet_gateway_workers", "Workers the gateway knows, by state (healthy; draining: finishing, taking "
                "nothing new; late: heartbeat missing, its last state kept for the grace period; unhealthy: out of "
                "rotation after a failed call until it heartbeats again).", ["state"])
AUTH_CACHE = Counter(
    "fleet_gateway_auth_cache_total",
    "API-key lookups by result: hit (fresh), miss (asked the registry), stale (served while the registry is down).",
    ["result"],
)
RESOLVER_CACHE = Counter(
    "fleet_gateway_resolver_cache_total",
    "Model resolutions by result: hit (fresh), miss (asked the registry), stale (served while the registry is down).",
    ["result"],
)
for _result in ("hit", "miss", "error"):
    RESPONSE_CACHE.labels(_result)
for _result in ("hit", "miss", "stale"):
    AUTH_CACHE.labels(_result)
    RESOLVER_CACHE.labels(_result)
for _state in ("healthy", "unhealthy"):
    WORKERS.labels(_state)


class ModelSeries(PerModelSeries):
    """One model's per-model children on this gateway."""

    requests_family = REQUESTS

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.request_seconds = REQUEST_SECONDS.labels(label)


# ---- routing, copies, streams (worker labels are worker ids, a series removed when its worker leaves) ----
# decision: holder (a request went to an existing copy), placement (a request went to a worker that loads the
# model for it), joined_load (a placement went to the worker another gateway was loading the model on),
# new_copy / released_copy (the copies controller placed or released a copy).
ROUTING_DECISIONS = Counter(
    "fleet_gateway_routing_decisions_total", "Where requests and copies of models went, by decision.", ["decision"],
)
# reason: unreachable (the worker did not answer), unavailable (it answered UNAVAILABLE), not_loaded (the copy the
# gateway expected was gone), queue_full (the worker's queue for the model was full).
RETRIES = Counter("fleet_gateway_retries_total", "Worker calls tried again on another worker, by reason.", ["reason"])
WORKER_IN_FLIGHT = Gauge("fleet_gateway_worker_in_flight", "This gateway's calls to each worker now.", ["worker"])
MODEL_COPIES = Gauge("fleet_gateway_model_copies", "Copies of each model taking traffic (from heartbeats).",
                     ["model_id"])
STREAM_PAUSES = Counter(
    "fleet_gateway_stream_backpressure_total",
    "Times an InferStream stopped reading requests because its answers were not being taken.",
)
for _decision in ("holder", "placement", "joined_load", "new_copy", "released_copy"):
    ROUTING_DECISIONS.labels(_decision)
for _reason in ("unreachable", "unavailable", "not_loaded", "queue_full"):
    RETRIES.labels(_reason)
WORKERS.labels("draining")
WORKERS.labels("late")
WORKFLOW_RUNS_BY_PLACE = Counter(
    "fleet_gateway_workflow_runs_by_place_total",
    "Workflow runs a public gateway with a workflow engine process received, by where they ran (gateway: light "
    "runs, no image work, run in the gateway itself; engine: passed on to the engine's process) and edge (grpc, "
    "http).", ["place", "edge"],
)
for _place in ("gateway", "engine"):
    for _edge in ("grpc", "http"):
        WORKFLOW_RUNS_BY_PLACE.labels(_place, _edge)
