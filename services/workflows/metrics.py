"""The engine's Prometheus instruments (module-level; labels are bounded: block ids, outcomes, and workflow
'inline' or a stored workflow's id)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

RUNS = Counter("fleet_workflow_runs_total", "Workflow runs by workflow ('inline' for definitions sent with the "
               "request, else the stored workflow's id) and outcome (a gRPC code name).", ["workflow", "outcome"])
RUN_SECONDS = Histogram("fleet_workflow_run_seconds", "Duration of successful workflow runs.", ["workflow"],
                        buckets=BUCKETS)
STEP_SECONDS = Histogram("fleet_workflow_step_seconds", "Duration of workflow steps that succeeded, by block type.",
                         ["block"], buckets=BUCKETS)
