"""Where the repository's demo data and the client's local state live."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(os.environ.get("FLEET_MODELS_DIR", REPO_ROOT / "models"))
DEMO_CATALOG = MODELS_DIR / "catalog.yaml"
SAMPLES_DIR = MODELS_DIR / "samples"


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "inference-fleet"


def client_state_file() -> Path:
    """Written by ``fleet up`` (mode 0600): the gateway address and the development API key."""
    return state_dir() / "dev.json"
