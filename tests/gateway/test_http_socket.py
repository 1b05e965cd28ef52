"""The HTTP edge's connections have Nagle off (TCP_NODELAY): with it on, a response's body waited
behind its headers for the client's delayed ACK, about 40 ms a request from Python clients."""

from __future__ import annotations

import asyncio
import socket

import pytest
from fastapi import FastAPI

from services.gateway.http.app import HttpServer


@pytest.mark.asyncio
async def test_accepted_connections_have_nagle_off() -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict:
        return {"ok": True}

    server = HttpServer(app, "127.0.0.1", 0, grace_s=0)
    port = await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")  # keep-alive: the connection stays open
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        connections = list(server.server.server_state.connections)
        assert len(connections) == 1
        accepted = connections[0].transport.get_extra_info("socket")
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        writer.close()
        await writer.wait_closed()
    finally:
        await server.stop()
