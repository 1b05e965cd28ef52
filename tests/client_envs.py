"""Virtual environments holding a user's client from PyPI beside the fleet's client install.

Each is made once per set of requirements (and version of pyproject.toml) under the git-ignored
``.cache/client-venvs/``, so reruns are quick; a clean checkout (CI) makes them from scratch. The
fleet is installed editable and without extras: its client side (stubs, FleetClient) with only
the base dependencies, resolved by pip together with the user's client.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "client-venvs"
INSTALL_TIMEOUT_S = 900


def client_venv(name: str, requirements: list[str], extras: str = "") -> Path:
    """The python of a venv with ``requirements`` and the fleet's client install (with ``extras``, e.g.
    "reference"), made if missing."""
    key = hashlib.sha256(json.dumps([sys.version, sorted(requirements), *([extras] if extras else []),
                                     (ROOT / "pyproject.toml").read_text()]).encode()).hexdigest()[:12]
    where = CACHE / f"{name}-{key}"
    python = where / "bin" / "python"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (where / ".ready").exists():
            return python
        shutil.rmtree(where, ignore_errors=True)
        for stale in CACHE.glob(f"{name}-*"):  # older versions of the same environment
            shutil.rmtree(stale, ignore_errors=True)
        venv.EnvBuilder(with_pip=True).create(where)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        *requirements, "-e", f"{ROOT}[{extras}]" if extras else str(ROOT)],
                       check=True, timeout=INSTALL_TIMEOUT_S)
        (where / ".ready").touch()
    return python


def run_script(python: Path, script: str, cwd: Path, timeout_s: float = 300) -> dict:
    """Run ``script`` in that venv; it prints one JSON object as its last line, returned here."""
    result = subprocess.run([str(python), "-c", textwrap.dedent(script)], capture_output=True, text=True,
                            timeout=timeout_s, cwd=cwd)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
