"""A real fleet (registry, worker, gateway) with pipelines replicas, real videos and a real RTSP server."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from services.cache.embedded import delete_namespace, free_port
from services.demo.video import write_video
from services.local.processes import LocalFleet
from tests.conftest import demo_models, write_catalog
from tests.deploy.host import apt_install
from tests.onnx_factory import write_package, yolov8_like

# Leases short enough that a takeover is quick to test.
FAST = {"FLEET_PIPELINES_LEASE_TTL_S": "2", "FLEET_PIPELINES_LEASE_RENEW_S": "0.5",
        "FLEET_PIPELINES_CLAIM_INTERVAL_S": "0.2", "FLEET_PIPELINES_RECONNECT_INITIAL_S": "0.3",
        "FLEET_PIPELINES_RECONNECT_MAX_S": "1", "FLEET_PIPELINES_OPEN_TIMEOUT_S": "3",
        "FLEET_PIPELINES_READ_TIMEOUT_S": "2", "FLEET_PIPELINES_MAX_PIPELINES_PER_WORKSPACE": "6"}


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Written once for the run (about 15 s on CI; they were once per module): the tests only read them."""
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "clip.avi", 30, fps=10)
    write_video(root / "long.avi", 600, fps=10, seed=4_000_000)  # 60 s: the RTSP server's loop pauses its stream
    write_video(root / "busy.avi", 120, fps=30, hold=1, seed=5_000_000)  # a new scene every frame: no cache hits
    (root / "not-video.avi").write_bytes(b"this is not a video" * 100)
    return root


@contextmanager
def pipelines_fleet(tmp_path_factory: pytest.TempPathFactory, redis_url: str, videos: Path) -> Iterator[LocalFleet]:
    """Registry, one worker, gateway and two pipelines replicas with FAST leases, on the demo detector and a slow
    one."""
    tmp = tmp_path_factory.mktemp("fleet")
    # A deliberately slow detector (a 1024x1024 input, a million anchors: about 0.3 s a frame here).
    slow = write_package(tmp / "slow", yolov8_like(size=1024, stride=1), size=1024)
    models = [m for m in demo_models() if m["id"] == "shapes-det/1"]
    models.append({"id": "slow/1", "workspace": "demo", "package": str(slow), "public": False})
    catalog = write_catalog(tmp / "catalog.yaml", models)
    namespace = f"e2e-{uuid.uuid4().hex[:10]}"
    local = LocalFleet(redis_url, catalog, workers=1, namespace=namespace, state_dir=tmp / "run",
                       video_roots=[videos], env=FAST)
    try:
        local.start()
        for i in range(2):
            local.start_pipelines(i)
        for replica in local.pipelines_processes:
            replica.wait_ready(local.ready_timeout_s)
        yield local
    finally:
        local.stop()
        delete_namespace(redis_url, namespace)


@pytest.fixture(scope="package")
def fleet(tmp_path_factory: pytest.TempPathFactory, redis_url: str, videos: Path) -> Iterator[LocalFleet]:
    """One for the package (a start and stop cost about 15 s on CI): the modules here terminate the pipelines they
    create and store workflows under ids of their own; test_takeover, which kills and restarts replicas, has one of
    its own."""
    with pipelines_fleet(tmp_path_factory, redis_url, videos) as local:
        yield local


class RtspServer:
    def __init__(self, video: Path, log: Path) -> None:
        self.video, self.log, self.port = video, log, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> None:
        script = Path(__file__).with_name("rtsp_server.py")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(["/usr/bin/python3", str(script), str(self.port), str(self.video)],
                                         stdout=subprocess.PIPE, stderr=out)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == b"ready", self.log.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def rtsp(videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtspServer]:
    why = apt_install({"/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstrtpmanager.so": "gstreamer1.0-plugins-good",
                       "/usr/lib/x86_64-linux-gnu/girepository-1.0/GstRtspServer-1.0.typelib":
                           "gir1.2-gst-rtsp-server-1.0",
                       "/usr/lib/python3/dist-packages/gi/overrides/Gst.py": "python3-gst-1.0",
                       "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstx264.so": "gstreamer1.0-plugins-ugly",
                       "/usr/lib/x86_64-linux-gnu/libgstrtspserver-1.0.so.0": "gstreamer1.0-rtsp"})
    if why:
        pytest.skip(why)
    server = RtspServer(videos / "long.avi", tmp_path_factory.mktemp("rtsp") / "rtsp.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(predicate, timeout_s: float, interval_s: float = 0.1):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval_s)
    raise AssertionError(f"not within {timeout_s}s")


