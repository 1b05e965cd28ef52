"""The gateway's Prometheus instruments (module-level, bounded labels)."""

from __future__ import annotations

from prometheus_client import Counter

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
