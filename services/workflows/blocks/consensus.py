"""Detections consensus: the objects enough models agree on (matched by IoU, merged)."""

from __future__ import annotations

import statistics
from typing import Any

from services.workflows import kinds
from services.workflows.blocks.base import Block, Item, Param, RunContext
from services.workflows.data import Detections, xyxy
from services.workflows.definition import InvalidWorkflow

AGGREGATIONS = {"average": statistics.fmean, "max": max, "min": min}


def iou(a: dict, b: dict) -> float:
    ax0, ay0, ax1, ay1 = xyxy(a)
    bx0, by0, bx1, by1 = xyxy(b)
    iw, ih = max(0.0, min(ax1, bx1) - max(ax0, bx0)), max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = a["width"] * a["height"] + b["width"] * b["height"] - inter
    return inter / union if union > 0 else 0.0


class DetectionsConsensus(Block):
    id = "roboflow_core/detections_consensus@v1"
    aliases = ("DetectionsConsensus",)
    summary = ("Objects found by at least required_votes of the predictions_batches (boxes matched by IoU, of the "
               "same class when class_aware), merged; object_present says whether required_objects were found.")
    params = {
        "predictions_batches": Param("Two or more detection outputs to vote between.", kinds=kinds.DETECTIONS,
                                     required=True, shape="list"),
        "required_votes": Param("How many sources must agree.", literal=(int,), required=True),
        "class_aware": Param("Only boxes of the same class match.", literal=(bool,), default=True),
        "iou_threshold": Param("Boxes match at this IoU or more.", literal=(float, int), default=0.3),
        "confidence": Param("Ignore detections below this confidence.", literal=(float, int), default=0.0),
        "classes_to_consider": Param("Only these classes (unset: all).", literal=(list,)),
        "required_objects": Param("object_present needs at least this many merged objects (unset: one).",
                                  literal=(int,)),
        "presence_confidence_aggregation": Param("average, max or min.", literal=(str,), default="max"),
        "detections_merge_confidence_aggregation": Param("average, max or min.", literal=(str,), default="average"),
        "detections_merge_coordinates_aggregation": Param("average, max or min.", literal=(str,), default="average"),
    }
    image_free = True  # predictions and values only
    outputs = {"predictions": kinds.OBJECT_DETECTION, "object_present": kinds.BOOLEAN,
               "presence_confidence": kinds.FLOAT}

    def check(self, step: str, literals: dict[str, Any]) -> Any:
        for name in ("presence_confidence_aggregation", "detections_merge_confidence_aggregation",
                     "detections_merge_coordinates_aggregation"):
            value = literals.get(name, self.params[name].default)
            if value not in AGGREGATIONS:
                where = f"step {step!r}: " if step else ""
                raise InvalidWorkflow(f"{where}{name} {value!r} is not supported; supported: {', '.join(AGGREGATIONS)}")
        return None

    async def run(self, ctx: RunContext, config: Any, items: list[Item]) -> list[Item]:
        for item in items:  # parameters may bring them: checked as the literals were
            self.check("", {k: item[k] for k in self.params if k.endswith("_aggregation")})
        return [vote(item) for item in items]


def vote(item: Item) -> Item:
    sources: list[Detections] = item["predictions_batches"]
    wanted = item.get("classes_to_consider")
    floor, need, thr = float(item["confidence"]), int(item["required_votes"]), float(item["iou_threshold"])
    pools = [[p for p in d.predictions if p["confidence"] >= floor and (not wanted or p["class"] in wanted)]
             for d in sources]
    used: set[tuple[int, int]] = set()
    merged = []
    order = sorted(((s, i) for s, pool in enumerate(pools) for i in range(len(pool))),
                   key=lambda si: -pools[si[0]][si[1]]["confidence"])
    for s, i in order:
        if (s, i) in used:
            continue
        anchor, group = pools[s][i], [(s, i)]
        for t, pool in enumerate(pools):
            if t == s:
                continue
            best = max(((iou(anchor, q), j) for j, q in enumerate(pool) if (t, j) not in used
                        and (not item["class_aware"] or q["class"] == anchor["class"])), default=(0.0, -1))
            if best[1] >= 0 and best[0] >= thr:
                group.append((t, best[1]))
        if len(group) < need:
            continue
        used.update(group)
        merged.append(_merge([pools[a][b] for a, b in group], item))
    presence = AGGREGATIONS[item["presence_confidence_aggregation"]]
    required = item.get("required_objects") or 1
    present = len(merged) >= required
    base = sources[0] if sources else None
    return {"predictions": Detections(base.image, merged, kinds.OBJECT_DETECTION) if base else None,
            "object_present": present,
            "presence_confidence": presence([m["confidence"] for m in merged]) if merged else 0.0}


def _merge(group: list[dict], item: Item) -> dict:
    coords = AGGREGATIONS[item["detections_merge_coordinates_aggregation"]]
    conf = AGGREGATIONS[item["detections_merge_confidence_aggregation"]]
    boxes = [xyxy(p) for p in group]
    x0, y0, x1, y1 = (coords([b[k] for b in boxes]) for k in range(4))
    top = max(group, key=lambda p: p["confidence"])
    return {"x": (x0 + x1) / 2, "y": (y0 + y1) / 2, "width": x1 - x0, "height": y1 - y0,
            "confidence": conf([p["confidence"] for p in group]), "class": top["class"], "class_id": top["class_id"],
            "detection_id": top.get("detection_id", "")}
