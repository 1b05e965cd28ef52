"""The client install (stubs + FleetClient + the CLI's client commands) on its own, as a user's venv holds it.

Each case makes a fresh venv, installs the project's wheel (built once here) without extras (so none of the server's
dependencies: no OpenCV, ONNX Runtime, Redis) at the lowest and the highest protobuf the stubs
support, and runs a real inference against a running fleet from it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from services.local.processes import LocalFleet
from tests.conftest import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "models" / "samples" / "shapes-1.jpg"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once for both cases (what ``pip install <checkout>`` builds each time: ~7 s)."""
    where = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--wheel-dir", str(where), str(ROOT)], check=True, timeout=600)
    (built,) = where.glob("*.whl")
    return built


def _client_venv(where: Path, wheel: Path, protobuf: str) -> Path:
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    str(wheel), protobuf], check=True, timeout=600)
    return python


@pytest.mark.parametrize("protobuf", ["protobuf==6.30.0", "protobuf>=7,<8"])
def test_client_alone_serves_an_inference(tmp_path: Path, fleet: LocalFleet, wheel: Path, protobuf: str) -> None:
    python = _client_venv(tmp_path / "venv", wheel, protobuf)
    script = textwrap.dedent(f"""
        import importlib.util, warnings
        warnings.simplefilter("error")  # a gencode/runtime mismatch warning fails the case
        from google.protobuf import __version__ as pb
        from fleet.client import FleetClient
        from fleet.v1 import gateway_pb2_grpc, inference_pb2, model_pb2
        for server_only in ("cv2", "onnxruntime", "redis", "numpy"):
            assert importlib.util.find_spec(server_only) is None, server_only + " is installed"
        with FleetClient({fleet.gateway.address!r}, {TEST_KEY!r}) as client:
            response = client.infer("shapes-det/1", {str(SAMPLE)!r}, timeout=60)
        print(pb, len(response.object_detection.detections))
    """)
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    version, detections = result.stdout.split()
    assert int(detections) > 0
    if "6.30.0" in protobuf:
        assert version == "6.30.0"
    else:
        assert version.startswith("7.")

    up = subprocess.run([str(python), "-m", "fleet.cli.main", "up"], capture_output=True, text=True, timeout=60,
                        cwd=tmp_path)
    assert up.returncode == 2 and "needs the server install" in up.stderr
