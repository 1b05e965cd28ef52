"""What the reference exporters (OpenCLIP, segment-anything) share: torch on the CPU, the ONNX export, and
the fleet's package draft written into the first graph's metadata (read back by ``fleet package``).

Needs the ``reference`` extra. ``torch_cpu`` also lets torchvision's pure-Python part import beside the CPU
torch wheel: PyPI's torchvision is built against CUDA torch, its C extension does not load here, and its
module registers fake kernels for two NMS operators regardless; defining those two operators' schemas
first (never their kernels) is enough for its transforms, which open_clip uses, to import. Nothing here
calls an NMS.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

OPSET = 17
PACKAGE_KEY, FILES_KEY = "fleet.package", "fleet.files"


def torch_cpu(threads: int = 1) -> Any:
    """torch, on ``threads`` CPU threads, with torchvision importable (see the module's doc)."""
    import torch  # noqa: PLC0415

    torch.set_num_threads(threads)
    try:
        import torchvision  # noqa: F401, PLC0415
    except RuntimeError:  # "operator torchvision::nms does not exist": the CUDA wheel's extension did not load
        import sys  # noqa: PLC0415

        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        lib = torch.library.Library("torchvision", "DEF")  # noqa: F841 - kept alive by torch's registry
        for op in ("nms", "qnms"):
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        torch_cpu._torchvision_lib = lib  # type: ignore[attr-defined]
        import torchvision  # noqa: F401, PLC0415, F811
    return torch


def to_onnx(module: Any, args: tuple, path: Path, input_names: list[str], output_names: list[str],
            dynamic_axes: dict[str, dict[int, str]]) -> None:
    """The legacy TorchScript exporter at opset 17, checked by onnx."""
    import onnx  # noqa: PLC0415
    import torch  # noqa: PLC0415

    module.eval()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # nn.MultiheadAttention's fused kernel has no ONNX export
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
            torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                              dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    onnx.checker.check_model(str(path))


def stamp(path: Path, draft: dict[str, Any], files: dict[str, dict[str, str]]) -> None:
    """Write the package draft (model.json without its file digests) and the further files' names
    (``graphs``/``assets``: name -> file beside this one) into the graph's metadata."""
    import onnx  # noqa: PLC0415

    model = onnx.load(str(path))
    for key, value in ((PACKAGE_KEY, draft), (FILES_KEY, files)):
        entry = next((p for p in model.metadata_props if p.key == key), None) or model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(model, str(path))


def command(export: Callable[..., Path], argv: list[str] | None, description: str, subject: str, subject_help: str,
            checkpoint_help: str) -> int:
    """An exporter's command line: ``SUBJECT --out DIR [--checkpoint FILE] [--seed N]``; runs
    ``export(SUBJECT, DIR, checkpoint=, seed=)`` and prints ``{"export": the first graph's path}``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(subject, help=subject_help)
    p.add_argument("--out", required=True, help="the export directory")
    p.add_argument("--checkpoint", type=Path, help=checkpoint_help)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    path = export(getattr(args, subject), Path(args.out), checkpoint=args.checkpoint, seed=args.seed)
    print(json.dumps({"export": str(path)}))
    return 0
