"""Video files of synthetic scenes (services.demo.scenes): every ``hold`` frames a new scene, so each frame's
objects are known; MJPEG in AVI (every frame a JPEG: decoders agree on every pixel, RTP can carry it as is).
"""

from __future__ import annotations

from pathlib import Path

import cv2

from services.demo.scenes import SAMPLE_SEEDS, SceneConfig, generate_scene

VIDEO_CONFIG = SceneConfig(width_range=(640, 640), height_range=(480, 480), aspect_range=(0.75, 0.75),
                           num_shapes=(1, 4), min_visible=1.0)


def write_video(path: Path, frames: int, fps: float = 10.0, hold: int = 5, seed: int = SAMPLE_SEEDS + 500) -> Path:
    """A ``frames``-long 640x480 MJPEG AVI at ``fps``; frame ``i`` shows scene ``seed + i // hold``."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    try:
        bgr = None
        for index in range(frames):
            if index % hold == 0:
                bgr = cv2.cvtColor(generate_scene(seed + index // hold, VIDEO_CONFIG).image, cv2.COLOR_RGB2BGR)
            writer.write(bgr)
    finally:
        writer.release()
    return path
