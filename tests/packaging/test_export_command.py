"""The reference exporters' shared command line (``torch_export.command``): parsed without torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.packaging import openclip_export, sam_export, torch_export


def test_the_command_runs_the_export_with_its_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calls = []

    def export(subject: str, out: Path, *, checkpoint: Path | None, seed: int) -> Path:
        calls.append((subject, out, checkpoint, seed))
        return out / "graph.onnx"

    argv = ["vit_tiny", "--out", str(tmp_path), "--checkpoint", "w.pth", "--seed", "3"]
    assert torch_export.command(export, argv, "Export.", "variant", "a variant", "weights") == 0
    assert calls == [("vit_tiny", tmp_path, Path("w.pth"), 3)]
    assert json.loads(capsys.readouterr().out) == {"export": str(tmp_path / "graph.onnx")}


@pytest.mark.parametrize(("module", "subject"), [(openclip_export, "model"), (sam_export, "variant")])
def test_each_exporter_names_its_subject(module: object, subject: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])  # type: ignore[attr-defined]
    assert done.value.code == 0 and "usage: " in capsys.readouterr().out
    with pytest.raises(SystemExit) as missing:
        module.main([])  # type: ignore[attr-defined]
    assert missing.value.code == 2 and f"{subject}, --out" in capsys.readouterr().err
