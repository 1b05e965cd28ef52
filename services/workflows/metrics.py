"""The engine's Prometheus instruments (module-level; labels are bounded: block ids, gRPC code names, and
``workflow``: 'inline' for definitions sent with the request, a stored workflow's '<workspace>/<id>' for the
first ``MAX_STORED_LABELS`` of them a process sees, 'other' after that)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from services.common.labels import BoundedLabels

MAX_STORED_LABELS = 20
WORKFLOW_LABELS = BoundedLabels(MAX_STORED_LABELS + 1)  # 'inline' and 20 stored workflows
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STEP_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5)

RUNS = Counter("fleet_workflow_runs_total", "Workflow runs by workflow ('inline', a stored workflow's "
               "'<workspace>/<id>', or 'other') and outcome (a gRPC code name).", ["workflow", "outcome"])
RUN_SECONDS = Histogram("fleet_workflow_run_seconds", "Duration of successful workflow runs.", buckets=BUCKETS)
STEP_SECONDS = Histogram("fleet_workflow_step_seconds", "Duration of workflow steps that succeeded, by block type.",
                         ["block"], buckets=STEP_BUCKETS)

FUSED = Counter("fleet_workflow_fused_calls_total", "Images of detect -> crop -> classify chains run as one worker "
                "call ('fused') or step by step because no worker holding both models served it ('fallback').",
                ["outcome"])
for _outcome in ("fused", "fallback"):
    FUSED.labels(_outcome)


def workflow_label(workflow: str) -> str:
    return WORKFLOW_LABELS(workflow)
