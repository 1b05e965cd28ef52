"""The gateway's logic: authenticate, resolve, route to a worker (retrying elsewhere), fan out.

Inference requests pass through as protobuf messages: the gateway only wraps each in a
worker request beside the resolved model descriptor, so the image is never re-encoded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from fleet.v1 import inference_pb2, model_pb2, worker_pb2
from services.cache import FleetCache
from services.common.errors import CacheUnavailable, DeadlineExceeded, PermissionDenied, Unavailable
from services.common.rpc import outgoing_metadata
from services.common.rpc_errors import from_rpc_error
from services.gateway.auth import Authenticator
from services.gateway.resolver import ModelResolver
from services.gateway.workers import WorkerEndpoint, WorkerPool

log = logging.getLogger("fleet.gateway")

T = TypeVar("T")
Metadata = tuple[tuple[str, str], ...]
FANOUT_TIMEOUT_S = 120.0


class Gateway:
    def __init__(self, auth: Authenticator, resolver: ModelResolver, workers: WorkerPool, cache: FleetCache,
                 attempts: int, default_timeout_s: float, response_cache_ttl_s: int) -> None:
        self.auth, self.resolver, self.workers, self.cache = auth, resolver, workers, cache
        self.attempts, self.default_timeout_s = attempts, default_timeout_s
        self.response_cache_ttl_s = response_cache_ttl_s

    # ---- inference --------------------------------------------------------------------------
    async def infer(self, api_key: str, request: inference_pb2.InferRequest,
                    timeout_s: float | None) -> inference_pb2.InferResponse:
        started = time.perf_counter()
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.default_timeout_s)
        workspace = await self.auth.workspace_for(api_key)
        model = await self.resolver.resolve(request.model_id, workspace)
        digest = self._cache_digest(model, request)
        response = await self._cached(digest) if digest else None
        if response is None:
            call = worker_pb2.ModelWorkerServiceInferRequest(model=model, request=request)
            _, reply = await self._on_worker(
                model.model_id, deadline, lambda ep, t, md: ep.stub.Infer(call, timeout=t, metadata=md)
            )
            response = reply.response
            if digest:
                await self._store(digest, response)
        response.timings.gateway_ms = (time.perf_counter() - started) * 1e3
        return response

    async def infer_batch(self, api_key: str, request: inference_pb2.InferBatchRequest,
                          timeout_s: float | None) -> inference_pb2.InferBatchResponse:
        """Several images on one worker (their runs share batches there); answers in order, each
        image with its own error. Not served from the response cache."""
        started = time.perf_counter()
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.default_timeout_s)
        workspace = await self.auth.workspace_for(api_key)
        model = await self.resolver.resolve(request.model_id, workspace)
        call = worker_pb2.ModelWorkerServiceInferBatchRequest(model=model, request=request)
        _, reply = await self._on_worker(
            model.model_id, deadline, lambda ep, t, md: ep.stub.InferBatch(call, timeout=t, metadata=md)
        )
        gateway_ms = (time.perf_counter() - started) * 1e3
        for item in reply.response.items:
            if item.HasField("response"):
                item.response.timings.gateway_ms = gateway_ms
        return reply.response

    async def _on_worker(self, model_id: str, deadline: float,
                         call: Callable[[WorkerEndpoint, float, Metadata], Awaitable[T]]) -> tuple[WorkerEndpoint, T]:
        """Run ``call`` on the best worker for the model, moving on when one is unavailable."""
        metadata = outgoing_metadata()
        tried: list[str] = []
        for endpoint in self.workers.candidates(model_id)[: self.attempts]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            endpoint.in_flight += 1
            try:
                result = await call(endpoint, remaining, metadata)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    tried.append(endpoint.address)
                    self.workers.mark_failed(endpoint)
                    log.warning("worker call failed; trying another",
                                extra={"worker": endpoint.address, "details": exc.details()})
                    continue
                raise from_rpc_error(exc, f"worker {endpoint.address}") from None
            finally:
                endpoint.in_flight -= 1
            self.workers.note_serving(endpoint, model_id)
            return endpoint, result
        if time.monotonic() >= deadline:
            raise DeadlineExceeded("the request's deadline passed before a worker could answer")
        if not tried:
            raise Unavailable("no model worker is available; check that workers are running")
        raise Unavailable(f"no model worker could serve the request (tried {', '.join(tried)})")

    # ---- response cache ---------------------------------------------------------------------
    def _cache_digest(self, model: model_pb2.ModelDescriptor, request: inference_pb2.InferRequest) -> str:
        if not self.response_cache_ttl_s or request.bypass_cache or request.image.HasField("url"):
            return ""
        h = hashlib.sha256()
        h.update(model.sha256.encode())
        h.update(request.image.SerializeToString(deterministic=True))
        h.update(request.parameters.SerializeToString(deterministic=True))
        return h.hexdigest()

    async def _cached(self, digest: str) -> inference_pb2.InferResponse | None:
        try:
            payload = await self.cache.responses.get(digest)
        except CacheUnavailable:
            return None
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
    async def add_model(self, api_key: str, model_id: str) -> tuple[model_pb2.ModelDescriptor, list[str]]:
        workspace = await self.auth.workspace_for(api_key)
        model = await self.resolver.resolve(model_id, workspace)
        request = worker_pb2.LoadModelRequest(model=model)
        endpoint, reply = await self._on_worker(
            model.model_id, time.monotonic() + FANOUT_TIMEOUT_S,
            lambda ep, t, md: ep.stub.LoadModel(request, timeout=t, metadata=md),
        )
        return model, [reply.model.worker_id or endpoint.address]

    async def remove_model(self, api_key: str, model_id: str) -> list[str]:
        workspace = await self.auth.workspace_for(api_key)
        model = await self.resolver.resolve(model_id, workspace)
        if model.workspace != workspace:
            raise PermissionDenied(f"only workspace {model.workspace!r} may unload {model.model_id!r}")
        request = worker_pb2.UnloadModelRequest(model_id=model.model_id)
        replies = await self._fan_out(
            lambda ep, md: ep.stub.UnloadModel(request, timeout=FANOUT_TIMEOUT_S, metadata=md))
        removed = []
        for endpoint, reply in replies:
            self.workers.note_unloaded(endpoint, model.model_id)
            if reply.unloaded:
                removed.append(endpoint.worker_id or endpoint.address)
        return removed

    async def clear_models(self, api_key: str) -> int:
        workspace = await self.auth.workspace_for(api_key)
        request = worker_pb2.ModelWorkerServiceClearModelsRequest(workspace=workspace)
        replies = await self._fan_out(
            lambda ep, md: ep.stub.ClearModels(request, timeout=FANOUT_TIMEOUT_S, metadata=md))
        for endpoint, reply in replies:
            for model_id in reply.model_ids:
                self.workers.note_unloaded(endpoint, model_id)
        return sum(len(reply.model_ids) for _, reply in replies)

    async def describe_models(self, api_key: str) -> list[model_pb2.LoadedModel]:
        workspace = await self.auth.workspace_for(api_key)
        replies = await self._describe_all()
        return [m for _, reply in replies for m in reply.models if m.workspace == workspace]

    async def server_info(self, api_key: str) -> list[model_pb2.WorkerLoad]:
        await self.auth.workspace_for(api_key)
        return [reply.load for _, reply in await self._describe_all()]

    async def _describe_all(self) -> list[tuple[WorkerEndpoint, worker_pb2.ModelWorkerServiceDescribeModelsResponse]]:
        request = worker_pb2.ModelWorkerServiceDescribeModelsRequest()
        return await self._fan_out(lambda ep, md: ep.stub.DescribeModels(request, timeout=10.0, metadata=md))

    async def _fan_out(self, call: Callable[[WorkerEndpoint, Metadata], Awaitable[T]]
                       ) -> list[tuple[WorkerEndpoint, T]]:
        """Call every known worker at once; unreachable ones are skipped, other errors raised."""
        endpoints = self.workers.all()
        metadata = outgoing_metadata()
        results = await asyncio.gather(*(call(ep, metadata) for ep in endpoints), return_exceptions=True)
        answered = []
        for endpoint, result in zip(endpoints, results):
            if isinstance(result, grpc.aio.AioRpcError):
                if result.code() == grpc.StatusCode.UNAVAILABLE:
                    self.workers.mark_failed(endpoint)
                    continue
                raise from_rpc_error(result, f"worker {endpoint.address}")
            if isinstance(result, BaseException):
                raise result
            answered.append((endpoint, result))
        return answered
