"""The worker's Prometheus instruments (module-level; labels are bounded sets).

Per-model series carry ``model_id`` through ``services.common.labels.model_label`` (the first
``FLEET_METRICS_MAX_MODELS`` models keep their own series, later ones share ``other``). Their
children are bound once per model (``ModelSeries.of``), so the request path does no label lookups.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.common.metrics import PerModelSeries

STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
QUEUE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)

# ---- per model ---------------------------------------------------------------------------------
REQUESTS = Counter("fleet_worker_requests_total", "Inference requests by model and outcome (a gRPC code name).",
                   ["model_id", "outcome"])
REQUEST_SECONDS = Histogram("fleet_worker_request_seconds", "Worker-side duration of successful inference "
                            "requests (fetch, decode, queue, run, post-process).", ["model_id"],
                            buckets=REQUEST_BUCKETS)
QUEUE_SECONDS = Histogram("fleet_worker_queue_seconds", "Time a request waited for its model run to start.",
                          ["model_id"], buckets=QUEUE_BUCKETS)
INFERENCE_SECONDS = Histogram("fleet_worker_inference_seconds", "ONNX Runtime run time of the batch that carried "
                              "each request.", ["model_id"], buckets=STAGE_BUCKETS)
BATCH_SIZE = Histogram("fleet_worker_batch_size", "Images per ONNX Runtime run.", ["model_id"], buckets=BATCH_BUCKETS)
QUEUE_DEPTH = Gauge("fleet_worker_queue_depth", "Requests waiting for a batch slot now.", ["model_id"])
COLD_STARTS = Counter("fleet_worker_cold_starts_total", "Requests that had to wait for their model to load.",
                      ["model_id"])
MODEL_LOADS = Counter("fleet_worker_model_loads_total", "Model loads by outcome (loaded, failed).",
                      ["model_id", "outcome"])
EVICTIONS = Counter("fleet_worker_evictions_total", "Models evicted to stay within limits, by reason "
                    "(count, memory, pressure).", ["model_id", "reason"])
MODEL_BYTES = Gauge("fleet_worker_model_bytes", "Measured footprint of each model held now.", ["model_id"])
MODEL_LOADED = Gauge("fleet_worker_model_loaded", "Copies of the model this worker holds now (0 or 1; the number "
                     "of models for 'other').", ["model_id"])

# ---- whole worker ---------------------------------------------------------------------------------
MODEL_LOAD_SECONDS = Histogram(
    "fleet_worker_model_load_seconds", "Time to fetch, verify and open a model.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
LOADED_MODELS = Gauge("fleet_worker_loaded_models", "Models held now.")
LOADED_BYTES = Gauge("fleet_worker_loaded_model_bytes", "Measured footprint of the models held now.")
CAPACITY_BYTES = Gauge("fleet_worker_capacity_bytes", "Model-memory capacity (evictions keep the models under it).")
MAX_MODELS = Gauge("fleet_worker_max_models", "Most models held at once (FLEET_WORKER_MAX_ACTIVE_MODELS).")
IN_FLIGHT = Gauge("fleet_worker_in_flight_requests", "Inference requests being handled now.")
STAGE_SECONDS = Histogram(
    "fleet_worker_stage_seconds", "Per-request time in each stage.", ["stage"], buckets=STAGE_BUCKETS
)
INFERENCE_LOG_FAILURES = Counter(
    "fleet_worker_inference_log_failures_total", "Inference-log entries lost because Redis failed."
)
ARTIFACT_DOWNLOADS = Counter("fleet_worker_artifact_fetches_total", "Artifact fetches by outcome (local: a file:// "
                             "artifact verified in place; cached, downloaded, failed, rejected).", ["outcome"])
for _outcome in ("local", "cached", "downloaded", "failed", "rejected"):
    ARTIFACT_DOWNLOADS.labels(_outcome)
INFO = Gauge("fleet_worker_info", "1, labelled with the worker's id and the execution provider it asks for.",
             ["worker_id", "execution_provider"])
DRAINING = Gauge("fleet_worker_draining", "1 from SIGTERM until exit: finishing requests, taking no new ones.")
CANCELLED = Counter(
    "fleet_worker_cancelled_requests_total",
    "Requests whose caller went away while they waited for a batch; dropped before running.",
)
BACKGROUND_QUEUE_DEPTH = Gauge(
    "fleet_worker_background_queue_depth", "Background requests (a workflow's model steps) waiting for a "
    "background run slot now, all models together.",
)
BACKGROUND_RUNS = Counter(
    "fleet_worker_background_runs_total", "ONNX Runtime runs for background requests (a batch of them, or one "
    "alone), on the lowered-priority threads.",
)
BACKGROUND_HELD_SECONDS = Histogram(
    "fleet_worker_background_held_seconds", "How long a background stage (a decode, a model run, a "
    "post-processing) waited for its turn while interactive requests were about (an interactive request in "
    "flight, at most background_max_hold_ms, or the share of the cores spent, background_cpu_share); stages "
    "that found none are not observed.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
)
BACKGROUND_REJECTED = Counter(
    "fleet_worker_background_rejected_total",
    "Background requests answered RESOURCE_EXHAUSTED because the model's background queue was full.",
)
DECODE_BUDGET_IN_USE = Gauge(
    "fleet_worker_decode_budget_in_use_pixels", "Decoded pixels reserved now by requests being decoded."
)
DECODE_BUDGET_REJECTED = Counter(
    "fleet_worker_decode_budget_rejected_total", "Requests answered RESOURCE_EXHAUSTED after waiting for the decode budget."
)


class ModelSeries(PerModelSeries):
    """One model's per-model children on this worker."""

    requests_family = REQUESTS

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.request_seconds = REQUEST_SECONDS.labels(label)
        self.queue_seconds = QUEUE_SECONDS.labels(label)
        self.inference_seconds = INFERENCE_SECONDS.labels(label)
        self.batch_size = BATCH_SIZE.labels(label)
        self.queue_depth = QUEUE_DEPTH.labels(label)
        self.cold_starts = COLD_STARTS.labels(label)
