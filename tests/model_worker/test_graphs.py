"""A model of several graphs and files: fetched and checked file by file, held, counted and evicted as one entry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from services.common.errors import ModelPackageError
from services.common.model_record import ModelRecord
from services.common.model_spec import ModelSpec
from tests.model_worker.test_manager import make_manager, packages, record  # noqa: F401 - fixtures
from tests.onnx_factory import write_package, yolov8_like


def _two_graph_package(dest: Path, padding: int = 0) -> Path:
    """A detector whose package also carries a second graph (another detector, bigger) and a vocabulary file."""
    write_package(dest, yolov8_like(seed=1))
    second = yolov8_like(seed=2, padding_bytes=padding)
    (dest / "second.onnx").write_bytes(second)
    (dest / "vocab.txt").write_text("a\nb\n")
    spec = json.loads((dest / "model.json").read_text())
    spec["graphs"] = {"second": {"file": "second.onnx", "sha256": hashlib.sha256(second).hexdigest()}}
    spec["assets"] = {"vocab": {"file": "vocab.txt", "sha256": hashlib.sha256(b"a\nb\n").hexdigest()}}
    (dest / "model.json").write_text(json.dumps(spec))
    return dest


async def test_every_graph_loads_runs_and_counts_in_one_entry(make_manager, tmp_path: Path) -> None:  # noqa: F811
    pkg = _two_graph_package(tmp_path / "two", padding=4 * 1024 * 1024)
    manager = make_manager()
    model, cold = await manager.acquire(record(pkg, "two/1"))
    manager.release(model)
    assert cold and set(model.graphs) == {"second"} and model.assets["vocab"].read_text() == "a\nb\n"
    second = model.graphs["second"]
    out = second.run({second.input_names[0]: np.zeros((1, 3, 64, 64), np.float32)})
    assert out[0].shape == (1, 6, 64)
    assert model.size_bytes >= model.session.size_bytes + 4 * 1024 * 1024  # the bigger graph's weights count
    assert manager.total_bytes == model.size_bytes


async def test_a_changed_file_is_refused_and_changes_the_version(make_manager, tmp_path: Path) -> None:  # noqa: F811
    pkg = _two_graph_package(tmp_path / "two")
    rec = record(pkg, "two/1")
    (pkg / "vocab.txt").write_text("tampered\n")
    with pytest.raises(ModelPackageError):
        await make_manager().acquire(rec)
    spec = ModelSpec.from_package(pkg)
    other = spec.model_copy(update={"assets": {"vocab": spec.assets["vocab"].model_copy(
        update={"sha256": hashlib.sha256(b"tampered\n").hexdigest()})}})
    assert other.sha256 != spec.sha256 and other.weights.sha256 == spec.weights.sha256


async def test_evicting_a_model_drops_all_of_its_graphs(make_manager, tmp_path: Path) -> None:  # noqa: F811
    manager = make_manager(max_models=1)
    two = await manager.load(record(_two_graph_package(tmp_path / "two"), "two/1"))
    other = write_package(tmp_path / "one", yolov8_like(seed=3))
    await manager.load(ModelRecord(model_id="one/1", workspace="demo", spec=ModelSpec.from_package(other),
                                   artifact_uri=(other / "model.onnx").as_uri()))
    assert [m.model_id for m in manager.models()] == ["one/1"] and two[0].retired
    assert manager.total_bytes == manager.get("one/1").size_bytes
