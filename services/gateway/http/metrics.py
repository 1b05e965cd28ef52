"""The HTTP edge's instruments (module-level; labels bounded: route templates, status classes)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from services.common.grpc_metrics import LATENCY_BUCKETS

HTTP_REQUESTS = Counter("fleet_gateway_http_requests_total", "HTTP API requests answered, by route template and "
                        "status.", ["route", "status"])
HTTP_DURATION = Histogram("fleet_gateway_http_request_seconds", "HTTP API request duration, by route template.",
                          ["route"], buckets=LATENCY_BUCKETS)
