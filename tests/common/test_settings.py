"""Shared settings: the address a service publishes (a pod IP from the downward API gets the port)."""

from __future__ import annotations

import pytest

from services.common.settings import ServiceSettings


@pytest.mark.parametrize(("advertise", "host", "expected"), [
    ("", "127.0.0.1", "127.0.0.1:50053"),
    ("10.1.2.3", "0.0.0.0", "10.1.2.3:50053"),
    ("10.1.2.3:6000", "0.0.0.0", "10.1.2.3:6000"),
    ("fd00::12", "::", "[fd00::12]:50053"),
    ("[fd00::12]:6000", "::", "[fd00::12]:6000"),
    ("worker-0.fleet-worker", "0.0.0.0", "worker-0.fleet-worker:50053"),
    ("worker-0.fleet-worker:7000", "0.0.0.0", "worker-0.fleet-worker:7000"),
])
def test_advertised_address(advertise: str, host: str, expected: str) -> None:
    assert ServiceSettings(advertise_address=advertise, host=host).advertised(50053) == expected
