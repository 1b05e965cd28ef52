"""The definition format: Roboflow Workflows JSON, version "1.0", parsed and bounded.

``{"version": "1.0", "inputs": [...], "steps": [...], "outputs": [...]}``; inputs are images
(``WorkflowImage`` / ``InferenceImage``) or parameters (``WorkflowParameter`` / ``InferenceParameter``,
with an optional ``default_value``); steps name a block ``type`` and its parameters; outputs are
``JsonField`` entries (``name``, ``selector``, ``coordinates_system`` "own" or "parent"). Every mistake is an
``InvalidWorkflow`` (INVALID_ARGUMENT) naming where it is and what is supported.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from services.common.errors import InvalidArgument

VERSIONS = ("1.0",)
IMAGE_INPUTS = ("WorkflowImage", "InferenceImage")
PARAMETER_INPUTS = ("WorkflowParameter", "InferenceParameter")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
SELECTOR = re.compile(r"^\$(inputs)\.([A-Za-z_][A-Za-z0-9_\-]*)$"
                      r"|^\$(steps)\.([A-Za-z_][A-Za-z0-9_\-]*)\.(\*|[A-Za-z_]\w*)$")


class InvalidWorkflow(InvalidArgument):
    """A definition outside the supported format or subset, or one that does not fit together."""


class WorkflowTooLarge(InvalidWorkflow):
    """A definition over a bound (bytes, steps): still INVALID_ARGUMENT, the bound named."""


@dataclass(frozen=True)
class Input:
    name: str
    image: bool
    default: Any = None
    has_default: bool = False


@dataclass(frozen=True)
class Step:
    name: str
    type: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Output:
    name: str
    selector: str
    parent_coordinates: bool


@dataclass(frozen=True)
class Definition:
    inputs: tuple[Input, ...]
    steps: tuple[Step, ...]
    outputs: tuple[Output, ...]
    digest: str


@dataclass(frozen=True)
class Selector:
    """``$inputs.<name>`` (step None), ``$steps.<step>.<output>`` or ``$steps.<step>.*`` (output "*")."""

    name: str
    step: str | None = None

    @property
    def output(self) -> str:
        return self.name


def is_selector(value: object) -> bool:
    return isinstance(value, str) and value.startswith("$")


def selector(text: str, where: str) -> Selector:
    m = SELECTOR.match(text)
    if not m:
        raise InvalidWorkflow(f"{where}: {text!r} is not a selector; use $inputs.<name>, $steps.<step>.<output> "
                              "or $steps.<step>.*")
    if m.group(1):
        return Selector(m.group(2))
    return Selector(m.group(5), m.group(4))


def canonical(raw: Any, max_bytes: int) -> tuple[str, str]:
    """(canonical JSON text, its sha256) of a definition, refused when over ``max_bytes``."""
    if not isinstance(raw, dict):
        raise InvalidWorkflow("the workflow definition must be a JSON object with version, inputs, steps, outputs")
    try:
        text = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        raise InvalidWorkflow("the workflow definition must be plain JSON") from None
    if len(text) > max_bytes:
        raise WorkflowTooLarge(f"the workflow definition is {len(text)} bytes; at most {max_bytes} are accepted")
    return text, hashlib.sha256(text.encode()).hexdigest()


def parse(raw: Any, max_steps: int, digest: str = "") -> Definition:
    """The definition in ``raw`` (a JSON object, already decoded and size-checked), checked for shape."""
    if not isinstance(raw, dict):
        raise InvalidWorkflow("the workflow definition must be a JSON object with version, inputs, steps, outputs")
    version = str(raw.get("version", "1.0"))
    if version not in VERSIONS:
        raise InvalidWorkflow(f"version {version!r} is not supported; supported: {', '.join(VERSIONS)}")
    unknown = sorted(set(raw) - {"version", "inputs", "steps", "outputs"})
    if unknown:
        raise InvalidWorkflow(f"unknown top-level field(s) {', '.join(unknown)}; a definition has version, inputs, "
                              "steps, outputs")
    inputs = tuple(_input(i, item) for i, item in enumerate(_list(raw, "inputs")))
    steps_raw = _list(raw, "steps")
    if len(steps_raw) > max_steps:
        raise WorkflowTooLarge(f"the workflow has {len(steps_raw)} steps; at most {max_steps} are accepted")
    steps = tuple(_step(i, item) for i, item in enumerate(steps_raw))
    outputs = tuple(_output(i, item) for i, item in enumerate(_list(raw, "outputs")))
    if not outputs:
        raise InvalidWorkflow("outputs: a workflow needs at least one output (JsonField)")
    _unique("inputs", [i.name for i in inputs])
    _unique("steps", [s.name for s in steps])
    _unique("outputs", [o.name for o in outputs])
    return Definition(inputs, steps, outputs, digest)


def _list(raw: dict, key: str) -> list:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise InvalidWorkflow(f"{key} must be a list")
    return value


def _name(item: dict, where: str) -> str:
    name = item.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidWorkflow(f"{where}: name must be letters, digits, '_' or '-' (at most 64, not starting with a "
                              f"digit), got {name!r}")
    return name


def _input(index: int, item: Any) -> Input:
    where = f"inputs[{index}]"
    if not isinstance(item, dict):
        raise InvalidWorkflow(f"{where} must be an object with type and name")
    name = _name(item, where)
    kind = item.get("type")
    if kind in IMAGE_INPUTS:
        return Input(name, True)
    if kind in PARAMETER_INPUTS:
        return Input(name, False, item.get("default_value"), "default_value" in item)
    raise InvalidWorkflow(f"input {name!r}: type {kind!r} is not supported; supported: "
                          f"{', '.join(IMAGE_INPUTS + PARAMETER_INPUTS)}")


def _step(index: int, item: Any) -> Step:
    where = f"steps[{index}]"
    if not isinstance(item, dict):
        raise InvalidWorkflow(f"{where} must be an object with type and name")
    name = _name(item, where)
    kind = item.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidWorkflow(f"step {name!r}: type must name a block (see POST /workflows/blocks/describe)")
    return Step(name, kind, {k: v for k, v in item.items() if k not in ("type", "name")})


def _output(index: int, item: Any) -> Output:
    where = f"outputs[{index}]"
    if not isinstance(item, dict):
        raise InvalidWorkflow(f"{where} must be an object with type, name and selector")
    name = _name(item, where)
    if item.get("type", "JsonField") != "JsonField":
        raise InvalidWorkflow(f"output {name!r}: type {item.get('type')!r} is not supported; supported: JsonField")
    text = item.get("selector")
    if not isinstance(text, str):
        raise InvalidWorkflow(f"output {name!r}: selector must be a string")
    selector(text, f"output {name!r}")
    system = item.get("coordinates_system", "own")
    if system not in ("own", "parent"):
        raise InvalidWorkflow(f"output {name!r}: coordinates_system {system!r} is not supported; supported: own, "
                              "parent")
    return Output(name, text, system == "parent")


def _unique(where: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidWorkflow(f"{where}: the name {name!r} is used twice")
        seen.add(name)
