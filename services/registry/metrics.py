"""The registry's Prometheus instruments (module-level, bounded labels)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RESOLUTIONS = Counter(
    "fleet_registry_resolutions_total",
    "Model resolutions by outcome: found, upstream (found upstream), not_found, invalid, unavailable.",
    ["outcome"],
)
CACHE_REQUESTS = Counter(
    "fleet_registry_cache_requests_total",
    "Reads of the registry's Redis cache by cache (principal, model, alias, latest) and result (hit, miss, error).",
    ["cache", "result"],
)
UPSTREAM_SECONDS = Histogram(
    "fleet_registry_upstream_request_seconds",
    "Duration of lookups at the upstream model source.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
UPSTREAM_ERRORS = Counter(
    "fleet_registry_upstream_errors_total",
    "Failed upstream lookups by kind: timeout, connect, status, malformed.",
    ["kind"],
)
REVOCATIONS = Counter("fleet_registry_revocations_total", "API keys revoked (admin plane or catalog prune).")

# Every known label value's series exists from start-up (at 0), so rates and alerts see the first event.
for _outcome in ("found", "upstream", "not_found", "invalid", "unavailable"):
    RESOLUTIONS.labels(_outcome)
for _cache in ("principal", "model", "alias", "latest"):
    for _result in ("hit", "miss", "error"):
        CACHE_REQUESTS.labels(_cache, _result)
for _kind in ("timeout", "connect", "status", "malformed"):
    UPSTREAM_ERRORS.labels(_kind)
