"""The pipelines service's metrics: module-level instruments with bounded labels (no pipeline ids)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FRAMES_READ = Counter("fleet_pipeline_frames_read_total", "Frames decoded or received from sources.")
FRAMES_PROCESSED = Counter("fleet_pipeline_frames_processed_total", "Frames run through a model or workflow, by "
                           "outcome.", ["outcome"])
FRAMES_DROPPED = Counter("fleet_pipeline_frames_dropped_total", "Frames dropped, by reason: rate (a newer frame "
                         "replaced it before it was processed), buffer (the consume buffer or a subscriber was "
                         "full).", ["reason"])
LATENCY = Histogram("fleet_pipeline_capture_to_result_seconds", "From a frame's capture to its result.",
                    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2.5, 5))
RECONNECTS = Counter("fleet_pipeline_source_reconnects_total", "Reconnect attempts of live sources.")
PIPELINES = Gauge("fleet_pipelines_running", "Pipelines this replica runs.")
TAKEOVERS = Counter("fleet_pipeline_takeovers_total", "Pipelines this replica claimed from a dead owner (its lease "
                    "expired) or a draining one (it released the lease).")
ABANDONED_READERS = Counter("fleet_pipeline_abandoned_readers_total", "Source readers still stuck in a connect "
                            "or read when terminate's bound ran out (their thread ends on its own).")
