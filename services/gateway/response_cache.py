"""The fleet's response cache: identical requests (same model version, image, parameters, inputs) answered from
Redis for ``ttl_s``. Redis trouble never fails a request: it is a miss (or nothing stored)."""

from __future__ import annotations

import hashlib
import logging

from fleet.internal.v1 import descriptor_pb2
from fleet.v1 import inference_pb2
from services.cache import FleetCache
from services.common.errors import CacheUnavailable
from services.gateway.metrics import RESPONSE_CACHE

log = logging.getLogger("fleet.gateway")


class ResponseCache:
    def __init__(self, cache: FleetCache, ttl_s: int) -> None:
        self.cache, self.ttl_s = cache, ttl_s

    def digest(self, model: descriptor_pb2.ModelDescriptor, request: inference_pb2.InferRequest) -> str:
        """The request's key, or "" when it is not to be cached (off, bypassed, or an image fetched by URL)."""
        if not self.ttl_s or request.bypass_cache or request.image.HasField("url") or any(
                v.HasField("image") and v.image.HasField("url") for v in request.inputs.values()):
            return ""
        h = hashlib.sha256()
        h.update(model.model_id.encode())  # models sharing weights answer with their own id
        h.update(model.sha256.encode())
        h.update(request.image.SerializeToString(deterministic=True))
        h.update(request.parameters.SerializeToString(deterministic=True))
        for name in sorted(request.inputs):  # a text, prompts: part of what is answered
            h.update(name.encode() + b"\0" + request.inputs[name].SerializeToString(deterministic=True))
        return h.hexdigest()

    async def get(self, digest: str) -> inference_pb2.InferResponse | None:
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

    async def put(self, digest: str, response: inference_pb2.InferResponse) -> None:
        try:
            await self.cache.responses.put(digest, response.SerializeToString(), self.ttl_s)
        except CacheUnavailable:
            log.warning("response cache unavailable; not caching")
