"""Native libraries' stderr lines become log records (or are silenced and counted), in a real child process."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from services.common.native_output import classify

CHILD = r"""
import os, random, sys, time
import cv2, numpy as np
from prometheus_client import REGISTRY
from services.common import native_output
from services.common.logging_setup import configure_logging

stream = native_output.capture()
configure_logging("probe", "INFO", "json", stream)
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
pixels = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
rng = random.Random(7)
for ext in (".jpg", ".png"):
    good = cv2.imencode(ext, pixels)[1].tobytes()
    for i in range(40):
        bad = bytearray(good)
        if i % 2:
            bad = bad[: rng.randrange(len(bad) // 3, len(bad) - 1)]
        else:
            for _ in range(6):
                bad[rng.randrange(24, len(bad))] = rng.randrange(256)
        cv2.imdecode(np.frombuffer(bytes(bad), np.uint8), cv2.IMREAD_COLOR)
os.write(2, b"mystery native complaint\n")
import warnings
warnings.warn("a python warning")

def seen():
    return {lib: REGISTRY.get_sample_value("fleet_native_messages_total", {"library": lib})
            for lib in ("libpng", "libjpeg", "other")}

deadline = time.monotonic() + 20
while time.monotonic() < deadline and not seen()["other"]:
    time.sleep(0.05)
time.sleep(0.2)
print(repr(seen()))
"""


def test_corrupt_images_do_not_break_the_json_log() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    counts = eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own child's repr of a dict
    print("native lines counted:", counts)
    assert counts["libpng"] > 0 and counts["libjpeg"] > 0 and counts["other"] == 1
    entries = [json.loads(line) for line in out.stderr.splitlines()]  # every line is one JSON object
    assert not any("libpng" in e["msg"] or "JPEG" in e["msg"] for e in entries)  # silenced at INFO: counted only
    mystery = [e for e in entries if e["msg"] == "mystery native complaint"]
    assert mystery and mystery[0]["level"] == "warning" and mystery[0]["library"] == "other"
    assert any(e["logger"] == "py.warnings" and "a python warning" in e["msg"] for e in entries)


def test_lines_are_classified_by_library() -> None:
    assert classify("libpng error: IDAT: CRC error") == ("libpng", logging.DEBUG)
    assert classify("libpng warning: iCCP: known incorrect sRGB profile") == ("libpng", logging.DEBUG)
    assert classify("Corrupt JPEG data: 3 extraneous bytes before marker 0xd9") == ("libjpeg", logging.DEBUG)
    assert classify("Premature end of JPEG file") == ("libjpeg", logging.DEBUG)
    assert classify("2026-11-27 10:00:00.1 [W:onnxruntime:, graph.cc:123] unused initializer") == (
        "onnxruntime", logging.WARNING)
    assert classify("[ WARN:0@0.123] global loadsave.cpp (241) findDecoder imread_") == ("opencv", logging.WARNING)
    assert classify("segfault incoming") == ("other", logging.WARNING)
