"""The committed demo packages: integrity, model.json schema, ONNX inputs/outputs, dynamic batch."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from services.demo.package import DEMO_PACKAGES, PACKAGES_DIR
from services.model_worker.artifacts import sha256_file
from services.demo.scenes import CLASS_NAMES, TEST_SEEDS, generate_scene  # noqa: F401
from services.common.model_spec import ModelSpec
from services.model_worker.processing.postprocess import check_output_shapes
from services.model_worker.processing.preprocess import preprocess

MAX_ONNX_BYTES = 5 * 1024 * 1024
NUM_POINTS = 40 * 40 + 20 * 20 + 10 * 10
NC = len(CLASS_NAMES)
# Per-image output shapes of each package (batch dimension removed).
EXPECTED_OUTPUTS: dict[str, dict[str, tuple[int, ...]]] = {
    "shapes-det": {"output0": (4 + NC, NUM_POINTS)},
    "shapes-det-v5": {"output0": (NUM_POINTS, 5 + NC)},
    "shapes-seg": {"output0": (4 + NC + 32, NUM_POINTS), "output1": (32, 80, 80)},
    "shapes-cls": {"output0": (NC,)},
    "shapes-pose": {"output0": (4 + 2 + 4 * 3, NUM_POINTS)},  # rectangle, triangle; 4 corners x (x, y, visibility)
    "shapes-obb": {"output0": (4 + 1 + 1, NUM_POINTS)},  # rectangle; angle
}
ACCURACY_TARGETS: dict[str, dict[str, float]] = {
    "shapes-det": {"map50": 0.90},
    "shapes-det-v5": {"map50": 0.90},
    "shapes-seg": {"map50": 0.90, "mask_map50": 0.80},
    "shapes-cls": {"top1": 0.95},
    "shapes-pose": {"oks_ap50": 0.85},
    "shapes-obb": {"obb_ap50": 0.85},
}
NAMES = sorted(DEMO_PACKAGES)


def _session(name: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(PACKAGES_DIR / name / "model.onnx"), options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", NAMES)
def test_weights_match_model_json(name: str) -> None:
    document = json.loads((PACKAGES_DIR / name / "model.json").read_text())
    weights = PACKAGES_DIR / name / document["weights"]["file"]
    assert sha256_file(weights) == document["weights"]["sha256"]
    assert weights.stat().st_size == document["weights"]["size_bytes"] <= MAX_ONNX_BYTES


@pytest.mark.parametrize("name", NAMES)
def test_model_json_is_a_valid_spec(name: str) -> None:
    spec = ModelSpec.from_package(PACKAGES_DIR / name)
    info = DEMO_PACKAGES[name]
    assert (spec.name, spec.task_type, spec.model_type) == (name, info.task_type, info.model_type)
    assert spec.class_names == info.class_names and spec.outputs == info.outputs and not spec.multi_label
    assert (spec.input.width, spec.input.height, spec.input.resize_mode.value) == (
        info.input_size, info.input_size, info.resize_mode
    )  # fmt: skip
    assert spec.batch.max_batch_size >= 3
    # The trainer's module; packages trained before the demo code moved under services/ name its old path.
    assert spec.provenance["trainer"] in ("services.demo.train", "fleet.demo.train")
    assert spec.provenance["train_seconds"] > 0


@pytest.mark.parametrize("name", NAMES)
def test_recorded_accuracy_meets_the_targets(name: str) -> None:
    metrics = ModelSpec.from_package(PACKAGES_DIR / name).metrics
    assert metrics["images"] >= 200 and "held-out" in metrics["dataset"]
    for key, target in ACCURACY_TARGETS[name].items():
        assert metrics[key] >= target, f"{name} {key} = {metrics[key]} < {target}"


@pytest.mark.parametrize("name", NAMES)
def test_onnx_io_names_and_shapes(name: str) -> None:
    spec = ModelSpec.from_package(PACKAGES_DIR / name)
    session = _session(name)
    (model_input,) = session.get_inputs()
    assert model_input.name == "images" and model_input.type == "tensor(float)"
    assert isinstance(model_input.shape[0], str)  # symbolic (dynamic) batch dimension
    assert model_input.shape[1:] == [3, spec.input.height, spec.input.width]
    outputs = {o.name: o for o in session.get_outputs()}
    assert list(outputs) == list(EXPECTED_OUTPUTS[name])
    for output_name, shape in EXPECTED_OUTPUTS[name].items():
        assert isinstance(outputs[output_name].shape[0], str)
        assert tuple(outputs[output_name].shape[1:]) == shape
    check_output_shapes(spec, [o.shape[1:] for o in session.get_outputs()])


@pytest.mark.parametrize("name", NAMES)
def test_dynamic_batch_gives_the_same_outputs(name: str) -> None:
    spec = ModelSpec.from_package(PACKAGES_DIR / name)
    session = _session(name)
    images = [generate_scene(TEST_SEEDS + i).image for i in range(3)]
    batch = np.stack([preprocess(image, spec.input)[0] for image in images])
    single = session.run(None, {"images": batch[1:2]})
    triple = session.run(None, {"images": batch})
    for one, three, shape in zip(single, triple, EXPECTED_OUTPUTS[name].values()):
        assert one.shape == (1, *shape) and three.shape == (3, *shape)
        np.testing.assert_allclose(three[1:2], one, rtol=1e-4, atol=1e-4)
    if spec.task_type == "classification":
        np.testing.assert_allclose(triple[0].sum(axis=1), 1.0, atol=1e-5)  # softmax probabilities
