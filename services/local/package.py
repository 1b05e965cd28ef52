"""``fleet package MODEL.onnx``: a model package from an export's own metadata.

Needs the ``package`` extra (``onnx``, ``pydantic``), not the server install; ``--check`` runs the
package with the worker's own code and ONNX Runtime, so it needs the server install. The packaging
code is imported when the command runs, so ``fleet --help`` stays fast and names what is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _names(value: str) -> tuple[str, ...]:
    path = Path(value)
    if path.is_file():
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        return tuple(line for line in lines if line)
    return tuple(n.strip() for n in value.split(",") if n.strip())


def _imgsz(value: str) -> tuple[int, int]:
    parts = [int(p) for p in value.replace("x", ",").split(",") if p.strip()]
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise argparse.ArgumentTypeError("use HEIGHT,WIDTH or one number for a square input")


IMAGE_ONLY_TASKS = ("object-detection", "instance-segmentation", "classification", "keypoint-detection",
                    "oriented-detection")
PACKAGE_EXTRA = "pip install 'inference-fleet[package]'"
CHECK_INSTALL = "pip install 'inference-fleet[server,cpu]'"


def run(args: argparse.Namespace) -> int:
    try:
        from fleet.cli.output import response_table  # noqa: PLC0415
        from services.common.errors import FleetError  # noqa: PLC0415
        from services.common.layouts import TaskType  # noqa: PLC0415
        from services.packaging import drafted  # noqa: PLC0415
        from services.packaging.exports import read_export  # noqa: PLC0415
        from services.packaging.inference import Overrides, describe  # noqa: PLC0415
        from services.packaging.writer import check, write_package  # noqa: PLC0415
    except ImportError as exc:
        print(f"fleet package: needs the package extra ({exc.name or 'a dependency'} is missing): {PACKAGE_EXTRA}",
              file=sys.stderr)
        return 2
    kind, _, exported_name = args.model.partition(":")
    from_code = kind in drafted.EXPORTERS and bool(exported_name)
    out = Path(args.out) if args.out else Path.cwd() / (exported_name if from_code else Path(args.model).stem)
    try:
        with drafted.temporary_export_dir() as work:
            source = drafted.export_source(args.model, Path(work)) or Path(args.model)
            info = read_export(source)
            draft = drafted.read_draft(info)
            if draft is not None:  # a reference exporter's: the package as it drafted it
                draft = drafted.apply(draft, args.name, args.max_batch_size)
                spec = write_package(source, draft.document, out, force=args.force, graphs=draft.graphs,
                                     assets=draft.assets)
            else:
                overrides = Overrides(name=args.name, task=TaskType(args.task) if args.task else None,
                                      model_type=args.model_type, class_names=args.names, imgsz=args.imgsz,
                                      max_batch_size=args.max_batch_size)
                spec = write_package(source, describe(info, overrides), out, force=args.force)
        extra = "".join(f", {kind} {sorted(names)}" for kind, names in (("graphs", spec.graphs), ("assets", spec.assets))
                        if names)
        print(f"packaged {args.model} -> {out}\n  {spec.task_type}, model_type {spec.model_type}, "
              f"{spec.num_classes} classes, input {spec.input.width}x{spec.input.height} {spec.input.resize_mode.value}, "
              f"max batch {spec.batch.max_batch_size}, sha256 {spec.weights.sha256[:12]}…, "
              f"{spec.weights.size_bytes} bytes{extra}")
        if args.check and (draft is not None or spec.task_type not in IMAGE_ONLY_TASKS):
            print(f"fleet package --check runs image-only tasks; serve the {spec.task_type} package in {out} and call "
                  "it with `fleet infer` instead", file=sys.stderr)
            return 2
        if args.check:
            print(response_table(check(out, Path(args.check))))
    except ImportError as exc:  # only check() imports more: the worker's code and ONNX Runtime
        print(f"fleet package --check: runs the package with the worker's code and ONNX Runtime, which need the "
              f"server install ({exc.name or 'onnxruntime'} is missing): {CHECK_INSTALL}; the package in {out} "
              "is written and verified without it", file=sys.stderr)
        return 2
    except FleetError as exc:
        print(f"fleet package: {exc.message}", file=sys.stderr)
        return 2
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("package", help="make a model package (model.json + weights) from an ONNX export",
                       description="Read an exported ONNX model (Ultralytics, YOLOv5, YOLOv10 end-to-end, or an "
                                   "OpenCLIP or segment-anything export of services.packaging) and write a model "
                                   "package: layout, classes, input size and batch from the export itself.")
    p.add_argument("model", help="the exported .onnx file, or openclip:NAME / sam:VARIANT to export that reference "
                                 "architecture first (the reference extra: torch, open-clip-torch, segment-anything)")
    p.add_argument("--out", help="package directory (default: ./<model file stem>)")
    p.add_argument("--name", help="the model's name (default: the file's stem)")
    p.add_argument("--task", choices=["object-detection", "instance-segmentation", "classification",
                                      "keypoint-detection", "oriented-detection"],
                   help="the task, when the export does not record it")
    p.add_argument("--model-type", help="the output layout, when the outputs fit several (see docs/model-package.md)")
    p.add_argument("--names", type=_names, help="class names: comma-separated, or a file with one per line "
                                                "(default: the export's `names` metadata)")
    p.add_argument("--imgsz", type=_imgsz, help="HEIGHT,WIDTH of a dynamic-size export without imgsz metadata")
    p.add_argument("--max-batch-size", type=int, help="the largest batch a worker forms (default: the export's "
                                                      "fixed batch, else 16)")
    p.add_argument("--check", metavar="IMAGE", help="run the package once on IMAGE and print the result")
    p.add_argument("--force", action="store_true", help="overwrite an existing package in --out")
    p.set_defaults(func=run)
