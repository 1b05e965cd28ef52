"""Embedding use cases of the gateway core (no transport): embed images and texts, compare a subject with prompts.

Every edge that offers embeddings (fleet.v1 requests with typed inputs, the Roboflow ``/clip/*`` routes, OIP)
comes through here or through ``Gateway.infer`` itself. An image and texts go to a worker in one request (its
answer carries the image's similarity to each text); several images go as one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fleet.internal.v1 import descriptor_pb2
from fleet.v1 import inference_pb2
from services.common.errors import InvalidArgument
from services.gateway.caller import Caller
from services.gateway.gateway import Gateway
from services.tasks import registry as tasks
from services.tasks.embedding import NAME, TEXT_INPUT, cosine

Subject = inference_pb2.Image | str


@dataclass(frozen=True)
class Embedded:
    vectors: list[list[float]]
    truncated: list[bool]
    gateway_ms: float


def _texts(values: Sequence[str]) -> dict[str, inference_pb2.InputValue]:
    return {TEXT_INPUT: inference_pb2.InputValue(texts=inference_pb2.Texts(values=list(values)))}


class Embeddings:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def model(self, caller: Caller, model_id: str) -> descriptor_pb2.ModelDescriptor:
        model = await self.gateway.model(caller, model_id)
        if tasks.of_model(model).name != NAME:
            raise InvalidArgument(f"model {model.model_id!r} is not an embedding model")
        return model

    async def images(self, caller: Caller, model: descriptor_pb2.ModelDescriptor,
                     images: list[inference_pb2.Image], timeout_s: float | None) -> Embedded:
        answers = await self.gateway.infer_images(caller, model, images, inference_pb2.InferenceParameters(), timeout_s)
        return Embedded([list(a.embedding.embeddings[0].values) for a in answers], [False] * len(answers),
                        max(a.timings.gateway_ms for a in answers))

    async def texts(self, caller: Caller, model: descriptor_pb2.ModelDescriptor, texts: Sequence[str],
                    timeout_s: float | None) -> Embedded:
        if not texts:
            raise InvalidArgument("text is empty: send at least one text")
        answer = await self.gateway.infer(caller, inference_pb2.InferRequest(
            model_id=model.model_id, inputs=_texts(texts)), timeout_s, model)
        embeddings = answer.embedding.embeddings
        return Embedded([list(e.values) for e in embeddings], [e.truncated for e in embeddings],
                        answer.timings.gateway_ms)

    async def compare(self, caller: Caller, model: descriptor_pb2.ModelDescriptor, subject: Subject,
                      prompts: Sequence[Subject], timeout_s: float | None) -> tuple[list[float], float]:
        """The cosine similarity of ``subject`` (an image or a text) with each prompt (images or texts), in order,
        and the gateway's milliseconds."""
        if not prompts:
            raise InvalidArgument("prompt is empty: send at least one prompt")
        if any(isinstance(p, str) != isinstance(prompts[0], str) for p in prompts):
            raise InvalidArgument("prompts must all be texts or all be images")
        if isinstance(subject, inference_pb2.Image) and isinstance(prompts[0], str):
            answer = await self.gateway.infer(caller, inference_pb2.InferRequest(
                model_id=model.model_id, image=subject, inputs=_texts(prompts)), timeout_s, model)  # type: ignore[arg-type]
            return [s.similarity for s in answer.embedding.similarities], answer.timings.gateway_ms
        first = await self._one(caller, model, subject, timeout_s)
        rest = (await self.texts(caller, model, prompts, timeout_s) if isinstance(prompts[0], str)  # type: ignore[arg-type]
                else await self.images(caller, model, list(prompts), timeout_s))  # type: ignore[arg-type]
        return [cosine(first.vectors[0], v) for v in rest.vectors], first.gateway_ms + rest.gateway_ms

    async def _one(self, caller: Caller, model: descriptor_pb2.ModelDescriptor, subject: Subject,
                   timeout_s: float | None) -> Embedded:
        if isinstance(subject, str):
            return await self.texts(caller, model, [subject], timeout_s)
        return await self.images(caller, model, [subject], timeout_s)
