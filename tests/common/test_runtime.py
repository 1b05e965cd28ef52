"""The shared service runtime: error mapping, request ids, health, graceful shutdown, metrics."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.cache.embedded import free_port
from services.common.channels import open_channel
from services.common.context import current_request_id
from services.common.rpc import outgoing_metadata, rpc
from services.common.errors import ModelNotFound
from services.common.server import LIVENESS_SERVICE, Runner, Service
from services.common.settings import ServiceSettings

Handler = Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]


class _Handlers:
    """Plain functions as servicer methods, wrapped by the same decorator the services use."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        for name, fn in handlers.items():
            async def method(self: _Handlers, request: bytes, context, fn: Handler = fn) -> bytes:
                return await fn(request, context)

            method.__name__ = name
            setattr(self, name, functools.partial(rpc("test")(method), self))


def _service(handlers: dict[str, Handler], startup=None, grace: float = 5.0) -> Service:
    wrapped = _Handlers(handlers)

    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "test.Svc", {name: grpc.unary_unary_rpc_method_handler(getattr(wrapped, name)) for name in handlers}
        )])

    settings = ServiceSettings(port=0, metrics_port=0, shutdown_grace_s=grace)
    return Service("test", settings, register, ["test.Svc"], startup)


async def _call(address: str, method: str, request_id: str | None = None) -> tuple[bytes, object]:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(f"/test.Svc/{method}")(b"", metadata=(("x-request-id", request_id),)
                                                          if request_id else None)
        return await call, await call.trailing_metadata()


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Service], Awaitable[Runner]]]:
    runners: list[Runner] = []

    async def start(service: Service) -> Runner:
        runner = Runner(service)
        runners.append(runner)
        await runner.start()
        return runner

    yield start
    for runner in runners:
        await runner.stop()


async def test_domain_errors_map_to_their_status(running) -> None:
    async def missing(request: bytes, context) -> bytes:
        raise ModelNotFound("model 'x/1' is not registered")

    runner = await running(_service({"Missing": missing}))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _call(f"127.0.0.1:{runner.port}", "Missing")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "model 'x/1' is not registered"


async def test_unexpected_errors_are_internal_and_quote_the_request_id(running) -> None:
    async def broken(request: bytes, context) -> bytes:
        raise RuntimeError("secret internals")

    runner = await running(_service({"Broken": broken}))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _call(f"127.0.0.1:{runner.port}", "Broken", request_id="req-123")
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "req-123" in err.value.details() and "secret" not in err.value.details()
    assert ("x-request-id", "req-123") in tuple(err.value.trailing_metadata())


async def test_request_id_is_echoed_and_follows_outgoing_calls(running) -> None:
    async def echo(request: bytes, context) -> bytes:
        return current_request_id().encode()

    inner = await running(_service({"Echo": echo}))

    async def relay(request: bytes, context) -> bytes:
        channel = open_channel(f"127.0.0.1:{inner.port}", 1 << 20)
        try:
            return await channel.unary_unary("/test.Svc/Echo")(b"", metadata=outgoing_metadata())
        finally:
            await channel.close()

    outer = await running(_service({"Relay": relay}))
    reply, _ = await _call(f"127.0.0.1:{outer.port}", "Relay", request_id="trace-42")
    assert reply == b"trace-42"
    generated, _ = await _call(f"127.0.0.1:{outer.port}", "Relay")
    assert len(generated) == 32  # a fresh id when the caller sends none


async def test_health_is_serving_only_between_startup_and_shutdown(running) -> None:
    gate = asyncio.Event()

    async def startup(port: int) -> None:
        await gate.wait()

    runner = Runner(_service({}, startup=startup))
    starting = asyncio.create_task(runner.start())
    await asyncio.sleep(0.2)  # listening, but startup is held at the gate
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runner.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = (await health.Check(health_pb2.HealthCheckRequest(service="test.Svc"))).status
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        gate.set()
        await starting
        status = (await health.Check(health_pb2.HealthCheckRequest(service=""))).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        metrics = httpx.get(f"http://127.0.0.1:{runner.metrics_port}/metrics").text
        assert 'fleet_ready{service="test"} 1.0' in metrics
    await runner.stop()


async def _status(health: health_pb2_grpc.HealthStub, service: str) -> int:
    return (await health.Check(health_pb2.HealthCheckRequest(service=service))).status


async def test_liveness_serves_while_startup_loads_and_while_draining() -> None:
    """What the Kubernetes probes read: liveness SERVING throughout, readiness only once started."""
    gate, draining, release = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def startup(port: int) -> None:
        await gate.wait()  # a preload that takes its time

    async def slow(request: bytes, context) -> bytes:
        draining.set()
        await release.wait()
        return b"done"

    runner = Runner(_service({"Slow": slow}, startup=startup))
    starting = asyncio.create_task(runner.start())
    await asyncio.sleep(0.2)
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runner.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert await _status(health, LIVENESS_SERVICE) == serving
        assert await _status(health, "") == not_serving
        gate.set()
        await starting
        assert await _status(health, "") == serving
        call = asyncio.create_task(_call(f"127.0.0.1:{runner.port}", "Slow"))
        await draining.wait()
        # Readiness drops before the server stops taking calls; liveness never drops.
        await runner.set_serving(False)
        assert await _status(health, "") == not_serving
        assert await _status(health, "test.Svc") == not_serving
        assert await _status(health, LIVENESS_SERVICE) == serving
        stopping = asyncio.create_task(runner.stop())
        release.set()
        await stopping
        assert (await call)[0] == b"done"


async def test_shutdown_lets_in_flight_calls_finish(running) -> None:
    started = asyncio.Event()

    async def slow(request: bytes, context) -> bytes:
        started.set()
        await asyncio.sleep(0.5)
        return b"done"

    runner = await running(_service({"Slow": slow}, grace=5.0))
    call = asyncio.create_task(_call(f"127.0.0.1:{runner.port}", "Slow"))
    await started.wait()
    await runner.stop()
    reply, _ = await call
    assert reply == b"done"


async def test_a_health_port_of_its_own_serves_only_health_until_the_end() -> None:
    """FLEET_<SERVICE>_HEALTH_PORT: probes that cannot speak TLS read the same health state there."""
    wrapped = _service({})
    health_port = free_port()
    wrapped.settings = ServiceSettings(port=0, metrics_port=0, health_port=health_port, shutdown_grace_s=1)
    runner = Runner(wrapped)
    await runner.start()
    try:
        assert runner.health_port == health_port
        async with grpc.aio.insecure_channel(f"127.0.0.1:{health_port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            serving = health_pb2.HealthCheckResponse.SERVING
            assert await _status(stub, "") == serving and await _status(stub, LIVENESS_SERVICE) == serving
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await channel.unary_unary("/test.Svc/Anything")(b"")
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED  # nothing but health there
            await runner.set_serving(False)
            assert await _status(stub, "") == health_pb2.HealthCheckResponse.NOT_SERVING
            assert await _status(stub, LIVENESS_SERVICE) == serving
    finally:
        await runner.stop()
