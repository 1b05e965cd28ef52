"""Many inferences over one stream: bounded concurrency, answers as they complete.

A failed item yields its error and the stream goes on; only a bad API key (checked once,
at the edge, before the first item) or the client going away ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from fleet.v1 import inference_pb2
from services.common.errors import FleetError
from services.gateway.caller import Caller
from services.gateway.gateway import Gateway

R = TypeVar("R")
T = TypeVar("T")
Outcome = tuple[str, inference_pb2.InferResponse | FleetError]


async def infer_stream(
    gateway: Gateway, caller: Caller, items: AsyncIterator[tuple[str, inference_pb2.InferRequest]],
    max_in_flight: int, timeout_s: float | None,
) -> AsyncIterator[Outcome]:
    async for outcome in bounded_map(lambda request: gateway.infer(caller, request, timeout_s), items, max_in_flight):
        yield outcome


async def bounded_map(call: Callable[[R], Awaitable[T]], items: AsyncIterator[tuple[str, R]],
                      max_in_flight: int) -> AsyncIterator[tuple[str, T | FleetError]]:
    """``call`` on each item, at most ``max_in_flight`` at once, yielding (correlation id, result or error)."""
    outcomes: asyncio.Queue[tuple[str, T | FleetError] | None] = asyncio.Queue()
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()

    async def one(correlation_id: str, request: R) -> None:
        try:
            outcomes.put_nowait((correlation_id, await call(request)))
        except FleetError as exc:
            outcomes.put_nowait((correlation_id, exc))
        finally:
            slots.release()

    async def read() -> None:
        try:
            async for correlation_id, request in items:
                await slots.acquire()
                task = asyncio.get_running_loop().create_task(one(correlation_id, request))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            outcomes.put_nowait(None)

    reader = asyncio.get_running_loop().create_task(read())
    try:
        while (outcome := await outcomes.get()) is not None:
            yield outcome
        await reader  # surfaces a failure to read the request stream
    finally:
        reader.cancel()
        for task in list(tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
