"""Write a package (weights copied through a temp file, model.json with sha256 and size), verify it
with the checks a worker makes on load (input, outputs, shapes; read with ``onnx``), and optionally
run it once on an image (``check``: the worker's own code and ONNX Runtime, so the server install).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from services.common.errors import ModelPackageError
from services.common.model_checks import check_input, check_output_shapes, output_names
from services.common.model_spec import MODEL_JSON, ModelSpec
from services.packaging.exports import read_export

WEIGHTS_FILE = "model.onnx"


def _copy(source: Path, out_dir: Path, file_name: str) -> dict[str, Any]:
    """Copy ``source`` into the package as ``file_name`` (through a temp file); its weights entry."""
    target = out_dir / file_name
    if source.resolve() != target.resolve():
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".copy.", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
    with target.open("rb") as fh:
        sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
    return {"file": file_name, "sha256": sha256, "size_bytes": target.stat().st_size}


def write_package(source: Path, document: dict[str, Any], out_dir: Path, *, force: bool = False,
                  graphs: dict[str, Path] | None = None, assets: dict[str, Path] | None = None) -> ModelSpec:
    """Copy ``source`` into ``out_dir`` as model.onnx (and ``graphs``/``assets``, each under its own file
    name), write model.json, verify them; returns the spec."""
    if (out_dir / MODEL_JSON).exists() and not force:
        raise ModelPackageError(f"{out_dir / MODEL_JSON} exists; choose another --out or pass --force")
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {**document, "weights": _copy(source, out_dir, WEIGHTS_FILE)}
    if graphs:
        for path in graphs.values():
            read_export(path)  # each further graph well-formed, as the onnx checker sees it
        document["graphs"] = {name: _copy(path, out_dir, path.name) for name, path in graphs.items()}
    if assets:
        document["assets"] = {name: _copy(path, out_dir, path.name) for name, path in assets.items()}
    spec = ModelSpec.from_json(document, source=f"the model.json for {source.name}")
    verify(out_dir / WEIGHTS_FILE, spec)
    (out_dir / MODEL_JSON).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return spec


def verify(weights: Path, spec: ModelSpec) -> None:
    """The worker's load-time checks on the written weights (one input of the described size, the outputs
    the layout reads with shapes that fit it); running the model is ``check``'s part."""
    info = read_export(weights)
    check_input(spec, info.inputs[0].name if info.inputs else "", info.inputs[0].shape if info.inputs else (),
                info.metadata, count=len(info.inputs))
    shapes = {o.name: o.shape[1:] for o in info.outputs}
    check_output_shapes(spec, [shapes[name] for name in output_names(spec, list(shapes))])


def check(package_dir: Path, image: Path) -> Any:
    """Run the package once on an image, as the worker would; returns the fleet.v1 InferResponse.
    Needs the server install and ONNX Runtime (ImportError otherwise)."""
    from services.model_worker.images import ImageInput  # noqa: PLC0415
    from services.model_worker.model_types import model_type  # noqa: PLC0415
    from services.model_worker.pipeline import run_alone  # noqa: PLC0415
    from services.model_worker.processing.decode import ImageLimits  # noqa: PLC0415
    from services.model_worker.processing.params import InferenceParams  # noqa: PLC0415
    from services.model_worker.runtime import RuntimeOptions, open_session  # noqa: PLC0415
    from fleet.v1 import inference_pb2  # noqa: PLC0415

    spec = ModelSpec.from_package(package_dir)
    session = open_session(package_dir / spec.weights.file, spec, RuntimeOptions(execution_provider="cpu"))
    params = InferenceParams().resolve(spec)
    prepared, (result, message, _), infer_s, post_s = run_alone(
        ImageInput(encoded=image.read_bytes()), spec, ImageLimits(), params, session.run)
    task = model_type(spec).task
    response = inference_pb2.InferResponse(
        model_id=spec.name, task_type=task.proto, image_width=prepared.transform.orig_width,
        image_height=prepared.transform.orig_height, timings=inference_pb2.StageTimings(
            inference_ms=infer_s * 1e3, postprocess_ms=post_s * 1e3, batch_size=1))
    task.set_result(response, message)
    return response
