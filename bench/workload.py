"""The fixed workload: scene JPEGs from fixed seeds and the model under test."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2

from services.demo.scenes import TEST_SEEDS, generate_scene
from fleet.internal.v1 import descriptor_pb2
from services.common import descriptors
from services.common.model_record import ModelRecord
from services.common.model_spec import ModelSpec
from services.model_worker.artifacts import sha256_file

WORKSPACE = "bench"
MODEL_ID = "shapes-det/1"
CLASSIFIER_ID = "shapes-cls/1"  # served when the demo classifier is built (the workflow scenarios crop into it)
CLASSIFIER_PACKAGE = Path(__file__).resolve().parents[1] / "models" / "packages" / "shapes-cls"
JPEG_QUALITY = 90


def scene_jpegs(count: int, seed: int) -> list[bytes]:
    """``count`` JPEG-encoded demo scenes (320..800 px a side), the same for a given seed."""
    images = []
    for i in range(count):
        rgb = generate_scene(TEST_SEEDS + seed % 100_000 + i).image
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        images.append(buf.tobytes())
    return images


@dataclass(frozen=True)
class Package:
    """A model package on disk: its spec, weights path and a record under any id."""

    path: Path

    @functools.cached_property
    def spec(self) -> ModelSpec:  # the package is a private snapshot: read model.json once
        return ModelSpec.from_package(self.path)

    @property
    def weights(self) -> Path:
        return self.path / self.spec.weights.file

    def verified(self) -> bool:
        """The weights' sha256 is the one model.json declares."""
        return sha256_file(self.weights) == self.spec.weights.sha256

    def record(self, model_id: str = MODEL_ID, artifact_uri: str = "") -> ModelRecord:
        return ModelRecord(model_id=model_id, workspace=WORKSPACE, spec=self.spec,
                           artifact_uri=artifact_uri or self.weights.as_uri())

    def descriptor(self, model_id: str = MODEL_ID) -> descriptor_pb2.ModelDescriptor:
        return descriptors.to_proto(self.record(model_id))

    def describe(self) -> dict:
        spec = self.spec
        return {"id": MODEL_ID, "package": str(self.path), "name": spec.name, "model_type": spec.model_type,
                "input": f"{spec.input.width}x{spec.input.height}", "weights_bytes": self.weights.stat().st_size,
                "sha256": spec.weights.sha256}
