"""The end-of-run secrets check finds what it looks for (so its silence means something)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fleet.keys import hash_api_key, new_admin_token, new_api_key
from tests.conftest import TEST_KEY
from tests.secrets_scan import find_secrets


def test_the_scan_finds_raw_keys_and_ignores_hashes_and_prefixes() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # not under the run's temp dir, which the real check scans
        _check(Path(tmp))


def _check(tmp_path: Path) -> None:
    key = new_api_key()
    (tmp_path / "run").mkdir()
    clean = tmp_path / "run" / "gateway.log"
    clean.write_text(f'{{"msg": "auth", "key_sha256": "{hash_api_key(key)}", "prefix": "{key[:8]}"}}\n')
    assert find_secrets(tmp_path, [TEST_KEY]) == []
    (tmp_path / "run" / "worker-0.log").write_text(f"oops {key}\n")
    (tmp_path / "run" / "registry.log").write_text(f"oops {TEST_KEY}\n")
    token = new_admin_token()
    (tmp_path / "run" / "gateway-1.log").write_text(f'{{"token": "{token}"}}\n')
    leaks = find_secrets(tmp_path, [TEST_KEY])
    assert len(leaks) == 3 and all(key not in leak and TEST_KEY not in leak and token not in leak for leak in leaks)
