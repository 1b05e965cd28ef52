"""Serving ``InferCalls``: unary Infer calls carried over one long-lived stream.

Each call message runs the unary handler (wrapped by ``@rpc``: request id, metrics as an ``Infer``
call, trace span, failure log, domain errors to statuses) in a task of its own, with the call's
metadata and deadline; its reply or status goes back as one message with its ``call_id``, in
whatever order calls finish. A ``cancel`` message stops a call and answers nothing. When the caller
half-closes, the calls in flight finish and the stream ends; when the stream is cut, they are
cancelled. Once the server is shutting down (``stop_taking``) new calls are answered UNAVAILABLE,
not answered by the worker (the caller retries elsewhere), and each stream ends when its calls in
flight are done. A reply over the message limit is answered RESOURCE_EXHAUSTED for its call alone
(sent, it would end the stream and every call on it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from fleet.internal.v1 import worker_pb2

Handler = Callable[[worker_pb2.ModelWorkerServiceInferRequest, Any], Awaitable[Any]]
_END = object()


class CallContext:
    """The part of ``grpc.aio.ServicerContext`` a unary handler uses, for one call on a stream."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata
        self._code: grpc.StatusCode | None = None
        self._details = ""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        self._code, self._details = code, details
        raise grpc.aio.AbortError()

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return self._details


def _status(call_id: int, code: grpc.StatusCode, message: str,
            answered: bool = True) -> worker_pb2.ModelWorkerServiceInferCallsResponse:
    return worker_pb2.ModelWorkerServiceInferCallsResponse(
        call_id=call_id, status=worker_pb2.CallStatus(code=code.value[0], message=message, answered=answered))


class CallStreams:
    """Serves every ``InferCalls`` stream of one worker with ``handler`` (the servicer's unary Infer)."""

    def __init__(self, handler: Handler, max_reply_bytes: int = 0) -> None:
        self.handler, self.max_reply_bytes = handler, max_reply_bytes  # 0: no limit
        self.taking = True
        self._streams: set[_Served] = set()

    def stop_taking(self) -> None:
        """Answer new calls UNAVAILABLE (not answered here) and end each stream once its calls are done."""
        self.taking = False
        for stream in self._streams:
            stream.wind_down()

    async def serve(self, requests: AsyncIterator[worker_pb2.ModelWorkerServiceInferCallsRequest],
                    ) -> AsyncIterator[worker_pb2.ModelWorkerServiceInferCallsResponse]:
        stream = _Served(self)
        self._streams.add(stream)
        reader = asyncio.get_running_loop().create_task(stream.read(requests))
        try:
            while True:
                item = await stream.out.get()
                if item is _END:
                    break
                yield item
        finally:
            self._streams.discard(stream)
            reader.cancel()
            for task in list(stream.running.values()):
                task.cancel()
            with contextlib.suppress(BaseException):
                await reader


class _Served:
    """One stream being served: its calls running by id and the replies waiting to be sent."""

    def __init__(self, owner: CallStreams) -> None:
        self.owner = owner
        self.running: dict[int, asyncio.Task] = {}
        self.out: asyncio.Queue = asyncio.Queue()
        self._closing = False

    async def read(self, requests: AsyncIterator[worker_pb2.ModelWorkerServiceInferCallsRequest]) -> None:
        try:
            async for message in requests:
                self._take(message)
            if self.running:  # the caller is done sending: finish what it sent
                await asyncio.wait(list(self.running.values()))
        finally:
            self.out.put_nowait(_END)

    def _take(self, message: worker_pb2.ModelWorkerServiceInferCallsRequest) -> None:
        call_id, kind = message.call_id, message.WhichOneof("kind")
        if kind == "cancel":
            task = self.running.pop(call_id, None)
            if task is not None:
                task.cancel()
        elif kind != "infer":
            self.out.put_nowait(_status(call_id, grpc.StatusCode.INVALID_ARGUMENT,
                                        "an InferCalls message carries infer or cancel"))
        elif call_id in self.running:
            self.out.put_nowait(_status(call_id, grpc.StatusCode.INVALID_ARGUMENT,
                                        f"call_id {call_id} is already in flight on this stream"))
        elif not self.owner.taking:
            self.out.put_nowait(_status(call_id, grpc.StatusCode.UNAVAILABLE, "the model worker is shutting down",
                                        answered=False))
        else:
            self.running[call_id] = asyncio.get_running_loop().create_task(self._call(message))

    async def _call(self, message: worker_pb2.ModelWorkerServiceInferCallsRequest) -> None:
        call_id = message.call_id
        context = CallContext(tuple((m.key, m.value) for m in message.metadata))
        try:
            async with asyncio.timeout(message.timeout_ms / 1e3 if message.timeout_ms else None):
                reply = await self.owner.handler(message.infer, context)
            answer = worker_pb2.ModelWorkerServiceInferCallsResponse(call_id=call_id, reply=reply)
            limit = self.owner.max_reply_bytes
            if limit and answer.ByteSize() > limit:
                answer = _status(call_id, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                 f"the response ({answer.ByteSize()} bytes) is larger than this worker's message "
                                 f"limit ({limit} bytes)")
            self.out.put_nowait(answer)
        except grpc.aio.AbortError:
            self.out.put_nowait(_status(call_id, context.code() or grpc.StatusCode.UNKNOWN, context.details()))
        except TimeoutError:
            self.out.put_nowait(_status(call_id, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"))
        except asyncio.CancelledError:
            pass  # the caller gave up on it, or the stream is gone: nobody waits for an answer
        finally:
            self.running.pop(call_id, None)
            if self._closing and not self.running:
                self.out.put_nowait(_END)

    def wind_down(self) -> None:
        self._closing = True
        if not self.running:
            self.out.put_nowait(_END)
