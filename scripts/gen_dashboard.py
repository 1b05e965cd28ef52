"""Writes deploy/grafana/inference-fleet.json, the fleet's Grafana dashboard, from the panels below.

    .venv/bin/python scripts/gen_dashboard.py          # regenerate (a test checks the file is current)

The dashboard reads only the metrics in docs/metrics.md. Variables: ``datasource`` (any Prometheus),
``model_id`` (multi-select, All by default) and ``instance`` (the workers' scrape targets). Every
expression here returns data against a fleet that has served traffic (tests/observability checks
that against a real Prometheus), except the GPU panel, which needs a worker on CUDA.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "inference-fleet.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
GATEWAY = 'grpc_service="fleet.v1.GatewayService"'
FAULTS = 'grpc_code=~"Unknown|DeadlineExceeded|Unimplemented|Internal|Unavailable|DataLoss"'
MODEL = 'model_id=~"$model_id"'
WORKER = 'instance=~"$instance"'
RI = "$__rate_interval"
WORKER_ID = "* on (job, instance) group_left (worker_id) fleet_worker_info"  # legends by worker id


def quantiles(metric: str, by: str, selector: str, legend: str) -> list[tuple[str, str]]:
    return [(f'histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{selector}}}[{RI}])))',
             f"p{int(q * 100)} {legend}") for q in (0.5, 0.99)]


# (title, unit, [(expr, legend)], description) per panel, in rows.
ROWS: list[tuple[str, list[tuple[str, str, list[tuple[str, str]], str]]]] = [
    ("Fleet overview", [
        ("Gateway requests by method", "reqps",
         [(f"sum by (grpc_method) (rate(grpc_server_handled_total{{{GATEWAY}}}[{RI}]))", "{{grpc_method}}")],
         "Calls the public API answered per second (InferStream counts streams; its items are messages)."),
        ("Gateway error ratio (server faults)", "percentunit",
         [(f"(sum(rate(grpc_server_handled_total{{{GATEWAY},{FAULTS}}}[{RI}])) or vector(0)) / "
           f"clamp_min(sum(rate(grpc_server_handled_total{{{GATEWAY}}}[{RI}])), 1e-9)", "server faults")],
         "Share of gateway calls that failed on the fleet's side (Internal, Unavailable, DeadlineExceeded...). "
         "Alert: FleetHighErrorRatio."),
        ("Gateway answers by code", "reqps",
         [(f'sum by (grpc_code) (rate(grpc_server_handled_total{{{GATEWAY},grpc_code!="OK"}}[{RI}]))',
           "{{grpc_code}}")],
         "Non-OK statuses; caller mistakes (InvalidArgument, NotFound, Unauthenticated) included."),
        ("Gateway Infer latency", "s",
         quantiles("grpc_server_handling_seconds", "grpc_method", f'{GATEWAY},grpc_method="Infer"', "Infer"),
         "Server-side time of unary Infer calls. Alert: FleetHighP99Latency."),
        ("Gateway -> worker calls", "s",
         quantiles("grpc_client_handling_seconds", "grpc_method",
                   'grpc_service="fleet.internal.v1.ModelWorkerService"', "{{grpc_method}}"),
         "The gateway's calls to workers, as its client sees them (retries included)."),
        ("Healthy workers", "short",
         [("max by (state) (fleet_gateway_workers)", "{{state}}")],
         "Workers the gateway can route to. Alerts: FleetNoWorkers, FleetWorkersMissing."),
        ("Dependencies up", "short",
         [("min by (job, dependency) (fleet_dependency_up)", "{{job}} -> {{dependency}}")],
         "1 while Redis / the registry answer each service's checks. Alerts: FleetRedisUnavailable, "
         "FleetRegistryUnavailable."),
        ("HTTP API requests", "reqps",
         [(f"sum by (route, status) (rate(fleet_gateway_http_requests_total[{RI}]))", "{{route}} {{status}}")],
         "The gateway's HTTP API (Roboflow routes, KServe v2 REST), by route template and status."),
        ("HTTP API latency (p99)", "s",
         [(f"histogram_quantile(0.99, sum by (route, le) (rate(fleet_gateway_http_request_seconds_bucket[{RI}])))",
           "{{route}}")],
         "Duration of HTTP API requests by route."),
        ("Response cache", "percentunit",
         [(f'sum(rate(fleet_gateway_response_cache_total{{result="hit"}}[{RI}])) / '
           f"clamp_min(sum(rate(fleet_gateway_response_cache_total[{RI}])), 1e-9)", "hit ratio")],
         "Hits of the gateway's response cache (FLEET_GATEWAY_RESPONSE_CACHE_TTL_S > 0)."),
    ]),
    ("Registry and caches", [
        ("Gateway caches", "ops",
         [(f"sum by (result) (rate(fleet_gateway_auth_cache_total[{RI}]))", "API keys {{result}}"),
          (f"sum by (result) (rate(fleet_gateway_resolver_cache_total[{RI}]))", "models {{result}}")],
         "The gateway's API-key and model caches: hits, misses (asked the registry), stale answers while the "
         "registry is unreachable."),
        ("Registry resolutions", "ops",
         [(f"sum by (outcome) (rate(fleet_registry_resolutions_total[{RI}]))", "{{outcome}}")],
         "Model resolutions at the registry by outcome (upstream: answered by the upstream source)."),
        ("Registry cache", "ops",
         [(f"sum by (cache, result) (rate(fleet_registry_cache_requests_total[{RI}]))", "{{cache}} {{result}}")],
         "Reads of the registry's Redis cache (error: Redis down, answered from the database)."),
        ("Registry upstream", "s",
         [(f"histogram_quantile(0.99, sum by (le) (rate(fleet_registry_upstream_request_seconds_bucket[{RI}])))",
           "p99 lookup"),
          (f"sum by (kind) (rate(fleet_registry_upstream_errors_total[{RI}]))", "errors {{kind}}")],
         "Lookups at the upstream model source, when one is configured."),
    ]),
    ("Per model", [
        ("Requests by model", "reqps",
         [(f"sum by (model_id) (rate(fleet_gateway_requests_total{{{MODEL}}}[{RI}]))", "{{model_id}}")],
         "Inference requests per second at the gateway, per resolved model."),
        ("Errors by model", "reqps",
         [(f'sum by (model_id, outcome) (rate(fleet_gateway_requests_total{{{MODEL},outcome!="OK"}}[{RI}]))',
           "{{model_id}} {{outcome}}")],
         "Failed requests per model and status. Alert: FleetModelErrors."),
        ("Latency by model", "s",
         quantiles("fleet_gateway_request_seconds", "model_id", MODEL, "{{model_id}}"),
         "Gateway-side p50 and p99 per model. Alert: FleetModelP99Latency."),
        ("Queue wait by model (p99)", "s",
         [(f"histogram_quantile(0.99, sum by (model_id, le) (rate(fleet_worker_queue_seconds_bucket{{{MODEL}}}[{RI}])))",
           "{{model_id}}")],
         "Time requests waited for their model's run, across workers."),
        ("Queue depth by model", "short",
         [(f"sum by (model_id) (fleet_worker_queue_depth{{{MODEL}}})", "{{model_id}}")],
         "Requests queued now, all workers. Alert: FleetQueueGrowing."),
        ("Mean batch size by model", "short",
         [(f"sum by (model_id) (rate(fleet_worker_batch_size_sum{{{MODEL}}}[{RI}])) / "
           f"clamp_min(sum by (model_id) (rate(fleet_worker_batch_size_count{{{MODEL}}}[{RI}])), 1e-9)",
           "{{model_id}}")],
         "Images per ONNX Runtime run."),
        ("Inference time by model (p99)", "s",
         [(f"histogram_quantile(0.99, sum by (model_id, le) "
           f"(rate(fleet_worker_inference_seconds_bucket{{{MODEL}}}[{RI}])))", "{{model_id}}")],
         "ONNX Runtime run time of the batch carrying each request."),
        ("Cold starts, loads and evictions", "ops",
         [(f"sum by (model_id) (rate(fleet_worker_cold_starts_total{{{MODEL}}}[{RI}]))", "cold starts {{model_id}}"),
          (f"sum by (model_id, outcome) (rate(fleet_worker_model_loads_total{{{MODEL}}}[{RI}]))",
           "loads {{outcome}} {{model_id}}"),
          (f"sum by (model_id, reason) (rate(fleet_worker_evictions_total{{{MODEL}}}[{RI}]))",
           "evicted ({{reason}}) {{model_id}}")],
         "Requests that waited for a load; loads; evictions by reason. Alert: FleetEvictionStorm."),
        ("Copies loaded by model", "short",
         [(f"sum by (model_id) (fleet_worker_model_loaded{{{MODEL}}})", "{{model_id}}")],
         "How many workers hold each model now."),
    ]),
    ("Per worker", [
        ("Models held", "short",
         [(f"fleet_worker_loaded_models{{{WORKER}}} {WORKER_ID}", "{{worker_id}}"),
          (f"fleet_worker_max_models{{{WORKER}}} {WORKER_ID}", "max {{worker_id}}")],
         "Models each worker holds, against FLEET_WORKER_MAX_ACTIVE_MODELS."),
        ("Model bytes", "bytes",
         [(f"fleet_worker_loaded_model_bytes{{{WORKER}}} {WORKER_ID}", "{{worker_id}}"),
          (f"fleet_worker_capacity_bytes{{{WORKER}}} {WORKER_ID}", "capacity {{worker_id}}")],
         "Measured footprint of the models held, against the worker's capacity."),
        ("In flight", "short",
         [(f"fleet_worker_in_flight_requests{{{WORKER}}} {WORKER_ID}", "{{worker_id}}")],
         "Inference requests each worker is handling now."),
        ("Worker stages (p99)", "s",
         [(f"histogram_quantile(0.99, sum by (stage, le) (rate(fleet_worker_stage_seconds_bucket{{{WORKER}}}[{RI}])))",
           "{{stage}}")],
         "Decode, pre-process, queue, inference and post-process time per request."),
        ("Decode budget", "short",
         [(f"fleet_worker_decode_budget_in_use_pixels{{{WORKER}}} {WORKER_ID}", "pixels in use {{worker_id}}"),
          (f"rate(fleet_worker_decode_budget_rejected_total{{{WORKER}}}[{RI}]) {WORKER_ID}",
           "rejected/s {{worker_id}}")],
         "Decoded pixels reserved by requests being decoded, and requests refused after waiting for the budget."),
        ("Native library messages", "ops",
         [(f"sum by (job, library) (rate(fleet_native_messages_total[{RI}]))", "{{job}} {{library}}")],
         "Lines libpng, libjpeg, ONNX Runtime wrote to stderr (captured into the log)."),
        ("GPU memory (CUDA workers)", "bytes",
         [(f"fleet_worker_gpu_memory_used_bytes{{{WORKER}}} {WORKER_ID}", "used {{worker_id}} gpu {{gpu}}"),
          (f"fleet_worker_gpu_memory_free_bytes{{{WORKER}}} {WORKER_ID}", "free {{worker_id}} gpu {{gpu}}")],
         "From NVML; only workers running on CUDA export it. Alert: FleetGpuMemoryLow."),
    ]),
]


def panel(pid: int, x: int, y: int, title: str, unit: str, targets: list[tuple[str, str]], description: str) -> dict:
    return {
        "id": pid, "type": "timeseries", "title": title, "description": description, "datasource": DS,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend,
                     "range": True} for i, (expr, legend) in enumerate(targets)],
        "fieldConfig": {"defaults": {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 10}}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    }


def variable(name: str, label: str, query: str) -> dict:
    return {
        "name": name, "label": label, "type": "query", "datasource": DS, "refresh": 2, "sort": 1,
        "query": {"query": query, "refId": name}, "definition": query, "multi": True, "includeAll": True,
        "allValue": ".*", "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def dashboard() -> dict:
    panels, pid, y = [], 1, 0
    for row_title, row in ROWS:
        panels.append({"id": pid, "type": "row", "title": row_title, "collapsed": False, "panels": [],
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        pid, y = pid + 1, y + 1
        for i, (title, unit, targets, description) in enumerate(row):
            panels.append(panel(pid, 12 * (i % 2), y + 8 * (i // 2), title, unit, targets, description))
            pid += 1
        y += 8 * ((len(row) + 1) // 2)
    return {
        "uid": "inference-fleet", "title": "Inference Fleet", "tags": ["inference-fleet", "grpc"],
        "description": "Gateway, registry and model workers: traffic, errors, latency per model, queues, batches, "
                       "cold starts, worker memory. Metrics: docs/metrics.md.",
        "editable": True, "graphTooltip": 1, "schemaVersion": 39, "version": 1, "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"}, "timepicker": {}, "timezone": "browser", "links": [],
        "annotations": {"list": []},
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1},
            variable("model_id", "Model", "label_values(fleet_gateway_requests_total, model_id)"),
            variable("instance", "Worker", "label_values(fleet_worker_info, instance)"),
        ]},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
