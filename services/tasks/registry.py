"""The one registry of tasks: edges, the worker, the CLI and packaging look tasks up here.

The built-in tasks register themselves when ``services.tasks`` is imported. More tasks come as plug-in
modules named by ``FLEET_TASK_MODULES`` (comma-separated module names; every service and the CLI import
them at start-up, ``load_plugins``): a module defines a ``Task`` subclass and calls ``register``. An
unknown task is an error (``UnknownTask``, INVALID_ARGUMENT), never an empty or wrongly shaped answer.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable

from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.layouts import Layout, register_layout
from services.tasks.base import Task

log = logging.getLogger("fleet.tasks")

PLUGINS_ENV = "FLEET_TASK_MODULES"

_TASKS: dict[str, Task] = {}
_BY_PROTO: dict[int, Task] = {}
_BY_ROUTE: dict[str, Task] = {}
_LOADED: set[str] = set()


class UnknownTask(InvalidArgument):
    """A task name (or TaskType value) no registered task has."""


def register(task: Task | type[Task]) -> Task:
    """Add a task (an instance or its class) and its layouts; returns the instance. Registering the same
    class again is a no-op; another task under a taken name, TaskType value, route or layout is refused."""
    instance = task() if isinstance(task, type) else task
    existing = _TASKS.get(instance.name)
    if existing is not None:
        if type(existing) is type(instance):
            return existing
        raise ValueError(f"task {instance.name!r} is already registered by {type(existing).__qualname__}")
    if instance.proto and instance.proto in _BY_PROTO:
        raise ValueError(f"TaskType {instance.proto} is already task {_BY_PROTO[instance.proto].name!r}")
    if instance.route and instance.route in _BY_ROUTE:
        raise ValueError(f"route {instance.route!r} is already task {_BY_ROUTE[instance.route].name!r}")
    for layout in instance.layouts:
        if layout.task != instance.name:
            raise ValueError(f"layout {layout.name!r} serves {layout.task!r}, not {instance.name!r}")
        register_layout(layout)
    _TASKS[instance.name] = instance
    if instance.proto:
        _BY_PROTO[instance.proto] = instance
    if instance.route:
        _BY_ROUTE[instance.route] = instance
    return instance


def get(name: str) -> Task:
    task = _TASKS.get(str(getattr(name, "value", name)))
    if task is None:
        raise UnknownTask(f"task {name!r} is not served by this fleet; known tasks: {', '.join(sorted(_TASKS))}")
    return task


def find(name: str) -> Task | None:
    return _TASKS.get(str(getattr(name, "value", name)))


def by_proto(value: int) -> Task:
    task = _BY_PROTO.get(value)
    if task is None:
        raise UnknownTask(f"TaskType {value} has no task in this fleet")
    return task


def by_route(route: str) -> Task | None:
    return _BY_ROUTE.get(route)


def of_response(response: object) -> Task:
    """The task an InferResponse answers: its ``task`` name, else its TaskType, else its result field."""
    name = getattr(response, "task", "")
    if name:
        return get(name)
    proto = getattr(response, "task_type", 0)
    if proto in _BY_PROTO:
        return _BY_PROTO[proto]
    which = getattr(response, "WhichOneof", None)
    field = which("result") if which is not None and hasattr(response, "image_width") else None
    task = next((t for t in _TASKS.values() if field and t.result_field == field), None)
    if task is None:
        raise UnknownTask(f"the answer names no task this fleet knows (task_type {proto})")
    return task


def of_model(model: object) -> Task:
    """The task of a ModelDescriptor / ModelSummary / LoadedModel (its ``task`` name, else its TaskType)."""
    name = getattr(model, "task", "")
    return get(name) if name else by_proto(getattr(model, "task_type", 0))


def all_tasks() -> list[Task]:
    return list(_TASKS.values())


def layouts() -> list[Layout]:
    return [layout for task in _TASKS.values() for layout in task.layouts]


def load_plugins(modules: Iterable[str] | str | None = None) -> list[str]:
    """Import plug-in task modules (default: ``FLEET_TASK_MODULES``); each registers its tasks. Returns the
    modules imported now. A module that cannot be imported is a deployment mistake: FailedPrecondition."""
    if modules is None:
        modules = os.environ.get(PLUGINS_ENV, "")
    if isinstance(modules, str):
        modules = [m.strip() for m in modules.split(",")]
    imported = []
    for name in modules:
        if not name or name in _LOADED:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise FailedPrecondition(f"task plug-in module {name!r} could not be imported: {exc}") from None
        _LOADED.add(name)
        imported.append(name)
        log.info("task plug-in loaded", extra={"plugin": name})
    return imported
