"""``cancel_within``: a looping task is stopped within its bound even where a cancellation is not acted on,
and the wait never outlasts the bound (``asyncio.wait_for`` waits without bound for a task it cancelled)."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from redis.asyncio import Redis

from services.common.cancelling import cancel_all, cancel_within


def _loop_that_ignores(cancels: int, log: list[str]):  # noqa: ANN202
    """A loop that goes on after its first ``cancels`` cancellations, each time into a wait nothing ends."""

    async def run() -> None:
        ignored = 0
        while True:
            try:
                await asyncio.get_running_loop().create_future()  # (a batch whose answer never comes)
            except asyncio.CancelledError:
                log.append("cancelled")
                if ignored == cancels:
                    raise
                ignored += 1

    return run()


async def test_a_loop_that_goes_on_after_two_cancellations_is_stopped_within_the_bound() -> None:
    log: list[str] = []
    task = asyncio.create_task(_loop_that_ignores(2, log))
    await asyncio.sleep(0)
    started = time.monotonic()
    assert await cancel_within(task, 2.0, every_s=0.05)
    assert task.cancelled() and log == ["cancelled"] * 3
    assert time.monotonic() - started < 1.0


async def test_a_loop_that_never_stops_is_left_after_the_bound_and_the_stop_returns() -> None:
    log: list[str] = []
    task = asyncio.create_task(_loop_that_ignores(10**9, log))
    await asyncio.sleep(0)
    started = time.monotonic()
    assert not await cancel_within(task, 0.5, every_s=0.05)
    assert 0.5 <= time.monotonic() - started < 2.0 and not task.done() and len(log) >= 5
    task.get_coro().close()  # (the test's own clean-up: a coroutine that ignores cancellation cannot be cancelled)
    await asyncio.sleep(0)


async def test_wait_for_would_hang_where_cancel_within_does_not() -> None:
    # The reason for cancel_within: past its timeout wait_for cancels once and then waits for the task unboundedly.
    task = asyncio.create_task(_loop_that_ignores(2, []))
    await asyncio.sleep(0)
    task.cancel()
    outer = asyncio.create_task(asyncio.wait_for(task, 0.2))
    done, _ = await asyncio.wait({outer}, timeout=1.0)
    assert not done  # still waiting for a task that ignored both cancellations
    assert await cancel_within(task, 1.0)
    with pytest.raises(asyncio.TimeoutError):  # (it ends once the task is gone)
        await asyncio.wait_for(outer, 1.0)


async def test_cancel_all_stops_every_task() -> None:
    tasks = [asyncio.create_task(_loop_that_ignores(n, [])) for n in (0, 1, 3)]
    await asyncio.sleep(0)
    assert await cancel_all(tasks, 2.0, every_s=0.05)
    assert all(t.cancelled() for t in tasks)


async def test_a_loop_over_redis_commands_is_stopped_every_time(redis_url: str, namespace: str) -> None:
    # redis-py's asyncio client sends each command under asyncio.wait_for (a socket timeout is set), and on
    # Python 3.11 wait_for loses a cancellation that arrives just after its inner call finished. A loop like a
    # pipeline's (a command, then other work) went on after one cancellation in about 1 try in 10 here (in a
    # tight loop of commands, most tries): forty loops, each stopped within its bound.
    client = Redis.from_url(redis_url, socket_timeout=2.0)
    key = f"{namespace}:cancelling"

    async def loop() -> None:
        while True:
            await client.get(key)
            await asyncio.sleep(0.002)

    try:
        for _ in range(40):
            task = asyncio.create_task(loop())
            await asyncio.sleep(random.uniform(0.001, 0.01))
            assert await cancel_within(task, 2.0)  # (cancelled, or failed: a command cut off can break its connection)
    finally:
        await client.aclose()
