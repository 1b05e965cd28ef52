"""gRPC channel and server options; the one place outbound channels and server ports are made.

``open_channel`` makes every channel a service opens to another (plaintext, or TLS with the
service's ``ClientTls``); ``add_port`` binds every server port. With TLS, a channel is rebuilt
when the client's certificate files change: gRPC's channel credentials hold the PEM bytes
they were made with, and a rotated (or expired) client certificate must reach new connections
without a restart. Calls already made finish on the old channel, which is closed after a grace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc

from services.common.tls import ClientTls, ServerTls, Stamp

log = logging.getLogger("fleet.channels")

RELOAD_CHECK_S = 1.0  # how often a TLS channel looks at its files
RETIRED_GRACE_S = 60.0  # how long calls started on a replaced channel may still run


def channel_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # Reconnect quickly after a peer restarts instead of backing off for minutes.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.so_reuseport", 0),
    ]


def add_port(server: grpc.aio.Server, address: str, tls: ServerTls | None) -> int:
    """Bind ``address`` (TLS when configured); the bound port, or RuntimeError."""
    port = server.add_secure_port(address, tls.credentials()) if tls else server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"could not bind {address}")
    return port


def open_channel(address: str, max_message_bytes: int, tls: ClientTls | None = None) -> grpc.aio.Channel:
    """A channel to another fleet service: plaintext, or TLS (rebuilt when its files change)."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=_options(address, max_message_bytes))
    return ReloadingChannel(address, max_message_bytes, tls)


def _options(address: str, max_message_bytes: int) -> list[tuple[str, Any]]:
    options = channel_options(max_message_bytes)
    if address.startswith("dns:"):  # a name for several replicas: balance over every address it resolves to
        options.append(("grpc.lb_policy_name", "round_robin"))
    return options


def _secure(address: str, max_message_bytes: int, tls: ClientTls) -> grpc.aio.Channel:
    options = _options(address, max_message_bytes)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.aio.secure_channel(address, tls.credentials(), options=options)


class _Method:
    """A multicallable that always calls through the channel's current generation."""

    def __init__(self, owner: ReloadingChannel, kind: str, method: str, kwargs: dict[str, Any]) -> None:
        self.owner, self.kind, self.method, self.kwargs = owner, kind, method, kwargs
        self._generation = -1
        self._callable: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        channel, generation = self.owner.current()
        if generation != self._generation:
            self._callable = getattr(channel, self.kind)(self.method, **self.kwargs)
            self._generation = generation
        return self._callable(*args, **kwargs)


class ReloadingChannel(grpc.aio.Channel):
    """A TLS channel that replaces itself when the certificate, key or CA files change.

    Stubs are made over it once, as over any channel; each call goes to the current channel.
    """

    def __init__(self, address: str, max_message_bytes: int, tls: ClientTls) -> None:
        self.address, self.max_message_bytes, self.tls = address, max_message_bytes, tls
        self._stamp = tls.stamp()
        self._channel = _secure(address, max_message_bytes, tls)
        self._generation = 0
        self._checked = time.monotonic()
        self._retired: dict[grpc.aio.Channel, asyncio.Task[None]] = {}

    @property
    def generation(self) -> int:
        return self._generation

    def current(self) -> tuple[grpc.aio.Channel, int]:
        now = time.monotonic()
        if now - self._checked >= RELOAD_CHECK_S:
            self._checked = now
            stamp = self.tls.stamp()
            if stamp != self._stamp:
                self._reload(stamp)
        return self._channel, self._generation

    def _reload(self, stamp: Stamp) -> None:
        self._stamp = stamp  # files that cannot be used are tried again once they change again
        try:
            self.tls.check()
            fresh = _secure(self.address, self.max_message_bytes, self.tls)
        except Exception as exc:  # noqa: BLE001 - a rotation in progress: keep the channel that works
            log.warning("TLS client files changed but cannot be used yet", extra={"error": str(exc)[:300]})
            return
        old, self._channel = self._channel, fresh
        self._generation += 1
        log.info("TLS client certificate reloaded; new connections use it",
                 extra={"peer": self.address, "generation": self._generation})
        task = asyncio.get_running_loop().create_task(old.close(RETIRED_GRACE_S))
        self._retired[old] = task
        task.add_done_callback(lambda _: self._retired.pop(old, None))

    # grpc.aio.Channel
    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Method(self, "unary_unary", method, _named(args, kwargs))

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Method(self, "unary_stream", method, _named(args, kwargs))

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Method(self, "stream_unary", method, _named(args, kwargs))

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Method(self, "stream_stream", method, _named(args, kwargs))

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self.current()[0].get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.current()[0].wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self.current()[0].channel_ready()

    async def close(self, grace: float | None = None) -> None:
        retired = list(self._retired)
        for task in list(self._retired.values()):
            task.cancel()
        await asyncio.gather(*(old.close(grace) for old in retired), self._channel.close(grace))

    async def __aenter__(self) -> ReloadingChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _named(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Positional serializer arguments of ``Channel.unary_unary`` and friends, by name."""
    names = ("request_serializer", "response_deserializer")
    return {**dict(zip(names, args)), **kwargs}
