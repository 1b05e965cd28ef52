"""Definition -> graph, once per content hash: blocks found, selectors resolved, kinds and levels checked.

A value's level (``dim``): 0 for parameters (the same for every element), 1 for the run's images and what
is computed per image, 2 for crops of them (and what is computed per crop), and so on; ``lineage`` names
the crop steps that made the levels above 1. A step's inputs from images or steps share one level and
lineage; the step answers at that level (one deeper when its block adds a dimension, as a crop does).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Union

from services.workflows import blocks, kinds
from services.workflows.blocks.base import Block, Param
from services.workflows.blocks.flow import GATE, ContinueIf
from services.workflows.definition import (
    Definition, Input, InvalidWorkflow, Selector, canonical, is_selector, parse, selector,
)


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class Ref:
    source: str  # an input's or a step's name
    output: str | None  # None: an input; "*": every output of the step
    dim: int
    lineage: tuple[str, ...]
    kind: str


Arg = Union[Lit, Ref, list, dict]


@dataclass
class CompiledStep:
    name: str
    block: Block
    args: dict[str, Arg]
    config: Any
    dim: int
    lineage: tuple[str, ...]
    deps: set[str]
    gate: str | None = None
    output_kinds: dict[str, str] = field(default_factory=dict)

    @property
    def out_dim(self) -> int:
        return self.dim + 1 if self.block.adds_dimension else self.dim


@dataclass
class Compiled:
    digest: str
    inputs: tuple[Input, ...]
    steps: list[CompiledStep]  # in an order where every step follows what it reads
    outputs: list[tuple[str, Ref, bool]]  # name, what, parent coordinates

    @cached_property
    def fusions(self) -> list:  # list[fusion.Fusion]
        """Detect -> crop -> classify chains that may run as one worker call (``fusion``)."""
        from services.workflows import fusion  # noqa: PLC0415 - it reads compiled steps

        return fusion.find(self)

    def decoded_inputs(self, fused: bool) -> set[str]:
        """The input images some step reads the pixels of (decoded as the run starts, beside the first steps);
        ``fused``: a fused chain's crop step cuts nothing here."""
        skip = {f.crop.name for f in self.fusions} if fused else set()
        return {ref.source for step in self.steps if step.block.needs_pixels and step.name not in skip
                for ref in refs_of(step.args) if ref.output is None and ref.dim == 1}

    @cached_property
    def answers_images(self) -> bool:
        """Some output may hold an image (encoded to JPEG when answered: CPU work for the pool)."""
        return any(ref.kind in (kinds.IMAGE, kinds.ANY) for _, ref, _ in self.outputs)


    @cached_property
    def light(self) -> bool:
        """The run does no image work in the engine: every step's block is ``image_free`` (model steps on the
        input images as they came, pure-JSON blocks), so no image is decoded, cut, drawn or encoded; no crops
        (so no fused chain) and no output that may hold an image. Such a run costs its process what an
        ``Infer`` costs: a gateway runs it itself rather than pass it to the engine's process."""
        if self.answers_images or self.fusions:
            return False
        for step in self.steps:
            block = step.block
            if not block.image_free or block.needs_pixels or block.adds_dimension:
                return False
            if any(ref.kind == kinds.IMAGE and (ref.output is not None or ref.dim != 1)
                   for ref in refs_of(step.args)):
                return False  # an image some step made (none can, here: a guard for blocks to come)
        return True


def refs_of(arg: Any) -> list[Ref]:
    """Every selector in a step's argument (a value, or dicts and lists of them)."""
    if isinstance(arg, Ref):
        return [arg]
    if isinstance(arg, dict):
        return [r for a in arg.values() for r in refs_of(a)]
    if isinstance(arg, list):
        return [r for a in arg for r in refs_of(a)]
    return []


def _walk(value: Any, shape: str, where: str) -> list[tuple[str, Any]]:
    if shape == "list":
        if not isinstance(value, list):
            raise InvalidWorkflow(f"{where} must be a list")
        return [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    if shape == "mapping":
        if not isinstance(value, dict):
            raise InvalidWorkflow(f"{where} must be an object of named values")
        return [(f"{where}.{k}", v) for k, v in value.items()]
    return [(where, value)]


class Compiler:
    def __init__(self, max_steps: int, max_bytes: int, cache_size: int = 256) -> None:
        self.max_steps, self.max_bytes, self.cache_size = max_steps, max_bytes, cache_size
        self._cache: OrderedDict[str, Compiled] = OrderedDict()
        self._lock = threading.Lock()

    def compile(self, raw: Any) -> Compiled:
        """The compiled graph of a definition (from the cache when the same definition came before)."""
        _, digest = canonical(raw, self.max_bytes)
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None:
                self._cache.move_to_end(digest)
                return hit
        compiled = build(parse(raw, self.max_steps, digest))
        with self._lock:
            self._cache[digest] = compiled
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return compiled


def build(definition: Definition) -> Compiled:
    inputs = {i.name: i for i in definition.inputs}
    raw_steps = {s.name: s for s in definition.steps}
    found: dict[str, Block] = {}
    for step in definition.steps:
        block = blocks.find(step.type)
        if block is None:
            raise InvalidWorkflow(f"step {step.name!r}: type {step.type!r} is not supported; supported: "
                                  f"{', '.join(blocks.supported())} (and their legacy aliases)")
        found[step.name] = block
        allowed = set(block.params) | set(block.ignored)
        for key in step.params:
            if key not in allowed:
                raise InvalidWorkflow(f"step {step.name!r}: field {key!r} is not a parameter of {block.id}; "
                                      f"parameters: {', '.join(block.params)}")
        for key, param in block.params.items():
            if param.required and key not in step.params:
                raise InvalidWorkflow(f"step {step.name!r}: field {key!r} is required ({param.doc})")
    deps, gates = _dependencies(definition, found, inputs, raw_steps)
    order = _topological(deps)
    compiled: dict[str, CompiledStep] = {}
    for name in order:
        compiled[name] = _step(raw_steps[name].params, name, found[name], inputs, compiled, deps[name], gates.get(name))
    outputs = []
    for out in definition.outputs:
        ref = _ref(selector(out.selector, f"output {out.name!r}"), f"output {out.name!r}", inputs, compiled, None)
        outputs.append((out.name, ref, out.parent_coordinates))
    return Compiled(definition.digest, definition.inputs, [compiled[n] for n in order], outputs)


def _dependencies(definition: Definition, found: dict[str, Block], inputs: dict[str, Input],
                  raw_steps: dict) -> tuple[dict[str, set[str]], dict[str, str]]:
    deps: dict[str, set[str]] = {s.name: set() for s in definition.steps}
    gates: dict[str, str] = {}
    for step in definition.steps:
        block = found[step.name]
        for key, value in step.params.items():
            if key not in block.params:
                continue
            for where, item in _walk(value, block.params[key].shape, f"step {step.name!r}: field {key!r}"):
                if not is_selector(item):
                    continue
                sel = selector(item, where)
                if sel.step is None and sel.name not in inputs:
                    raise InvalidWorkflow(f"{where}: {item!r} names no input; inputs: {', '.join(inputs) or 'none'}")
                if sel.step is not None:
                    if sel.step not in raw_steps:
                        raise InvalidWorkflow(f"{where}: {item!r} names no step; steps: {', '.join(raw_steps)}")
                    deps[step.name].add(sel.step)
        if isinstance(block, ContinueIf):
            for target in _checked(block, step.name, step.params)[1]:
                if target not in raw_steps:
                    raise InvalidWorkflow(f"step {step.name!r}: field 'next_steps': {target!r} names no step")
                if target in gates:
                    raise InvalidWorkflow(f"step {target!r} is gated by two continue-if steps ({gates[target]}, "
                                          f"{step.name}); only one is supported")
                gates[target] = step.name
                deps[target].add(step.name)
    for out in definition.outputs:
        sel = selector(out.selector, f"output {out.name!r}")
        if sel.step is not None and sel.step not in raw_steps:
            raise InvalidWorkflow(f"output {out.name!r}: {out.selector!r} names no step")
    return deps, gates


def _checked(block: Block, name: str, params: dict[str, Any]) -> Any:
    """The block's own check of a step's literals; a literal of an unexpected shape is the caller's mistake."""
    try:
        return block.check(name, dict(params))
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        raise InvalidWorkflow(f"step {name!r}: its parameters are malformed ({type(exc).__name__}: {exc}); see "
                              "POST /workflows/blocks/describe") from None


def _topological(deps: dict[str, set[str]]) -> list[str]:
    remaining = {name: set(d) for name, d in deps.items()}
    order: list[str] = []
    while remaining:
        ready = [n for n, d in remaining.items() if not d]
        if not ready:
            raise InvalidWorkflow(f"the steps {', '.join(sorted(remaining))} form a cycle (or depend on one); a "
                                  "workflow must be acyclic")
        for name in ready:
            order.append(name)
            del remaining[name]
        for d in remaining.values():
            d.difference_update(ready)
    return order


def _ref(sel: Selector, where: str, inputs: dict[str, Input], steps: dict[str, CompiledStep],
         param: Param | None) -> Ref:
    if sel.step is None:
        item = inputs.get(sel.name)
        if item is None:
            raise InvalidWorkflow(f"{where}: $inputs.{sel.name} names no input; inputs: {', '.join(inputs) or 'none'}")
        if item.image:
            return Ref(sel.name, None, 1, (), kinds.IMAGE)
        return Ref(sel.name, None, 0, (), kinds.ANY)
    source = steps[sel.step]
    if sel.output == "*":
        return Ref(sel.step, "*", source.out_dim, _lineage(source), kinds.ANY)
    if sel.output not in source.output_kinds or sel.output == GATE:
        outs = ", ".join(k for k in source.output_kinds if k != GATE) or "none"
        raise InvalidWorkflow(f"{where}: step {sel.step!r} has no output {sel.output!r}; outputs: {outs}")
    return Ref(sel.step, sel.output, source.out_dim, _lineage(source), source.output_kinds[sel.output])


def _lineage(step: CompiledStep) -> tuple[str, ...]:
    return step.lineage + ((step.name,) if step.block.adds_dimension else ())


def literal_ok(value: Any, types: tuple[type, ...]) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def _arg(value: Any, where: str, param: Param, inputs: dict[str, Input], steps: dict[str, CompiledStep]) -> Arg:
    if is_selector(value):
        ref = _ref(selector(value, where), where, inputs, steps, param)
        if ref.dim == 0:
            if not param.literal:
                raise InvalidWorkflow(f"{where}: {value!r} is a parameter, but this field takes "
                                      f"{' or '.join(param.kinds)} from an image input or a step")
            return ref
        if not param.kinds:
            raise InvalidWorkflow(f"{where}: this field takes a value or an $inputs parameter, not {value!r}")
        if not kinds.compatible(ref.kind, param.kinds):
            raise InvalidWorkflow(f"{where}: {value!r} is {ref.kind}; this field takes {', '.join(param.kinds)}")
        return ref
    if not param.literal:
        raise InvalidWorkflow(f"{where}: this field takes a selector ($inputs.<image> or $steps.<step>.<output>) "
                              f"bringing {', '.join(param.kinds)}, not {value!r}")
    if not literal_ok(value, param.literal):
        raise InvalidWorkflow(f"{where}: {value!r} is not {' or '.join(t.__name__ for t in param.literal)}")
    return Lit(value)


def _step(params: dict[str, Any], name: str, block: Block, inputs: dict[str, Input],
          steps: dict[str, CompiledStep], deps: set[str], gate: str | None) -> CompiledStep:
    args: dict[str, Arg] = {}
    refs: list[tuple[str, Ref]] = []
    for key, param in block.params.items():
        if key not in params:
            args[key] = Lit(param.default)
            continue
        where = f"step {name!r}: field {key!r}"
        if param.shape == "one":
            args[key] = _arg(params[key], where, param, inputs, steps)
            parts = [(where, args[key])]
        else:
            walked = [(w, _arg(v, w, param, inputs, steps)) for w, v in _walk(params[key], param.shape, where)]
            keys = list(params[key]) if param.shape == "mapping" else None
            args[key] = dict(zip(keys, (a for _, a in walked))) if keys is not None else [a for _, a in walked]
            parts = walked
        refs += [(w, a) for w, a in parts if isinstance(a, Ref) and a.dim > 0]
    dim, lineage = 1, ()
    if refs:
        (first_where, first), *rest = refs
        dim, lineage = first.dim, first.lineage
        for where, ref in rest:
            if (ref.dim, ref.lineage) != (dim, lineage):
                raise InvalidWorkflow(f"{where}: its value is per {_level(ref)}, but {first_where} is per "
                                      f"{_level(first)}; a step's inputs must be at one level")
    if gate is not None:
        g = steps[gate]
        if (g.dim, g.lineage) != (dim, lineage):
            raise InvalidWorkflow(f"step {gate!r}: next_steps names {name!r}, which runs per {_level_of(dim, lineage)}"
                                  f" while the condition is per {_level_of(g.dim, g.lineage)}")
    config = _checked(block, name, params)
    step = CompiledStep(name, block, args, config, dim, lineage, deps, gate)
    step.output_kinds = {out: _kind_of(kind, args) for out, kind in block.outputs.items()}
    return step


def _kind_of(kind: str, args: dict[str, Arg]) -> str:
    if not kind.startswith("="):
        return kind
    source = args.get(kind[1:])
    return source.kind if isinstance(source, Ref) else kinds.ANY


def _level(ref: Ref) -> str:
    return _level_of(ref.dim, ref.lineage)


def _level_of(dim: int, lineage: tuple[str, ...]) -> str:
    return "input image" if dim <= 1 else f"crop of {' > '.join(lineage)}"
