"""Why the package needs Python 3.11: the code relies on asyncio's timeouts being the built-in TimeoutError.

``asyncio.wait_for`` and ``asyncio.timeout`` raise ``TimeoutError``; the batcher loop, the periodic
tasks (heartbeats), the model locks and the image-URL deadline catch exactly that. On 3.10
``asyncio.TimeoutError`` was a different class (and ``asyncio.timeout`` did not exist), so those
``except TimeoutError`` clauses would never match. The declared floor says so; this keeps it.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_declared_floor_is_3_11() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert declared == ">=3.11", declared
    assert sys.version_info >= (3, 11)
    assert asyncio.TimeoutError is TimeoutError and hasattr(asyncio, "timeout")


def test_the_docs_state_the_same_floor() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "Python ≥ 3.11" in readme
    assert not re.search(r"Python\s*(≥|>=)\s*3\.10", readme)
