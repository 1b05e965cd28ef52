"""The worker's Prometheus instruments (module-level; labels are bounded sets)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

MODEL_LOADS = Counter("fleet_worker_model_loads_total", "Model loads by outcome.", ["outcome"])
MODEL_LOAD_SECONDS = Histogram(
    "fleet_worker_model_load_seconds", "Time to fetch, verify and open a model.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
EVICTIONS = Counter("fleet_worker_evictions_total", "Models evicted, by reason.", ["reason"])
LOADED_MODELS = Gauge("fleet_worker_loaded_models", "Models held now.")
LOADED_BYTES = Gauge("fleet_worker_loaded_model_bytes", "Measured footprint of the models held now.")
QUEUE_DEPTH = Gauge("fleet_worker_queue_depth", "Requests waiting for a batch slot, all models.")
BATCH_SIZE = Histogram(
    "fleet_worker_batch_size", "Images per ONNX Runtime run.", buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
)
STAGE_SECONDS = Histogram(
    "fleet_worker_stage_seconds", "Per-request time in each stage.", ["stage"], buckets=STAGE_BUCKETS
)
INFERENCE_LOG_FAILURES = Counter(
    "fleet_worker_inference_log_failures_total", "Inference-log entries lost because Redis failed."
)
ARTIFACT_DOWNLOADS = Counter("fleet_worker_artifact_fetches_total", "Artifact fetches by outcome.", ["outcome"])
DECODE_BUDGET_IN_USE = Gauge(
    "fleet_worker_decode_budget_in_use_pixels", "Decoded pixels reserved now by requests being decoded."
)
DECODE_BUDGET_REJECTED = Counter(
    "fleet_worker_decode_budget_rejected_total", "Requests answered RESOURCE_EXHAUSTED after waiting for the decode budget."
)
