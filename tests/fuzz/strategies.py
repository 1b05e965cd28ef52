"""Shared pieces of the fuzz suite: example budgets and hostile-input strategies.

CI runs each property with the budget written beside it (about 2,000 examples in all, with
derandomized examples, so a run is reproducible); ``make fuzz`` (HYPOTHESIS_PROFILE=fuzz) runs
ten times as many, freshly random each time, and keeps failures in ``.hypothesis/``.
"""

from __future__ import annotations

import os
import struct
import zlib

import cv2
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SCALE = 10 if PROFILE == "fuzz" else 1

settings.register_profile("ci", derandomize=True, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("fuzz", deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(PROFILE)


def examples(ci_budget: int) -> settings:
    return settings(max_examples=ci_budget * SCALE)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


_RNG = np.random.default_rng(7)
_PIXELS = cv2.cvtColor(_RNG.integers(0, 255, (48, 64, 3), dtype=np.uint8), cv2.COLOR_RGB2BGR)
VALID_IMAGES = {ext: cv2.imencode(ext, _PIXELS)[1].tobytes() for ext in (".jpg", ".png", ".bmp", ".webp")}


@st.composite
def mutated_image(draw: st.DrawFn) -> bytes:
    """A real image with bytes flipped, cut, repeated or spliced: what a corrupt upload looks like."""
    data = bytearray(draw(st.sampled_from(sorted(VALID_IMAGES.values(), key=len))))
    for _ in range(draw(st.integers(1, 6))):
        how = draw(st.sampled_from(["flip", "cut", "splice", "insert"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if how == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif how == "cut":
            del data[at:]
        elif how == "splice":
            data[at:at] = draw(st.sampled_from(list(VALID_IMAGES.values())))[: draw(st.integers(0, 64))]
        else:
            data[at:at] = draw(st.binary(max_size=32))
    return bytes(data)


hostile_bytes = st.one_of(
    st.binary(max_size=512),
    mutated_image(),
    st.builds(png_declaring, st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1),
              st.sampled_from([1, 2, 4, 8, 16]), st.sampled_from([0, 2, 3, 4, 6])),
    st.builds(lambda head, tail: head + tail, st.sampled_from([b"\xff\xd8\xff", b"BM", b"RIFF", b"\x89PNG\r\n\x1a\n",
                                                             b"GIF89a", b"II*\x00"]), st.binary(max_size=256)),
)

_hosts = st.one_of(
    st.sampled_from(["127.0.0.1", "[::1]", "10.0.0.1", "169.254.169.254", "[::ffff:127.0.0.1]", "0", "127.1",
                     "0x7f000001", "localhost", "images.invalid", "[fe80::1%25eth0]", "[::1", "::1]", "", "a..b",
                     "%31%32%37.0.0.1", "xn--", "[2002:7f00:1::1]", "[64:ff9b::a00:1]"]),
    st.from_regex(r"[a-z0-9.-]{1,20}\.invalid", fullmatch=True),
)
hostile_urls = st.one_of(
    st.builds(lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
              st.sampled_from(["http", "https", "HTTP", "ftp", "file", "gopher", "javascript", "", "http:"]), _hosts,
              st.one_of(st.just(""), st.integers(-5, 200_000).map(lambda p: f":{p}"),
                        st.text(max_size=6).map(lambda p: f":{p}")),
              st.text(max_size=40).map(lambda p: "/" + p)),
    st.text(max_size=200),
    st.builds(lambda u, p: f"http://{u}@127.0.0.1/{p}", st.text(max_size=10), st.text(max_size=10)),
)

floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
# Known names, odd ones, and long ones (repeated cheaply: generating long random text is slow).
class_names = st.lists(st.one_of(st.sampled_from(["circle", "rectangle", "triangle", "dog", "", " circle"]),
                                 st.text(max_size=12),
                                 st.builds(lambda t, n: t * n, st.text(min_size=1, max_size=4), st.integers(1, 100))),
                       max_size=40)
