"""Memory-pressure eviction on the bench worker, for ``bench.gpu_check``.

The worker evicts its least recently used models while free/total memory is below
``FLEET_WORKER_MEMORY_FREE_THRESHOLD`` (reason ``pressure``), reading the GPU's figures from NVML
when its models run on CUDA and the host's otherwise (``services.model_worker.manager``).

On CUDA the check is a controlled experiment with the threshold at ``threshold`` (0.5): copies of the
demo package are loaded with the GPU mostly free (no eviction expected); then this process takes
device memory with plain ``cudaMalloc`` calls (a ballast) until the free fraction NVML reports is
below the threshold, and one more load must evict by ``pressure``; the ballast is freed and a last
load must evict nothing. The host's memory is untouched throughout, so the evictions can only come
from the NVML figures. On CPU there is no device to fill (and no host memory is taken on a shared
machine): the threshold is set above the host's free fraction, so every load evicts the older models
by host-memory pressure, which checks the same path with the host's figures.
"""

from __future__ import annotations

import asyncio
import ctypes
from pathlib import Path
from typing import Any

import psutil

from bench.clients import TIMEOUT_S, WorkerCaller
from bench.environment import BenchEnv, churn_ids
from bench.gpu_probe import nvidia_library_dirs
from bench.scenarios.churn import worker_counters
from bench.workload import MODEL_ID
from fleet.internal.v1 import worker_pb2, worker_pb2_grpc
from services.model_worker.gpu import Nvml

CUDA_THRESHOLD = 0.5  # FLEET_WORKER_MEMORY_FREE_THRESHOLD on CUDA: far below an idle GPU's free fraction
BALLAST_BELOW = 0.1  # the ballast leaves the free fraction this far below the threshold
CPU_THRESHOLD = 0.9999  # on CPU: above any host's free fraction, so each load evicts by host pressure
CHUNK_BYTES = 1 << 30
RETIRE_WAIT_S = 0.5  # evicted models close once drained; give it a moment before reading memory


def worker_env(provider: str) -> dict[str, str]:
    """The worker settings this check needs (set at the worker's start)."""
    threshold = CUDA_THRESHOLD if provider == "cuda" else CPU_THRESHOLD
    return {"FLEET_WORKER_MEMORY_FREE_THRESHOLD": str(threshold)}


class DeviceBallast:
    """Device memory held by this process through plain ``cudaMalloc`` calls; ``close`` frees it."""

    def __init__(self) -> None:
        self._cudart = _load_cudart()
        self._cudart.cudaMalloc.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t]
        self._cudart.cudaMalloc.restype = ctypes.c_int
        self._cudart.cudaFree.argtypes = [ctypes.c_void_p]
        self._cudart.cudaFree.restype = ctypes.c_int
        self._blocks: list[ctypes.c_void_p] = []
        self.bytes = 0

    def take(self, nbytes: int) -> None:
        while self.bytes < nbytes:
            size = min(CHUNK_BYTES, nbytes - self.bytes)
            block = ctypes.c_void_p()
            code = self._cudart.cudaMalloc(ctypes.byref(block), size)
            if code != 0:
                raise RuntimeError(f"cudaMalloc of {size} bytes failed with CUDA error {code} "
                                   f"after {self.bytes} bytes of ballast")
            self._blocks.append(block)
            self.bytes += size

    def close(self) -> None:
        while self._blocks:
            self._cudart.cudaFree(self._blocks.pop())
        self.bytes = 0

    def __enter__(self) -> DeviceBallast:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load_cudart() -> ctypes.CDLL:
    candidates = [str(p) for d in nvidia_library_dirs() for p in sorted(Path(d).glob("libcudart.so.*"))]
    candidates += ["libcudart.so.13", "libcudart.so.12", "libcudart.so"]
    errors = []
    for name in candidates:
        try:
            return ctypes.CDLL(name)
        except OSError as exc:
            errors.append(str(exc))
    raise RuntimeError("no CUDA runtime (libcudart) to take device memory with: " + "; ".join(errors[-3:]))


# ---- figures -------------------------------------------------------------------------------------
def memory_figures(nvml: Nvml | None, worker_pid: int) -> dict[str, Any]:
    """This moment's memory: the GPU's through NVML (device 0) when there is one, the host's, the worker's RSS."""
    vm = psutil.virtual_memory()
    out: dict[str, Any] = {"host_available_bytes": vm.available, "host_total_bytes": vm.total,
                           "host_free_fraction": vm.available / vm.total,
                           "worker_rss_bytes": psutil.Process(worker_pid).memory_info().rss}
    gpus = nvml.memory() if nvml is not None else []
    if gpus:
        g = gpus[0]
        out.update(nvml_used_bytes=g.used, nvml_free_bytes=g.free, nvml_total_bytes=g.total,
                   nvml_free_fraction=g.free / g.total)
    return out


class Recorder:
    """Loads models on the worker and records, at each step, memory, evictions and the models held."""

    def __init__(self, env: BenchEnv, stub: worker_pb2_grpc.ModelWorkerServiceStub, nvml: Nvml | None) -> None:
        self.env, self.stub, self.nvml = env, stub, nvml
        self.steps: list[dict[str, Any]] = []
        self.providers: dict[str, str] = {}  # model -> the provider its LoadModel answer names

    async def load(self, model_id: str) -> None:
        reply = await self.stub.LoadModel(worker_pb2.LoadModelRequest(model=self.env.package.descriptor(model_id)),
                                          timeout=TIMEOUT_S)
        self.providers[model_id] = reply.model.execution_provider

    async def step(self, label: str) -> dict[str, Any]:
        await asyncio.sleep(RETIRE_WAIT_S)
        held = await self.stub.DescribeModels(worker_pb2.ModelWorkerServiceDescribeModelsRequest(), timeout=TIMEOUT_S)
        counters = worker_counters(self.env.worker.metrics_port)
        pressure = counters["evictions_by_reason"].get("pressure", 0.0)
        previous = self.steps[-1]["pressure_evictions_total"] if self.steps else pressure
        step = {"step": label, **memory_figures(self.nvml, self.env.worker.pid),
                "worker_gpu_free_bytes": counters["gpu_free_bytes"],
                "worker_free_fraction": held.load.memory_free_fraction,
                "models_held": [m.model_id for m in held.models],
                "evictions_by_reason": counters["evictions_by_reason"],
                "pressure_evictions_total": pressure, "pressure_evictions": pressure - previous}
        self.steps.append(step)
        return step


async def run(env: BenchEnv, provider: str, models: int) -> dict[str, Any]:
    """Load ``models`` copies of the package (and two more on CUDA) and report how the worker evicted."""
    ids = churn_ids(models + 2)
    nvml = Nvml.open() if provider == "cuda" else None
    async with WorkerCaller(env.worker.address, env.package.descriptor(MODEL_ID)) as caller:
        rec = Recorder(env, caller.stub, nvml)
        await rec.step("start")
        if provider == "cuda":
            outcome = await _on_device(rec, ids, models, nvml)
        else:
            outcome = await _on_host(rec, ids[:models])
    return {**outcome, "provider": provider, "models_loaded": len(rec.providers), "load_providers": rec.providers,
            "steps": rec.steps}


async def _on_host(rec: Recorder, ids: list[str]) -> dict[str, Any]:
    for model_id in ids:
        await rec.load(model_id)
        await rec.step(f"loaded {model_id}")
    evicted = sum(s["pressure_evictions"] for s in rec.steps)
    return {"mode": "host memory pressure", "threshold": CPU_THRESHOLD, "ok": evicted >= len(ids) - 1,
            "pressure_evictions": evicted,
            "note": "CPU run: no device memory to fill; the threshold is above the host's free fraction, so each "
                    "load evicts the older models by host-memory pressure (the same path, host figures)"}


async def _on_device(rec: Recorder, ids: list[str], models: int, nvml: Nvml | None) -> dict[str, Any]:
    if nvml is None or not nvml.devices:
        return {"mode": "device memory pressure", "ok": False, "skipped": "NVML does not answer in this process"}
    for model_id in ids[:models]:
        await rec.load(model_id)
    calm = await rec.step(f"{models} models loaded, GPU mostly free")
    with DeviceBallast() as ballast:
        target_free = int((CUDA_THRESHOLD - BALLAST_BELOW) * calm["nvml_total_bytes"])
        ballast.take(max(0, calm["nvml_free_bytes"] - target_free))
        await rec.step(f"ballast of {ballast.bytes / 2**30:.1f} GiB taken (cudaMalloc)")
        await rec.load(ids[models])
        pressed = await rec.step(f"{ids[models]} loaded under pressure")
    freed = await rec.step("ballast freed")
    await rec.load(ids[models + 1])
    after = await rec.step(f"{ids[models + 1]} loaded, GPU free again")
    ok = calm["pressure_evictions"] == 0 and pressed["pressure_evictions"] >= 1 and after["pressure_evictions"] == 0
    return {"mode": "device memory pressure", "threshold": CUDA_THRESHOLD, "ok": ok,
            "pressure_evictions": pressed["pressure_evictions"],
            # GPU memory in use with every model held, and once the evicted ones closed (ballast freed)
            "nvml_used_bytes_all_held": calm["nvml_used_bytes"],
            "nvml_used_bytes_after_evictions": freed["nvml_used_bytes"],
            "note": "evictions expected only while the ballast holds the GPU below the threshold"}
