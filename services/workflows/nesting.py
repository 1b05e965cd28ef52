"""Values per level: a value at level d is a list (one per input image) of lists ... nested d deep; a
skipped element is None, a skipped parent's children a None list."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def leaves(nested: list, depth: int) -> list:
    if depth <= 1:
        return list(nested)
    out: list = []
    for sub in nested:
        if sub is not None:
            out += leaves(sub, depth - 1)
    return out


def rebuild(template: list, depth: int, values: Iterator) -> list:
    if depth <= 1:
        return [next(values) for _ in template]
    return [None if sub is None else rebuild(sub, depth - 1, values) for sub in template]


def mapped(nested: list, depth: int, fn: Callable[[Any], Any]) -> list:
    if depth <= 1:
        return [None if v is None else fn(v) for v in nested]
    return [None if sub is None else mapped(sub, depth - 1, fn) for sub in nested]
