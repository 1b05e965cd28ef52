"""Many inferences over one stream: bounded, answers as they complete, back-pressure to the client.

``bounded_map`` is the engine (the OIP stream uses it too); ``infer_stream`` runs fleet.v1 items on it.

A stream holds at most ``max_in_flight`` items (being served, or answered and waiting to be sent)
and about ``max_buffered_bytes`` (answers waiting to be sent, and the items being served: their requests,
plus the stream's mean answer size each). At either bound it stops reading
requests until the client takes answers or the workers finish items: gRPC's flow control then slows a client that sends without
reading, instead of the gateway buffering for it (and workers computing answers nobody reads).
An answer counts as taken once the transport has accepted it (the generator resumes after that).

Each item gets what is left of the stream's deadline (the default request timeout when the stream
has none). A failed item yields its error and the stream goes on; only a bad API key (checked once,
at the edge, before the first item) or the client going away ends it, and then every item still in
flight is cancelled, which cancels its call to the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fleet.v1 import inference_pb2
from services.common.context import current_request_id
from services.common.errors import FleetError, Internal
from services.gateway.caller import Caller
from services.gateway.gateway import Gateway
from services.gateway.metrics import STREAM_PAUSES

log = logging.getLogger("fleet.gateway.streaming")

R = TypeVar("R")
T = TypeVar("T")
Outcome = tuple[str, inference_pb2.InferResponse | FleetError]


@dataclass(frozen=True)
class StreamLimits:
    max_in_flight: int = 32
    max_buffered_bytes: int = 8 * 1024 * 1024


def _size(outcome: object) -> int:
    """Bytes a request or an answer holds: a protobuf message's size, an error's message."""
    if isinstance(outcome, FleetError):
        return len(outcome.message) + 16
    byte_size = getattr(outcome, "ByteSize", None)
    return byte_size() if callable(byte_size) else 0


class _Window(Generic[T]):
    """Items held by one stream and their bytes; wakes the reader and the writer.

    Items still being served count by their request's size plus the mean size of this stream's answers
    so far, so a stream whose requests (large images) or answers (visualizations) are large holds fewer
    of them, not just fewer unsent answers.
    """

    def __init__(self, limits: StreamLimits) -> None:
        self.limits = limits
        self.held = 0  # admitted and not yet taken by the transport
        self.running = 0  # of those, not answered yet
        self.bytes = 0  # of the answered ones not yet taken
        self.request_bytes = 0  # requests of the running ones
        self.answers = 0
        self.mean_size = 0.0
        self.ready: deque[tuple[str, T | FleetError, int]] = deque()
        self.room = asyncio.Event()
        self.arrived = asyncio.Event()
        self.reading = True

    def full(self) -> bool:
        expected = self.bytes + self.request_bytes + self.running * self.mean_size
        return self.held >= self.limits.max_in_flight or expected >= self.limits.max_buffered_bytes

    def admit(self, request_size: int) -> None:
        self.held += 1
        self.running += 1
        self.request_bytes += request_size

    def answered(self, correlation_id: str, outcome: T | FleetError, request_size: int) -> None:
        size = _size(outcome)
        self.running -= 1
        self.request_bytes -= request_size
        self.answers += 1
        self.mean_size += (size - self.mean_size) / self.answers
        self.ready.append((correlation_id, outcome, size))
        self.bytes += size
        self.arrived.set()

    def sent(self, size: int) -> None:
        self.held -= 1
        self.bytes -= size
        self.room.set()

    def done(self) -> bool:
        return not self.reading and self.held == 0


async def infer_stream(
    gateway: Gateway, caller: Caller, items: AsyncIterator[tuple[str, inference_pb2.InferRequest]],
    limits: StreamLimits, time_remaining: Callable[[], float | None],
) -> AsyncIterator[Outcome]:
    """fleet.v1 items: each one's deadline is what is left of the stream's when it starts."""
    async for outcome in bounded_map(lambda request: gateway.infer(caller, request, time_remaining()), items, limits):
        yield outcome


async def bounded_map(call: Callable[[R], Awaitable[T]], items: AsyncIterator[tuple[str, R]],
                      limits: StreamLimits | int) -> AsyncIterator[tuple[str, T | FleetError]]:
    """``call`` on each item within ``limits`` (an int: that many in flight), yielding (correlation id, result or
    error) as they complete and reading the next item only while there is room."""
    window: _Window[T] = _Window(limits if isinstance(limits, StreamLimits) else StreamLimits(max_in_flight=limits))
    tasks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()

    async def one(correlation_id: str, request: R, request_size: int) -> None:
        try:
            outcome: T | FleetError = await call(request)
        except FleetError as exc:
            outcome = exc
        except Exception:  # a bug: this item answers INTERNAL, the stream goes on
            log.exception("unhandled error in a stream item")
            outcome = Internal(f"internal error; quote request id {current_request_id()}")
        window.answered(correlation_id, outcome, request_size)

    async def read() -> None:
        try:
            async for correlation_id, request in items:
                if window.full():
                    STREAM_PAUSES.inc()
                    while window.full():
                        window.room.clear()
                        await window.room.wait()
                request_size = _size(request)
                window.admit(request_size)
                task = loop.create_task(one(correlation_id, request, request_size))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            window.reading = False
            window.arrived.set()

    reader = loop.create_task(read())
    try:
        while True:
            while not window.ready and not window.done():
                window.arrived.clear()
                await window.arrived.wait()
            if not window.ready:
                break
            correlation_id, outcome, size = window.ready.popleft()
            yield correlation_id, outcome
            window.sent(size)
        await reader  # surfaces a failure to read the request stream
    finally:
        reader.cancel()
        for task in list(tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        await asyncio.gather(*tasks, return_exceptions=True)
