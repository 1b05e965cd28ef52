"""`fleet up` as a user runs it: embedded Redis, demo models, a first inference, clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_fleet_up_serves_a_first_inference_and_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(XDG_STATE_HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "fleet.cli.main", "up", "--port", "0", "--http-port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Stop with Ctrl-C" in line:
                break
        output = "".join(lines)
        assert "Inference Fleet is up" in output, output
        assert "First inference: shapes-det/1" in output and "detections" in output, output
        assert "(embedded)" in output
        http_url = next(line.split()[1] for line in lines if line.strip().startswith("http "))
        assert httpx.get(f"{http_url}/v2/health/ready", timeout=10).json() == {"ready": True}
        state = json.loads((tmp_path / "inference-fleet" / "dev.json").read_text())
        assert state["api_key"] in output and oct((tmp_path / "inference-fleet" / "dev.json").stat().st_mode)[-3:] == "600"
        run_dir = tmp_path / "inference-fleet" / "run"
        pids = [json.loads(p.read_text())["pid"] for p in run_dir.glob("*.ready.json")]
        assert len(pids) == 3
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # stop it the way a user would, so it stops what it started
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, rest
    assert "fleet stopped: gateway exit 0, worker-0 exit 0, registry exit 0" in rest
    assert not any(_alive(pid) for pid in pids)
    assert not (tmp_path / "inference-fleet" / "dev.json").exists()
