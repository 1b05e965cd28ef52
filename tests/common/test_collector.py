"""The collector tuning a service applies once started (services.common.collector)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.common import collector
from services.gateway.settings import GatewaySettings


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tune_freezes_what_is_alive_and_sets_the_young_threshold(restored: None) -> None:
    gc.unfreeze()
    alive = [[i] for i in range(1000)]  # tracked objects made before start-up ends
    collector.tune(50_000, freeze=True)
    assert gc.get_threshold()[0] == 50_000
    assert gc.get_freeze_count() >= len(alive)
    young = [0]  # made after: walked by collections as usual
    walked = {id(o) for o in gc.get_objects()}  # (the permanent generation is not listed)
    assert id(young) in walked and id(alive[0]) not in walked


def test_zero_and_no_freeze_leave_python_as_it_is(restored: None) -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    collector.tune(0, freeze=False)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_the_gateway_sets_a_high_young_threshold_and_freezes_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEET_GATEWAY_GC_YOUNG_THRESHOLD", raising=False)
    monkeypatch.delenv("FLEET_GATEWAY_GC_FREEZE_AT_START", raising=False)
    settings = GatewaySettings()
    assert settings.gc_young_threshold == 50_000 and settings.gc_freeze_at_start
    monkeypatch.setenv("FLEET_GATEWAY_GC_YOUNG_THRESHOLD", "700")
    monkeypatch.setenv("FLEET_GATEWAY_GC_FREEZE_AT_START", "false")
    settings = GatewaySettings()
    assert settings.gc_young_threshold == 700 and not settings.gc_freeze_at_start
