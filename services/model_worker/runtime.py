"""ONNX Runtime sessions: provider choice, validation against the package, footprint.

CUDA is used only when the session really runs on it (``session.get_providers()``),
never merely because the provider is installed.

On CPUs, with ``adaptive_threads``, a model under load gets a second session: the first,
with every intra-op thread, serves a request that finds the model idle (the lowest latency
alone); the second, with a single intra-op thread, runs the batches formed under load,
several at once (as many as the threads the first may use: the intra-op setting, else
every usable CPU). A run spread over threads stalls whenever one of them is preempted by
decoding or post-processing on the same cores; runs of one thread each do not, and under
load every core has work anyway. The second session is opened only once a batch has
formed (``open_batch_session``: a cold start, and a model that never sees concurrent
requests, pay for one), from the weights re-read and checked against their sha256; its
memory is then part of the model's footprint.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

from services.common.errors import ModelLoadError
from services.common.model_checks import check_input, check_output_shapes, output_names
from services.common.model_spec import ModelSpec
from services.model_worker.gpu import nvml
from services.model_worker.limits import usable_cpus

try:
    import onnxruntime as ort
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "the model worker needs ONNX Runtime: pip install 'inference-fleet[cpu]' (or [gpu] on CUDA machines)"
    ) from exc

log = logging.getLogger("fleet.worker.runtime")

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

# Session creation is serialized so each model's memory delta is its own.
_CREATE_LOCK = threading.Lock()


def requested_providers(mode: str, available: list[str]) -> list[str]:
    """Providers to ask ONNX Runtime for, best first, given the setting and what is installed."""
    if mode != "cpu" and CUDA in available:
        return [CUDA, CPU]
    if mode == "cuda":
        log.warning("CUDA requested but CUDAExecutionProvider is not installed; using CPU")
    return [CPU]


def available_providers() -> list[str]:
    return list(ort.get_available_providers())


def device_free_bytes() -> tuple[int, int] | None:
    """(free, total) memory of the GPU sessions run on (CUDA device 0), from NVML; None without one."""
    source = nvml()
    return source.free_total(0) if source is not None else None


@dataclass(frozen=True)
class RuntimeOptions:
    execution_provider: str = "auto"
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    max_batch_size: int = 16
    allow_spinning: bool = False
    adaptive_threads: bool = False  # on CPU: a second, one-thread session for batches (see the module)


@dataclass(frozen=True)
class BatchSource:
    """What a model's one-thread batch session is opened from, when it is wanted."""

    path: Path
    spec: ModelSpec  # its weights' sha256 is what the file must still hold
    options: RuntimeOptions
    providers: list[str]
    runs: int  # one-thread runs at once


@dataclass
class Session:
    """An opened, validated model."""

    session: ort.InferenceSession
    input_name: str
    output_names: list[str]
    provider: str
    max_batch_size: int
    host_bytes: int
    device_bytes: int
    batch_source: BatchSource | None = None  # set where a one-thread batch session would help
    batch_session: ort.InferenceSession | None = None  # one intra-op thread: for batches under load
    batch_bytes: int = 0  # host memory the batch session takes (in host_bytes)
    _wide_batches: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def size_bytes(self) -> int:
        return self.host_bytes + self.device_bytes

    @property
    def batch_runs(self) -> int:
        """Batches worth running at once: one per thread with a batch session (to be), else 1."""
        return self.batch_source.runs if self.batch_source is not None else 1

    @property
    def wants_batch_session(self) -> bool:
        return self.batch_source is not None and self.batch_session is None

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """A run on the session with every intra-op thread (a request alone)."""
        return self.session.run(self.output_names, {self.input_name: batch})

    def run_batch(self, batch: np.ndarray) -> list[np.ndarray]:
        """A run of a batch formed under load: on the one-thread session, or (until it is open, or
        without one) on the wide session, one batch at a time."""
        narrow = self.batch_session
        if narrow is not None:
            return narrow.run(self.output_names, {self.input_name: batch})
        with self._wide_batches:
            return self.run(batch)

    def run_background(self, batch: np.ndarray) -> list[np.ndarray]:
        """A run of a background batch: on the one-thread session (in the calling thread, whose lowered
        priority it keeps), else on the wide session without waiting for the interactive batches' turn.
        Also an interactive request's run beside background work (``Pipeline``): one thread, which no other
        thread on the cores can stall."""
        narrow = self.batch_session
        if narrow is not None:
            return narrow.run(self.output_names, {self.input_name: batch})
        return self.run(batch)

    def open_batch_session(self) -> tuple[ort.InferenceSession, int]:
        """Open the one-thread batch session (blocking: in a loader thread): (session, bytes it takes).
        Raises ModelLoadError when the weights changed on disk since the load or do not open."""
        source = self.batch_source
        if source is None:
            raise ModelLoadError("this model has no batch session to open")
        try:
            weights = source.path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"the model's weights are no longer readable ({type(exc).__name__})") from None
        if hashlib.sha256(weights).hexdigest() != source.spec.weights.sha256:
            raise ModelLoadError("the model's weights changed on disk since it was loaded")
        process = psutil.Process()
        with _CREATE_LOCK:
            rss_before = process.memory_info().rss
            sess = _create(weights, _session_options(source.options, 1), source.providers)
            size = len(weights)
            del weights
            _warm_up(sess, source.spec, self.input_name, self.output_names)
            grown = max(process.memory_info().rss - rss_before, size)  # the weights' size is the floor
        return sess, grown

    def attach_batch_session(self, sess: ort.InferenceSession, size_bytes: int) -> None:
        self.batch_session, self.batch_bytes = sess, size_bytes
        self.host_bytes += size_bytes

    def drop_batch_session(self) -> int:
        """Close the batch session and never open another (memory is short): the bytes it took."""
        self.batch_source = None
        freed, self.batch_session, self.batch_bytes = self.batch_bytes, None, 0
        self.host_bytes -= freed
        return freed


def _check_input(spec: ModelSpec, sess: ort.InferenceSession) -> tuple[str, int | None]:
    """The input's name (model.json's, or the ONNX file's only input) and its fixed batch size, if any."""
    inputs = sess.get_inputs()
    name = inputs[0].name if inputs else ""
    shape = list(inputs[0].shape) if inputs else []
    return name, check_input(spec, name, shape, sess.get_modelmeta().custom_metadata_map, count=len(inputs))


def _session_options(options: RuntimeOptions, intra_op_threads: int) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if intra_op_threads:
        so.intra_op_num_threads = intra_op_threads
    if options.inter_op_threads:
        so.inter_op_num_threads = options.inter_op_threads
    if not options.allow_spinning:
        # ONNX Runtime's threads spin between the operators of a run (which keeps a run fast) and,
        # by default, for a while after it. Stop them when a run ends, so idle spinning does not
        # take the CPU that decoding, post-processing and gRPC need.
        so.add_session_config_entry("session.force_spinning_stop", "1")
    return so


def _create(model: Path | bytes, so: ort.SessionOptions, providers: list[str]) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(model if isinstance(model, bytes) else str(model), so, providers=providers)
    except Exception as exc:  # noqa: BLE001 - ORT raises several unrelated types
        # ONNX Runtime names the file it read
        detail = str(exc) if isinstance(model, bytes) else str(exc).replace(str(model), "<model file>")
        raise ModelLoadError(f"ONNX Runtime could not open the model ({type(exc).__name__}): "
                             f"{detail[:300]}") from None


def _warm_up(sess: ort.InferenceSession, spec: ModelSpec, input_name: str, names: list[str]) -> None:
    """One run checks the real output shapes and settles the memory arenas."""
    dummy = np.zeros((1, 3, spec.input.height, spec.input.width), dtype=np.float32)
    try:
        outputs = sess.run(names, {input_name: dummy})
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"the model failed its warm-up run: {str(exc)[:300]}") from None
    check_output_shapes(spec, [o.shape[1:] for o in outputs])


def _batch_cpus(options: RuntimeOptions, provider: str) -> int:
    """How many one-thread batch runs the model gets (0: no second session): as many as the threads
    one wide run may use (the intra-op setting, else every usable CPU)."""
    if not options.adaptive_threads or provider != CPU:
        return 0
    cpus = options.intra_op_threads or usable_cpus()
    return cpus if cpus > 1 else 0


@dataclass
class _Footprint:
    """Memory a session opened inside ``measured`` took: host RSS (at least its file's size) and device bytes."""

    host_bytes: int = 0
    device_bytes: int = 0


@contextlib.contextmanager
def measured(path: Path, providers: list[str]) -> Iterator[_Footprint]:
    """Serialize a session's creation and measure what it took (RSS can understate a model that reuses memory
    an evicted one freed, so its file's size is the floor)."""
    process = psutil.Process()
    footprint = _Footprint()
    with _CREATE_LOCK:
        rss_before = process.memory_info().rss
        gpu_before = device_free_bytes() if CUDA in providers else None
        yield footprint
        footprint.host_bytes = max(process.memory_info().rss - rss_before, path.stat().st_size)
        gpu_after = device_free_bytes() if gpu_before else None
    footprint.device_bytes = max(0, gpu_before[0] - gpu_after[0]) if gpu_before and gpu_after else 0


def open_session(path: Path, spec: ModelSpec, options: RuntimeOptions) -> Session:
    """Open and validate a model; raise ModelLoadError with an actionable message."""
    providers = requested_providers(options.execution_provider, available_providers())
    with measured(path, providers) as footprint:
        sess = _create(path, _session_options(options, options.intra_op_threads), providers)
        input_name, fixed_batch = _check_input(spec, sess)
        names = output_names(spec, [o.name for o in sess.get_outputs()])
        shapes = {o.name: list(o.shape)[1:] for o in sess.get_outputs()}
        check_output_shapes(spec, [shapes[n] for n in names])
        _warm_up(sess, spec, input_name, names)
    host_bytes, device_bytes = footprint.host_bytes, footprint.device_bytes
    provider = sess.get_providers()[0]
    batch_runs = _batch_cpus(options, provider)
    source = BatchSource(path, spec, options, providers, batch_runs) if batch_runs else None
    if providers[0] == CUDA and provider != CUDA:
        log.warning("CUDA was requested but the session fell back to %s", provider)
    max_batch = min(options.max_batch_size, spec.batch.max_batch_size, fixed_batch or options.max_batch_size)
    return Session(sess, input_name, names, provider, max(1, max_batch), host_bytes, device_bytes, source)


@dataclass
class Graph:
    """One more ONNX graph of a model (an encoder's prompt decoder, a text encoder): run with named inputs.
    Its task checks its inputs and outputs; the worker only opens it and counts its memory."""

    session: ort.InferenceSession
    input_names: list[str]
    output_names: list[str]
    provider: str
    host_bytes: int
    device_bytes: int

    @property
    def size_bytes(self) -> int:
        return self.host_bytes + self.device_bytes

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.output_names, feeds)


def open_graph(path: Path, options: RuntimeOptions) -> Graph:
    """Open a model's further graph (blocking: in a loader thread), measuring its footprint as open_session does."""
    providers = requested_providers(options.execution_provider, available_providers())
    with measured(path, providers) as footprint:
        sess = _create(path, _session_options(options, options.intra_op_threads), providers)
    return Graph(sess, [i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()],
                 sess.get_providers()[0], footprint.host_bytes, footprint.device_bytes)
