"""The values that flow between steps at run time: images (inputs and crops) and predictions.

An image knows where it sits in its run's root image (``origin``), so predictions on a crop can be
mapped to the parent's coordinates; a root image keeps its encoded bytes (sent to workers as they came)
and is decoded at most once per run, when a block needs its pixels (crops, drawings).
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fleet.v1 import inference_pb2, model_pb2
from services.common.errors import InvalidImage

Json = dict[str, Any]


@dataclass(eq=False)
class WImage:
    """An image in a run: a root input image (``encoded``) or a crop / drawing (``pixels``, BGR)."""

    image_id: str
    width: int = 0
    height: int = 0
    encoded: bytes = b""
    pixels: np.ndarray | None = None
    parent_id: str = ""  # the image this one was cut from ("" for a root)
    origin: tuple[float, float] = (0.0, 0.0)  # this image's top-left corner in the root image
    root_id: str = ""
    _decoding: asyncio.Future | None = field(default=None, repr=False)

    @classmethod
    def root(cls, encoded: bytes, width: int, height: int) -> WImage:
        image_id = str(uuid.uuid4())
        return cls(image_id, width, height, encoded=encoded, root_id=image_id)

    async def array(self, cpu) -> np.ndarray:  # noqa: ANN001 - the run's CPU-pool runner
        """The BGR pixels, decoded once per run (in the CPU pool)."""
        if self.pixels is not None:
            return self.pixels
        if self._decoding is None:
            self._decoding = asyncio.ensure_future(cpu(decode, self.encoded))
        self.pixels = await self._decoding
        return self.pixels

    def message(self) -> inference_pb2.Image:
        """The image as a worker takes it: the bytes as sent for a root, raw pixels for a crop."""
        if self.encoded:
            return inference_pb2.Image(encoded=self.encoded)
        px = np.ascontiguousarray(self.pixels)
        return inference_pb2.Image(raw=inference_pb2.RawImage(
            data=px.tobytes(), width=px.shape[1], height=px.shape[0], channels=px.shape[2] if px.ndim == 3 else 1,
            color_order=model_pb2.COLOR_ORDER_BGR))

    def child(self, pixels: np.ndarray, x0: int, y0: int, child_id: str) -> WImage:
        return WImage(child_id, pixels.shape[1], pixels.shape[0], pixels=pixels, parent_id=self.image_id,
                      origin=(self.origin[0] + x0, self.origin[1] + y0), root_id=self.root_id)

    def region(self, box: tuple[int, int, int, int], child_id: str) -> WImage:
        """A crop known by its place only (its pixels stayed on the worker that cut and classified it)."""
        x0, y0, x1, y1 = box
        return WImage(child_id, x1 - x0, y1 - y0, parent_id=self.image_id,
                      origin=(self.origin[0] + x0, self.origin[1] + y0), root_id=self.root_id)

    def drawn(self, pixels: np.ndarray) -> WImage:
        """A drawing on this image (same place, new pixels)."""
        return WImage(self.image_id, self.width, self.height, pixels=pixels, parent_id=self.parent_id,
                      origin=self.origin, root_id=self.root_id)


def decode(data: bytes) -> np.ndarray:
    import cv2  # noqa: PLC0415

    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise InvalidImage("an input image could not be decoded (send JPEG, PNG, BMP or WebP)")
    return pixels


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the encoded header, without decoding the pixels (PNG, JPEG; else 0, 0)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker, size = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
            i += 2 + size
    return 0, 0


@dataclass
class Detections:
    """Boxes with classes on one image, in Roboflow's JSON shape (centre x, y, width, height, ...)."""

    image: WImage
    predictions: list[Json]
    kind: str
    inference_id: str = ""

    def replace(self, predictions: list[Json]) -> Detections:
        return Detections(self.image, predictions, self.kind, self.inference_id)

    def json(self, parent_coordinates: bool = False) -> Json:
        preds = [dict(p, parent_id=self.image.image_id) for p in self.predictions]
        width, height = self.image.width, self.image.height
        if parent_coordinates and self.image.parent_id:
            dx, dy = self.image.origin
            preds = [shifted(p, dx, dy) for p in preds]
        return {"image": {"width": width, "height": height}, "predictions": preds}


def shifted(p: Json, dx: float, dy: float) -> Json:
    q = copy.deepcopy(p)
    q["x"] += dx
    q["y"] += dy
    for key in ("points", "keypoints"):
        for point in q.get(key, ()):
            point["x"] += dx
            point["y"] += dy
    return q


@dataclass(frozen=True)
class Failed:
    """An element (an input image's, or a crop's, branch) whose step failed on it alone: it stands in for the
    step's outputs there and for every later step's that reads them; answered as ``{"error": {...}}``."""

    step: str
    status: str  # the gRPC code's name
    message: str

    def json(self, parent_coordinates: bool = False) -> Json:
        return {"error": {"step": self.step, "status": self.status, "message": self.message}}


@dataclass
class Classification:
    """A classifier's answer on one image, in Roboflow's JSON shape."""

    image: WImage
    body: Json
    inference_id: str = ""

    def json(self, parent_coordinates: bool = False) -> Json:
        return {"image": {"width": self.image.width, "height": self.image.height}, **self.body,
                "inference_id": self.inference_id, "parent_id": self.image.image_id,
                "prediction_type": "classification"}


def xyxy(p: Json) -> tuple[float, float, float, float]:
    return p["x"] - p["width"] / 2, p["y"] - p["height"] / 2, p["x"] + p["width"] / 2, p["y"] + p["height"] / 2
