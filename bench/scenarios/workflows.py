"""Workflows (issue #27), all through fleet.v1 gRPC on the same fleet:

- ``workflow_overhead``: a one-step workflow (the detector) vs ``Infer`` on the same model, at c=1 (alternating
  call by call, in rounds) and c=16;
- ``workflow_crops``: detect -> crop -> classify on scenes with several objects, as one ``RunWorkflow`` vs a
  client making the same calls itself (``Infer``, crops cut locally, an ``Infer`` of raw pixels per crop, all
  at once: issue #27's comparison) and vs a client that also batches its crops itself (the crops as one
  ``InferBatch``), at c=1, in rounds where the three take turns call by call (the median round is reported:
  the machine's load drifts within seconds), with where each one's time went;
- ``workflow_isolation``: ``Infer`` latency of another caller (c=1) alone and while 16 callers (in a process of
  their own) run the crop workflow flat out, in alternating rounds (the median round's ratio is reported).

Without the demo classifier (a stand-in package) the crops go to the detector instead.
"""

from __future__ import annotations

import asyncio
import time

import cv2
import httpx
import numpy as np
from google.protobuf import json_format
from prometheus_client.parser import text_string_to_metric_families

from bench.clients import TIMEOUT_S, GatewayCaller, timings
from bench.config import BenchConfig
from bench.drivers import Run, run_async, summarize
from bench.environment import BenchEnv
from bench.processes import CpuMeter
from bench.stats import Window
from bench.workflow_load import WorkflowLoad
from bench.workload import CLASSIFIER_ID, CLASSIFIER_PACKAGE, MODEL_ID
from fleet.v1 import inference_pb2, model_pb2, workflow_pb2, workflow_pb2_grpc

OVERHEAD_CONCURRENCY = (1, 16)
ISOLATION_LOAD = 16
TARGET_ISOLATION_P50_RATIO = 1.3  # issue #27 item 3: Infer's p50 beside workflows "within noise" of alone
CROP_CONFIDENCE = 0.5


def planned_overhead_s(cfg: BenchConfig) -> float:
    """c=1: alternating rounds; c=16: a round's window per setup."""
    return planned_alternating_s(cfg) + 2 * (cfg.scale_warmup_s + cfg.scale_measure_s) + 1.0


def planned_alternating_s(cfg: BenchConfig) -> float:
    """Rounds whose two setups take turns call by call in one window (twice a point's length, as two points)."""
    return cfg.scale_rounds * (cfg.scale_warmup_s + 2 * cfg.scale_measure_s) + 1.0


def planned_rounds_s(cfg: BenchConfig) -> float:
    return cfg.scale_rounds * 2 * (cfg.scale_warmup_s + cfg.scale_measure_s) + 1.0


def _classifier() -> tuple[str, str]:
    if CLASSIFIER_PACKAGE.joinpath("model.json").exists():
        return CLASSIFIER_ID, "roboflow_core/roboflow_classification_model@v1"
    return MODEL_ID, "roboflow_core/roboflow_object_detection_model@v1"


def one_step() -> dict:
    return {"version": "1.0", "inputs": [{"type": "WorkflowImage", "name": "image"}],
            "steps": [{"type": "roboflow_core/roboflow_object_detection_model@v1", "name": "det",
                       "images": "$inputs.image", "model_id": MODEL_ID}],
            "outputs": [{"type": "JsonField", "name": "predictions", "selector": "$steps.det.predictions"}]}


def crop_and_classify() -> dict:
    model, block = _classifier()
    return {"version": "1.0", "inputs": [{"type": "WorkflowImage", "name": "image"}], "steps": [
        {"type": "roboflow_core/roboflow_object_detection_model@v1", "name": "det", "images": "$inputs.image",
         "model_id": MODEL_ID, "confidence": CROP_CONFIDENCE},
        {"type": "roboflow_core/dynamic_crop@v1", "name": "crop", "images": "$inputs.image",
         "predictions": "$steps.det.predictions"},
        {"type": block, "name": "cls", "images": "$steps.crop.crops", "model_id": model},
    ], "outputs": [{"type": "JsonField", "name": "detections", "selector": "$steps.det.predictions"},
                   {"type": "JsonField", "name": "classes", "selector": "$steps.cls.predictions"}]}


def _requests(definition: dict, images: list[bytes]) -> list[workflow_pb2.RunWorkflowRequest]:
    struct = json_format.ParseDict(definition, workflow_pb2.RunWorkflowRequest().definition)
    return [workflow_pb2.RunWorkflowRequest(definition=struct, images={
        "image": workflow_pb2.WorkflowImages(images=[inference_pb2.Image(encoded=i)])}) for i in images]


class WorkflowCaller(GatewayCaller):
    async def __aenter__(self) -> WorkflowCaller:
        await super().__aenter__()
        self.workflows = workflow_pb2_grpc.WorkflowServiceStub(self.channel)
        return self

    async def run(self, request: workflow_pb2.RunWorkflowRequest) -> workflow_pb2.RunWorkflowResponse:
        return await self.workflows.RunWorkflow(request, metadata=self.metadata, timeout=TIMEOUT_S)


STAGE_FAMILIES = {"fleet_workflow_step_seconds": "block", "fleet_worker_request_seconds": "model_id"}


def stage_sums(ports: list[int]) -> dict[str, tuple[float, float]]:
    """(seconds, count) so far of each workflow step (by block) and each model's worker requests, from the
    gateway's and the worker's Prometheus endpoints."""
    sums: dict[str, tuple[float, float]] = {}
    for port in ports:
        for family in text_string_to_metric_families(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text):
            label = STAGE_FAMILIES.get(family.name)
            for sample in family.samples if label else ():
                kind = sample.name.rsplit("_", 1)[-1]
                if kind in ("sum", "count"):
                    name = sample.labels[label]
                    key = f"step {name.split('/')[-1]}" if label == "block" else f"worker {name}"
                    seconds, count = sums.get(key, (0.0, 0.0))
                    sums[key] = (seconds + sample.value, count) if kind == "sum" else (seconds, count + sample.value)
    return sums


def stage_means(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Mean ms per observation over a window: per step run, per image (or crop) a worker served."""
    out = {}
    for key, (seconds, count) in after.items():
        s0, c0 = before.get(key, (0.0, 0.0))
        if count > c0:
            out[key] = (seconds - s0) / (count - c0) * 1e3
    return out


async def _point(cfg: BenchConfig, env: BenchEnv, call, concurrency: int, setup: str,  # noqa: ANN001
                 short: bool = False, pids: dict[str, int] | None = None) -> dict:
    """One point; ``short``: a round's window (the scale windows) rather than a whole point's; ``pids``: the
    processes whose CPU it accounts for (default: the bench's and the fleet's)."""
    window = (Window(cfg.scale_warmup_s, cfg.scale_measure_s, cfg.min_samples) if short
              else Window(cfg.warmup_s, cfg.measure_s, cfg.min_samples))
    result = await run_async(call, concurrency, Run(window, CpuMeter(pids or env.pids())))
    return summarize(result, setup=setup, label=f"{setup}, concurrency {concurrency}", concurrency=concurrency)


def run_overhead(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    return asyncio.run(_overhead(cfg, env, images))


async def _overhead(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    """At c=1 the two take turns call by call in each round (``_alternating``: the machine's load, which drifts
    within seconds on a shared VM, weighs on both alike; two windows one after the other measured that drift as
    often as the workflow's cost); the median round's difference of p50s is the result. At c=16, a window each."""
    requests = _requests(one_step(), images)
    async with WorkflowCaller(env.fleet.gateway.address, env.api_key) as caller:
        await caller.run(requests[0])  # compiled, model resolved and loaded (not measured)

        async def infer(i: int) -> dict[str, float]:
            return timings(await caller.infer(MODEL_ID, images[i % len(images)]))

        async def workflow(i: int) -> dict[str, float]:
            return {"gateway_ms": (await caller.run(requests[i % len(requests)])).gateway_ms}

        setups = {"infer": (infer, "Infer"), "flow": (workflow, "one-step workflow")}
        rounds = []
        for n in range(cfg.scale_rounds):
            pair = await _alternating(cfg, env, setups, first="infer" if n % 2 == 0 else "flow")
            rounds.append((pair["flow"]["latency_ms"]["p50"] - pair["infer"]["latency_ms"]["p50"], pair))
        added, median = sorted(rounds, key=lambda r: r[0])[len(rounds) // 2]
        points = [median["infer"], median["flow"]]
        for setup, call in (("Infer", infer), ("one-step workflow", workflow)):
            points.append(await _point(cfg, env, call, OVERHEAD_CONCURRENCY[1], setup, short=True))
    by = {(p["setup"], p["concurrency"]): p for p in points}
    return {"points": points, "p50_added_ms": added, "round_added_ms": [r for r, _ in rounds],
            "rps_c16_ratio": by[("one-step workflow", 16)]["throughput_rps"] / by[("Infer", 16)]["throughput_rps"]}


def _crops(jpeg: bytes, detections) -> list[inference_pb2.Image]:  # noqa: ANN001
    pixels = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    h, w = pixels.shape[:2]
    out = []
    for d in detections:
        x0, y0 = max(0, round(d.x - d.width / 2)), max(0, round(d.y - d.height / 2))
        x1, y1 = min(w, max(x0 + 1, round(d.x + d.width / 2))), min(h, max(y0 + 1, round(d.y + d.height / 2)))
        crop = np.ascontiguousarray(pixels[y0:y1, x0:x1])
        out.append(inference_pb2.Image(raw=inference_pb2.RawImage(
            data=crop.tobytes(), width=crop.shape[1], height=crop.shape[0], channels=3,
            color_order=model_pb2.COLOR_ORDER_BGR)))
    return out


async def _alternating(cfg: BenchConfig, env: BenchEnv, setups: dict, first: str) -> dict[str, dict]:
    """One round: the setups take turns call by call (c=1) in one window, so the machine's load, which drifts
    within seconds on this shared VM, weighs on both alike; a point per setup from its own calls (its req/s:
    its calls over the shared window; the CPU and the worker rows of the stages: both setups' calls together)."""
    keys = [first, *(k for k in setups if k != first)]

    async def call(i: int) -> dict:
        key = keys[i % len(keys)]
        return {"setup": key, **await setups[key][0](i // len(keys))}

    window = Window(cfg.scale_warmup_s, cfg.scale_measure_s, cfg.min_samples * len(keys))
    run = Run(window, CpuMeter(env.pids()))
    sums: dict[str, dict] = {}
    ports = [env.fleet.gateway.workflows.metrics_port, env.worker.metrics_port]
    run.on_open.append(lambda: sums.update(start=stage_sums(ports)))  # where the time went: the services' own
    run.on_close.append(lambda: sums.update(end=stage_sums(ports)))  # histograms over the window
    await run_async(call, 1, run)
    stages = stage_means(sums["start"], sums["end"]) if "end" in sums else {}
    points = {}
    for key in keys:
        own = Window(window.warmup_s, window.measure_s, window.min_samples, started=window.started,
                     samples=[s for s in window.samples if s[1]["setup"] == key], closed_at=window.closed_at)
        part = Run(own, None)
        part.errors, part.cpu = run.errors, run.cpu
        point = summarize(part, setup=setups[key][1], label=f"{setups[key][1]}, concurrency 1", concurrency=1)
        point["stages_ms"] = {k: v for k, v in stages.items() if key == "flow" or not k.startswith("step ")}
        points[key] = point
    return points


def run_crops(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    return asyncio.run(_crop_pair(cfg, env, images))


async def _crop_pair(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    requests = _requests(crop_and_classify(), images)
    classifier, _ = _classifier()
    params = inference_pb2.InferenceParameters(confidence=CROP_CONFIDENCE)
    counted: list[int] = []
    async with WorkflowCaller(env.fleet.gateway.address, env.api_key) as caller:
        await caller.run(requests[0])

        async def detected(i: int) -> tuple[list[inference_pb2.Image], dict[str, float], float]:
            """A client's first two steps: the detector's ``Infer``, then the crops cut locally; (the crops, the
            time of each step, when the crops were ready)."""
            jpeg = images[i % len(images)]
            t0 = time.perf_counter()
            found = await caller.stub.Infer(inference_pb2.InferRequest(
                model_id=MODEL_ID, image=inference_pb2.Image(encoded=jpeg), parameters=params),
                metadata=caller.metadata, timeout=TIMEOUT_S)
            t1 = time.perf_counter()
            crops = await asyncio.to_thread(_crops, jpeg, found.object_detection.detections)
            t2 = time.perf_counter()
            return crops, {"detect_call_ms": (t1 - t0) * 1e3, "client_crop_ms": (t2 - t1) * 1e3}, t2

        async def by_client(i: int) -> dict[str, float]:
            crops, steps, t2 = await detected(i)
            if crops:
                await caller.stub.InferBatch(inference_pb2.InferBatchRequest(model_id=classifier, images=crops),
                                             metadata=caller.metadata, timeout=TIMEOUT_S)
            counted.append(len(crops))
            return {**steps, "classify_call_ms": (time.perf_counter() - t2) * 1e3}

        async def per_crop(i: int) -> dict[str, float]:
            """The calls the workflow's blocks make, by hand: the detector, then the classifier on each crop
            (one ``Infer`` per crop, all at once)."""
            crops, steps, t2 = await detected(i)
            await asyncio.gather(*(caller.stub.Infer(inference_pb2.InferRequest(model_id=classifier, image=crop),
                                                     metadata=caller.metadata, timeout=TIMEOUT_S) for crop in crops))
            return {**steps, "classify_calls_ms": (time.perf_counter() - t2) * 1e3}

        async def workflow(i: int) -> dict[str, float]:
            return {"gateway_ms": (await caller.run(requests[i % len(requests)])).gateway_ms}

        setups = {"client": (by_client, "client: Infer, crop, InferBatch"),
                  "per_crop": (per_crop, "client: Infer, crop, an Infer per crop"),
                  "flow": (workflow, "workflow: detect -> crop -> classify")}
        rounds = []
        for n in range(cfg.scale_rounds):
            first = ("client", "per_crop", "flow")[n % 3]
            points = await _alternating(cfg, env, setups, first=first)
            flow_p50 = points["flow"]["latency_ms"]["p50"]
            rounds.append((points["per_crop"]["latency_ms"]["p50"] / flow_p50,
                           points["client"]["latency_ms"]["p50"] / flow_p50, points))
    ratios, batched = [r for r, _, _ in rounds], [b for _, b, _ in rounds]
    median_ratio, _, median = sorted(rounds, key=lambda r: r[0])[len(rounds) // 2]
    return {"points": [median["client"], median["per_crop"], median["flow"]], "classifier": classifier,
            "mean_crops": sum(counted) / max(1, len(counted)), "speedup_c1": median_ratio, "round_ratios": ratios,
            "speedup_c1_batched": sorted(batched)[len(batched) // 2], "round_ratios_batched": batched}


def run_isolation(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    return asyncio.run(_isolation(cfg, env, images))


async def _isolation(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    """Rounds of the two windows (``Infer`` alone, ``Infer`` beside the workflow callers) in alternating order,
    so a drift in the machine's load hits both; the median round's ratio is the result. The workflow callers
    run in a process of their own (``bench.workflow_load``): in this one they would delay the measured
    caller's own event loop, which is not what the fleet does to it."""
    requests = _requests(crop_and_classify(), images)
    with WorkflowLoad(env.fleet.gateway.address, env.api_key, [r.SerializeToString() for r in requests],
                      ISOLATION_LOAD) as load:
        pids = {**env.pids(), "workflow load": load.pid}
        async with WorkflowCaller(env.fleet.gateway.address, env.api_key) as other:
            await other.infer(MODEL_ID, images[0])

            async def infer(i: int) -> dict[str, float]:
                return timings(await other.infer(MODEL_ID, images[i % len(images)]))

            async def alone() -> dict:
                return await _point(cfg, env, infer, 1, "Infer alone", short=True, pids=pids)

            async def beside() -> dict:
                load.start()
                try:
                    point = await _point(cfg, env, infer, 1, f"Infer beside {ISOLATION_LOAD} workflow callers",
                                         short=True, pids=pids)
                finally:
                    report = load.stop()
                point["workflow_runs"], point["workflow_errors"] = report.runs, report.errors
                point["workflow_runs_per_s"] = report.runs / max(report.seconds, 1e-9)
                point["workflow_first_error"] = report.first_error
                return point

            rounds = []
            for n in range(cfg.scale_rounds):
                order = [("alone", alone), ("beside", beside)]
                pair = {key: await window() for key, window in (order if n % 2 == 0 else order[::-1])}
                rounds.append((pair["beside"]["latency_ms"]["p50"] / pair["alone"]["latency_ms"]["p50"], pair))
    ratios = [r for r, _ in rounds]
    median_ratio, median = sorted(rounds, key=lambda r: r[0])[len(rounds) // 2]
    return {"points": [median["alone"], median["beside"]], "p50_ratio": median_ratio, "round_ratios": ratios,
            "p99_ratio": median["beside"]["latency_ms"]["p99"] / median["alone"]["latency_ms"]["p99"],
            "round_p99_ratios": [p["beside"]["latency_ms"]["p99"] / p["alone"]["latency_ms"]["p99"] for _, p in rounds],
            "workflow_runs_meanwhile": sum(p["beside"]["workflow_runs"] for _, p in rounds),
            "workflow_runs_per_s": [p["beside"]["workflow_runs_per_s"] for _, p in rounds],
            "workflow_errors": sum(p["beside"]["workflow_errors"] for _, p in rounds),
            "rounds": [{key: _brief(point) for key, point in pair.items()} for _, pair in rounds],
            "load_in_own_process": True, "target_p50_ratio": TARGET_ISOLATION_P50_RATIO}


def _brief(point: dict) -> dict:
    """A round's window in short: p50, where its time went (p50 of each part) and the cores each process used."""
    cpu = point.get("cpu", {})
    return {"p50_ms": point["latency_ms"]["p50"],
            "split_p50_ms": {k: v["p50"] for k, v in point.get("split_ms", {}).items()},
            "split_mean_ms": {k: v["mean"] for k, v in point.get("split_ms", {}).items()},
            "cores": {k: v["cores"] for k, v in cpu.items() if isinstance(v, dict)},
            "others_cores": cpu.get("others_cores", 0.0)}
