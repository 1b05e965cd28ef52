"""Which model workers exist, and their last heartbeats: one interface, three ways to find them.

``FLEET_GATEWAY_DISCOVERY`` chooses one (built in ``from_settings``):

- ``static``: the addresses in ``FLEET_GATEWAY_WORKERS``, no others. Heartbeats, where Redis has them,
  only tell their load and models.
- ``heartbeats``: those addresses plus every worker that publishes a heartbeat in Redis (the address it
  advertises); a worker leaves when its heartbeat expires.
- ``dns``: the A/AAAA records of ``FLEET_GATEWAY_WORKERS_DNS`` (``host:port``, such as a Kubernetes
  headless Service ``fleet-worker.inference-fleet.svc:50053``), each address a worker, resolved again every
  ``FLEET_GATEWAY_WORKERS_DNS_REFRESH_S``; heartbeats, where Redis has them, tell their load and models.

Each ``find()`` returns the members (``None``: this source cannot say now, keep the last view) and the
heartbeats by address (``None``: Redis unavailable). Nothing here raises for an unavailable source.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from fleet.internal.v1.worker_pb2 import WorkerState
from services.cache.errors import CacheUnavailable
from services.cache.heartbeats import Heartbeats

log = logging.getLogger("fleet.gateway.discovery")

Resolve = Callable[[str, int], Awaitable[list[str]]]  # host, port -> IP addresses


@dataclass(frozen=True)
class Found:
    members: frozenset[str] | None  # worker addresses (host:port); None: unknown now, keep the last ones
    states: dict[str, WorkerState] | None  # last heartbeat by worker address; None: heartbeats unavailable


class Discovery(Protocol):
    kind: str
    seeds: tuple[str, ...]  # addresses known before the first ``find()`` (configured ones)

    async def find(self) -> Found: ...


async def _heartbeats(source: Heartbeats | None) -> dict[str, WorkerState] | None:
    if source is None:
        return None
    try:
        states = await source.live()
    except CacheUnavailable:
        log.warning("heartbeats unavailable (Redis); keeping the last view")
        return None
    return {s.address: s for s in states.values() if s.address}


class StaticDiscovery:
    """A fixed list of addresses."""

    kind = "static"

    def __init__(self, addresses: list[str], heartbeats: Heartbeats | None = None) -> None:
        self.seeds, self.heartbeats = tuple(dict.fromkeys(addresses)), heartbeats

    async def find(self) -> Found:
        states = await _heartbeats(self.heartbeats)
        if states is not None:
            states = {a: s for a, s in states.items() if a in self.seeds}
        return Found(frozenset(self.seeds), states)


class HeartbeatDiscovery:
    """The given addresses plus every worker with a live heartbeat."""

    kind = "heartbeats"

    def __init__(self, heartbeats: Heartbeats | None, addresses: list[str] | None = None) -> None:
        self.heartbeats, self.seeds = heartbeats, tuple(dict.fromkeys(addresses or ()))

    async def find(self) -> Found:
        states = await _heartbeats(self.heartbeats)
        members = None if states is None else frozenset(self.seeds) | states.keys()
        return Found(members, states)


async def resolve_with_loop(host: str, port: int) -> list[str]:
    """The host's IPv4 and IPv6 addresses, through the event loop's ``getaddrinfo`` (off the loop's thread)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def split_host_port(target: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) into its parts; ValueError with a message otherwise."""
    host, sep, port = target.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {target!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def join_host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ipaddress.ip_address(ip).version == 6 else f"{ip}:{port}"


class DnsDiscovery:
    """Each address a DNS name resolves to is a worker (a headless Service names every ready pod)."""

    kind = "dns"
    seeds: tuple[str, ...] = ()

    def __init__(self, target: str, heartbeats: Heartbeats | None = None, refresh_s: float = 5.0,
                 resolve: Resolve = resolve_with_loop) -> None:
        self.host, self.port = split_host_port(target)
        self.heartbeats, self.refresh_s, self.resolve = heartbeats, refresh_s, resolve
        self._members: frozenset[str] | None = None
        self._resolved_at = float("-inf")

    async def find(self) -> Found:
        now = time.monotonic()
        if now - self._resolved_at >= self.refresh_s:
            self._resolved_at = now
            try:
                ips = await self.resolve(self.host, self.port)
            except (OSError, ValueError) as exc:  # socket.gaierror is an OSError
                log.warning("worker DNS name did not resolve; keeping the last view", extra={"details": str(exc)})
            else:
                self._members = frozenset(join_host_port(ip, self.port) for ip in ips)
        return Found(self._members, await _heartbeats(self.heartbeats))


def from_settings(kind: str, addresses: list[str], dns_target: str, dns_refresh_s: float,
                  heartbeats: Heartbeats | None) -> Discovery:
    if kind == "static":
        return StaticDiscovery(addresses, heartbeats)
    if kind == "dns":
        return DnsDiscovery(dns_target, heartbeats, dns_refresh_s)
    return HeartbeatDiscovery(heartbeats, addresses)
