"""GPU memory from NVML: absent package or no driver -> no gauges; the NVML path with a stand-in module.

This machine and CI have no GPU, so the NVML path runs against ``FakeNvml``, a stand-in for the
``pynvml`` module (nvidia-ml-py) with the calls the worker makes; the no-driver path runs against
the real package, which is in the dev extra.
"""

from __future__ import annotations

import sys
import types

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from services.model_worker import gpu


class FakeNvml(types.ModuleType):
    """pynvml as far as the worker uses it: two GPUs."""

    class NVMLError(Exception):
        pass

    DEVICES = [("GPU-aaaa", 80 << 30, 60 << 30), ("GPU-bbbb", 40 << 30, 10 << 30)]  # uuid, total, free

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.initialised = False

    def nvmlInit(self) -> None:  # noqa: N802
        self.initialised = True

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.DEVICES)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> bytes:  # noqa: N802 - older releases return bytes
        return self.DEVICES[handle][0].encode()

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> types.SimpleNamespace:  # noqa: N802
        _, total, free = self.DEVICES[handle]
        return types.SimpleNamespace(total=total, free=free, used=total - free)


def test_no_package_means_no_gpu_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails as if nvidia-ml-py were not installed
    assert gpu.Nvml.open() is None
    assert not gpu.export_memory_metrics(None)
    assert b"fleet_worker_gpu_memory" not in generate_latest(REGISTRY)


def test_no_driver_means_no_gpu_metrics() -> None:
    pytest.importorskip("pynvml")
    opened = gpu.Nvml.open()
    if opened is not None:  # a machine with a GPU: the real path
        assert opened.memory() and all(m.total >= m.free for m in opened.memory())
        return
    assert opened is None


def test_memory_of_the_visible_gpus_from_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbbb,0")
    source = gpu.Nvml.open()
    assert source is not None
    assert [(d[0], d[1]) for d in source.devices] == [("0", "GPU-bbbb"), ("1", "GPU-aaaa")]
    assert source.free_total(0) == (10 << 30, 40 << 30)  # CUDA device 0 is the second NVML device here
    assert source.free_total(5) is None
    registry = CollectorRegistry()
    registry.register(gpu.GpuMemoryCollector(source))
    assert registry.get_sample_value("fleet_worker_gpu_memory_used_bytes", {"gpu": "0", "uuid": "GPU-bbbb"}) == 30 << 30
    assert registry.get_sample_value("fleet_worker_gpu_memory_free_bytes", {"gpu": "1", "uuid": "GPU-aaaa"}) == 60 << 30
    assert registry.get_sample_value("fleet_worker_gpu_memory_total_bytes", {"gpu": "1", "uuid": "GPU-aaaa"}) == 80 << 30
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu.Nvml.open().devices == []  # CUDA sees no device: nothing to report


def test_a_failing_read_skips_the_gpu_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    source = gpu.Nvml.open()

    def broken(handle: int) -> None:
        raise fake.NVMLError("GPU is lost")

    monkeypatch.setattr(fake, "nvmlDeviceGetMemoryInfo", broken)
    registry = CollectorRegistry()
    registry.register(gpu.GpuMemoryCollector(source))
    assert b"fleet_worker_gpu_memory" not in generate_latest(registry)
    assert source.free_total(0) is None
