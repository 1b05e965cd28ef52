"""Writes models/packages/pp-ocr/ (det.onnx, cls.onnx, rec.onnx, model.json) from a rapidocr wheel.

    .venv/bin/pip download --no-deps rapidocr_onnxruntime==1.4.4 -d /tmp/wheels
    .venv/bin/python scripts/fetch_ppocr.py /tmp/wheels/rapidocr_onnxruntime-1.4.4-py3-none-any.whl

The wheel (Apache-2.0, RapidAI/RapidOCR) ships PaddleOCR's PP-OCRv4 mobile text detector and
recogniser (Chinese + English + digits) and the v2.0 mobile 0/180 degree angle classifier,
converted to ONNX by paddle2onnx. The recogniser's character dictionary is in its ONNX metadata
(key ``character``, one character a line; the decoder puts the CTC blank before it and a space
after it), so no keys file is needed; the script checks it matches the recogniser's class count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from pathlib import Path

import onnx

OUT = Path(__file__).resolve().parent.parent / "models" / "packages" / "pp-ocr"
MEMBERS = {
    "det.onnx": "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
    "cls.onnx": "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
    "rec.onnx": "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
}
DICT_KEY = "character"


def _io(model: onnx.ModelProto) -> dict[str, dict[str, list]]:
    def shape(value: onnx.ValueInfoProto) -> list:
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                for d in value.type.tensor_type.shape.dim]
    return {"inputs": {i.name: shape(i) for i in model.graph.input},
            "outputs": {o.name: shape(o) for o in model.graph.output}}


def _dictionary_size(rec: onnx.ModelProto) -> int:
    meta = {p.key: p.value for p in rec.metadata_props}
    if DICT_KEY not in meta:
        raise SystemExit(f"the recogniser has no {DICT_KEY!r} metadata; this wheel needs a separate keys file")
    characters = meta[DICT_KEY].splitlines()
    classes = rec.graph.output[0].type.tensor_type.shape.dim[-1].dim_value
    if classes != len(characters) + 2:
        raise SystemExit(f"dictionary has {len(characters)} characters; the recogniser has {classes} classes "
                         "(expected characters + blank + space)")
    return len(characters)


def write_package(wheel: Path, out: Path = OUT) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    with zipfile.ZipFile(wheel) as archive:
        for name, member in MEMBERS.items():
            data = archive.read(member)
            (out / name).write_bytes(data)
            model = onnx.load_from_string(data)
            files[name.removesuffix(".onnx")] = {
                "file": name, "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data),
                "source": member, "opset": model.opset_import[0].version, **_io(model)}
    rec = onnx.load(str(out / "rec.onnx"))

    def weights(name: str) -> dict:
        return {k: files[name][k] for k in ("file", "sha256", "size_bytes")}

    # The fleet's format: the detector is the first graph (its input size only bounds the warm-up run: the OCR
    # task resizes pages itself, longest side 960, multiples of 32); classifier and recogniser further graphs.
    document = {
        "format_version": 1,
        "name": "pp-ocr",
        "task_type": "ocr",
        "model_type": "pp-ocr",
        "input": {"name": "x", "width": 640, "height": 640, "resize_mode": "stretch"},
        "batch": {"max_batch_size": 1},
        "weights": weights("det"),
        "graphs": {"cls": weights("cls"), "rec": weights("rec")},
        "options": {"rec_graph": "rec", "cls_graph": "cls", "dictionary_key": DICT_KEY, "text_score": 0.5},
        "provenance": {
            "wheel": wheel.name, "upstream": "PaddlePaddle/PaddleOCR PP-OCRv4 (mobile), converted by RapidAI/RapidOCR",
            "license": "Apache-2.0", "graphs": files,
            "dictionary": {"source": f"rec.onnx metadata '{DICT_KEY}'", "characters": _dictionary_size(rec),
                           "blank_index": 0, "space_appended": True},
            "preprocessing": {
                "color_order": "bgr",
                "det": {"limit_side_len": 960, "limit_type": "max", "multiple": 32, "scale": 1 / 255,
                        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
                "cls": {"height": 48, "width": 192, "scale": 1 / 255, "mean": [0.5] * 3, "std": [0.5] * 3},
                "rec": {"height": 48, "min_width": 320, "scale": 1 / 255, "mean": [0.5] * 3, "std": [0.5] * 3},
            },
            "defaults": {"det_threshold": 0.3, "box_threshold": 0.6, "unclip_ratio": 1.5, "cls_threshold": 0.9},
        },
    }
    (out / "model.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return document


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="a downloaded rapidocr_onnxruntime wheel")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    document = write_package(args.wheel, args.out)
    total = sum(g["size_bytes"] for g in document["graphs"].values())
    characters = document["dictionary"]["characters"]
    print(f"wrote {args.out} ({total / 1e6:.1f} MB, {characters} characters)", file=sys.stderr)


if __name__ == "__main__":
    main()
