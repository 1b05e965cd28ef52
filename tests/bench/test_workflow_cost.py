"""``python -m bench.workflow_cost`` on a real local fleet: it runs, and what it reports was measured."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_reports_each_round_and_the_medians_of_both_calls() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.workflow_cost", "--calls", "30", "--rounds", "2"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(re.findall(r"^round \d this checkout: gateway CPU/call Infer", done.stdout, re.M)) == 2, done.stdout
    cpu = re.search(r"gateway CPU per call: Infer ([\d.]+) ms, one-step workflow ([\d.]+) ms", done.stdout)
    wall = re.search(r"p50 wall latency: +Infer ([\d.]+) ms, one-step workflow ([\d.]+) ms", done.stdout)
    assert cpu and wall, done.stdout
    # 30 calls of about a millisecond of the gateway's CPU each: more than the 10 ms a clock tick resolves
    assert all(float(v) > 0 for v in (*cpu.groups(), *wall.groups()))
