"""GPU memory through NVML (the ``nvidia-ml-py`` package, in the ``gpu`` extra), never through torch.

``nvml()`` opens NVML once per process and returns ``None`` when the package is not installed or
no driver / GPU answers; then the GPU gauges are simply not exported and memory pressure falls
back to host memory. Devices follow ``CUDA_VISIBLE_DEVICES`` (indices or ``GPU-`` UUIDs) when it
is set; label ``gpu`` is the CUDA index the worker sees (0 is the device ONNX Runtime uses by
default). NVML counts devices in PCI order: set ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` where a machine
has several GPUs and indices must agree.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("fleet.worker.gpu")


@dataclass(frozen=True)
class GpuMemory:
    index: str
    uuid: str
    used: int
    free: int
    total: int


class Nvml:
    """The visible GPUs, as NVML handles."""

    def __init__(self, module: Any, devices: list[tuple[str, str, Any]]) -> None:
        self._nvml, self.devices = module, devices  # (CUDA index, uuid, handle)

    @classmethod
    def open(cls) -> Nvml | None:
        try:
            import pynvml  # noqa: PLC0415 - optional: the gpu extra
        except ImportError:
            return None
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            by_uuid = {_text(pynvml.nvmlDeviceGetUUID(h)): h for h in handles}
        except pynvml.NVMLError as exc:
            log.info("NVML unavailable (%s); no GPU memory metrics", exc)
            return None
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        chosen: list[tuple[str, Any]] = []
        for entry in [e.strip() for e in visible.split(",")] if visible is not None else [str(i) for i in range(count)]:
            if entry.isdigit() and int(entry) < count:
                chosen.append((_text(pynvml.nvmlDeviceGetUUID(handles[int(entry)])), handles[int(entry)]))
            elif entry in by_uuid:
                chosen.append((entry, by_uuid[entry]))
            elif entry:
                break  # CUDA stops at the first entry it cannot use
        return cls(pynvml, [(str(i), uuid, handle) for i, (uuid, handle) in enumerate(chosen)])

    def memory(self) -> list[GpuMemory]:
        out = []
        for index, uuid, handle in self.devices:
            info = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            out.append(GpuMemory(index, uuid, int(info.used), int(info.free), int(info.total)))
        return out

    def free_total(self, index: int = 0) -> tuple[int, int] | None:
        """(free, total) bytes of the CUDA device ``index``; None if it is not there or NVML fails."""
        if index >= len(self.devices):
            return None
        try:
            info = self._nvml.nvmlDeviceGetMemoryInfo(self.devices[index][2])
        except self._nvml.NVMLError:
            return None
        return int(info.free), int(info.total)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


_lock = threading.Lock()
_opened = False
_instance: Nvml | None = None


def nvml() -> Nvml | None:
    """The process's NVML view, opened on first use (None without the package or a GPU)."""
    global _opened, _instance  # noqa: PLW0603 - one per process
    with _lock:
        if not _opened:
            _instance, _opened = Nvml.open(), True
        return _instance


class GpuMemoryCollector(Collector):
    """fleet_worker_gpu_memory_{used,free,total}_bytes{gpu,uuid}, read from NVML at each scrape."""

    def __init__(self, source: Nvml) -> None:
        self.source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {
            kind: GaugeMetricFamily(f"fleet_worker_gpu_memory_{kind}_bytes", f"GPU memory {kind}, from NVML.",
                                    labels=["gpu", "uuid"])
            for kind in ("used", "free", "total")
        }
        try:
            for m in self.source.memory():
                for kind, family in families.items():
                    family.add_metric([m.index, m.uuid], getattr(m, kind))
        except Exception as exc:  # noqa: BLE001 - a failed read skips this scrape's GPU samples
            log.debug("NVML read failed: %s", exc)
            return
        yield from families.values()


_exported: GpuMemoryCollector | None = None


def export_memory_metrics(source: Nvml | None) -> bool:
    """Register the GPU memory gauges once per process when NVML is there; whether they are exported."""
    global _exported  # noqa: PLW0603
    with _lock:
        if source is None:
            return _exported is not None
        if _exported is None:
            _exported = GpuMemoryCollector(source)
            REGISTRY.register(_exported)
        return True
