"""Structured logging: one JSON object per line, with the request id (and trace id) of the current call.

Every line passes ``redact`` on its way out: an API key or bearer token that reached a message by
mistake is masked, and every URL loses its userinfo, query string and fragment (a presigned URL's
signature, an image URL's ``user:password@``; ``services.common.redact``). Messages are written never
to contain one; this is the safety net, for the message, every extra field and the traceback alike.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from typing import TextIO

from services.common import tracing
from services.common.context import current_request_id
from services.common.redact import redact_urls

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_SECRETS = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+|\b(f[ka]_)[A-Za-z0-9_\-]{4,}")


def _mask(match: re.Match[str]) -> str:
    return f"{match.group(1) or match.group(2)}[redacted]"


def redact(text: str) -> str:
    """``text`` with bearer tokens, fleet API keys (``fk_...``), admin tokens (``fa_...``) and URLs'
    userinfo, query strings and fragments masked."""
    return _SECRETS.sub(_mask, redact_urls(text))


def _redacted(value: object) -> object:
    """A log field with every string in it redacted (before JSON escaping can split a URL or a key)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redacted(v) for v in value]
    return redact(value if isinstance(value, str) else str(value))


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "request_id": getattr(record, "request_id", None) or current_request_id(),
            "msg": record.getMessage(),
        }
        if tracing.ACTIVE and (ids := tracing.current_ids()) is not None:
            entry["trace_id"], entry["span_id"] = ids
        for key, value in vars(record).items():
            if key not in _STANDARD and key != "request_id":
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps({key: _redacted(value) for key, value in entry.items()})


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)s {service} [%(request_id)s] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return redact(super().format(record))


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("fleet.thread").error("unhandled exception in thread %s", name,
                                            exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def configure_logging(service: str, level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Python's own stray stderr writers, into the same log: warnings and exceptions that end a thread.
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_exception
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
