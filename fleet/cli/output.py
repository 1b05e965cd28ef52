"""Plain-text tables for the CLI."""

from __future__ import annotations

import math
from collections.abc import Iterable

from fleet.v1 import inference_pb2, model_pb2


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


def _box_rows(detections: Iterable[inference_pb2.Detection]) -> list[list[str]]:
    return [[d.class_name, f"{d.confidence:.3f}", f"{d.x:.1f}", f"{d.y:.1f}", f"{d.width:.1f}", f"{d.height:.1f}"]
            for d in detections]


def detections_table(r: inference_pb2.InferResponse) -> str:
    head = (f"model {r.model_id}  image {r.image_width}x{r.image_height}  worker {r.worker_id}  "
            f"gateway {r.timings.gateway_ms:.1f} ms (inference {r.timings.inference_ms:.1f} ms, "
            f"batch {r.timings.batch_size})")
    return f"{head}\n" + _TABLES.get(r.WhichOneof("result") or "", _nothing)(r)


HEADERS = ["class", "confidence", "x", "y", "width", "height"]


def _detections(r: inference_pb2.InferResponse) -> str:
    rows = _box_rows(r.object_detection.detections)
    return f"{len(rows)} detections\n" + table(HEADERS, rows)


def _segmentation(r: inference_pb2.InferResponse) -> str:
    insts = r.instance_segmentation.instances
    rows = [row + [str(len(i.points)), str(len(i.parts)) if i.parts else "", "yes" if i.HasField("rle") else ""]
            for row, i in zip(_box_rows(i.detection for i in insts), insts)]
    return f"{len(rows)} instances\n" + table(HEADERS + ["outline points", "parts", "rle"], rows)


def _keypoints(r: inference_pb2.InferResponse) -> str:
    insts = r.keypoint_detection.instances
    rows = [row + ["  ".join(f"{k.name or i}=({k.x:.1f},{k.y:.1f},{k.confidence:.2f})"
                             for i, k in enumerate(inst.keypoints))]
            for row, inst in zip(_box_rows(i.detection for i in insts), insts)]
    return f"{len(rows)} instances\n" + table(HEADERS + ["keypoints (x, y, confidence)"], rows)


def _oriented(r: inference_pb2.InferResponse) -> str:
    rows = [[b.class_name, f"{b.confidence:.3f}", f"{b.x:.1f}", f"{b.y:.1f}", f"{b.width:.1f}", f"{b.height:.1f}",
             f"{math.degrees(b.angle):.1f}"] for b in r.oriented_detection.boxes]
    return f"{len(rows)} oriented boxes\n" + table(HEADERS + ["angle (deg)"], rows)


def _classification(r: inference_pb2.InferResponse) -> str:
    c = r.classification
    rows = [[p.class_name, f"{p.confidence:.3f}"] for p in c.predictions]
    return f"top: {c.top_class} ({c.top_confidence:.3f})\n" + table(["class", "confidence"], rows)


def _nothing(r: inference_pb2.InferResponse) -> str:
    return "no result"


# InferResponse.result field -> its table.
_TABLES = {"classification": _classification, "object_detection": _detections, "instance_segmentation": _segmentation,
           "keypoint_detection": _keypoints, "oriented_detection": _oriented}


def loaded_models_table(models: Iterable[model_pb2.LoadedModel]) -> str:
    rows = [[m.model_id, m.worker_id, m.execution_provider, f"{m.size_bytes / 1e6:.1f} MB", str(m.request_count),
             str(m.in_flight), f"{m.requests_per_second:.1f}", f"{m.load_seconds:.2f} s", "yes" if m.pinned else ""]
            for m in sorted(models, key=lambda m: (m.model_id, m.worker_id))]
    return table(["model", "worker", "provider", "size", "requests", "in flight", "req/s", "load", "pinned"], rows)
