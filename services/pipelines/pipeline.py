"""One running pipeline: takes the latest frame of each source at most ``max_fps`` times a second, runs them
through its processor as one batch, and hands the results to its sinks.

Frames are taken, never queued: while a batch is being processed, newer frames replace older ones in each
source's slot (dropped, counted), so the delay from capture to result stays about one batch's processing
time plus one frame interval, however slow the model is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import UTC, datetime

from services.common.cancelling import cancel_within
from services.common.errors import FleetError
from services.common.redact import redact_url
from services.pipelines.metrics import ABANDONED_READERS, FRAMES_PROCESSED, LATENCY
from services.pipelines.processors import FrameProcessor
from services.pipelines.readers import Reader
from services.pipelines.sinks import ResultSinks
from services.pipelines.spec import Desired, FrameResult, PipelineSpec

log = logging.getLogger("fleet.pipelines")
_DONE = {"ended", "failed", "stopped"}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class Pipeline:
    def __init__(self, spec: PipelineSpec, processor: FrameProcessor, readers: list[Reader],
                 sinks: ResultSinks) -> None:
        self.spec, self.processor = spec, processor
        self.readers: dict[str, Reader] = {r.spec.source_id: r for r in readers}
        self.sinks = sinks
        self.processed = 0
        self.errors = 0
        self.last_error = ""
        self.started_at = time.time()
        self._latencies: deque[tuple[float, str, float]] = deque(maxlen=256)  # (completed, source, seconds)
        self._wake = asyncio.Event()
        self._finishing = False
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task | None = None

    # -- control ------------------------------------------------------------------------------------------
    def notify(self) -> None:  # called from reader threads
        self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        for reader in self.readers.values():
            reader.start()
        self.apply_desired(self.spec.desired)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"pipeline-{self.spec.pipeline_id}")

    def apply_desired(self, desired: Desired) -> None:
        self.spec.desired = desired
        for reader in self.readers.values():
            (reader.paused.set if desired is Desired.PAUSED else reader.paused.clear)()

    def add_reader(self, reader: Reader) -> None:
        self.readers[reader.spec.source_id] = reader
        if self.spec.desired is Desired.PAUSED:
            reader.paused.set()
        reader.start()

    async def remove_reader(self, source_id: str, timeout_s: float) -> None:
        reader = self.readers.pop(source_id)
        await self._stop_readers([reader], timeout_s)

    async def stop(self, timeout_s: float, finish: bool = False) -> None:
        """Stop within about ``timeout_s`` whatever the sources are doing (a stuck reader is abandoned).
        ``finish`` (a drain handing the pipeline over): the batch in flight and the frames the sources' slots
        hold (a pushed one was acknowledged to its client) are processed first, within that bound; else they
        are lost at the switch."""
        if self._task is not None:
            if finish:
                for reader in self.readers.values():  # no new frames: only those read already
                    reader.stop_event.set()
                self._finishing = True
                self._wake.set()
                await asyncio.wait({self._task}, timeout=timeout_s)  # not done within the bound: cancelled below
            if not await cancel_within(self._task, timeout_s):
                log.warning("pipeline loop still running after its stop; abandoned",
                            extra={"pipeline_id": self.spec.pipeline_id})
        await self._stop_readers(list(self.readers.values()), timeout_s)

    @staticmethod
    async def _stop_readers(readers: list[Reader], timeout_s: float) -> None:
        for reader in readers:
            reader.stop_event.set()
        stopped = await asyncio.gather(*(asyncio.to_thread(r.stop, timeout_s) for r in readers))
        ABANDONED_READERS.inc(sum(1 for ok in stopped if not ok))

    # -- the loop ---------------------------------------------------------------------------------------
    async def _run(self) -> None:
        interval = 1.0 / self.spec.max_fps
        next_due = time.monotonic()
        while True:
            if not self._finishing:
                await self._wake.wait()
                self._wake.clear()
            delay = next_due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            frames = [f for r in list(self.readers.values()) if (f := r.slot.take()) is not None]
            if frames:
                next_due = max(next_due + interval, time.monotonic())
                await self._process(frames)
            if self._finishing and not frames:  # finishing: until the slots are found empty
                return

    async def _process(self, frames: list) -> None:
        try:
            outcomes = await self.processor.process(self.spec.api_key, frames)
        except FleetError as exc:
            outcomes = [exc] * len(frames)
        done = time.time()
        for frame, outcome in zip(frames, outcomes, strict=True):
            result = FrameResult(self.spec.pipeline_id, frame.source_id, frame.frame_id, frame.captured_at, done)
            if isinstance(outcome, FleetError):
                self.errors += 1
                self.last_error = outcome.message
                result.error = f"{outcome.code.name}: {outcome.message}"
                FRAMES_PROCESSED.labels("error").inc()
            else:
                result.outputs = outcome
                self.processed += 1
                FRAMES_PROCESSED.labels("ok").inc()
            LATENCY.observe(done - frame.captured_at)
            self._latencies.append((done, frame.source_id, done - frame.captured_at))
            await self.sinks.put(result, self.spec.buffer_size)

    # -- status -------------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        if self.spec.desired is Desired.PAUSED:
            return "paused"
        states = {r.status.state for r in self.readers.values()}
        if states and states <= _DONE:
            return "finished"
        if "running" in states:
            return "running"
        return "connecting" if "connecting" in states or "waiting" in states else "reconnecting"

    def report(self) -> dict:
        now = time.time()
        recent = [entry for entry in self._latencies if now - entry[0] <= 10]
        updates = []
        for reader in self.readers.values():
            for ts, state, message in reader.status.updates:
                updates.append({"timestamp": iso(ts), "severity": "WARNING" if message and state != "ended"
                                else "INFO", "event_type": state.upper(), "source_id": reader.spec.source_id,
                                "payload": {"state": state, "message": message}})
        latency = []
        for source_id in self.readers:
            mine = [s for _, sid, s in recent if sid == source_id]
            latency.append({"source_id": source_id, "frame_decoding_latency": None,
                            "inference_latency": None, "e2e_latency": sum(mine) / len(mine) if mine else None})
        dropped = sum(r.slot.dropped for r in self.readers.values())
        return {
            "state": self.state,
            "desired": self.spec.desired.value,
            "video_source_status_updates": sorted(updates, key=lambda u: u["timestamp"])[-50:],
            "latency_reports": latency,
            "inference_throughput": len(recent) / min(10.0, max(now - self.started_at, 1e-3)),
            "sources_metadata": [
                {"source_id": sid, "source_reference": redact_url(r.spec.reference), "state": r.status.state,
                 "reconnects": r.status.reconnects, "last_error": r.status.last_error,
                 "source_properties": {"width": r.status.width, "height": r.status.height, "fps": r.status.fps}}
                for sid, r in self.readers.items()],
            "frames": {"read": sum(r.status.frames_read for r in self.readers.values()), "processed": self.processed,
                       "dropped": dropped, "errors": self.errors},
            "last_error": self.last_error,
        }
