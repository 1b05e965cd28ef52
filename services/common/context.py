"""Per-request context (request id) carried through async code with a contextvar."""

from __future__ import annotations

import contextvars
import re
import uuid

REQUEST_ID_HEADER = "x-request-id"
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # fullmatch: no trailing newline

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from(metadata: object) -> str:
    """The caller's x-request-id if it is sane, else a fresh one."""
    for key, value in metadata or ():  # type: ignore[union-attr]
        if key == REQUEST_ID_HEADER and isinstance(value, str) and _VALID.fullmatch(value):
            return value
    return new_request_id()


def current_request_id() -> str:
    return request_id_var.get()
