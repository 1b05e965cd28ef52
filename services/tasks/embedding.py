"""Embeddings (CLIP-style): L2-normalised vectors of an image and of texts, and their cosine similarities.

A model has an image encoder (its first graph, batched like detectors) and a text encoder (a further graph with
its tokenizer: ``services.model_worker.processing.embeddings``). A request carries an image, texts (input
``text``), or both; with both, the answer also has the image's similarity to each text (compare); with texts
only, the first text's similarity to the others.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.v1 import inference_pb2, model_pb2
from services.common.layouts import Layout
from services.tasks.base import COMMON_OUTPUTS, CliCommand, CliInput, Json, Task, TensorSpec, text_table

if TYPE_CHECKING:
    import numpy as np

    from fastapi import APIRouter

    from fleet.internal.v1.descriptor_pb2 import ModelDescriptor
    from services.common.model_spec import ModelSpec
    from services.gateway.http.context import HttpContext
    from services.gateway.oip.tensors import Tensor

NAME = "embedding"
TEXT_INPUT = "text"


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two embeddings (unit vectors: their dot product)."""
    return float(sum(x * y for x, y in zip(a, b)))


def _texts(values: list[str]) -> inference_pb2.InputValue:
    return inference_pb2.InputValue(texts=inference_pb2.Texts(values=list(values)))


def _compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="an image file path or http(s) URL")
    p.add_argument("prompt", nargs="+", help="text prompts")
    p.add_argument("--model", default="clip", help="embedding model id or alias (default: clip)")
    p.add_argument("--json", action="store_true", help="print the ranking as JSON")
    p.add_argument("--timeout", type=float, default=60.0, help="deadline in seconds (default 60)")


def _compare(client: Any, args: argparse.Namespace) -> int:
    """``fleet compare IMAGE PROMPT...``: the prompts ranked by their similarity to the image."""
    image = args.image if args.image.startswith(("http://", "https://")) else Path(args.image)
    ranked = client.compare(args.model, image, args.prompt, timeout=args.timeout)
    if args.json:
        print(json.dumps([{"prompt": p, "similarity": s} for p, s in ranked], indent=2))
    else:
        print(text_table(["rank", "prompt", "similarity"],
                         [[str(i + 1), p, f"{s:.4f}"] for i, (p, s) in enumerate(ranked)]))
    return 0


class Embedding(Task):
    name = NAME
    proto = model_pb2.TASK_TYPE_EMBEDDING
    result_field = "embedding"
    roboflow_task = "embedding"
    oip_outputs = (TensorSpec("embedding", "FP32", (-1, -1)), *COMMON_OUTPUTS)
    oip_text_input = TEXT_INPUT
    summary = "embeddings of images and texts, and their similarities"
    needs_classes = False
    custom_run = True
    layouts = (Layout("clip", NAME, 1, "[D]: the image's embedding (the text encoder is a further graph)",
                      lambda p: [(None,)], decoder="services.model_worker.processing.embeddings:image_embedding"),)
    cli_inputs = (CliInput("--text", TEXT_INPUT, "embedding models: a text to embed (repeatable; input 'text')",
                           _texts, without_image=True),)
    cli_commands = (CliCommand("compare", "rank text prompts by their similarity to an image (embedding models)",
                               _compare_arguments, _compare),)

    # ---- the worker -------------------------------------------------------------------------------------
    def present(self, result: np.ndarray, spec: ModelSpec, params: Any, height: int,
                width: int) -> inference_pb2.EmbeddingResult:
        return inference_pb2.EmbeddingResult(
            embeddings=[inference_pb2.Embedding(values=result.tolist(), source="image")], dimension=len(result))

    def summarize(self, result: Any, spec: ModelSpec) -> Json:
        return {"embeddings": len(result.embeddings) if hasattr(result, "embeddings") else 1}

    async def run(self, runtime: Any, record: Any, inputs: Any, params: Any) -> Any:
        from services.model_worker.pipeline import InferenceOutput, Timings  # noqa: PLC0415
        from services.model_worker.processing.embeddings import TextEncoder  # noqa: PLC0415

        started = time.perf_counter()
        texts = inputs.texts(TEXT_INPUT) or ()
        if inputs.image is None and not texts:
            from services.common.errors import InvalidArgument  # noqa: PLC0415

            raise InvalidArgument("an embedding request needs an image, texts (input 'text'), or both")
        image_out = (await runtime.pipeline.infer(record, inputs.image, params, background=runtime.background)
                     if inputs.image is not None else None)
        message = image_out.message if image_out is not None else inference_pb2.EmbeddingResult()
        timings = image_out.timings if image_out is not None else Timings()
        if texts:
            async with runtime.held(record) as (model, cold):
                encoder = TextEncoder.of(model)
                t0 = time.perf_counter()
                encoded = await runtime.cpu(encoder.encode, texts)
                timings.inference_s += time.perf_counter() - t0
                timings.cold_start = timings.cold_start or cold
            for text, vector, cut in zip(texts, encoded.vectors.tolist(), encoded.truncated):
                message.embeddings.add(values=vector, source="text", text=text, truncated=cut)
            message.dimension = encoded.vectors.shape[1]
        subject, prompts = (message.embeddings[0], list(message.embeddings[1:]))
        message.similarities.extend(inference_pb2.Similarity(prompt=p.text, similarity=cosine(subject.values, p.values))
                                    for p in prompts)
        timings.total_s = time.perf_counter() - started
        width, height = (image_out.width, image_out.height) if image_out is not None else (0, 0)
        return InferenceOutput(uuid.uuid4().hex, record, width, height, message, message,
                               image_out.visualization if image_out is not None else b"", timings)

    # ---- the edges --------------------------------------------------------------------------------------
    def roboflow_json(self, response: inference_pb2.InferResponse) -> Json:
        result = response.embedding
        return {"embeddings": [list(e.values) for e in result.embeddings],
                "similarity": [s.similarity for s in result.similarities]}

    def oip_tensors(self, responses: Sequence[inference_pb2.InferResponse], model: ModelDescriptor) -> list[Tensor]:
        import numpy as np  # noqa: PLC0415

        from services.gateway.oip.tensors import Tensor  # noqa: PLC0415

        rows = [list(e.values) for r in responses for e in r.embedding.embeddings]
        width = max((len(r) for r in rows), default=0)
        return [Tensor("embedding", "FP32", [len(rows), width], np.array(rows, np.float32).reshape(len(rows), width))]

    def oip_parameters(self, responses: Sequence[inference_pb2.InferResponse]) -> dict[str, Any]:
        """``truncated_rows``: the rows whose texts were longer than the model's context, cut as its tokenizer cuts."""
        rows = [str(i) for i, e in enumerate(e for r in responses for e in r.embedding.embeddings) if e.truncated]
        return {"truncated_rows": ",".join(rows)} if rows else {}

    def http_routes(self, ctx: HttpContext) -> APIRouter:
        """The Roboflow server's ``/clip/embed_image``, ``/clip/embed_text`` and ``/clip/compare``."""
        from services.tasks.http.embedding import router  # noqa: PLC0415 - the gateway's (FastAPI)

        return router(ctx)

    def table(self, response: inference_pb2.InferResponse) -> str:
        result = response.embedding
        rows = [[e.source, e.text or "(image)", f"{len(e.values)}", "yes" if e.truncated else "",
                 " ".join(f"{v:.3f}" for v in list(e.values)[:4]) + " …"] for e in result.embeddings]
        out = f"{len(rows)} embeddings of {result.dimension} values\n"
        out += text_table(["source", "text", "values", "truncated", "first values"], rows)
        if result.similarities:
            ranked = sorted(result.similarities, key=lambda s: -s.similarity)
            out += "\n\n" + text_table(["prompt", "similarity"], [[s.prompt, f"{s.similarity:.4f}"] for s in ranked])
        return out
