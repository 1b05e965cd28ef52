"""Regenerate the committed Python stubs (fleet/v1/, fleet/internal/v1/, fleet_oip/v2/) from protos/.

Usage: python scripts/gen_protos.py [--out DIR]   (default: the repository root)

The stubs are generated with one pinned toolchain, grpcio-tools 1.72.1, whose protoc writes
gencode for protobuf 6.30.0: the Python protobuf runtime accepts gencode of its own version or
older, so these stubs import on every runtime from 6.30 to 7.x (tritonclient, for one, needs
protobuf < 7), and the gRPC stubs on grpcio >= 1.72.1. That toolchain cannot live in the
development venv (it needs protobuf < 7), so this script keeps it in a venv of its own
(``.venv-protos``, or ``$FLEET_PROTOS_VENV``), made on first use, and re-runs itself there.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GRPCIO_TOOLS = "1.72.1"
# fleet_oip/v2: the Open Inference Protocol (package `inference`), served by the gateway only; its Python
# package is fleet_oip, never a top-level `inference` (the name of Roboflow's distribution).
PACKAGES = ("fleet/v1", "fleet/internal/v1", "fleet_oip/v2")


def _toolchain_python() -> Path:
    env_dir = Path(os.environ.get("FLEET_PROTOS_VENV", ROOT / ".venv-protos"))
    python = env_dir / "bin" / "python"
    stamp = env_dir / f".grpcio-tools-{GRPCIO_TOOLS}"
    if not stamp.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        f"grpcio-tools=={GRPCIO_TOOLS}"], check=True)
        stamp.touch()
    return python


def _has_toolchain() -> bool:
    try:
        from importlib.metadata import version  # noqa: PLC0415

        return version("grpcio-tools") == GRPCIO_TOOLS
    except Exception:  # noqa: BLE001 - not installed
        return False


def generate(out: Path) -> None:
    from importlib import resources  # noqa: PLC0415

    from grpc_tools import protoc  # noqa: PLC0415

    out.mkdir(parents=True, exist_ok=True)
    files = sorted(str(p.relative_to(PROTOS)) for pkg in PACKAGES for p in (PROTOS / pkg).glob("*.proto"))
    well_known = str(resources.files("grpc_tools") / "_proto")
    args = ["protoc", f"-I{PROTOS}", f"-I{well_known}", f"--python_out={out}", f"--pyi_out={out}",
            f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    for pkg in PACKAGES:
        parts = Path(pkg).parts
        for depth in range(1, len(parts) + 1):
            (out.joinpath(*parts[:depth]) / "__init__.py").touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT)
    args = parser.parse_args()
    if not _has_toolchain():
        python = _toolchain_python()
        sys.exit(subprocess.run([str(python), __file__, "--out", str(args.out.resolve())]).returncode)
    generate(args.out)


if __name__ == "__main__":
    main()
