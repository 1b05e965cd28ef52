"""Plain-text tables for the CLI."""

from __future__ import annotations

from collections.abc import Iterable

from fleet.v1 import inference_pb2, model_pb2
from services.tasks import registry as tasks
from services.tasks.base import text_table as table


def response_table(r: inference_pb2.InferResponse) -> str:
    """A response's heading and its task's table (the task's own rendering: ``services.tasks``)."""
    head = (f"model {r.model_id}  image {r.image_width}x{r.image_height}  worker {r.worker_id}  "
            f"gateway {r.timings.gateway_ms:.1f} ms (inference {r.timings.inference_ms:.1f} ms, "
            f"batch {r.timings.batch_size})")
    if not r.task and not r.task_type and r.WhichOneof("result") is None:
        return f"{head}\nno result"
    try:
        task = tasks.of_response(r)
    except tasks.UnknownTask:
        return f"{head}\nthis CLI does not know the answer's task {r.task!r} (FLEET_TASK_MODULES?); use --json"
    return f"{head}\n" + task.table(r)


def loaded_models_table(models: Iterable[model_pb2.LoadedModel]) -> str:
    rows = [[m.model_id, m.worker_id, m.execution_provider, f"{m.size_bytes / 1e6:.1f} MB", str(m.request_count),
             str(m.in_flight), f"{m.requests_per_second:.1f}", f"{m.load_seconds:.2f} s", "yes" if m.pinned else ""]
            for m in sorted(models, key=lambda m: (m.model_id, m.worker_id))]
    return table(["model", "worker", "provider", "size", "requests", "in flight", "req/s", "load", "pinned"], rows)
