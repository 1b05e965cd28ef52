"""Text-line crops, the 0/180 degree classifier and the CTC recogniser (PaddleOCR's ``TextSystem``).

* ``crop_quad``: perspective-warp a quadrilateral to an upright rectangle (width: the longer of
  the top and bottom edges, height: the longer of the sides; cubic, border replicated); a crop at
  least 1.5 times taller than wide is turned 90 degrees (vertical text).
* ``cls_preprocess`` / ``cls_flip``: 48 x 192 inputs; a crop whose "180" probability is over the
  threshold is turned upside down before recognition.
* ``rec_preprocess`` / ``ctc_decode``: height 48, width 48 x the batch's widest aspect ratio (at
  least 320 / 48), normalised to [-1, 1], padded with zeros on the right; greedy CTC over the
  classes ``blank + dictionary + " "`` (blank index 0), repeats merged and blanks dropped; the
  confidence is the mean probability of the kept characters.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

REC_HEIGHT = 48
REC_MIN_WIDTH = 320
CLS_SHAPE = (48, 192)


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The region inside ``quad`` (TL, TR, BR, BL, image pixels) as an upright image."""
    quad = quad.astype(np.float32)
    width = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3])))
    height = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
    width, height = max(width, 1), max(height, 1)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad, target)
    crop = cv2.warpPerspective(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE,
                               flags=cv2.INTER_CUBIC)
    if height / width >= 1.5:
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)


def _resize_norm(crop: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize to ``height`` keeping the ratio (at most ``width`` wide), to [-1, 1], pad right with 0."""
    h, w = crop.shape[:2]
    resized_w = min(width, int(math.ceil(height * w / h)))
    resized = cv2.resize(crop, (resized_w, height)).astype(np.float32)
    out = np.zeros((3, height, width), dtype=np.float32)
    out[:, :, :resized_w] = (resized.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return out


def cls_preprocess(crops: list[np.ndarray]) -> np.ndarray:
    """Crops (BGR) -> N x 3 x 48 x 192 classifier inputs."""
    return np.stack([_resize_norm(c, *CLS_SHAPE) for c in crops]) if crops else np.zeros((0, 3, *CLS_SHAPE), np.float32)


def cls_flip(crops: list[np.ndarray], probs: np.ndarray, threshold: float = 0.9) -> tuple[list[np.ndarray], np.ndarray]:
    """Turn the crops the classifier finds upside down (class 1, "180", over ``threshold``); and the flags."""
    flipped = (np.argmax(probs, axis=1) == 1) & (probs.max(axis=1) > threshold)
    return [cv2.rotate(c, cv2.ROTATE_180) if f else c for c, f in zip(crops, flipped)], flipped


def rec_preprocess(crops: list[np.ndarray]) -> np.ndarray:
    """Crops (BGR) -> N x 3 x 48 x W recogniser inputs, W from the widest aspect ratio among them."""
    ratio = max([REC_MIN_WIDTH / REC_HEIGHT] + [c.shape[1] / c.shape[0] for c in crops])
    width = int(REC_HEIGHT * ratio)
    if not crops:
        return np.zeros((0, 3, REC_HEIGHT, width), np.float32)
    return np.stack([_resize_norm(c, REC_HEIGHT, width) for c in crops])


def load_dictionary(text: str) -> list[str]:
    """The recogniser's classes from its dictionary (one character a line): blank, the characters, space."""
    return ["<blank>", *text.splitlines(), " "]


def ctc_decode(probs: np.ndarray, classes: list[str]) -> list[tuple[str, float]]:
    """N x T x C softmax outputs -> (text, mean probability of its characters) per line."""
    if probs.shape[-1] != len(classes):
        raise ValueError(f"the recogniser has {probs.shape[-1]} classes, the dictionary {len(classes)}")
    best = probs.argmax(axis=-1)
    best_p = probs.max(axis=-1)
    results = []
    for ids, ps in zip(best, best_p):
        keep = np.ones(len(ids), dtype=bool)
        keep[1:] = ids[1:] != ids[:-1]
        keep &= ids != 0
        text = "".join(classes[i] for i in ids[keep])
        results.append((text, float(ps[keep].mean()) if keep.any() else 0.0))
    return results
