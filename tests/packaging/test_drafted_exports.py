"""``fleet package`` on exports that carry their own package draft (the reference exporters' format), made here
with the onnx package: no torch. The real OpenCLIP and SAM exports: test_reference_equality.py."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from fleet.cli.main import main
from services.common.errors import ModelPackageError
from services.common.model_spec import ModelSpec
from services.packaging.drafted import read_draft
from services.packaging.exports import read_export
from services.packaging.torch_export import stamp

DIM = 3
ROOT = Path(__file__).resolve().parents[2]


def fleet(*argv: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    return int(exited.value.code or 0)


def _image_encoder(path: Path) -> None:
    """pixels [N, 3, 32, 32] -> embedding [N, 3] (the mean of each channel)."""
    node = helper.make_node("ReduceMean", ["pixels"], ["embedding"], axes=[2, 3], keepdims=0)
    graph = helper.make_graph(
        [node], "image", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", DIM])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def _text_encoder(path: Path) -> None:
    """tokens [N, 3] int64 -> embedding [N, 3] (the ids as floats)."""
    node = helper.make_node("Cast", ["tokens"], ["embedding"], to=TensorProto.FLOAT)
    graph = helper.make_graph(
        [node], "text", [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", DIM])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", DIM])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


DRAFT = {"task_type": "embedding", "model_type": "clip", "name": "tiny-clip",
         "input": {"name": "pixels", "width": 32, "height": 32, "resize_mode": "resize-center-crop",
                   "interpolation": "pil-bicubic", "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
         "outputs": ["embedding"], "batch": {"max_batch_size": 8},
         "inputs": [{"name": "image", "kind": "image", "required": False},
                    {"name": "text", "kind": "texts", "required": False}],
         "options": {"text_graph": "text_encoder", "context_length": DIM, "logit_scale": 100.0}}


@pytest.fixture
def export(tmp_path: Path) -> Path:
    where = tmp_path / "export"
    where.mkdir()
    _image_encoder(where / "image_encoder.onnx")
    _text_encoder(where / "text_encoder.onnx")
    (where / "vocab.txt.gz").write_bytes(b"not really a vocabulary")
    stamp(where / "image_encoder.onnx", DRAFT, {"graphs": {"text_encoder": "text_encoder.onnx"},
                                                "assets": {"vocab": "vocab.txt.gz"}})
    return where / "image_encoder.onnx"


def test_a_drafted_export_becomes_a_package_with_every_file(export: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pkg"
    assert fleet("package", str(export), "--out", str(out), "--max-batch-size", "4") == 0
    printed = capsys.readouterr().out
    assert "embedding, model_type clip" in printed and "graphs ['text_encoder'], assets ['vocab']" in printed
    spec = ModelSpec.from_package(out)
    assert (spec.name, spec.batch.max_batch_size, spec.input.resize_mode.value) == ("tiny-clip", 4, "resize-center-crop")
    for entry in (spec.weights, spec.graphs["text_encoder"], spec.assets["vocab"]):
        data = (out / entry.file).read_bytes()
        assert entry.sha256 == hashlib.sha256(data).hexdigest() and entry.size_bytes == len(data)
    assert (out / "text_encoder.onnx").read_bytes() == (export.parent / "text_encoder.onnx").read_bytes()
    assert json.loads((out / "model.json").read_text())["provenance"]["source"] == "image_encoder.onnx"


def test_a_file_missing_beside_the_export_is_named(export: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (export.parent / "vocab.txt.gz").unlink()
    assert fleet("package", str(export), "--out", str(tmp_path / "pkg")) == 2
    err = capsys.readouterr().err
    assert "assets.vocab = 'vocab.txt.gz'" in err and "keep the export's directory together" in err
    assert not (tmp_path / "pkg" / "model.json").exists()


def test_a_drafted_file_outside_the_export_directory_is_refused(export: Path) -> None:
    stamp(export, DRAFT, {"graphs": {"text_encoder": "../elsewhere.onnx"}})
    with pytest.raises(ModelPackageError, match="not a file beside"):
        read_draft(read_export(export))


def test_an_invalid_draft_is_refused_before_anything_is_written(export: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    stamp(export, {**DRAFT, "input": {**DRAFT["input"], "width": 48}}, {"graphs": {"text_encoder": "text_encoder.onnx"}})
    assert fleet("package", str(export), "--out", str(tmp_path / "pkg")) == 2
    assert "square" in capsys.readouterr().err
    assert not (tmp_path / "pkg" / "model.json").exists()


def test_check_is_refused_for_a_drafted_task_with_what_to_do(export: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    sample = ROOT / "models" / "samples" / "shapes-1.jpg"
    assert fleet("package", str(export), "--out", str(tmp_path / "pkg"), "--check", str(sample)) == 2
    assert "serve the embedding package" in capsys.readouterr().err
    assert ModelSpec.from_package(tmp_path / "pkg").task_type == "embedding"  # written before the refusal


@pytest.mark.parametrize("source", ["openclip:ViT-B-32", "sam:vit_b"])
def test_exporting_without_torch_names_the_extra(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # as in an install without the reference extra
    assert fleet("package", source, "--out", str(tmp_path / "pkg")) == 2
    err = capsys.readouterr().err
    assert "needs torch and the model's code (torch is missing)" in err and "inference-fleet[reference]" in err
    assert "Traceback" not in err
