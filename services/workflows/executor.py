"""Runs a compiled workflow: every step once, as soon as what it reads is ready (independent steps at once).

A step sees all its elements of the run at once (every image, or every crop of every image), so a model
step answers them in one batched call. An element whose inputs were skipped (continue-if, or a skipped
parent) is skipped too and answers null. A failing step fails the run with its error's own status, the step
named in the message; a block whose failure scope is ``ELEMENT`` may fail an element alone (its own
INVALID_ARGUMENT error): that element becomes a ``Failed`` marker, which every later step reading it passes
on instead of running, unless every element of the step failed (then the run fails with the first error).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor as Pool
from typing import Any

from services.common import tracing
from services.common.errors import FleetError, Internal, InvalidArgument
from services.workflows import nesting
from services.workflows.blocks.base import ELEMENT, ModelRunner, RunContext
from services.workflows.blocks.flow import GATE
from services.workflows.compiler import Compiled, CompiledStep, Lit, Ref, literal_ok, refs_of
from services.workflows.data import Failed, WImage
from services.workflows.fusion import FusedSteps
from services.workflows.metrics import STEP_SECONDS

log = logging.getLogger("fleet.workflows")


class Run:
    """One execution: the values computed so far, by input or step name."""

    def __init__(self, compiled: Compiled, images: dict[str, list[WImage]], params: dict[str, Any],
                 models: ModelRunner, pool: Pool, max_crops_per_image: int, fuse: bool = True) -> None:
        self.compiled, self.params, self.models = compiled, params, models
        self.fused = FusedSteps(compiled.fusions, self._constants) if fuse and compiled.fusions else None
        self.values: dict[str, list] = dict(images)
        self.count = len(next(iter(images.values()))) if images else 1
        self.max_crops_per_image = max_crops_per_image
        self._pool = pool
        self._done: dict[str, asyncio.Future] = {}

    async def cpu(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def execute(self) -> None:
        loop = asyncio.get_running_loop()
        self._done = {s.name: loop.create_future() for s in self.compiled.steps}
        for name in self.compiled.decoded_inputs(self.fused is not None):  # overlapping the first model calls
            for image in self.values[name]:
                early = asyncio.ensure_future(image.array(self.cpu))
                early.add_done_callback(lambda f: f.cancelled() or f.exception())  # a bad image fails its step
        if len(self.compiled.steps) == 1:  # nothing to run beside it: no task of its own
            await self._step(self.compiled.steps[0])
            return
        tasks = [asyncio.ensure_future(self._step(s)) for s in self.compiled.steps]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    # ---- values ----------------------------------------------------------------------------------
    def nested(self, ref: Ref) -> Any:
        """The value a reference names: nested per level, or the parameter's value (level 0)."""
        if ref.dim == 0:
            return self.params[ref.source]
        value = self.values[ref.source]
        if ref.output is None:
            return value
        if ref.output == "*":
            return nesting.mapped(value, ref.dim, lambda d: {k: v for k, v in d.items() if k != GATE})
        return nesting.mapped(value, ref.dim, lambda d: d[ref.output])

    # ---- one step --------------------------------------------------------------------------------
    async def _step(self, step: CompiledStep) -> None:
        await asyncio.gather(*(self._done[d] for d in step.deps))
        started = time.perf_counter()
        try:
            with tracing.span("workflow.step", **{"fleet.step": step.name, "fleet.block": step.block.id}):
                self.values[step.name] = await self._run(step)
        except FleetError as exc:
            raise _named(exc, step.name) from None
        except Exception:
            log.exception("workflow step failed", extra={"step": step.name, "block": step.block.id})
            raise Internal(f"step {step.name!r} failed unexpectedly") from None
        STEP_SECONDS.labels(step.block.id).observe(time.perf_counter() - started)
        self._done[step.name].set_result(None)

    def _check_parameters(self, step: CompiledStep) -> None:
        """Parameters feeding a field are checked as its literals are at validation (their values come now)."""
        for key, arg in step.args.items():
            param = step.block.params[key]
            if isinstance(arg, Ref) and arg.dim == 0 and param.literal:
                value = self.params[arg.source]
                if not literal_ok(value, param.literal):
                    wanted = " or ".join(t.__name__ for t in param.literal)
                    raise InvalidArgument(f"field {key!r}: input {arg.source!r} is {value!r}, not {wanted}")

    async def _run(self, step: CompiledStep) -> list:
        self._check_parameters(step)
        batch: list[tuple[str, Ref, list]] = []  # (param path, ref, leaves) for every per-element value
        template: list | None = None
        for ref in refs_of(step.args):
            if ref.dim > 0:
                value = self.nested(ref)
                template = value if template is None else template
                batch.append(("", ref, nesting.leaves(value, step.dim)))
        if template is None:
            template = [None] * self.count
            count = self.count
        else:
            count = len(batch[0][2])
        gate = nesting.leaves(self.nested(Ref(step.gate, GATE, step.dim, step.lineage, "")), step.dim) \
            if step.gate else None
        index = {id(ref): leaves for _, ref, leaves in batch}
        active, items = [], []
        results: list[Any] = [None] * count
        for i in range(count):
            lost = [leaves[i] for _, _, leaves in batch if isinstance(leaves[i], Failed)]
            if gate is not None and isinstance(gate[i], Failed):
                lost.append(gate[i])
            if lost:  # an element that failed upstream: its branch answers that failure
                results[i] = lost[0]
                continue
            if any(leaves[i] is None for _, _, leaves in batch) or (gate is not None and not gate[i]):
                continue
            active.append(i)
            items.append({k: self._value(a, index, i) for k, a in step.args.items()})
        if items:
            ctx = RunContext(step.name, self.models, self.cpu, self.max_crops_per_image)
            fused = self.fused.runner(step) if self.fused is not None else None
            answered = await (fused or step.block.run)(ctx, step.config, items)
            _check_failures(step, [out for out in answered if isinstance(out, FleetError)], len(items))
            for i, out in zip(active, answered):
                if isinstance(out, FleetError):
                    results[i] = Failed(step.name, out.code.name, _named(out, step.name).message)
                else:
                    results[i] = _split(out) if step.block.adds_dimension else out
        if not batch:
            return results
        return nesting.rebuild(template, step.dim, iter(results))

    def _constants(self, step: CompiledStep) -> dict[str, Any]:
        """A step's values that are the same for every element (all but its images): literals and parameters."""
        self._check_parameters(step)
        return {k: self._value(a, {}, 0) for k, a in step.args.items() if k != "images"}

    def _value(self, arg: Any, index: dict[int, list], i: int) -> Any:
        if isinstance(arg, Lit):
            return arg.value
        if isinstance(arg, Ref):
            return self.params[arg.source] if arg.dim == 0 else index[id(arg)][i]
        if isinstance(arg, list):
            return [self._value(a, index, i) for a in arg]
        return {k: self._value(a, index, i) for k, a in arg.items()}


def _check_failures(step: CompiledStep, failed: list[FleetError], count: int) -> None:
    """Elements failed alone: allowed for an ``ELEMENT``-scoped block's INVALID_ARGUMENT errors while some element
    of the step succeeded; anything else fails the run (the first such error)."""
    if not failed:
        return
    for exc in failed:
        if step.block.failure_scope != ELEMENT or not isinstance(exc, InvalidArgument):
            raise exc
    if len(failed) == count:
        raise failed[0]
    log.info("workflow elements failed alone", extra={"step": step.name, "block": step.block.id,
                                                      "failed": len(failed), "elements": count})


def _split(out: dict) -> list[dict]:
    """A block that adds a dimension answers lists; its element becomes one dict per child."""
    lists = list(out.values())
    size = len(lists[0]) if lists else 0
    return [{k: v[i] for k, v in out.items()} for i in range(size)]


def _named(exc: FleetError, step: str) -> FleetError:
    if exc.message.startswith(f"step {step!r}"):
        return exc
    try:
        return type(exc)(f"step {step!r}: {exc.message}")
    except TypeError:
        return InvalidArgument(f"step {step!r}: {exc.message}")
