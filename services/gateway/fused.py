"""A workflow's detect -> crop -> classify steps as one worker call (``InferCrops``), where one worker holds both
models: the image travels once, is decoded once, and the crops never leave the worker.

Only workers that hold both models already are tried (the least loaded first); a call that finds a model gone,
a worker unreachable, unavailable or full moves on to the next, and when none serves the plan the answer is
None: the engine then runs the steps one by one, through ``Infer``'s routing, placement and failover. A
caller's mistake (a bad image, say) is the worker's answer and fails the run as the detector step would.
"""

from __future__ import annotations

import itertools
import logging
import time

from fleet.internal.v1 import descriptor_pb2, worker_pb2
from fleet.v1 import inference_pb2
from services.common import tracing
from services.common.errors import ResourceExhausted, Unimplemented
from services.gateway import routing
from services.gateway.gateway import Gateway
from services.gateway.worker_client import ModelNotHeld, WorkerUnavailable

log = logging.getLogger("fleet.gateway")

ATTEMPTS = 2  # workers holding both models tried before the steps run one by one


def holders_of_both(gateway: Gateway, detector: descriptor_pb2.ModelDescriptor,
                    classifier: descriptor_pb2.ModelDescriptor) -> list:
    return [e for e in gateway.workers.holders(detector.model_id, detector.sha256)
            if e.holds(classifier.model_id, classifier.sha256)]


async def infer_crops(gateway: Gateway, detector: descriptor_pb2.ModelDescriptor, image: inference_pb2.Image,
                      parameters: inference_pb2.InferenceParameters, classifier: descriptor_pb2.ModelDescriptor,
                      classifier_parameters: inference_pb2.InferenceParameters, max_crops: int,
                      deadline: float) -> worker_pb2.ModelWorkerServiceInferCropsResponse | None:
    """The plan's answer from a worker holding both models, or None (no such worker could serve it)."""
    both = holders_of_both(gateway, detector, classifier)
    if not both:
        return None
    plan = worker_pb2.CropPlan(
        detector=detector, classifier=classifier, classifier_parameters=classifier_parameters, max_crops=max_crops,
        priority=worker_pb2.PRIORITY_BACKGROUND,  # a workflow's plan yields to interactive requests
        request=inference_pb2.InferRequest(model_id=detector.model_id, image=image, parameters=parameters))
    with tracing.span("routing", **{"fleet.model_id": detector.model_id, "fleet.fused_with": classifier.model_id}):
        return await _call(gateway, both, plan, detector, classifier, deadline)


async def _call(gateway: Gateway, both: list, plan: worker_pb2.CropPlan, detector: descriptor_pb2.ModelDescriptor,
                classifier: descriptor_pb2.ModelDescriptor,
                deadline: float) -> worker_pb2.ModelWorkerServiceInferCropsResponse | None:
    for endpoint in itertools.islice(routing.least_loaded_first(both, gateway.workers.rng), ATTEMPTS):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            with gateway.workers.calling(endpoint):
                reply = await endpoint.client.infer_crops(plan, remaining)
        except ModelNotHeld as exc:
            for model_id in exc.args:
                gateway.workers.note_gone(endpoint, model_id)
            continue
        except (ResourceExhausted, Unimplemented):  # full, or a worker from before InferCrops (a rolling upgrade)
            continue
        except WorkerUnavailable as exc:
            if not exc.answered:
                gateway.workers.mark_failed(endpoint)
            log.warning("crop plan call failed; trying another worker or the steps one by one",
                        extra={"worker": endpoint.label, "details": exc.message})
            continue
        gateway.workers.note_serving(endpoint, detector.model_id, detector.sha256)
        gateway.workers.note_serving(endpoint, classifier.model_id, classifier.sha256)
        return reply
    return None
