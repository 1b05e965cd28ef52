"""Execution providers: CUDA only when the session really runs on it; CPU otherwise."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from services.common.errors import ModelLoadError
from services.common.model_spec import ModelSpec
from services.model_worker.runtime import CPU, CUDA, RuntimeOptions, open_session, requested_providers
from tests.onnx_factory import write_package, yolov8_like


@pytest.mark.parametrize("mode,available,expected", [
    ("auto", [CUDA, CPU], [CUDA, CPU]),
    ("auto", [CPU], [CPU]),
    ("cuda", [CUDA, CPU], [CUDA, CPU]),
    ("cpu", [CUDA, CPU], [CPU]),
    ("cuda", [CPU], [CPU]),
])
def test_requested_providers(mode: str, available: list[str], expected: list[str]) -> None:
    assert requested_providers(mode, available) == expected


def test_cuda_requested_without_a_gpu_warns_and_runs_on_cpu(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert requested_providers("cuda", [CPU]) == [CPU]
    assert "CUDA requested" in caplog.text


def test_the_session_reports_the_provider_it_really_got(tmp_path: Path) -> None:
    pkg = write_package(tmp_path / "m", yolov8_like())
    session = open_session(pkg / "model.onnx", ModelSpec.from_package(pkg),
                           RuntimeOptions(execution_provider="cuda", max_batch_size=4))
    assert session.provider == session.session.get_providers()[0]
    assert session.provider in (CPU, CUDA)
    assert session.max_batch_size == 4  # min(settings 4, package 8)
    assert session.size_bytes >= (pkg / "model.onnx").stat().st_size


def test_a_fixed_batch_dimension_limits_batches(tmp_path: Path) -> None:
    import onnx

    model = onnx.load_from_string(yolov8_like())
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 1
    pkg = write_package(tmp_path / "fixed", model.SerializeToString())
    session = open_session(pkg / "model.onnx", ModelSpec.from_package(pkg), RuntimeOptions(max_batch_size=16))
    assert session.max_batch_size == 1


def test_adaptive_threads_open_a_one_thread_session_for_batches_when_asked(tmp_path: Path, monkeypatch) -> None:
    import numpy as np

    from services.model_worker import runtime

    monkeypatch.setattr(runtime, "usable_cpus", lambda: 3)
    pkg = write_package(tmp_path / "m", yolov8_like())
    weights = pkg / "model.onnx"
    spec = ModelSpec.from_package(pkg)
    plain = open_session(weights, spec, RuntimeOptions(execution_provider="cpu"))
    adaptive = open_session(weights, spec, RuntimeOptions(execution_provider="cpu", adaptive_threads=True))
    assert not plain.wants_batch_session and plain.batch_runs == 1
    # Loaded with one session (a cold start costs one); the second is opened when a batch forms.
    assert adaptive.wants_batch_session and adaptive.batch_session is None and adaptive.batch_runs == 3
    assert adaptive.session.get_session_options().intra_op_num_threads == 0  # ONNX Runtime's default: every core
    first = adaptive.host_bytes
    adaptive.attach_batch_session(*adaptive.open_batch_session())
    assert adaptive.batch_session.get_session_options().intra_op_num_threads == 1
    assert adaptive.host_bytes - first == adaptive.batch_bytes >= weights.stat().st_size
    batch = np.random.default_rng(0).random((3, 3, spec.input.height, spec.input.width), dtype=np.float32)
    for wide, narrow in zip(adaptive.run(batch), adaptive.run_batch(batch)):
        np.testing.assert_allclose(wide, narrow, rtol=1e-4, atol=1e-4)
    assert adaptive.drop_batch_session() > 0 and adaptive.host_bytes == first
    assert not adaptive.wants_batch_session and adaptive.batch_runs == 1


def test_a_batch_session_is_not_opened_from_weights_changed_since_the_load(tmp_path: Path, monkeypatch) -> None:
    from services.model_worker import runtime

    monkeypatch.setattr(runtime, "usable_cpus", lambda: 2)
    pkg = write_package(tmp_path / "m", yolov8_like())
    session = open_session(pkg / "model.onnx", ModelSpec.from_package(pkg),
                           RuntimeOptions(execution_provider="cpu", adaptive_threads=True))
    (pkg / "model.onnx").write_bytes(yolov8_like(seed=7))
    with pytest.raises(ModelLoadError, match="changed on disk"):
        session.open_batch_session()
    (pkg / "model.onnx").unlink()
    with pytest.raises(ModelLoadError, match="no longer readable"):
        session.open_batch_session()


@pytest.mark.parametrize("options,cpus", [
    (RuntimeOptions(execution_provider="cpu", adaptive_threads=True, intra_op_threads=1), 4),  # already one thread
    (RuntimeOptions(execution_provider="cpu", adaptive_threads=True), 1),  # one CPU: nothing to spread
    (RuntimeOptions(execution_provider="cpu", adaptive_threads=False), 4),
])
def test_no_batch_session_where_it_would_be_the_same(tmp_path: Path, monkeypatch, options, cpus: int) -> None:
    from services.model_worker import runtime

    monkeypatch.setattr(runtime, "usable_cpus", lambda: cpus)
    pkg = write_package(tmp_path / "m", yolov8_like())
    session = open_session(pkg / "model.onnx", ModelSpec.from_package(pkg), options)
    assert not session.wants_batch_session and session.batch_runs == 1


def test_batch_runs_follow_the_intra_op_setting_where_it_is_set(tmp_path: Path, monkeypatch) -> None:
    """A pod whose CPU quota exceeds its request: the runs stay within the threads the setting grants."""
    from services.model_worker import runtime

    monkeypatch.setattr(runtime, "usable_cpus", lambda: 8)
    pkg = write_package(tmp_path / "m", yolov8_like())
    session = open_session(pkg / "model.onnx", ModelSpec.from_package(pkg),
                           RuntimeOptions(execution_provider="cpu", adaptive_threads=True, intra_op_threads=2))
    assert session.session.get_session_options().intra_op_num_threads == 2
    assert session.wants_batch_session and session.batch_runs == 2
