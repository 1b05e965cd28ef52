"""The engine's entry point: validate a definition, or run one on a request's inputs and answer its outputs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fleet.v1 import inference_pb2, model_pb2
from services.common.background import background_pool
from services.common.errors import FleetError, InvalidArgument, InvalidImage
from services.common.grpc_metrics import OK, code_of
from services.workflows.blocks.base import ModelRunner
from services.tasks import registry as tasks
from services.workflows.compiler import Compiled, Compiler, Lit
from services.workflows.definition import InvalidWorkflow
from services.workflows.data import WImage, image_size
from services.workflows.executor import Run
from services.workflows.metrics import RUN_SECONDS, RUNS, workflow_label
from services.workflows.serialize import to_json

ImageOf = Callable[[Any], inference_pb2.Image]  # an edge's image value -> fleet.v1.Image
FetchUrl = Callable[[str], Awaitable[bytes]]  # an image URL -> its bytes (vetted, bounded: common.url_fetch)


@dataclass(frozen=True)
class Limits:
    max_steps: int = 64
    max_definition_bytes: int = 256 * 1024
    max_images: int = 16
    max_crops_per_image: int = 256
    cpu_threads: int = 4
    fuse_crops: bool = True  # detect -> crop -> classify as one worker call where one worker holds both models
    cpu_nice: int = 0  # the CPU pool's threads run this much below the process's priority (see common.background)
    cpu_sched_idle: bool = False  # ... and under SCHED_IDLE


class TooManyImages(InvalidArgument):
    """More images in one run than the engine takes."""


class WorkflowEngine:
    def __init__(self, limits: Limits | None = None, fetch_url: FetchUrl | None = None) -> None:
        self.limits = limits or Limits()
        self.fetch_url = fetch_url  # None: image URLs are refused
        self.compiler = Compiler(self.limits.max_steps, self.limits.max_definition_bytes)
        self.pool = background_pool(self.limits.cpu_threads, self.limits.cpu_nice, "workflow-cpu",
                                    self.limits.cpu_sched_idle)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def validate(self, definition: Any) -> Compiled:
        """The compiled graph, or ``InvalidWorkflow`` saying what is wrong and where."""
        return self.compiler.compile(definition)

    async def check(self, definition: Any, models: ModelRunner) -> Compiled:
        """``validate``, and every model a step names (a literal ``model_id``, or the block's default) exists
        for the caller (NotFound otherwise) and suits its step (a model block's task): what a run would find."""
        compiled = self.compiler.compile(definition)
        for step in compiled.steps:
            arg = step.args.get("model_id")
            if not isinstance(arg, Lit) or not isinstance(arg.value, str) or not arg.value:
                continue  # an $inputs parameter: known only when a run sends it
            model = await models.model(arg.value)
            task = getattr(step.block, "task", None)
            if isinstance(task, str) and (actual := tasks.of_model(model).name) != task:
                raise InvalidWorkflow(f"step {step.name!r}: model {model.model_id!r} is a {actual} model; this "
                                      f"block runs {task} models")
        return compiled

    async def run(self, definition: Any, inputs: dict[str, Any], image_of: ImageOf, models: ModelRunner,
                  excluded: Iterable[str] = (), workflow: str = "inline") -> list[dict[str, Any]]:
        """One object per input image: each output (less ``excluded``) by name. ``definition``: its JSON, or its
        graph already compiled (an edge that compiled it to decide where it runs)."""
        started = time.perf_counter()
        try:
            compiled = definition if isinstance(definition, Compiled) else self.compiler.compile(definition)
            images, params = await self._inputs(compiled, inputs, image_of)
            run = Run(compiled, images, params, models, self.pool, self.limits.max_crops_per_image,
                      self.limits.fuse_crops)
            await run.execute()
            leave_out = set(excluded)
            outputs = (await run.cpu(_outputs, run, leave_out) if compiled.answers_images
                       else _outputs(run, leave_out))
        except BaseException as exc:
            RUNS.labels(workflow_label(workflow), code_of(exc).name).inc()
            raise
        RUNS.labels(workflow_label(workflow), OK.name).inc()
        RUN_SECONDS.observe(time.perf_counter() - started)
        return outputs

    async def _inputs(self, compiled: Compiled, inputs: dict[str, Any],
                      image_of: ImageOf) -> tuple[dict[str, list[WImage]], dict[str, Any]]:
        sent: dict[str, list[inference_pb2.Image]] = {}
        params: dict[str, Any] = {}
        for item in compiled.inputs:
            if not item.image:
                if item.name in inputs:
                    params[item.name] = inputs[item.name]
                elif item.has_default:
                    params[item.name] = item.default
                else:
                    raise InvalidArgument(f"input {item.name!r} is missing: the workflow's parameter has no "
                                          "default_value; send it in inputs")
                continue
            value = inputs.get(item.name)
            if value is None:
                raise InvalidImage(f"input {item.name!r} is missing: send the image (or a list of images) in inputs")
            values = value if isinstance(value, list) else [value]
            if not values:
                raise InvalidImage(f"input {item.name!r} is an empty list: send at least one image")
            if len(values) > self.limits.max_images:
                raise TooManyImages(f"input {item.name!r} carries {len(values)} images; at most "
                                    f"{self.limits.max_images} per run")
            sent[item.name] = [image_of(v) for v in values]
        sizes = {len(v) for v in sent.values()}
        if len(sizes) > 1:
            counts = ", ".join(map(str, sorted(sizes)))
            raise InvalidArgument(f"image inputs carry different numbers of images ({counts}); send as many in each")
        await self._fetch_urls(sent)
        return {name: [_root(image, name) for image in values] for name, values in sent.items()}, params

    async def _fetch_urls(self, sent: dict[str, list[inference_pb2.Image]]) -> None:
        """Images sent by URL, fetched at once (each input image once per run) and replaced by their bytes. A URL
        that cannot be fetched fails the run, the input and image named, with the fetcher's own status."""
        wanted = [(name, i, image.url) for name, values in sent.items() for i, image in enumerate(values)
                  if image.WhichOneof("source") == "url"]
        if not wanted:
            return
        if self.fetch_url is None:
            raise InvalidImage(f"input {wanted[0][0]!r}: this service does not fetch image URLs; send the bytes")

        async def one(name: str, i: int, url: str) -> bytes:
            try:
                return await self.fetch_url(url)
            except FleetError as exc:
                raise _renamed(exc, f"input {name!r} image {i}: ") from None

        tasks = [asyncio.ensure_future(one(*w)) for w in wanted]
        try:
            fetched = await asyncio.gather(*tasks)
        finally:  # one failed: the others are not waited for
            for task in tasks:
                task.cancel()
        for (name, i, _), data in zip(wanted, fetched):
            sent[name][i] = inference_pb2.Image(encoded=data)


def _renamed(exc: FleetError, prefix: str) -> FleetError:
    try:
        return type(exc)(prefix + exc.message)
    except TypeError:
        return InvalidArgument(prefix + exc.message)


def _root(image: inference_pb2.Image, name: str) -> WImage:
    kind = image.WhichOneof("source")
    if kind == "encoded":
        width, height = image_size(image.encoded)
        return WImage.root(image.encoded, width, height)
    if kind == "raw":
        import numpy as np  # noqa: PLC0415

        raw = image.raw
        channels = raw.channels or 3
        if len(raw.data) != raw.width * raw.height * channels or channels not in (1, 3):
            raise InvalidImage(f"input {name!r}: raw pixels do not match width x height x channels (1 or 3)")
        pixels = np.frombuffer(raw.data, np.uint8).reshape(raw.height, raw.width, channels)
        if channels == 1:
            pixels = np.repeat(pixels, 3, axis=2)
        elif raw.color_order != model_pb2.COLOR_ORDER_BGR:  # RGB (the default) -> BGR, as blocks work in BGR
            pixels = pixels[:, :, ::-1]
        root = WImage.root(b"", raw.width, raw.height)
        root.pixels = np.ascontiguousarray(pixels)
        return root
    raise InvalidImage(f"input {name!r}: workflow images must be sent as encoded bytes (base64), a URL or raw "
                       "pixels")


def _outputs(run: Run, excluded: set[str]) -> list[dict[str, Any]]:
    per_image: list[dict[str, Any]] = [{} for _ in range(run.count)]
    for name, ref, parent in run.compiled.outputs:
        if name in excluded:
            continue
        value = run.nested(ref)
        for i in range(run.count):
            per_image[i][name] = to_json(value if ref.dim == 0 else value[i], parent)
    return per_image
