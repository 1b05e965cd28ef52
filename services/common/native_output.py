"""What native libraries write straight to file descriptor 2, turned into log records.

libpng and libjpeg (inside OpenCV) print a line for every corrupt image they meet ("libpng
error: IDAT: CRC error", "Corrupt JPEG data: 3 extraneous bytes before marker 0xd9"), ONNX
Runtime prints its warnings, all past Python's logging, so they would land as raw lines among
the JSON logs. ``capture()`` points descriptor 2 at a pipe (Python's own ``sys.stderr`` and the
fault handler keep the real stderr), and a thread reads the pipe line by line: each line is
counted in ``fleet_native_messages_total{library}`` and logged through ``fleet.native``, decoder
noise about images already answered INVALID_ARGUMENT at DEBUG, anything else at WARNING.

A line written just before the process dies of a fatal signal may be lost with the reader thread
(the fault handler's own dump is not: it writes to the real stderr).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import re
import sys
import threading
from typing import TextIO

from services.common.metrics import NATIVE_MESSAGES

log = logging.getLogger("fleet.native")

MAX_LINE = 2000
# (library, pattern, level): the first match classifies a line.
_KINDS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    ("libpng", re.compile(r"^libpng (warning|error)", re.I), logging.DEBUG),
    ("libjpeg", re.compile(r"^(Corrupt JPEG data|Premature end of JPEG|Invalid JPEG|Not a JPEG file|Bogus |"
                           r"Unsupported JPEG|Inconsistent progression|Huffman table|Invalid SOS|JPEG datastream|"
                           r"Warning: unknown JFIF|Quantization table|Application transferred too)"), logging.DEBUG),
    ("onnxruntime", re.compile(r"\[[EWIV]:onnxruntime:"), logging.WARNING),
    ("opencv", re.compile(r"^\[ ?(WARN|ERROR|INFO|DEBUG)(:\d+)?[@\]]|OpenCV\(|^cv2"), logging.WARNING),
)
for _library in [k[0] for k in _KINDS] + ["other"]:
    NATIVE_MESSAGES.labels(_library)  # every library's series exists from the start


def classify(line: str) -> tuple[str, int]:
    """(library, log level) of one line of native output."""
    for library, pattern, level in _KINDS:
        if pattern.search(line):
            return library, level
    return "other", logging.WARNING


def handle_line(line: str) -> None:
    line = line.rstrip("\r\n")
    if not line.strip():
        return
    library, level = classify(line)
    NATIVE_MESSAGES.labels(library).inc()
    if log.isEnabledFor(level):
        log.log(level, "%s", line[:MAX_LINE], extra={"library": library})


class _Reader(threading.Thread):
    def __init__(self, read_fd: int, original_fd: int) -> None:
        super().__init__(name="native-stderr", daemon=True)
        self.read_fd, self.original_fd = read_fd, original_fd

    def run(self) -> None:
        pending = b""
        try:
            while chunk := os.read(self.read_fd, 65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if len(pending) > MAX_LINE * 4:  # a runaway line without a newline
                    lines.append(pending)
                    pending = b""
                for raw in lines:
                    try:
                        handle_line(raw.decode("utf-8", "replace"))
                    except Exception:  # noqa: BLE001, S112 - a bad line must not stop the reader
                        continue
        finally:
            # Never leave native writers blocked on a pipe nobody reads: give them the real stderr back.
            os.dup2(self.original_fd, 2)


def capture() -> TextIO | None:
    """Send descriptor 2 through the line reader; return a stream on the original stderr, for the
    log handler (Python's ``sys.stderr`` is pointed at it too). Call once, before logging is set up.
    None (nothing changed) when descriptor 2 is not open."""
    try:
        original_fd = os.dup(2)
    except OSError:
        return None
    stream = os.fdopen(original_fd, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    sys.stderr = stream
    faulthandler.enable(file=stream)  # a crash dump must not depend on the reader thread
    _Reader(read_fd, original_fd).start()
    return stream
