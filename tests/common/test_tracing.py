"""Tracing: off unless OTEL_* asks (nothing of OpenTelemetry imported then); when on, W3C traceparent
continues across real loopback calls through the decorator, the client helper and outgoing_metadata."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common import tracing
from services.common.logging_setup import JsonFormatter
from services.common.rpc import rpc
from services.common.rpc_client import ClientMethod
from services.common.server import Runner, Service
from services.common.settings import ServiceSettings

INNER, OUTER = "test.v1.Inner", "test.v1.Outer"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


def test_off_by_default_and_by_the_standard_switches() -> None:
    assert tracing.requested({}) == []
    assert tracing.requested({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}) == []
    assert tracing.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) == ["otlp"]
    assert tracing.requested({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}) == ["otlp"]
    assert tracing.requested({"OTEL_TRACES_EXPORTER": "console,otlp"}) == ["console", "otlp"]
    assert tracing.requested({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}) == []
    assert tracing.requested({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}) == []


def test_no_tracer_exists_while_off() -> None:
    # (redis-py and FastAPI import parts of OpenTelemetry's API when it is installed, for their own opt-in
    # telemetry; the tracing SDK and the exporters stay unimported, and no tracer provider is installed.)
    code = ("import sys; from services.common import tracing; import services.gateway.server, "
            "services.model_worker.server, services.registry.server; "
            "assert not tracing.configure('x', env={}); "
            "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk.trace', "
            "'opentelemetry.exporter')))); "
            "from opentelemetry import trace; print(type(trace.get_tracer_provider()).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["[]", "ProxyTracerProvider"]


def test_an_unknown_exporter_or_protocol_leaves_tracing_off(caplog: pytest.LogCaptureFixture) -> None:
    assert not tracing.configure("x", env={"OTEL_TRACES_EXPORTER": "zipkin"})
    assert not tracing.configure("x", env={"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    assert not tracing.ACTIVE
    assert "not supported" in caplog.text


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.configure("test", env={}, exporter=exporter)
    yield exporter
    tracing.shutdown()


async def _runner(service: str, handlers: dict) -> Runner:
    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            service, {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in handlers.items()})])

    runner = Runner(Service(service, ServiceSettings(port=0, metrics_port=0), register, [service]))
    await runner.start()
    return runner


@pytest.fixture
async def pair(spans: InMemorySpanExporter) -> AsyncIterator[str]:
    class Inner:
        @rpc(INNER)
        async def Echo(self, request: bytes, context) -> bytes:  # noqa: N802, ANN001
            return request

    inner = await _runner(INNER, {"Echo": Inner().Echo})
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{inner.port}")
    echo = ClientMethod(INNER, "Echo")

    class Outer:
        @rpc(OUTER)
        async def Relay(self, request: bytes, context) -> bytes:  # noqa: N802, ANN001
            with tracing.span("resolve", **{"fleet.model_id": "m/1"}):
                logging.getLogger("fleet.test").warning("inside the relay")
            return await echo(channel.unary_unary(f"/{INNER}/Echo"), request, 5.0)

    outer = await _runner(OUTER, {"Relay": Outer().Relay})
    yield f"127.0.0.1:{outer.port}"
    await outer.stop()
    await channel.close()
    await inner.stop()


async def test_one_trace_spans_both_services_and_continues_the_callers(
        pair: str, spans: InMemorySpanExporter) -> None:
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter("t"))
    logging.getLogger("fleet.test").addHandler(handler)
    traceparent = f"00-{TRACE_ID}-{PARENT_SPAN}-01"
    async with grpc.aio.insecure_channel(pair) as channel:
        reply = await channel.unary_unary(f"/{OUTER}/Relay")(b"ping", metadata=(("traceparent", traceparent),))
    assert reply == b"ping"
    by_name = {s.name: s for s in spans.get_finished_spans()}
    assert set(by_name) == {f"{OUTER}/Relay", "resolve", f"{INNER}/Echo"} and len(spans.get_finished_spans()) == 4
    server_outer, resolve = by_name[f"{OUTER}/Relay"], by_name["resolve"]
    server_inner = next(s for s in spans.get_finished_spans() if s.name == f"{INNER}/Echo" and s.kind.name == "SERVER")
    client = next(s for s in spans.get_finished_spans() if s.name == f"{INNER}/Echo" and s.kind.name == "CLIENT")
    assert {f"{s.context.trace_id:032x}" for s in spans.get_finished_spans()} == {TRACE_ID}
    assert f"{server_outer.parent.span_id:016x}" == PARENT_SPAN and server_outer.parent.is_remote
    assert resolve.parent.span_id == server_outer.context.span_id
    assert client.parent.span_id == server_outer.context.span_id
    assert server_inner.parent.span_id == client.context.span_id and server_inner.parent.is_remote
    assert server_outer.attributes["rpc.method"] == "Relay" and server_outer.attributes["rpc.grpc.status_code"] == 0
    # Log lines written inside a span carry its trace id.
    logging.getLogger("fleet.test").removeHandler(handler)
    entry = json.loads(lines.getvalue())
    assert entry["trace_id"] == TRACE_ID and entry["span_id"] == f"{resolve.context.span_id:016x}"


async def test_a_failed_call_ends_its_spans_with_the_status(pair: str, spans: InMemorySpanExporter) -> None:
    async with grpc.aio.insecure_channel(pair) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await channel.unary_unary(f"/{OUTER}/Missing")(b"")
        await channel.unary_unary(f"/{OUTER}/Relay")(b"again")
    roots = [s for s in spans.get_finished_spans() if s.name == f"{OUTER}/Relay"]
    assert roots and roots[-1].parent is None  # no traceparent sent: the service starts the trace
