"""Errors of calls to other services reach callers without gRPC's details (internal addresses)."""

from __future__ import annotations

import socket

import grpc
import pytest

from services.common import errors
from services.common.channels import open_channel
from services.common.context import request_id_var
from services.common.rpc_errors import from_rpc_error


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_an_unreachable_peer_is_unavailable_without_its_address() -> None:
    port = _closed_port()
    channel = open_channel(f"127.0.0.1:{port}", 1 << 20)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await channel.unary_unary("/fleet.internal.v1.RegistryService/ResolveModel")(b"", timeout=5)
    finally:
        await channel.close()
    assert f"127.0.0.1:{port}" in (err.value.details() or "")  # what gRPC says ...
    mapped = from_rpc_error(err.value, "registry")
    assert isinstance(mapped, errors.Unavailable)
    assert mapped.message == "the registry is unavailable; retry shortly"  # ... and what the caller gets


class _Failed(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def test_peer_answers_keep_their_message_and_internal_errors_quote_the_request_id() -> None:
    token = request_id_var.set("req-123")
    try:
        internal = from_rpc_error(_Failed(grpc.StatusCode.INTERNAL, "Traceback at 10.0.0.3:50053"), "model worker")
        unknown = from_rpc_error(_Failed(grpc.StatusCode.UNKNOWN, "Exception calling application"), "model worker")
    finally:
        request_id_var.reset(token)
    assert internal.message == unknown.message == "internal error in the model worker; quote request id req-123"
    answer = from_rpc_error(_Failed(grpc.StatusCode.NOT_FOUND, "model 'x/1' is not registered"), "registry")
    assert isinstance(answer, errors.NotFound) and answer.message == "model 'x/1' is not registered"
    huge = from_rpc_error(_Failed(grpc.StatusCode.INVALID_ARGUMENT, "x" * 100_000), "registry")
    assert len(huge.message) <= 512
