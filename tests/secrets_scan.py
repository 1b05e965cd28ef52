"""Finding secrets in service logs: the tests' API keys, and any key or admin token as ``fleet.keys`` makes them."""

from __future__ import annotations

import re
from pathlib import Path

# fleet.keys.new_api_key: "fk_" + 32 URL-safe characters (a key's short prefix or id is shorter);
# new_admin_token: "fa_" + 43.
GENERATED_KEY = re.compile(r"(?<![A-Za-z0-9_-])(fk_[A-Za-z0-9_-]{32}|fa_[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")


def find_secrets(root: Path, known: list[str]) -> list[str]:
    """``path: what`` for every service log under ``root`` holding a known secret or a generated key."""
    leaks = []
    for log in sorted(root.rglob("*.log")):
        try:
            text = log.read_text(errors="replace")
        except OSError:
            continue
        for secret in known:
            if secret and secret in text:
                leaks.append(f"{log}: {secret[:6]}…")
        leaks += [f"{log}: {m.group()[:6]}…" for m in GENERATED_KEY.finditer(text)]
    return leaks
