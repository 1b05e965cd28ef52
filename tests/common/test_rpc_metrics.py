"""Standard gRPC metrics from the @rpc decorators and the client helper, over a real loopback server;
failure logs with their message; secrets masked in every log line."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from prometheus_client import REGISTRY

from services.common.errors import InvalidImage
from services.common.logging_setup import JsonFormatter, redact
from services.common.rpc import rpc, rpc_stream
from services.common.rpc_client import ClientMethod
from services.common.server import Runner, Service
from services.common.settings import ServiceSettings

SERVICE = "test.v1.MetricsProbe"


class Probe:
    @rpc(SERVICE)
    async def Echo(self, request: bytes, context) -> bytes:  # noqa: N802, ANN001
        if request == b"bad":
            raise InvalidImage("the image bytes are not a recognisable image")
        if request == b"bug":
            raise RuntimeError("secret internals fk_should_never_show")
        return request

    @rpc_stream(SERVICE)
    async def Chat(self, requests: AsyncIterator[bytes], context) -> AsyncIterator[bytes]:  # noqa: N802, ANN001
        async for item in requests:
            yield item
            yield item


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def labels(method: str, grpc_type: str = "unary") -> dict[str, str]:
    return {"grpc_type": grpc_type, "grpc_service": SERVICE, "grpc_method": method}


@pytest.fixture
async def probe() -> AsyncIterator[str]:
    servicer = Probe()

    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {
            "Echo": grpc.unary_unary_rpc_method_handler(servicer.Echo),
            "Chat": grpc.stream_stream_rpc_method_handler(servicer.Chat),
        })])

    runner = Runner(Service("probe", ServiceSettings(port=0, metrics_port=0), register, [SERVICE]))
    await runner.start()
    yield f"127.0.0.1:{runner.port}"
    await runner.stop()


def test_series_exist_before_the_first_call() -> None:
    assert REGISTRY.get_sample_value("grpc_server_started_total", labels("Echo")) == 0.0
    assert REGISTRY.get_sample_value("grpc_server_handled_total", {**labels("Echo"), "grpc_code": "OK"}) == 0.0
    assert REGISTRY.get_sample_value("grpc_server_handling_seconds_count", labels("Chat", "bidi_stream")) == 0.0


async def test_unary_calls_are_counted_by_code(probe: str, caplog: pytest.LogCaptureFixture) -> None:
    before = {code: value("grpc_server_handled_total", **labels("Echo"), grpc_code=code)
              for code in ("OK", "InvalidArgument", "Internal")}
    started, sent = value("grpc_server_started_total", **labels("Echo")), value("grpc_server_msg_sent_total",
                                                                                **labels("Echo"))
    caplog.set_level(logging.INFO, logger="fleet.rpc")
    async with grpc.aio.insecure_channel(probe) as channel:
        echo = channel.unary_unary(f"/{SERVICE}/Echo")
        assert await echo(b"hi") == b"hi"
        for request, code in ((b"bad", grpc.StatusCode.INVALID_ARGUMENT), (b"bug", grpc.StatusCode.INTERNAL)):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await echo(request)
            assert err.value.code() == code
    after = {code: value("grpc_server_handled_total", **labels("Echo"), grpc_code=code) for code in before}
    assert {code: after[code] - before[code] for code in before} == {"OK": 1, "InvalidArgument": 1, "Internal": 1}
    assert value("grpc_server_started_total", **labels("Echo")) - started == 3
    assert value("grpc_server_msg_received_total", **labels("Echo")) >= 3
    assert value("grpc_server_msg_sent_total", **labels("Echo")) - sent == 1  # only the answered call sent one
    assert value("grpc_server_handling_seconds_count", **labels("Echo")) >= 3
    assert value("fleet_errors_total", grpc_service=SERVICE, grpc_method="Echo", kind="InvalidImage") >= 1
    # A failure is logged with its message; an unexpected one at ERROR with its traceback.
    failed = [r for r in caplog.records if getattr(r, "code", "") == "INVALID_ARGUMENT"]
    assert failed and failed[0].getMessage() == ("rpc Echo INVALID_ARGUMENT: the image bytes are not a "
                                                 "recognisable image")
    assert failed[0].levelno == logging.INFO
    internal = [r for r in caplog.records if getattr(r, "code", "") == "INTERNAL"]
    assert internal and internal[0].levelno == logging.WARNING
    formatted = [JsonFormatter("probe").format(r) for r in caplog.records]
    assert not any("fk_should_never_show" in line for line in formatted)  # the traceback is masked too


async def test_streams_count_messages_each_way(probe: str) -> None:
    received, sent = (value(f"grpc_server_msg_{d}_total", **labels("Chat", "bidi_stream")) for d in ("received",
                                                                                                     "sent"))
    async with grpc.aio.insecure_channel(probe) as channel:
        replies = [r async for r in channel.stream_stream(f"/{SERVICE}/Chat")(iter([b"a", b"b", b"c"]))]
    assert replies == [b"a", b"a", b"b", b"b", b"c", b"c"]
    assert value("grpc_server_msg_received_total", **labels("Chat", "bidi_stream")) - received == 3
    assert value("grpc_server_msg_sent_total", **labels("Chat", "bidi_stream")) - sent == 6
    assert value("grpc_server_handled_total", **labels("Chat", "bidi_stream"), grpc_code="OK") >= 1


async def test_client_calls_are_counted_by_code(probe: str) -> None:
    method = ClientMethod(SERVICE, "Echo")
    client = {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": "Echo"}
    before_ok = value("grpc_client_handled_total", **client, grpc_code="OK")
    before_bad = value("grpc_client_handled_total", **client, grpc_code="InvalidArgument")
    async with grpc.aio.insecure_channel(probe) as channel:
        stub = channel.unary_unary(f"/{SERVICE}/Echo")
        assert await method(stub, b"x", 5.0) == b"x"
        with pytest.raises(grpc.aio.AioRpcError):
            await method(stub, b"bad", 5.0)
    assert value("grpc_client_handled_total", **client, grpc_code="OK") - before_ok == 1
    assert value("grpc_client_handled_total", **client, grpc_code="InvalidArgument") - before_bad == 1
    assert value("grpc_client_started_total", **client) >= 2
    assert value("grpc_client_msg_received_total", **client) >= 1
    assert value("grpc_client_handling_seconds_count", **client) >= 2


def test_log_lines_never_carry_an_api_key_or_a_bearer_token() -> None:
    assert redact("authorization: Bearer fk_abc123def") == "authorization: Bearer [redacted]"
    assert redact('{"msg": "key fk_test_demo_key rejected"}') == '{"msg": "key fk_[redacted] rejected"}'
    assert redact("admin fa_" + "x" * 43 + " used") == "admin fa_[redacted] used"
    assert redact("sha256 9f86d081884c7d65 and shapes-det/1") == "sha256 9f86d081884c7d65 and shapes-det/1"
    record = logging.LogRecord("x", logging.INFO, "", 0, "got %s", ("Bearer secret-token",), None)
    assert "secret-token" not in json.loads(JsonFormatter("t").format(record))["msg"]
