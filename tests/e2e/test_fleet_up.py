"""`fleet up` as a user runs it: embedded Redis, demo models, a first inference, clean stop; and over TLS."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest

from google.protobuf import json_format

from fleet.client import FleetClient
from fleet.v1 import inference_pb2, workflow_pb2, workflow_pb2_grpc
from fleet.paths import SAMPLES_DIR


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Up:
    proc: subprocess.Popen[str]
    output: str
    env: dict[str, str]
    state_home: Path
    rest: str = ""
    pids: list[int] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        return self.state_home / "inference-fleet" / "run"

    @property
    def dev_state(self) -> Path:
        return self.state_home / "inference-fleet" / "dev.json"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fleet.cli.main", *args], env=self.env, capture_output=True,
                              text=True, timeout=60)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.rest, _ = self.proc.communicate(timeout=60)


@contextlib.contextmanager
def fleet_up(tmp_path: Path, *args: str) -> Iterator[Up]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "FLEET_ADDRESS", "FLEET_API_KEY", "FLEET_CA")}
    env.update(XDG_STATE_HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "fleet.cli.main", "up", "--port", "0", "--http-port", "0", *args],
                            env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Stop with Ctrl-C" in line:
                break
        up = Up(proc, "".join(lines), env, tmp_path)
        assert "Inference Fleet is up" in up.output, up.output
        up.pids = [json.loads(p.read_text())["pid"] for p in up.run_dir.glob("*.ready.json")]
        yield up
    finally:
        if proc.poll() is None:  # stop it the way a user would, so it stops what it started
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_fleet_up_serves_a_first_inference_and_stops_cleanly(tmp_path: Path) -> None:
    with fleet_up(tmp_path) as up:
        assert "First inference: shapes-det/1" in up.output and "detections" in up.output, up.output
        assert "(embedded)" in up.output
        http_url = next(line.split()[1] for line in up.output.splitlines() if line.strip().startswith("http "))
        assert httpx.get(f"{http_url}/v2/health/ready", timeout=10).json() == {"ready": True}
        state = json.loads(up.dev_state.read_text())
        assert state["http_address"] == http_url.removeprefix("http://")
        assert state["api_key"] in up.output and oct(up.dev_state.stat().st_mode)[-3:] == "600"
        assert state["ca"] is None and state["tls"] is False
        assert len(up.pids) == 5  # registry, worker, gateway, its workflow engine, pipelines
        assert state["pipelines"] and f"pipelines {state['pipelines']}" in up.output
        up.stop()
    assert up.proc.returncode == 0, up.rest
    assert "fleet stopped: pipelines exit 0, gateway exit 0, workflows exit 0, worker-0 exit 0, registry exit 0" in up.rest
    assert not any(_alive(pid) for pid in up.pids)
    assert not up.dev_state.exists()


@pytest.mark.slow
def test_fleet_up_tls_runs_every_hop_over_tls_and_clients_use_the_saved_ca(tmp_path: Path) -> None:
    state_file = tmp_path / "scripts" / "fleet.json"
    with fleet_up(tmp_path, "--tls", "--state-file", str(state_file)) as up:
        assert "First inference: shapes-det/1" in up.output and "detections" in up.output, up.output
        assert "TLS CA" in up.output
        state = json.loads(state_file.read_text())
        assert oct(state_file.stat().st_mode)[-3:] == "600" and state == json.loads(up.dev_state.read_text())
        assert set(state) >= {"grpc_address", "http_address", "api_key", "admin_token", "ca"}
        assert state["tls"] is True and Path(state["ca"]).is_file()
        assert state["http_url"] == f"https://{state['http_address']}"  # the HTTP API over TLS too
        assert httpx.get(f"{state['http_url']}/v2/health/ready", verify=ssl.create_default_context(cafile=state["ca"]), timeout=10).json() == {"ready": True}
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://{state['http_address']}/v2/health/ready", timeout=10)
        for name, mode in (("gateway", "tls"), ("workflows", "mtls"), ("registry", "mtls"), ("worker-0", "mtls")):
            assert f'"tls": "{mode}"' in (up.run_dir / f"{name}.log").read_text(), name
        sample = str(sorted(SAMPLES_DIR.glob("*.jpg"))[0])
        one_step = {"version": "1.0", "inputs": [{"type": "WorkflowImage", "name": "image"}],
                    "steps": [{"type": "roboflow_core/roboflow_object_detection_model@v1", "name": "det",
                               "images": "$inputs.image", "model_id": "shapes-det/1"},
                              {"type": "roboflow_core/bounding_box_visualization@v1", "name": "viz",  # image work:
                               "image": "$inputs.image", "predictions": "$steps.det.predictions"}],  # the engine's
                    "outputs": [{"type": "JsonField", "name": "p", "selector": "$steps.det.predictions"},
                                {"type": "JsonField", "name": "drawn", "selector": "$steps.viz.image"}]}
        flow = httpx.post(  # forwarded to the workflow engine over the fleet's mTLS
            f"{state['http_url']}/workflows/run", verify=ssl.create_default_context(cafile=state["ca"]), timeout=60,
            headers={"Authorization": f"Bearer {state['api_key']}"},
            json={"specification": one_step,
                  "inputs": {"image": {"type": "base64", "value": base64.b64encode(Path(sample).read_bytes()).decode()}}})
        assert flow.status_code == 200 and flow.json()["outputs"][0]["p"]["predictions"], flow.text
        with FleetClient.from_state(state_file) as client:
            request = workflow_pb2.RunWorkflowRequest(images={"image": workflow_pb2.WorkflowImages(
                images=[inference_pb2.Image(encoded=Path(sample).read_bytes())])})
            json_format.ParseDict(one_step, request.definition)
            assert workflow_pb2_grpc.WorkflowServiceStub(client.channel).RunWorkflow(
                request, metadata=client.metadata, timeout=60).outputs
        out = up.cli("infer", "--model", "shapes-det/1", sample)  # the saved address, key and CA
        assert out.returncode == 0 and "detections" in out.stdout, out.stderr
        out = up.cli("infer", "--state-file", str(state_file), "--model", "shapes-det/1", sample)
        assert out.returncode == 0, out.stderr
        out = up.cli("keys", "list", "--state-file", str(state_file), "--json")  # admin commands, over TLS too
        assert out.returncode == 0 and "demo" in out.stdout, out.stderr
        with FleetClient.from_state(state_file) as client:
            assert client.infer("shapes-det/1", Path(sample)).object_detection.detections
        with FleetClient(state["grpc_address"], state["api_key"]) as plaintext:
            with pytest.raises(grpc.RpcError) as err:
                plaintext.infer("shapes-det/1", Path(sample), timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        up.stop()
    assert up.proc.returncode == 0, up.rest
    assert not state_file.exists() and not up.dev_state.exists()
