"""Values per level: a value at level d is a list (one per input image) of lists ... nested d deep; a
skipped element is None, a skipped parent's children a None list; a failed element (``data.Failed``) stands
where its value (or its children's list) would be."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from services.workflows.data import Failed


def leaves(nested: list, depth: int) -> list:
    if depth <= 1:
        return list(nested)
    out: list = []
    for sub in nested:
        if isinstance(sub, list):
            out += leaves(sub, depth - 1)
    return out


def rebuild(template: list, depth: int, values: Iterator) -> list:
    if depth <= 1:
        return [next(values) for _ in template]
    return [rebuild(sub, depth - 1, values) if isinstance(sub, list) else sub for sub in template]


def mapped(nested: list, depth: int, fn: Callable[[Any], Any]) -> list:
    if depth <= 1:
        return [fn(v) if v is not None and not isinstance(v, Failed) else v for v in nested]
    return [mapped(sub, depth - 1, fn) if isinstance(sub, list) else sub for sub in nested]
