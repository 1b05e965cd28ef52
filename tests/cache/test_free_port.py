"""``free_port``: ports for servers the tests and ``fleet up`` start, safe from outgoing connections' local ports."""

from __future__ import annotations

import itertools
import socket

from services.cache import embedded


def test_ports_come_from_below_the_ephemeral_range_each_once_and_free() -> None:
    low = embedded._ephemeral_low()
    ports = [embedded.free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    if low - embedded.LOWEST_PICKED >= 1_000:  # (a machine whose range starts low gets bind(0)'s ports)
        assert all(embedded.LOWEST_PICKED <= p < low for p in ports)
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[-1]))  # free for the server that asked


def test_a_port_taken_is_not_handed_out(monkeypatch) -> None:  # noqa: ANN001
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        picks = itertools.chain([taken], range(20_000, 30_000))
        monkeypatch.setattr(embedded.random, "randrange", lambda a, b: next(picks))
        monkeypatch.setattr(embedded, "_ephemeral_low", lambda: 65_536)
        assert embedded.free_port() != taken
