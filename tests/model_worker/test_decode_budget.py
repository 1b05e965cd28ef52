"""The worker-wide decode budget: pixels in flight across requests, waited for briefly, then refused."""

from __future__ import annotations

import asyncio
import struct
import zlib
from pathlib import Path

import grpc
import pytest

from fleet.v1 import inference_pb2
from services.common.errors import ResourceExhausted
from services.model_worker.decode_budget import BudgetWait, DecodeBudget
from services.model_worker.settings import WorkerSettings
from tests.model_worker.test_service import _chunk, start_worker
from tests.onnx_factory import write_package, yolov8_like
from tests.model_worker.test_service import descriptor


def black_png(width: int, height: int) -> bytes:
    """A valid, tiny PNG that decodes to width x height black pixels."""
    rows = (b"\0" + b"\0" * (3 * width)) * height
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(rows, 9))
            + _chunk(b"IEND", b""))


async def test_reservations_wait_in_order_and_are_refused_after_the_wait() -> None:
    budget = DecodeBudget(100, wait_s=5.0)
    first, second, third = budget.reservation(), budget.reservation(), budget.reservation()
    first.reserve(60)
    with pytest.raises(BudgetWait):
        second.reserve(60)
    waiting = asyncio.ensure_future(second.wait(60))
    await asyncio.sleep(0.01)
    with pytest.raises(BudgetWait):  # 30 would fit, but 60 waits ahead of it
        third.reserve(30)
    first.release()
    await asyncio.wait_for(waiting, 1)
    assert budget.in_use == 60 and budget.high_water == 60
    budget.wait_s = 0.05
    with pytest.raises(ResourceExhausted, match="too many large images"):
        await third.wait(60)
    second.release()
    assert budget.in_use == 0
    await third.wait(30)  # room again: granted at once
    third.release()
    assert budget.in_use == 0 and not budget._waiters


async def test_a_cancelled_wait_leaves_nothing_reserved() -> None:
    budget = DecodeBudget(10, wait_s=5.0)
    holder = budget.reservation()
    holder.reserve(10)
    waiter = asyncio.ensure_future(budget.reservation().wait(5))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    holder.release()
    assert budget.in_use == 0 and not budget._waiters


def test_the_budget_must_hold_one_image_at_the_limit() -> None:
    with pytest.raises(ValueError, match="at least max_image_pixels"):
        WorkerSettings(max_image_pixels=1000, decode_budget_pixels=999)
    assert WorkerSettings(max_image_pixels=1000).decode_budget == 1000


async def test_concurrent_large_images_stay_within_the_budget(tmp_path: Path, redis_url: str, namespace: str) -> None:
    side = 1500  # 2.25 megapixels each; the budget holds two at once
    h = await start_worker(tmp_path, redis_url, namespace, max_image_pixels=side * side,
                           decode_budget_pixels=2 * side * side, decode_budget_wait_s=30.0, cpu_threads=4)
    try:
        model = descriptor(write_package(tmp_path / "m", yolov8_like()), "m/1")
        image = inference_pb2.Image(encoded=black_png(side, side))
        await h.infer(model, image)  # loaded
        budget = h.worker.pipeline.budget
        budget.high_water = 0
        replies = await asyncio.gather(*(h.infer(model, image) for _ in range(8)))
        assert all(r.image_width == side for r in replies)
        print(f"8 concurrent {side}x{side} images: at most {budget.high_water} pixels decoded at once "
              f"(budget {budget.capacity})")
        assert budget.high_water <= budget.capacity and budget.in_use == 0
        # With no time to wait, requests beyond the budget are refused rather than decoded.
        budget.wait_s = 0.0
        outcomes = await asyncio.gather(*(h.infer(model, image) for _ in range(8)), return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert all(o.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for o in refused)
        assert all("too many large images" in o.details() for o in refused)
        print(f"wait 0: {len(refused)} of 8 refused")
        assert refused and budget.in_use == 0
        assert (await h.infer(model, image)).image_width == side  # and the worker serves on
    finally:
        await h.runner.stop()
