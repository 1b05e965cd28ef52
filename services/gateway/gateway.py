"""The gateway's logic: resolve, route to a worker (retrying elsewhere), fan out.

The edge (a servicer) authenticates the call once into a ``Caller`` and hands it here; this
module knows no transport. Inference requests pass through as protobuf messages: the worker
client wraps each beside the resolved model descriptor, so the image is never re-encoded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fleet.internal.v1 import descriptor_pb2, worker_pb2
from fleet.v1 import inference_pb2, model_pb2
from services.cache import FleetCache
from services.common import tracing
from services.common.errors import CacheUnavailable, DeadlineExceeded, PermissionDenied, Unavailable
from services.common.grpc_metrics import OK, code_of
from services.gateway.caller import Caller
from services.gateway.metrics import RESPONSE_CACHE, ModelSeries
from services.gateway.resolver import ModelResolver
from services.gateway.worker_client import WorkerUnavailable
from services.gateway.workers import WorkerEndpoint, WorkerPool

log = logging.getLogger("fleet.gateway")

T = TypeVar("T")
FANOUT_TIMEOUT_S = 120.0
DESCRIBE_TIMEOUT_S = 10.0


class Gateway:
    def __init__(self, resolver: ModelResolver, workers: WorkerPool, cache: FleetCache,
                 attempts: int, default_timeout_s: float, response_cache_ttl_s: int) -> None:
        self.resolver, self.workers, self.cache = resolver, workers, cache
        self.attempts, self.default_timeout_s = attempts, default_timeout_s
        self.response_cache_ttl_s = response_cache_ttl_s

    # ---- inference --------------------------------------------------------------------------
    async def infer(self, caller: Caller, request: inference_pb2.InferRequest,
                    timeout_s: float | None) -> inference_pb2.InferResponse:
        started = time.perf_counter()
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.default_timeout_s)
        model = await self._resolve(request.model_id, caller)
        series = ModelSeries.of(model.model_id)
        try:
            response = await self._answer(model, request, deadline)
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
                      deadline: float) -> inference_pb2.InferResponse:
        """From the response cache, else from a worker (stored in the cache afterwards)."""
        digest = self._cache_digest(model, request)
        response = await self._cached(digest) if digest else None
        if response is None:
            _, response = await self._on_worker(
                model.model_id, deadline, lambda ep, t: ep.client.infer(model, request, t)
            )
            if digest:
                await self._store(digest, response)
        return response

    async def infer_batch(self, caller: Caller, request: inference_pb2.InferBatchRequest,
                          timeout_s: float | None) -> inference_pb2.InferBatchResponse:
        """Several images on one worker (their runs share batches there); answers in order, each
        image with its own error. Not served from the response cache."""
        started = time.perf_counter()
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.default_timeout_s)
        model = await self.resolver.resolve(request.model_id, caller.workspace)
        _, reply = await self._on_worker(
            model.model_id, deadline, lambda ep, t: ep.client.infer_batch(model, request, t)
        )
        gateway_ms = (time.perf_counter() - started) * 1e3
        for item in reply.items:
            if item.HasField("response"):
                item.response.timings.gateway_ms = gateway_ms
        return reply

    async def _on_worker(self, model_id: str, deadline: float,
                         call: Callable[[WorkerEndpoint, float], Awaitable[T]]) -> tuple[WorkerEndpoint, T]:
        """Run ``call`` on the best worker for the model, moving on when one is unavailable."""
        with tracing.span("routing", **{"fleet.model_id": model_id}):
            return await self._try_workers(model_id, deadline, call)

    async def _try_workers(self, model_id: str, deadline: float,
                           call: Callable[[WorkerEndpoint, float], Awaitable[T]]) -> tuple[WorkerEndpoint, T]:
        tried = 0
        for endpoint in self.workers.candidates(model_id)[: self.attempts]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            endpoint.in_flight += 1
            try:
                result = await call(endpoint, remaining)
            except WorkerUnavailable as exc:
                tried += 1
                self.workers.mark_failed(endpoint)
                log.warning("worker call failed; trying another",
                            extra={"worker": endpoint.address, "details": exc.message})
                continue
            finally:
                endpoint.in_flight -= 1
            self.workers.note_serving(endpoint, model_id)
            return endpoint, result
        if time.monotonic() >= deadline:
            raise DeadlineExceeded("the request's deadline passed before a worker could answer")
        if not tried:
            raise Unavailable("no model worker is available; check that workers are running")
        raise Unavailable(f"no model worker could serve the request ({tried} tried); retry shortly")

    # ---- response cache ---------------------------------------------------------------------
    def _cache_digest(self, model: descriptor_pb2.ModelDescriptor, request: inference_pb2.InferRequest) -> str:
        if not self.response_cache_ttl_s or request.bypass_cache or request.image.HasField("url"):
            return ""
        h = hashlib.sha256()
        h.update(model.model_id.encode())  # models sharing weights answer with their own id
        h.update(model.sha256.encode())
        h.update(request.image.SerializeToString(deterministic=True))
        h.update(request.parameters.SerializeToString(deterministic=True))
        return h.hexdigest()

    async def _cached(self, digest: str) -> inference_pb2.InferResponse | None:
        try:
            payload = await self.cache.responses.get(digest)
        except CacheUnavailable:
            RESPONSE_CACHE.labels("error").inc()
            return None
        RESPONSE_CACHE.labels("miss" if payload is None else "hit").inc()
        if payload is None:
            return None
        response = inference_pb2.InferResponse.FromString(payload)
        response.cached = True
        return response

    async def _store(self, digest: str, response: inference_pb2.InferResponse) -> None:
        try:
            await self.cache.responses.put(digest, response.SerializeToString(), self.response_cache_ttl_s)
        except CacheUnavailable:
            log.warning("response cache unavailable; not caching")

    # ---- model management, fanned out to the fleet -------------------------------------------
    async def add_model(self, caller: Caller, model_id: str) -> tuple[descriptor_pb2.ModelDescriptor, list[str]]:
        model = await self._resolve(model_id, caller)
        endpoint, loaded = await self._on_worker(
            model.model_id, time.monotonic() + FANOUT_TIMEOUT_S, lambda ep, t: ep.client.load(model, t),
        )
        return model, [loaded.worker_id or endpoint.worker_id]

    async def remove_model(self, caller: Caller, model_id: str) -> list[str]:
        model = await self._resolve(model_id, caller)
        if not caller.owns(model.workspace):
            raise PermissionDenied(f"only the model's own workspace may unload {model.model_id!r}")
        replies = await self._fan_out(lambda ep: ep.client.unload(model.model_id, FANOUT_TIMEOUT_S))
        removed = []
        for endpoint, unloaded in replies:
            self.workers.note_unloaded(endpoint, model.model_id)
            if unloaded:
                removed.append(endpoint.worker_id)
        return removed

    async def clear_models(self, caller: Caller) -> int:
        replies = await self._fan_out(lambda ep: ep.client.clear(caller.workspace, FANOUT_TIMEOUT_S))
        for endpoint, model_ids in replies:
            for model_id in model_ids:
                self.workers.note_unloaded(endpoint, model_id)
        return sum(len(model_ids) for _, model_ids in replies)

    async def model(self, caller: Caller, model_id: str) -> descriptor_pb2.ModelDescriptor:
        """The model an id or alias names for this caller (NotFound / PermissionDenied otherwise)."""
        return await self.resolver.resolve(model_id, caller.in_workspace().workspace)

    async def list_models(self, caller: Caller) -> list[descriptor_pb2.ModelDescriptor]:
        """Every registered model the caller may use, loaded or not."""
        return await self.resolver.registry.list_models(caller.in_workspace().workspace)

    # ---- readiness (one place each, so a richer worker state only changes these) ---------------
    def serving(self) -> bool:
        """Some model worker is known and not cooling down after a failure."""
        now = time.monotonic()
        return any(endpoint.healthy(now) for endpoint in self.workers.all())

    async def model_ready(self, caller: Caller, model_id: str) -> bool:
        """Some worker that answers holds the model loaded (so its load succeeded there)."""
        model = await self.model(caller, model_id)
        return any(m.model_id == model.model_id for _, reply in await self._describe_all() for m in reply.models)

    async def describe_models(self, caller: Caller) -> list[model_pb2.LoadedModel]:
        replies = await self._describe_all()
        return [m for _, reply in replies for m in reply.models if caller.owns(m.workspace)]

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
        """Call every known worker at once; unreachable ones are skipped, other errors raised."""
        endpoints = self.workers.all()
        results = await asyncio.gather(*(call(ep) for ep in endpoints), return_exceptions=True)
        answered = []
        for endpoint, result in zip(endpoints, results):
            if isinstance(result, WorkerUnavailable):
                self.workers.mark_failed(endpoint)
                continue
            if isinstance(result, BaseException):
                raise result
            answered.append((endpoint, result))
        return answered
