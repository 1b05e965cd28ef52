"""Infer calls to one worker carried over a few long-lived ``InferCalls`` streams.

Opt-in (``FLEET_GATEWAY_WORKER_CALL_STREAMS``): on this project's two-core VM a message on an open
gRPC stream makes a bare round trip 0.3-0.7 ms faster than a new unary call (no HTTP/2 stream to open
and close), and in the fleet the worker wakes threads 1-5 times fewer per request (the gateway up to
one more), but the fleet's latency and CPU per request moved within this machine's noise
(``python -m bench --only worker_call_streams``; README, Performance).

``InferCalls`` stands in for the unary ``Infer`` stub method: the same request, timeout and metadata
in, the same reply out, and every failure raised as the ``grpc.aio.AioRpcError`` a unary call would
have raised, so the worker client's translation of statuses (retry elsewhere or not, the worker's
own answer or the transport's) is the same for both.

- A call's answer comes in the reply with its ``call_id``; its deadline is enforced here (and sent,
  so the worker stops the work too); a call given up on (deadline, the caller gone) is cancelled on
  the worker with a ``cancel`` message.
- A stream that fails or ends fails its calls in flight as UNAVAILABLE with no request id (the worker
  did not answer: it is unreachable or going away), exactly like a unary call cut off by a killed
  worker; the next call opens a fresh stream.
- A worker without ``InferCalls`` (UNIMPLEMENTED: an older worker during a rolling upgrade) gets
  unary calls from then on; so do requests too large to share a stream with others (a message over
  the peer's limit ends the whole stream) and requests asking for a visualization (a large reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from fleet.internal.v1 import worker_pb2
from services.common.context import REQUEST_ID_HEADER, current_request_id

log = logging.getLogger("fleet.gateway.call_streams")

# Requests above this size go as unary calls: on a shared stream, a message over the peer's limit
# would end the stream and every call on it.
STREAM_MAX_REQUEST_BYTES = 1024 * 1024
_GONE = "the model worker is unavailable"
Unary = Callable[..., Awaitable[worker_pb2.ModelWorkerServiceInferResponse]]


def _error(code: grpc.StatusCode, details: str, answered: bool = False) -> grpc.aio.AioRpcError:
    """The error a unary call would raise; ``answered``: the worker's handler gave the status (its request id)."""
    trailing = grpc.aio.Metadata((REQUEST_ID_HEADER, current_request_id())) if answered else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details)


class _Unsupported(Exception):
    """The worker has no InferCalls method."""


class _Stream:
    """One open ``InferCalls`` stream: its calls in flight by id, a reader delivering their replies."""

    def __init__(self, open_stream: Callable[[], Any]) -> None:
        self.rpc = open_stream()
        self.pending: dict[int, asyncio.Future] = {}
        self.failure: BaseException | None = None  # set once the stream is over
        self._next_id = 0
        self._writing = asyncio.Lock()  # grpc.aio takes one write at a time per call
        self._cancels: set[asyncio.Task] = set()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @property
    def usable(self) -> bool:
        return self.failure is None

    async def _read(self) -> None:
        failure: BaseException = _error(grpc.StatusCode.UNAVAILABLE, _GONE)
        try:
            while True:
                message = await self.rpc.read()
                if message is grpc.aio.EOF:
                    break
                future = self.pending.pop(message.call_id, None)
                if future is not None and not future.done():
                    future.set_result(message)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                failure = _Unsupported()
            else:
                log.info("worker call stream ended", extra={"code": exc.code().name,
                                                            "details": (exc.details() or "")[:200]})
        except asyncio.CancelledError:
            failure = _error(grpc.StatusCode.CANCELLED, "the gateway is closing")
            raise
        finally:
            self.failure = failure
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(failure)
            self.pending.clear()

    async def call(self, request: worker_pb2.ModelWorkerServiceInferRequest, timeout: float,
                   metadata: tuple[tuple[str, str], ...]) -> worker_pb2.ModelWorkerServiceInferResponse:
        self._next_id += 1
        call_id = self._next_id
        future = asyncio.get_running_loop().create_future()
        self.pending[call_id] = future
        message = worker_pb2.ModelWorkerServiceInferCallsRequest(
            call_id=call_id, infer=request, timeout_ms=max(1, math.ceil(timeout * 1e3)),
            metadata=[worker_pb2.CallMetadata(key=k, value=v) for k, v in metadata])
        sent = False
        try:
            async with asyncio.timeout(timeout):
                try:
                    async with self._writing:
                        await self.rpc.write(message)
                    sent = True
                except (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError):
                    # The stream is over (the reader says how); nothing reached the worker.
                    await asyncio.wait([self._reader])
                    raise self.failure or _error(grpc.StatusCode.UNAVAILABLE, _GONE) from None
                reply = await future
        except TimeoutError:
            self._cancel(call_id, sent)
            raise _error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        except asyncio.CancelledError:
            self._cancel(call_id, sent)
            raise
        finally:
            self.pending.pop(call_id, None)
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: the failure was raised some other way
        if reply.WhichOneof("outcome") == "reply":
            return reply.reply
        status = reply.status
        code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
        raise _error(code, status.message, status.answered)

    def _cancel(self, call_id: int, sent: bool) -> None:
        """Tell the worker to stop a call given up on (best effort; nothing when it never left)."""
        if not sent or self.failure is not None:
            return

        async def send() -> None:
            with contextlib.suppress(Exception):
                async with self._writing:
                    await self.rpc.write(worker_pb2.ModelWorkerServiceInferCallsRequest(call_id=call_id, cancel=True))

        task = asyncio.get_running_loop().create_task(send())
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    async def close(self) -> None:
        self.rpc.cancel()
        self._reader.cancel()
        for task in (self._reader, *self._cancels):
            with contextlib.suppress(BaseException):
                await task


_CODES = {code.value[0]: code for code in grpc.StatusCode}


class InferCalls:
    """``await calls(request, timeout=..., metadata=...)`` like the unary ``Infer`` stub method,
    over at most ``streams`` streams (opened as concurrent calls need them; the least busy is used)."""

    def __init__(self, open_stream: Callable[[], Any], unary: Unary, streams: int) -> None:
        self._open, self._unary, self.max_streams = open_stream, unary, streams
        self._streams: list[_Stream] = []
        self.supported = True

    def suits(self, request: worker_pb2.ModelWorkerServiceInferRequest) -> bool:
        return (self.supported and not request.request.parameters.visualize
                and request.ByteSize() <= STREAM_MAX_REQUEST_BYTES)

    async def __call__(self, request: worker_pb2.ModelWorkerServiceInferRequest, *, timeout: float,
                       metadata: tuple[tuple[str, str], ...] = ()) -> worker_pb2.ModelWorkerServiceInferResponse:
        if not self.suits(request):
            return await self._unary(request, timeout=timeout, metadata=metadata)
        try:
            return await self._stream().call(request, timeout, metadata)
        except _Unsupported:
            if self.supported:
                log.info("worker has no InferCalls; using unary calls")
            self.supported = False
            return await self._unary(request, timeout=timeout, metadata=metadata)

    def _stream(self) -> _Stream:
        self._streams = [s for s in self._streams if s.usable]
        idle = min(self._streams, key=lambda s: len(s.pending), default=None)
        if idle is None or (idle.pending and len(self._streams) < self.max_streams):
            idle = _Stream(self._open)
            self._streams.append(idle)
        return idle

    async def close(self) -> None:
        streams, self._streams = self._streams, []
        for stream in streams:
            await stream.close()
