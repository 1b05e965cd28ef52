"""Bounded user-facing messages: lists summarised, long values and whole messages truncated.

An error's message travels in the ``grpc-message`` trailer, percent-encoded (a non-ASCII
character takes up to 12 bytes), and gRPC refuses metadata over its limit (8 KiB by default),
answering RESOURCE_EXHAUSTED instead of the error meant. So no message may grow with the
caller's input: lists are summarised ("3 unknown classes: 'a', 'b', 'c'"), values quoted
short, and every message is cut at ``MAX_MESSAGE_CHARS``.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_MESSAGE_CHARS = 512
MAX_VALUE_CHARS = 40
MAX_LISTED = 3
_ELLIPSIS = "…"


def bounded(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters (ending in an ellipsis when cut)."""
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


def quoted(value: object, limit: int = MAX_VALUE_CHARS) -> str:
    """``repr`` of a caller's value, cut short: safe to put into any message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 2] + _ELLIPSIS + text[-1]


def summarize(items: Iterable[object], noun: str, plural: str | None = None, listed: int = MAX_LISTED) -> str:
    """"3 unknown classes: 'a', 'b', 'c'" or "120 unknown classes: 'a', 'b', 'c', … (117 more)"."""
    values = list(items)
    name = noun if len(values) == 1 else (plural or f"{noun}s")
    shown = ", ".join(quoted(v) for v in values[:listed])
    more = f", {_ELLIPSIS} ({len(values) - listed} more)" if len(values) > listed else ""
    return f"{len(values)} {name}: {shown}{more}" if values else f"0 {name}"
