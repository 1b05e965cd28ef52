"""The gateway's Prometheus instruments (module-level; labels are bounded sets).

``worker`` labels are worker ids (the fleet's size bounds them; a worker's series is removed when it
leaves); ``model_id`` labels go through ``services.common.labels.model_label``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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

# decision: holder (a request went to an existing copy), placement (a request went to a worker that loads the
# model for it), new_copy / released_copy (the copies controller placed or released a copy).
ROUTING_DECISIONS = Counter(
    "fleet_gateway_routing_decisions_total", "Where requests and copies of models went, by decision.", ["decision"],
)
# reason: unreachable (the worker did not answer), unavailable (it answered UNAVAILABLE), not_loaded (the copy the
# gateway expected was gone).
RETRIES = Counter("fleet_gateway_retries_total", "Worker calls tried again on another worker, by reason.", ["reason"])
WORKER_IN_FLIGHT = Gauge("fleet_gateway_worker_in_flight", "This gateway's calls to each worker now.", ["worker"])
MODEL_COPIES = Gauge("fleet_gateway_model_copies", "Copies of each model taking traffic (from heartbeats).",
                     ["model_id"])
STREAM_PAUSES = Counter(
    "fleet_gateway_stream_backpressure_total",
    "Times an InferStream stopped reading requests because its answers were not being taken.",
)
