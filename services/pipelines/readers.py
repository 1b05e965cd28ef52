"""Source readers: one thread per source decodes frames (OpenCV/FFmpeg) into a latest-frame slot.

A reader never blocks the event loop or terminate: it connects with a timeout, retries a failed live
source with capped exponential backoff (each attempt and state change recorded for status), and stops at
its stop event; a reader stuck inside FFmpeg longer than the terminate bound is abandoned. The slot holds
one frame: a frame replaced before the pipeline took it is dropped and counted (latest frame wins), so a
live source is never buffered without bound.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2

from services.pipelines.metrics import FRAMES_DROPPED, FRAMES_READ, RECONNECTS
from services.pipelines.spec import Frame, SourceSpec

_OPEN_LOCK = threading.Lock()  # OPENCV_FFMPEG_CAPTURE_OPTIONS is process-wide: set it and open under one lock
# FFmpeg probes a live stream for 5 s by default; 0.3 s finds an RTSP camera's one video stream (connects in
# about 0.2 s instead of 3 s on loopback), which shortens every reconnect and takeover.
_RTSP_PROBE = "analyzeduration;300000|probesize;100000"


@dataclass(frozen=True)
class ReaderTiming:
    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 10.0


class LatestFrame:
    """A one-frame slot: ``put`` replaces (counting the replaced frame as dropped), ``take`` empties it."""

    def __init__(self, notify: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._notify = notify
        self.dropped = 0

    def put(self, frame: Frame) -> bool:
        with self._lock:
            replaced = self._frame is not None
            self._frame = frame
            if replaced:
                self.dropped += 1
        self._notify()
        return replaced

    def take(self) -> Frame | None:
        with self._lock:
            frame, self._frame = self._frame, None
        return frame


@dataclass
class SourceStatus:
    state: str = "connecting"  # connecting, running, reconnecting, paused, ended, failed, stopped
    frames_read: int = 0
    reconnects: int = 0
    last_error: str = ""
    fps: float = 0.0
    width: int = 0
    height: int = 0
    updates: deque = field(default_factory=lambda: deque(maxlen=20))  # (time, state, message)


class Reader:
    """The common part of every source: a slot, a status, pause and stop."""

    def __init__(self, spec: SourceSpec, pipeline_id: str, notify: Callable[[], None]) -> None:
        self.spec, self.pipeline_id = spec, pipeline_id
        self.slot = LatestFrame(notify)
        self.status = SourceStatus()
        self.stop_event = threading.Event()
        self.paused = threading.Event()
        self._next_id = 0

    def set_state(self, state: str, message: str = "") -> None:
        if state != self.status.state or message:
            self.status.updates.append((time.time(), state, message))
        self.status.state = state
        if message:
            self.status.last_error = message

    def offer(self, frame: Frame) -> None:
        self.status.frames_read += 1
        FRAMES_READ.inc()
        if self.slot.put(frame):
            FRAMES_DROPPED.labels("rate").inc()

    def start(self) -> None:
        pass

    def stop(self, timeout_s: float) -> bool:
        """Stop reading; True when the reader ended within ``timeout_s`` (call off the event loop)."""
        self.stop_event.set()
        self.set_state("stopped")
        return True


class PushReader(Reader):
    """Frames a client pushes over gRPC (encoded images): the same slot, no thread."""

    def start(self) -> None:
        self.set_state("waiting")

    def push(self, encoded: bytes, captured_at: float | None) -> int:
        if self.status.state != "running":
            self.set_state("running")
        frame_id = self._next_id
        self._next_id += 1
        if not self.paused.is_set():
            self.offer(Frame(self.spec.source_id, frame_id, captured_at or time.time(), encoded=encoded))
        return frame_id


class VideoReader(Reader):
    """A video file (played at its own frame rate) or a live RTSP/HTTP source, decoded in a thread."""

    def __init__(self, spec: SourceSpec, pipeline_id: str, notify: Callable[[], None], location: str,
                 live: bool, timing: ReaderTiming) -> None:
        super().__init__(spec, pipeline_id, notify)
        self.location, self.live, self.timing = location, live, timing
        self._thread = threading.Thread(target=self._run, name=f"source-{spec.source_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float) -> bool:
        super().stop(timeout_s)
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _open(self) -> cv2.VideoCapture:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.timing.open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.timing.read_timeout_s * 1000)]
        with _OPEN_LOCK:
            if self.location.startswith(("rtsp://", "rtsps://")):
                os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = f"rtsp_transport;{self.spec.rtsp_transport}|{_RTSP_PROBE}"
            else:
                os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
            return cv2.VideoCapture(self.location, cv2.CAP_FFMPEG, params)

    def _run(self) -> None:
        delay = self.timing.reconnect_initial_s
        while not self.stop_event.is_set():
            self.set_state("connecting" if self.status.reconnects == 0 and not self.status.frames_read
                           else "reconnecting")
            capture = self._open()
            try:
                if capture.isOpened():
                    got_frame = self._read_all(capture)
                    if got_frame:
                        delay = self.timing.reconnect_initial_s
                    if not self.live:
                        if self.stop_event.is_set():
                            return
                        if got_frame:
                            self.set_state("ended", "end of the video file")
                        else:
                            self.set_state("failed", "the file holds no decodable video")
                        return
                    if self.stop_event.is_set():
                        return
                    message = "the source stopped sending frames"
                else:
                    if not self.live:
                        self.set_state("failed", "the file could not be opened as video")
                        return
                    message = "could not connect to the source"
            finally:
                capture.release()
            self.status.reconnects += 1
            RECONNECTS.inc()
            self.set_state("reconnecting", f"{message}; retrying in {delay:.1f}s")
            if self.stop_event.wait(delay):
                return
            delay = min(delay * 2, self.timing.reconnect_max_s)

    def _read_all(self, capture: cv2.VideoCapture) -> bool:
        """Read until the source ends, fails or the reader stops; True when at least one frame came."""
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        self.status.fps = fps if 0 < fps < 1000 else 0.0
        interval = 1.0 / self.status.fps if (self.status.fps and not self.live) else 0.0
        started, index, got = time.monotonic(), 0, False
        while not self.stop_event.is_set():
            if self.paused.is_set():
                if not self.live:  # a file waits where it is; a live source keeps draining its connection
                    self.set_state("paused")
                    self.stop_event.wait(0.05)
                    started = time.monotonic() - index * interval
                    continue
                if not capture.grab():
                    return got
                continue
            ok, bgr = capture.read()
            if not ok:
                return got
            if not got or self.status.state != "running":
                self.set_state("running")
                self.status.height, self.status.width = bgr.shape[:2]
            got = True
            frame_id = index if not self.live else self._next_id
            self._next_id += 1
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            self.offer(Frame(self.spec.source_id, frame_id, time.time(), pixels=rgb))
            index += 1
            if interval:  # a file plays at its own rate, as a camera would send it
                due = started + index * interval
                wait = due - time.monotonic()
                if wait > 0 and self.stop_event.wait(wait):
                    return got
        return got


def probe_file(path: str) -> tuple[int, int, float]:
    """(width, height, fps) of a video file's first frame; ValueError when it holds no decodable video."""
    capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    try:
        ok, frame = capture.read() if capture.isOpened() else (False, None)
        if not ok or frame is None:
            raise ValueError("not a decodable video")
        return frame.shape[1], frame.shape[0], float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        capture.release()
