"""The gateway's logic: resolve, route to a worker (retrying elsewhere), fan out, keep copies.

The edge (a servicer) authenticates the call once into a ``Caller`` and hands it here; this
module knows no transport. Inference requests pass through as protobuf messages: the worker
client wraps each beside the resolved model descriptor, so the image is never re-encoded.
Whom to try is ``routing.attempts``: existing copies by load first, then where the model would
be placed. A call to an existing copy asks the worker not to load anything, so traffic only ever
reaches loaded copies, and a copy that was released or evicted is simply passed over. When a round of
attempts finds no worker that serves, the request tries again after a pause, on the view as it is then,
until its deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fleet.internal.v1 import descriptor_pb2, worker_pb2
from fleet.v1 import inference_pb2, model_pb2
from services.cache import FleetCache
from services.cache.copies import CopyFloor
from services.common import tracing
from services.common.errors import (
    FleetError,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from services.common.grpc_metrics import OK, code_of
from services.common.rpc_errors import error_of
from services.gateway import routing
from services.gateway.caller import Caller
from services.gateway.copies import CopyController
from services.gateway.loads import LoadsInFlight
from services.gateway.metrics import RETRIES, ROUTING_DECISIONS, ModelSeries
from services.gateway.placement import Target, copies_of
from services.gateway.resolver import ModelResolver
from services.gateway.response_cache import ResponseCache
from services.gateway.worker_client import ModelNotHeld, WorkerUnavailable
from services.gateway.workers import WorkerEndpoint, WorkerPool
from services.tasks import registry as tasks

log = logging.getLogger("fleet.gateway")

T = TypeVar("T")
FANOUT_TIMEOUT_S = 120.0
DESCRIBE_TIMEOUT_S = 10.0
WorkerCall = Callable[[WorkerEndpoint, float, bool], Awaitable[T]]  # endpoint, seconds left, existing copy


class Gateway:
    def __init__(self, resolver: ModelResolver, workers: WorkerPool, cache: FleetCache,
                 attempts: int, default_timeout_s: float, response_cache_ttl_s: int,
                 copies: CopyController) -> None:
        self.resolver, self.workers, self.cache = resolver, workers, cache
        self.attempts, self.default_timeout_s = attempts, default_timeout_s
        self.responses = ResponseCache(cache, response_cache_ttl_s)
        self.copies = copies
        self.loads = LoadsInFlight(cache, workers)

    @property
    def max_copies(self) -> int:
        return self.copies.policy.max_copies

    # ---- inference --------------------------------------------------------------------------
    async def infer(self, caller: Caller, request: inference_pb2.InferRequest, timeout_s: float | None,
                    model: descriptor_pb2.ModelDescriptor | None = None,
                    background: bool = False) -> inference_pb2.InferResponse:
        """One request; ``model``: the model ``request.model_id`` already resolved to for this caller (an edge
        that had to look at it first), so it is resolved once. ``background``: work for a caller that is not
        waiting on this call alone (a workflow's model step): workers serve interactive calls first."""
        started = time.perf_counter()
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.default_timeout_s)
        model = model or await self._resolve(request.model_id, caller)
        series = ModelSeries.of(model.model_id)
        try:
            response = await self._answer(model, request, deadline, background)
        except BaseException as exc:
            series.requests(code_of(exc)).inc()
            raise
        elapsed = time.perf_counter() - started
        series.requests(OK).inc()
        series.request_seconds.observe(elapsed)
        response.timings.gateway_ms = elapsed * 1e3
        return response

    async def _resolve(self, model_id: str, caller: Caller) -> descriptor_pb2.ModelDescriptor:
        with tracing.span("resolve", **{"fleet.model_id": model_id}):
            return await self.resolver.resolve(model_id, caller.in_workspace().workspace)

    async def _answer(self, model: descriptor_pb2.ModelDescriptor, request: inference_pb2.InferRequest,
                      deadline: float, background: bool = False) -> inference_pb2.InferResponse:
        """From the response cache, else from a worker (stored in the cache afterwards)."""
        digest = self.responses.digest(model, request)
        response = await self.responses.get(digest) if digest else None
        if response is None:
            _, response = await self._on_worker(
                model, deadline, lambda ep, t, existing: ep.client.infer(model, request, t, existing, background),
                affinity=image_affinity(model, request),
            )
            if digest:
                await self.responses.put(digest, response)
        return response

    async def infer_batch(self, caller: Caller, request: inference_pb2.InferBatchRequest, timeout_s: float | None,
                          model: descriptor_pb2.ModelDescriptor | None = None,
                          background: bool = False) -> inference_pb2.InferBatchResponse:
        """Several images on one worker (their runs share batches there); answers in order, each
        image with its own error. Not served from the response cache."""
        started = time.perf_counter()
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.default_timeout_s)
        model = model or await self._resolve(request.model_id, caller)
        _, reply = await self._on_worker(
            model, deadline, lambda ep, t, existing: ep.client.infer_batch(model, request, t, existing, background)
        )
        gateway_ms = (time.perf_counter() - started) * 1e3
        for item in reply.items:
            if item.HasField("response"):
                item.response.timings.gateway_ms = gateway_ms
        return reply

    async def infer_images(self, caller: Caller, model: descriptor_pb2.ModelDescriptor,
                           images: list[inference_pb2.Image], parameters: inference_pb2.InferenceParameters,
                           timeout_s: float | None, item: str = "image",
                           background: bool = False) -> list[inference_pb2.InferResponse]:
        """Every image's response, for an edge whose answer cannot carry one image's error (Roboflow's JSON
        list, an OIP batch): one image as ``infer`` (the response cache included), several as one batch
        (``infer_batch``); the first image that failed fails the whole request, its index named (``item``)."""
        if len(images) == 1:
            request = inference_pb2.InferRequest(model_id=model.model_id, image=images[0], parameters=parameters)
            return [await self.infer(caller, request, timeout_s, model, background)]
        request = inference_pb2.InferBatchRequest(model_id=model.model_id, images=images, parameters=parameters)
        reply = await self.infer_batch(caller, request, timeout_s, model, background)
        return all_or_first_error(reply, item)

    async def _on_worker(self, model: descriptor_pb2.ModelDescriptor, deadline: float,
                         call: WorkerCall[T], affinity: str = "") -> tuple[WorkerEndpoint, T]:
        """Run ``call`` on the best worker for the model, moving on when one cannot serve it."""
        with tracing.span("routing", **{"fleet.model_id": model.model_id}):
            return await self._try_workers(model, deadline, call, affinity)

    async def _try_workers(self, model: descriptor_pb2.ModelDescriptor, deadline: float,
                           call: WorkerCall[T], affinity: str = "") -> tuple[WorkerEndpoint, T]:
        """Rounds of ``routing.attempts`` over the pool's current view until one serves or the deadline passes.

        In one round ``attempts`` bounds the workers found unavailable (a copy found gone, or a queue found full
        while another worker may take the request, costs none); between rounds the request waits a little longer
        each time (the view meanwhile learns of dead workers, new heartbeats and copies), so holders that die do
        not fail it while the deadline leaves time to place the model on a live worker. A placement first claims
        the model's placement record (``LoadsInFlight.claim``): where another gateway is loading it already, the request goes
        there and waits for that load."""
        tried = 0
        retry_reason = ""
        full: ResourceExhausted | None = None
        refused: WorkerUnavailable | None = None  # a worker's own answer that it cannot serve (not a dead worker)
        for pause in routing.retry_pauses(self.workers.rng):
            failed, unreachable = 0, False
            tried_here: set[str] = set()  # addresses tried in this round
            for attempt in routing.attempts(self.workers.view, model.model_id, model.sha256, model.size_bytes,
                                            self.workers.rng, affinity=affinity):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or failed >= self.attempts:
                    break
                tried += 1
                if retry_reason:
                    RETRIES.labels(retry_reason).inc()
                endpoint, role = attempt.endpoint, ""
                if not attempt.existing:
                    endpoint, role = await self.loads.claim(model, endpoint, remaining, tried_here)
                tried_here.add(endpoint.address)
                try:
                    with self.workers.calling(endpoint, attempt.existing):
                        result = await call(endpoint, remaining, attempt.existing)
                except ModelNotHeld:
                    retry_reason = "not_loaded"
                    self.workers.note_gone(endpoint, model.model_id)
                    continue
                except ResourceExhausted as exc:  # its queue is full: another holder or a new copy may take it
                    retry_reason, full = "queue_full", exc
                    await self.loads.clear(model, endpoint, bool(role))
                    continue
                except WorkerUnavailable as exc:
                    failed += 1
                    retry_reason = "unavailable" if exc.answered else "unreachable"
                    if exc.answered:
                        refused = exc
                    else:
                        unreachable = True
                        self.workers.mark_failed(endpoint)
                    await self.loads.clear(model, endpoint, bool(role) or not exc.answered)
                    log.warning("worker call failed; trying another",
                                extra={"worker": endpoint.label, "details": exc.message})
                    continue
                except BaseException:
                    await self.loads.clear(model, endpoint, bool(role))
                    raise
                ROUTING_DECISIONS.labels("holder" if attempt.existing else "placement").inc()
                self.workers.note_serving(endpoint, model.model_id, model.sha256)
                await self.loads.settle(model, endpoint, role)
                return endpoint, result
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (failed and not unreachable):  # the workers answered: waiting changes nothing
                break
            await asyncio.sleep(min(pause, remaining))
        if full is not None:
            raise full  # every worker that could take it was full until the deadline
        if not tried:
            raise Unavailable("no model worker is available; check that workers are running")
        if refused is not None and time.monotonic() < deadline:
            raise Unavailable(refused.message)
        raise Unavailable(f"no model worker could serve the request before its deadline ({tried} tries); "
                          "retry shortly")

    # ---- model management, fanned out to the fleet -------------------------------------------
    async def add_model(self, caller: Caller, model_id: str,
                        copies: int = 0) -> tuple[descriptor_pb2.ModelDescriptor, list[str]]:
        """Load the model on ``copies`` workers (0: one) and, for copies >= 1, keep that many until removed."""
        model = await self._resolve(model_id, caller)
        if self.max_copies and copies > self.max_copies:
            raise InvalidArgument(f"copies must be at most {self.max_copies}, the fleet's limit per model")
        if copies and not caller.owns(model.workspace):
            raise PermissionDenied(f"only the model's own workspace may keep copies of {model.model_id!r}")
        if copies:
            await self.copies.keep(CopyFloor(model.model_id, model.workspace, copies))
        want, tried = max(1, copies), set()
        while len(holders := self._holders(model)) < want:  # each round loads on the best workers not yet tried
            view = self.workers.view
            size = routing.size_hint(view.holding(model.model_id), model.model_id, model.size_bytes)
            skip = {id(e) for e in holders} | {id(view.endpoints[a]) for a in tried if a in view.endpoints}
            targets = list(itertools.islice(routing.homes(view, model.model_id, size, skip=skip), want - len(holders)))
            if not targets:
                break
            tried.update(ep.address for ep in targets)
            for endpoint in targets:  # the copies controller counts them from now on, not only once loaded
                self.copies.reserve(model.model_id, endpoint)
            try:
                await asyncio.gather(*(self._load_on(ep, model) for ep in targets))
            finally:
                for endpoint in targets:
                    await self.copies.placed(model.model_id, endpoint)
        holders = self._holders(model)
        if not holders:
            raise Unavailable("no model worker could load the model; check that workers are running")
        return model, sorted(ep.worker_id or ep.label for ep in holders)

    def _holders(self, model: descriptor_pb2.ModelDescriptor) -> list[WorkerEndpoint]:
        return self.workers.copies(model.model_id, model.sha256)  # (as floors count them: late heartbeats too)

    async def _load_on(self, endpoint: WorkerEndpoint, model: descriptor_pb2.ModelDescriptor) -> None:
        try:
            await self.copies.record_copy(model.model_id, endpoint)
            await endpoint.client.load(model, FANOUT_TIMEOUT_S)
        except WorkerUnavailable as exc:
            if not exc.answered:
                self.workers.mark_failed(endpoint)
            return
        self.workers.note_serving(endpoint, model.model_id, model.sha256)

    async def remove_model(self, caller: Caller, model_id: str) -> list[str]:
        model = await self._resolve(model_id, caller)
        if not caller.owns(model.workspace):
            raise PermissionDenied(f"only the model's own workspace may unload {model.model_id!r}")
        await self.copies.release(model.model_id)
        replies = await self._fan_out(lambda ep: ep.client.unload(model.model_id, FANOUT_TIMEOUT_S))
        removed = []
        for endpoint, unloaded in replies:
            self.workers.note_gone(endpoint, model.model_id)
            if unloaded:
                removed.append(endpoint.worker_id)
        return removed

    async def clear_models(self, caller: Caller) -> int:
        await self.copies.release(*self.copies.kept_in(caller.workspace))
        replies = await self._fan_out(lambda ep: ep.client.clear(caller.workspace, FANOUT_TIMEOUT_S))
        for endpoint, model_ids in replies:
            for model_id in model_ids:
                self.workers.note_gone(endpoint, model_id)
        return sum(len(model_ids) for _, model_ids in replies)

    async def model(self, caller: Caller, model_id: str) -> descriptor_pb2.ModelDescriptor:
        """The model an id or alias names for this caller (NotFound / PermissionDenied otherwise)."""
        return await self.resolver.resolve(model_id, caller.in_workspace().workspace)

    async def list_models(self, caller: Caller) -> list[descriptor_pb2.ModelDescriptor]:
        """Every registered model the caller may use, loaded or not."""
        return await self.resolver.registry.list_models(caller.in_workspace().workspace)

    def loaded_model_ids(self, caller: Caller) -> tuple[set[str], set[str]]:
        """The models some worker in rotation holds, from the view routing uses: (those of the caller's
        workspace by heartbeat, those a call found loaded before a heartbeat said so, owner not known here)."""
        owned, confirmed = set(), set()
        for endpoint in self.workers.live():
            for load in endpoint.loads.values():
                if caller.owns(load.workspace) and endpoint.holds(load.model_id, load.sha256):
                    owned.add(load.model_id)
            confirmed.update(endpoint.confirmed)
        return owned, confirmed - owned

    async def loaded_models(self, caller: Caller) -> dict[str, descriptor_pb2.ModelDescriptor | None]:
        """The caller's loaded models, each resolved once (None: loaded but no longer registered): the listing
        every edge shows."""
        owned, confirmed = self.loaded_model_ids(caller)
        ids = sorted(owned | confirmed)
        found = await asyncio.gather(*(self.model(caller, i) for i in ids), return_exceptions=True)
        listing: dict[str, descriptor_pb2.ModelDescriptor | None] = {}
        for model_id, model in zip(ids, found):
            if isinstance(model, BaseException) and not isinstance(model, FleetError):
                raise model
            if isinstance(model, FleetError):
                if model_id in owned:  # another workspace's model a call confirmed stays unnamed
                    listing[model_id] = None
            elif caller.owns(model.workspace):
                listing[model_id] = model
        return listing

    # ---- readiness (one place each, so a richer worker state only changes these) ---------------
    def serving(self) -> bool:
        """Some model worker is in rotation and not draining."""
        return any(not endpoint.draining for endpoint in self.workers.live())

    async def model_ready(self, caller: Caller, model_id: str) -> bool:
        """Some worker in rotation holds the model's current version loaded: the view routing sends requests by
        (a holder whose heartbeat is late too: routing still sends requests there when it is the only one)."""
        model = await self.model(caller, model_id)
        return bool(self.workers.copies(model.model_id, model.sha256))

    async def describe_models(self, caller: Caller) -> list[model_pb2.LoadedModel]:
        """Every loaded copy the caller may see (one entry per copy)."""
        replies = await self._describe_all()
        return [m for _, reply in replies for m in reply.models if caller.owns(m.workspace)]

    def placements(self, caller: Caller) -> list[model_pb2.ModelPlacement]:

        """Each model's copies taking traffic and their load, from the heartbeats routing uses."""
        endpoints = self.workers.all()
        seen: dict[str, tuple[str, str]] = {}  # model id -> (sha256, workspace): its current version where known
        for endpoint in endpoints:
            for load in endpoint.loads.values():
                if caller.owns(load.workspace):
                    current = self.copies.current_sha(load.model_id)
                    seen.setdefault(load.model_id, (current or load.sha256, load.workspace))
        placements = []
        for model_id in sorted(seen):
            sha256, workspace = seen[model_id]
            floor = self.copies.floor_of(model_id)
            copies = copies_of(self.workers.view, Target(model_id, sha256, workspace))
            placements.append(model_pb2.ModelPlacement(
                model_id=model_id, min_copies=floor, max_copies=self.max_copies,
                copies=[model_pb2.ModelCopy(
                    worker_id=ep.worker_id, in_flight=load.in_flight, queued=load.queued,
                    requests_per_second=load.requests_per_second,
                    outstanding=load.outstanding,
                ) for ep, load in sorted(copies, key=lambda c: c[0].worker_id)],
            ))
        return placements

    async def server_info(self, caller: Caller) -> list[model_pb2.WorkerLoad]:
        """Each worker's load: counts are aggregate; internal addresses are shown to admins only."""
        loads = [reply.load for _, reply in await self._describe_all()]
        if not caller.admin:
            for load in loads:
                load.ClearField("address")
        return loads

    async def _describe_all(self) -> list[tuple[WorkerEndpoint, worker_pb2.ModelWorkerServiceDescribeModelsResponse]]:
        return await self._fan_out(lambda ep: ep.client.describe(DESCRIBE_TIMEOUT_S))

    async def _fan_out(self, call: Callable[[WorkerEndpoint], Awaitable[T]]) -> list[tuple[WorkerEndpoint, T]]:
        """Call every worker in rotation at once; unreachable ones are skipped, other errors raised."""
        endpoints = self.workers.live()
        results = await asyncio.gather(*(call(ep) for ep in endpoints), return_exceptions=True)
        answered = []
        for endpoint, result in zip(endpoints, results):
            if isinstance(result, WorkerUnavailable):
                if not result.answered:
                    self.workers.mark_failed(endpoint)
                continue
            if isinstance(result, BaseException):
                raise result
            answered.append((endpoint, result))
        return answered


def image_affinity(model: descriptor_pb2.ModelDescriptor, request: inference_pb2.InferRequest) -> str:
    """The routing affinity key of a request whose task keeps per-image state on a worker (``Task.image_affinity``:
    promptable segmentation's cached embedding): a hash of its image as sent; else empty (no affinity)."""
    if not tasks.of_model(model).image_affinity or not request.HasField("image"):
        return ""
    return hashlib.blake2b(request.image.SerializeToString(deterministic=True), digest_size=16).hexdigest()


def all_or_first_error(reply: inference_pb2.InferBatchResponse, item: str = "image") -> list[inference_pb2.InferResponse]:
    """The responses of a batch, or the first failed item's error (its own status), naming its index."""
    for index, entry in enumerate(reply.items):
        if entry.HasField("error"):
            raise error_of(entry.error, prefix=f"{item} {index}: ")
    return [entry.response for entry in reply.items]
