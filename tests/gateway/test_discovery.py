"""Discovery: static addresses, heartbeats in Redis, DNS names; each feeding the same WorkerPool.

The DNS test that reaches a worker resolves ``localhost`` through the event loop's real ``getaddrinfo``
(the machine's own resolver, /etc/hosts untouched): it yields 127.0.0.1, where a real worker listens and
publishes its heartbeat in a real Redis. How membership follows DNS answers over time (records added,
removed, a failed lookup) is driven by a resolver function handed in, as DNS servers are not ours to change.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.cache import FleetCache
from services.gateway.caller import Caller
from services.gateway.copies import CopyController
from services.gateway.discovery import (
    DnsDiscovery,
    HeartbeatDiscovery,
    StaticDiscovery,
    from_settings,
    join_host_port,
    split_host_port,
)
from services.gateway.gateway import Gateway
from services.gateway.placement import CopyPolicy
from services.gateway.settings import GatewaySettings
from services.gateway.workers import WorkerPool
from tests.gateway.test_workers import load, state
from tests.model_worker.test_service import start_worker


async def test_dns_discovery_finds_a_real_worker_by_name_and_heartbeats_give_its_load(
        tmp_path: Path, redis_url: str, namespace: str, cache: FleetCache) -> None:
    harness = await start_worker(tmp_path, redis_url, namespace)
    port = harness.runner.port
    pool = WorkerPool(DnsDiscovery(f"localhost:{port}", cache.heartbeats), 1 << 20, 2.0, 1.0)
    gateway = Gateway(None, pool, None, 1, 5.0, 0,  # type: ignore[arg-type] - server info needs neither
                      CopyController(pool, None, None, CopyPolicy(), 1.0, 1.0))  # type: ignore[arg-type]
    try:
        assert pool.all() == []  # nothing known before the name is resolved
        for _ in range(50):  # the worker's first heartbeat may be a moment away
            await pool.refresh()
            endpoint = pool.endpoints.get(f"127.0.0.1:{port}")
            if endpoint is not None and endpoint.worker_id:
                break
            await asyncio.sleep(0.1)
        assert endpoint is not None and endpoint.worker_id == "w-test" and endpoint.state is not None
        [view] = await gateway.server_info(Caller(workspace="demo", admin=True))
        assert view.worker_id == "w-test" and view.address == f"127.0.0.1:{port}"
    finally:
        await pool.close()
        await harness.runner.stop()


async def test_dns_membership_follows_the_records_and_a_failed_lookup_keeps_the_last_view() -> None:
    answers: list[list[str] | OSError] = [["10.0.0.1", "10.0.0.2"], ["10.0.0.2", "fd00::3"],
                                          socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
                                          ["fd00::3"]]
    asked = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        answer = answers.pop(0)
        if isinstance(answer, OSError):
            raise answer
        return answer

    discovery = DnsDiscovery("fleet-worker.inference-fleet.svc:50053", None, refresh_s=0.0, resolve=resolve)
    pool = WorkerPool(discovery, 1 << 20, 2.0, 1.0)
    try:
        await pool.refresh()
        assert sorted(pool.endpoints) == ["10.0.0.1:50053", "10.0.0.2:50053"]
        kept = pool.endpoints["10.0.0.2:50053"]
        await pool.refresh()
        assert sorted(pool.endpoints) == ["10.0.0.2:50053", "[fd00::3]:50053"]  # a pod gone, one new (IPv6)
        assert pool.endpoints["10.0.0.2:50053"] is kept  # the same endpoint: its calls and view go on
        await pool.refresh()  # the lookup fails: nothing leaves
        assert sorted(pool.endpoints) == ["10.0.0.2:50053", "[fd00::3]:50053"]
        with pool.calling(kept):  # a call still in flight when the pod leaves DNS (draining, NotReady)
            await pool.refresh()
            assert list(pool.endpoints) == ["[fd00::3]:50053"]
            assert kept in pool._retiring  # its channel stays open for the call
        for _ in range(20):
            if kept not in pool._retiring:
                break
            await asyncio.sleep(0.1)
        assert kept not in pool._retiring  # closed once the call ended
        assert asked == [("fleet-worker.inference-fleet.svc", 50053)] * 4
    finally:
        await pool.close()
    slow = DnsDiscovery("w:1", None, refresh_s=3600.0, resolve=lambda h, p: asyncio.sleep(0, ["10.0.0.9"]))
    assert (await slow.find()).members == {"10.0.0.9:1"}
    assert (await slow.find()).members == {"10.0.0.9:1"}  # answered from the last lookup within refresh_s


async def test_heartbeats_discover_workers_and_a_static_list_only_takes_their_load(cache: FleetCache) -> None:
    await cache.heartbeats.beat(state("w-a", "10.1.0.1:50053", load("m/1")), 30.0)
    await cache.heartbeats.beat(state("w-b", "10.1.0.2:50053"), 30.0)
    found = HeartbeatDiscovery(cache.heartbeats, ["10.1.0.9:50053"])
    static = StaticDiscovery(["10.1.0.1:50053", "10.1.0.7:50053"], cache.heartbeats)
    pools = [WorkerPool(d, 1 << 20, 2.0, 1.0) for d in (found, static)]
    try:
        for pool in pools:
            await pool.refresh()
        by_heartbeat, fixed = pools
        assert sorted(by_heartbeat.endpoints) == ["10.1.0.1:50053", "10.1.0.2:50053", "10.1.0.9:50053"]
        assert sorted(fixed.endpoints) == ["10.1.0.1:50053", "10.1.0.7:50053"]
        assert fixed.endpoints["10.1.0.1:50053"].worker_id == "w-a"
        assert fixed.holders("m/1", load("m/1").sha256) == [fixed.endpoints["10.1.0.1:50053"]]
        await cache.heartbeats.leave("w-b")
        for pool in pools:
            await pool.refresh()
        assert "10.1.0.2:50053" not in by_heartbeat.endpoints  # stopped beating: gone
        assert "10.1.0.9:50053" in by_heartbeat.endpoints  # configured: stays, its load unknown
        await cache.heartbeats.leave("w-a")
        await fixed.refresh()
        assert sorted(fixed.endpoints) == ["10.1.0.1:50053", "10.1.0.7:50053"]  # static: they stay
        assert fixed.endpoints["10.1.0.1:50053"].state is None
    finally:
        for pool in pools:
            await pool.close()


def test_settings_choose_the_discovery_and_accept_the_old_probe_setting_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_GATEWAY_WORKER_COOLDOWN_S", "7")
    monkeypatch.setenv("FLEET_GATEWAY_DISCOVERY", "dns")
    monkeypatch.setenv("FLEET_GATEWAY_WORKERS_DNS", "fleet-worker.inference-fleet.svc:50053")
    settings = GatewaySettings()
    assert settings.worker_probe_interval_s == 7.0
    discovery = from_settings(settings.discovery, settings.worker_addresses(), settings.workers_dns,
                              settings.workers_dns_refresh_s, None)
    assert isinstance(discovery, DnsDiscovery) and (discovery.host, discovery.port) == (
        "fleet-worker.inference-fleet.svc", 50053)
    monkeypatch.setenv("FLEET_GATEWAY_WORKER_PROBE_INTERVAL_S", "3")
    assert GatewaySettings().worker_probe_interval_s == 3.0  # the new name wins
    monkeypatch.delenv("FLEET_GATEWAY_WORKERS_DNS")
    with pytest.raises(ValidationError, match="workers_dns"):
        GatewaySettings()
    monkeypatch.setenv("FLEET_GATEWAY_DISCOVERY", "static")
    with pytest.raises(ValidationError, match="needs workers"):
        GatewaySettings()
    monkeypatch.setenv("FLEET_GATEWAY_DISCOVERY", "gossip")
    with pytest.raises(ValidationError):
        GatewaySettings()


def test_host_port_parsing() -> None:
    assert split_host_port("[::1]:50053") == ("::1", 50053)
    assert split_host_port("fleet-worker:50053") == ("fleet-worker", 50053)
    for bad in ("fleet-worker", ":50053", "fleet-worker:port", "fleet-worker:0"):
        with pytest.raises(ValueError, match="host:port"):
            split_host_port(bad)
    assert join_host_port("::1", 5) == "[::1]:5" and join_host_port("10.0.0.1", 5) == "10.0.0.1:5"
