"""Infer calls over long-lived InferCalls streams (services.gateway.call_streams, services.model_worker.call_streams).

A real grpc.aio server on a loopback port whose ``Infer`` is a scripted unary handler (wrapped by
``@rpc`` like the worker's) and whose ``InferCalls`` serves it through ``CallStreams``; the gateway's
real ``WorkerClient`` calls it with streams on, and with unary calls for comparison. The whole
fleet's use of the streams (SIGKILL and SIGTERM under load) is covered in tests/e2e/test_routing.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest

from fleet.internal.v1 import descriptor_pb2, worker_pb2, worker_pb2_grpc
from fleet.v1 import inference_pb2
from services.common import errors
from services.common.context import request_id_var
from services.common.rpc import rpc, rpc_stream
from services.gateway.call_streams import STREAM_MAX_REQUEST_BYTES
from services.gateway.worker_client import WorkerClient, WorkerUnavailable
from services.model_worker.call_streams import CallContext, CallStreams
from services.model_worker.servicer import SERVICE_NAME

MAX_BYTES = 8 * 1024 * 1024
REPLY_LIMIT = 64 * 1024


class ScriptedWorker(worker_pb2_grpc.ModelWorkerServiceServicer):
    """``Infer`` does what the model id says: ``ok``, ``wait:SECONDS``, ``missing``, ``unavailable``, ``boom``,
    ``big`` (a reply over REPLY_LIMIT). The reply's inference id is the model id; how each call arrived and
    ended is recorded."""

    def __init__(self) -> None:
        self.calls = CallStreams(self.Infer, REPLY_LIMIT)
        self.streams = 0
        self.arrived: list[tuple[str, str, bool]] = []  # (model id, request id, on a stream)
        self.cancelled: list[str] = []
        self.started: dict[str, asyncio.Event] = {}

    @rpc(SERVICE_NAME)
    async def Infer(self, request, context):  # noqa: N802
        model_id = request.model.model_id
        self.arrived.append((model_id, request_id_var.get(), isinstance(context, CallContext)))
        self.started.setdefault(model_id, asyncio.Event()).set()
        if model_id.startswith("wait:"):
            try:
                await asyncio.sleep(float(model_id.split(":")[1]))
            except asyncio.CancelledError:
                self.cancelled.append(model_id)
                raise
        elif model_id == "missing":
            raise errors.NotFound("model missing/1 is not in this workspace")
        elif model_id == "unavailable":
            raise errors.Unavailable("model is being unloaded; retry")
        elif model_id == "boom":
            raise RuntimeError("a bug")
        visualization = b"v" * REPLY_LIMIT if model_id == "big" else b""
        return worker_pb2.ModelWorkerServiceInferResponse(
            response=inference_pb2.InferResponse(inference_id=model_id, visualization=visualization))

    @rpc_stream(SERVICE_NAME)
    async def InferCalls(self, requests, context):  # noqa: N802
        self.streams += 1
        async for reply in self.calls.serve(requests):
            yield reply


class UnaryOnlyWorker(ScriptedWorker):
    """A worker from before InferCalls (the generated base answers UNIMPLEMENTED)."""

    InferCalls = worker_pb2_grpc.ModelWorkerServiceServicer.InferCalls


async def _serve(servicer: ScriptedWorker, port: int = 0) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_BYTES), ("grpc.so_reuseport", 0)])
    worker_pb2_grpc.add_ModelWorkerServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, port


@contextlib.asynccontextmanager
async def serving(servicer: ScriptedWorker, streams: int = 4) -> AsyncIterator[WorkerClient]:
    server, port = await _serve(servicer)
    client = WorkerClient(f"127.0.0.1:{port}", MAX_BYTES, call_streams=streams)
    try:
        yield client
    finally:
        await client.close()
        await server.stop(None)


def _model(model_id: str) -> descriptor_pb2.ModelDescriptor:
    return descriptor_pb2.ModelDescriptor(model_id=model_id)


def _request(image_bytes: int = 100, visualize: bool = False) -> inference_pb2.InferRequest:
    request = inference_pb2.InferRequest(image=inference_pb2.Image(encoded=b"j" * image_bytes))
    request.parameters.visualize = visualize
    return request


async def _infer(client: WorkerClient, model_id: str, timeout_s: float = 10.0, **request) -> str:
    return (await client.infer(_model(model_id), _request(**request), timeout_s)).inference_id


async def test_concurrent_calls_share_streams_and_each_gets_its_own_reply() -> None:
    worker = ScriptedWorker()
    async with serving(worker, streams=2) as client:
        ids = [f"wait:{0.05 * (8 - i):.2f}" for i in range(8)]  # the first sent finishes last
        assert await asyncio.gather(*(_infer(client, m) for m in ids)) == ids
        assert await _infer(client, "ok") == "ok"
    assert all(on_stream for *_, on_stream in worker.arrived)
    assert worker.streams == 2  # opened as concurrent calls needed them, never more than allowed


@pytest.mark.parametrize("model_id", ["missing", "unavailable", "boom"])
async def test_a_calls_status_comes_back_as_the_unary_call_would_give_it(model_id: str) -> None:
    raised = []
    for streams in (0, 4):
        worker = ScriptedWorker()
        async with serving(worker, streams) as client:
            request_id_var.set(f"req-{model_id}-{streams}")
            with pytest.raises(errors.FleetError) as caught:
                await _infer(client, model_id)
        assert worker.arrived == [(model_id, f"req-{model_id}-{streams}", streams > 0)]
        exc = caught.value
        raised.append((type(exc), exc.code, exc.message.replace(f"-{streams}", ""),
                       getattr(exc, "answered", None)))
    assert raised[0] == raised[1]
    if model_id == "unavailable":  # the worker's own answer: it is up, retry elsewhere without taking it out
        assert raised[1][0] is WorkerUnavailable and raised[1][3] is True
    if model_id == "missing":
        assert raised[1][2] == "model missing/1 is not in this workspace"


async def test_a_deadline_ends_the_call_here_and_on_the_worker() -> None:
    worker = ScriptedWorker()
    async with serving(worker) as client:
        with pytest.raises(errors.DeadlineExceeded):
            await _infer(client, "wait:30", timeout_s=0.3)
        for _ in range(100):
            if worker.cancelled:
                break
            await asyncio.sleep(0.02)
        assert worker.cancelled == ["wait:30"]
        assert await _infer(client, "ok") == "ok"  # the stream carries on
    assert worker.streams == 1


async def test_a_caller_gone_cancels_its_call_on_the_worker() -> None:
    worker = ScriptedWorker()
    async with serving(worker) as client:
        task = asyncio.create_task(_infer(client, "wait:30"))
        await asyncio.wait_for(worker.started.setdefault("wait:30", asyncio.Event()).wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if worker.cancelled:
                break
            await asyncio.sleep(0.02)
        assert worker.cancelled == ["wait:30"]
        assert await _infer(client, "ok") == "ok"


async def test_a_worker_shutting_down_finishes_its_calls_and_takes_no_new_one() -> None:
    worker = ScriptedWorker()
    async with serving(worker) as client:
        running = asyncio.create_task(_infer(client, "wait:0.5"))
        await asyncio.wait_for(worker.started.setdefault("wait:0.5", asyncio.Event()).wait(), 5)
        worker.calls.stop_taking()
        with pytest.raises(WorkerUnavailable) as caught:
            await _infer(client, "ok")
        assert caught.value.answered is False  # going away: the gateway takes it out of rotation
        assert await running == "wait:0.5"
        assert [m for m, *_ in worker.arrived] == ["wait:0.5"]


async def test_a_server_gone_mid_call_fails_it_as_unreachable_and_a_new_stream_follows() -> None:
    worker = ScriptedWorker()
    server, port = await _serve(worker)
    client = WorkerClient(f"127.0.0.1:{port}", MAX_BYTES, call_streams=4)
    try:
        running = asyncio.create_task(_infer(client, "wait:30"))
        await asyncio.wait_for(worker.started.setdefault("wait:30", asyncio.Event()).wait(), 5)
        await server.stop(None)
        with pytest.raises(WorkerUnavailable) as caught:
            await asyncio.wait_for(running, 10)
        assert caught.value.answered is False
        assert "127.0.0.1" not in caught.value.message
        server, _ = await _serve(worker, port)
        for _ in range(50):  # the channel reconnects with backoff
            with contextlib.suppress(WorkerUnavailable):
                assert await _infer(client, "ok") == "ok"
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("no call succeeded after the worker came back")
        assert worker.streams == 2
    finally:
        await client.close()
        await server.stop(None)


async def test_a_reply_over_the_limit_fails_its_call_alone() -> None:
    worker = ScriptedWorker()
    async with serving(worker, streams=1) as client:
        big = asyncio.create_task(_infer(client, "big"))
        slow = asyncio.create_task(_infer(client, "wait:0.3"))
        with pytest.raises(errors.ResourceExhausted, match="larger than this worker's message limit"):
            await big
        assert await slow == "wait:0.3"  # on the same stream, unharmed
        assert await _infer(client, "ok") == "ok"
    assert worker.streams == 1 and all(on_stream for *_, on_stream in worker.arrived)


async def test_a_worker_without_infer_calls_gets_unary_calls() -> None:
    worker = UnaryOnlyWorker()
    async with serving(worker) as client:
        assert await asyncio.gather(*(_infer(client, f"wait:0.0{i}") for i in range(3))) == [
            f"wait:0.0{i}" for i in range(3)]
        assert await _infer(client, "ok") == "ok"
    assert worker.arrived and not any(on_stream for *_, on_stream in worker.arrived)


async def test_large_requests_and_visualizations_go_as_unary_calls() -> None:
    worker = ScriptedWorker()
    async with serving(worker) as client:
        assert await _infer(client, "ok", image_bytes=STREAM_MAX_REQUEST_BYTES + 1) == "ok"
        assert await _infer(client, "ok", visualize=True) == "ok"
        assert await _infer(client, "ok") == "ok"
    assert [on_stream for *_, on_stream in worker.arrived] == [False, False, True]


async def test_malformed_stream_messages_get_invalid_argument() -> None:
    worker = ScriptedWorker()
    server, port = await _serve(worker)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stream = worker_pb2_grpc.ModelWorkerServiceStub(channel).InferCalls()
            infer = worker_pb2.ModelWorkerServiceInferRequest(model=_model("wait:0.5"), request=_request())
            await stream.write(worker_pb2.ModelWorkerServiceInferCallsRequest(call_id=1, infer=infer))
            await stream.write(worker_pb2.ModelWorkerServiceInferCallsRequest(call_id=1, infer=infer))
            await stream.write(worker_pb2.ModelWorkerServiceInferCallsRequest(call_id=2))
            await stream.done_writing()
            replies = [r async for r in stream]
            assert await stream.code() == grpc.StatusCode.OK
    finally:
        await server.stop(None)
    by_id = {}
    for reply in replies:
        by_id.setdefault(reply.call_id, []).append(reply)
    assert [r.WhichOneof("outcome") for r in by_id[1]] == ["status", "reply"]  # the duplicate refused, the first served
    assert by_id[1][0].status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert by_id[2][0].status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "already in flight" in by_id[1][0].status.message and "infer or cancel" in by_id[2][0].status.message
