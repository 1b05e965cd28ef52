"""Exports that carry their own package draft: the reference exporters' (OpenCLIP, segment-anything).

``services.packaging.openclip_export`` and ``sam_export`` write the model.json they mean (task, model type,
the reference's exact preprocessing, typed inputs, options) into the first graph's metadata
(``fleet.package``) and name the files beside it that belong to the model (``fleet.files``: further graphs
and assets). ``fleet package`` reads both here with the ``onnx`` package, torch never needed, and the
writer copies each file into the package with its digest. ``openclip:NAME`` and ``sam:VARIANT`` as the
source run the exporter first (the ``reference`` extra).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.errors import ModelPackageError
from services.packaging.exports import ExportInfo

PACKAGE_KEY, FILES_KEY = "fleet.package", "fleet.files"  # as services.packaging.torch_export writes them
REFERENCE_EXTRA = "pip install 'inference-fleet[reference]' torch==2.13.0"
EXPORTERS = {"openclip": "services.packaging.openclip_export", "sam": "services.packaging.sam_export"}


@dataclass(frozen=True)
class Draft:
    document: dict[str, Any]  # model.json without the files' digests
    graphs: dict[str, Path]  # further ONNX graphs, by name
    assets: dict[str, Path]  # other files, by name


def _files(info: ExportInfo, kind: str, listed: Any) -> dict[str, Path]:
    if not isinstance(listed, dict) or not all(isinstance(v, str) for v in listed.values()):
        raise ModelPackageError(f"the export's {FILES_KEY} metadata names its {kind} as {{name: file}}")
    found = {}
    for name, file in listed.items():
        path = info.path.parent / file
        if Path(file).name != file or not path.is_file():
            raise ModelPackageError(f"the export names {kind}.{name} = {file!r}, which is not a file beside "
                                    f"{info.path.name}; keep the export's directory together")
        found[name] = path
    return found


def read_draft(info: ExportInfo) -> Draft | None:
    """The draft an export carries, or None for an export without one (Ultralytics, YOLOv5, ...)."""
    if PACKAGE_KEY not in info.metadata:
        return None
    try:
        document = json.loads(info.metadata[PACKAGE_KEY])
        files = json.loads(info.metadata.get(FILES_KEY, "{}"))
    except json.JSONDecodeError:
        raise ModelPackageError(f"the export's {PACKAGE_KEY} metadata is not JSON") from None
    if not isinstance(document, dict) or not isinstance(files, dict):
        raise ModelPackageError(f"the export's {PACKAGE_KEY} and {FILES_KEY} metadata must be JSON objects")
    document = {"format_version": 1, **document}
    document.setdefault("provenance", {})["source"] = info.path.name
    return Draft(document, _files(info, "graphs", files.get("graphs", {})), _files(info, "assets", files.get("assets", {})))


def apply(draft: Draft, name: str | None, max_batch_size: int | None) -> Draft:
    """What the user may still set on a drafted export: its name and the largest batch."""
    document = dict(draft.document)
    if name:
        document["name"] = name
    if max_batch_size:
        document["batch"] = {"max_batch_size": max_batch_size}
    return Draft(document, draft.graphs, draft.assets)


def export_source(source: str, work: Path) -> Path | None:
    """``openclip:NAME`` / ``sam:VARIANT``: run that exporter into ``work``; None for a file path."""
    kind, sep, name = source.partition(":")
    if not sep or kind not in EXPORTERS or not name:
        return None
    import importlib  # noqa: PLC0415

    try:
        module = importlib.import_module(EXPORTERS[kind])
        return module.export(name, work)
    except ImportError as exc:
        raise ModelPackageError(f"exporting {source} needs torch and the model's code ({exc.name or 'torch'} is "
                                f"missing): {REFERENCE_EXTRA}") from None
    except (ValueError, RuntimeError) as exc:
        raise ModelPackageError(f"exporting {source} failed: {str(exc)[:300]}") from None


def temporary_export_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="fleet-export-")
