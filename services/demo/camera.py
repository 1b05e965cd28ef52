"""Held-out scenes as a camera would send them: enlarged, JPEG-encoded, then decoded by the worker's
own code, at full scale or reduced (``FLEET_WORKER_JPEG_REDUCED_DECODE``), for the accuracy of both.

The results map back to the scene's own pixels, so the same ground truth scores both decodes.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from services.common.model_spec import InputSpec
from services.model_worker.processing.decode import ImageLimits, decode_scaled
from services.model_worker.processing.preprocess import Transform, decode_reduction, preprocess


@dataclass
class Camera:
    upscale: float = 2.5  # the sent image's size over the scene's
    quality: int = 90  # JPEG quality
    reduced_decode: bool = False
    factors: Counter[int] = field(default_factory=Counter)  # images decoded at 1/1, 1/2, 1/4, 1/8

    def send(self, image: np.ndarray) -> bytes:
        """The JPEG this camera sends of an RGB ``image``: enlarged ``upscale`` times (bicubic)."""
        height, width = image.shape[:2]
        big = cv2.resize(image, (round(width * self.upscale), round(height * self.upscale)),
                         interpolation=cv2.INTER_CUBIC)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return jpeg.tobytes()

    def prepare(self, image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Transform]:
        """(input tensor, Transform back to ``image``'s pixels) of ``image`` sent through this camera."""
        height, width = image.shape[:2]
        shrink = functools.partial(decode_reduction, spec=spec) if self.reduced_decode else None
        decoded = decode_scaled(self.send(image), ImageLimits(), None, shrink)
        self.factors[round(decoded.width / decoded.pixels.shape[1])] += 1
        tensor, t = preprocess(decoded.pixels, spec, (decoded.width, decoded.height))
        sx, sy = decoded.width / width, decoded.height / height
        return tensor, replace(t, orig_width=width, orig_height=height, gain_x=t.gain_x * sx, gain_y=t.gain_y * sy)
