"""InferStream's core: bounded by items and bytes, back-pressure on reading, deadline, cancellation.

The gateway behind it is a stand-in here (its real path is in tests/e2e, with a client that never reads).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

from fleet.v1 import inference_pb2
from services.common.errors import InvalidImage
from services.gateway.caller import Caller
from services.gateway.streaming import StreamLimits, infer_stream

CALLER = Caller(workspace="demo")


class StandIn:
    """Answers each request with ``size`` bytes of visualization after ``delay_s``; records what it saw."""

    def __init__(self, size: int = 1000, delay_s: float = 0.0) -> None:
        self.size, self.delay_s = size, delay_s
        self.started = 0
        self.cancelled = 0
        self.timeouts: list[float | None] = []

    async def infer(self, caller: Caller, request: inference_pb2.InferRequest,
                    timeout_s: float | None) -> inference_pb2.InferResponse:
        self.started += 1
        self.timeouts.append(timeout_s)
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if request.model_id == "bad/1":
            raise InvalidImage("not a recognisable image")
        return inference_pb2.InferResponse(model_id=request.model_id, visualization=b"v" * self.size)


class Requests:
    """An endless request stream that counts how many items the gateway has read."""

    def __init__(self, limit: int | None = None, model_id: str = "m/1") -> None:
        self.read, self.limit, self.model_id = 0, limit, model_id

    async def __aiter__(self) -> AsyncIterator[tuple[str, inference_pb2.InferRequest]]:
        for i in itertools.count() if self.limit is None else range(self.limit):
            await asyncio.sleep(0)  # a request arriving over the network lets other work run
            self.read += 1
            yield str(i), inference_pb2.InferRequest(model_id=self.model_id)


async def test_a_client_that_does_not_read_stops_the_gateway_reading() -> None:
    gateway, requests = StandIn(size=1000), Requests()
    stream = infer_stream(gateway, CALLER, requests.__aiter__(), StreamLimits(max_in_flight=8), lambda: None)
    first = await stream.__anext__()  # then the client stops taking answers
    assert first[0] == "0"
    await asyncio.sleep(0.2)
    # Eight held (the one handed over counts until the client takes the next) and one read, waiting for room.
    assert gateway.started == 8 and requests.read == 9
    for _ in range(3):
        await stream.__anext__()
    await asyncio.sleep(0.1)
    assert gateway.started == 11 and requests.read == 12  # each answer taken lets one more request in
    await stream.aclose()


async def test_the_bytes_of_unsent_answers_are_bounded_too() -> None:
    gateway, requests = StandIn(size=300_000), Requests()
    limits = StreamLimits(max_in_flight=64, max_buffered_bytes=1_000_000)
    stream = infer_stream(gateway, CALLER, requests.__aiter__(), limits, lambda: None)
    await stream.__anext__()
    await asyncio.sleep(0.2)
    # A megabyte of answers (unsent, or coming at 300 kB each): about three, where the count alone allows 64.
    assert gateway.started <= 5 and requests.read <= 6
    await stream.aclose()


async def test_every_item_is_answered_errors_included_and_the_stream_ends() -> None:
    gateway = StandIn(delay_s=0.01)

    async def items() -> AsyncIterator[tuple[str, inference_pb2.InferRequest]]:
        for i in range(30):
            yield str(i), inference_pb2.InferRequest(model_id="bad/1" if i % 7 == 0 else "m/1")

    out = [o async for o in infer_stream(gateway, CALLER, items(), StreamLimits(max_in_flight=4), lambda: None)]
    assert sorted(int(c) for c, _ in out) == list(range(30))
    assert {c for c, o in out if isinstance(o, InvalidImage)} == {"0", "7", "14", "21", "28"}


async def test_each_item_gets_what_is_left_of_the_streams_deadline() -> None:
    gateway = StandIn()
    left = iter([9.5, 7.25, 3.0])
    items = Requests(limit=3).__aiter__()
    out = [o async for o in infer_stream(gateway, CALLER, items, StreamLimits(), lambda: next(left))]
    assert len(out) == 3 and gateway.timeouts == [9.5, 7.25, 3.0]


async def test_closing_the_stream_cancels_the_items_in_flight() -> None:
    gateway = StandIn(delay_s=30)
    stream = infer_stream(gateway, CALLER, Requests().__aiter__(), StreamLimits(max_in_flight=5), lambda: None)
    waiting = asyncio.create_task(stream.__anext__())
    await asyncio.sleep(0.1)
    assert gateway.started == 5
    waiting.cancel()  # the client went away while the gateway waited for answers
    await asyncio.gather(waiting, return_exceptions=True)
    await stream.aclose()
    assert gateway.cancelled == 5


async def test_requests_being_served_count_against_the_bytes_bound() -> None:
    """Large requests (images) with small answers: the stream holds about max_buffered_bytes of requests, however
    many items its count allows (before, 32 items of 3 MB each were held by one stream that was never read)."""
    gateway = StandIn(size=10, delay_s=60.0)  # nothing answers during the test

    async def large_requests() -> AsyncIterator[tuple[str, inference_pb2.InferRequest]]:
        for i in itertools.count():
            await asyncio.sleep(0)
            yield str(i), inference_pb2.InferRequest(model_id="m/1", image=inference_pb2.Image(encoded=b"j" * 4000))

    stream = infer_stream(gateway, CALLER, large_requests(), StreamLimits(max_in_flight=100, max_buffered_bytes=10_000),
                          lambda: None)
    pending = asyncio.ensure_future(stream.__anext__())
    for _ in range(50):
        await asyncio.sleep(0)
    assert gateway.started == 3  # 0, 4 kB, 8 kB held: room; 12 kB: full
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    await stream.aclose()
    assert gateway.cancelled == 3
