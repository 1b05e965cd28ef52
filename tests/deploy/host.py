"""What the deploy tests need from this machine: Debian packages, tool venvs, a cache keyed by inputs.

Everything is installed by the tests themselves, idempotently: Debian packages with apt-get
(when root and apt-get are there), Python tools such as checkov into a venv of their own. A test
skips, with the reason printed, only when the machine truly cannot provide a tool.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("FLEET_DEPLOY_TEST_CACHE", REPO_ROOT / "build" / "deploy-test"))


def say(message: str) -> None:
    """Progress for `pytest -s` and for CI logs (stderr is shown with -rA or on failure)."""
    print(f"[deploy-test] {message}", file=sys.stderr, flush=True)


def cache_key(inputs: object) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def cached(path: Path, build: Callable[[Path], None]) -> Path:
    """``path`` if a previous run completed it, else built into a temporary sibling and renamed."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        target = tmp / path.name
        build(target)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _present(command: str) -> bool:
    return Path(command).exists() if "/" in command else shutil.which(command) is not None


def apt_install(packages: dict[str, str]) -> str | None:
    """Install the Debian packages whose command (or file) is missing ({command: package}); why not, if not."""
    missing = sorted({pkg for command, pkg in packages.items() if not _present(command)})
    if not missing:
        return None
    if shutil.which("apt-get") is None:
        return f"{', '.join(missing)} missing and no apt-get to install them"
    if os.geteuid() != 0:
        return f"{', '.join(missing)} missing and installing them needs root"
    say(f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", *missing]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"apt-get install {' '.join(missing)} failed: {done.stderr.strip()[-300:]}"
    still = [c for c in packages if not _present(c)]
    return f"{', '.join(still)} still missing after apt-get install" if still else None


def tool_venv(name: str, requirement: str, executable: str) -> Path:
    """A venv of its own for a PyPI tool (kept in the cache, keyed by the requirement)."""
    venv = CACHE_DIR / "tools" / f"{name}-{cache_key([requirement, sys.version])}"

    def build(target: Path) -> None:
        say(f"installing {requirement} into a venv of its own")
        subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
        subprocess.run([str(target / "bin" / "python"), "-m", "pip", "install", "-q", requirement],
                       check=True, timeout=900)

    # A venv records its own path: build it in place (a rename would break its scripts).
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        build(venv)
        (venv / ".complete").touch()
    return venv / "bin" / executable
