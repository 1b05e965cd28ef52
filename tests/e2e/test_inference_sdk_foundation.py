"""Roboflow's ``inference-sdk`` (unchanged, from PyPI, in a client environment of its own) calling the fleet's
foundation models as the demo catalog serves them: ``get_clip_image_embeddings``, ``get_clip_text_embeddings``,
``clip_compare``, ``sam2_segment_image`` (with the SDK's default ``sam2_version_id``) and
``ocr_image(model="pp_ocr")``; each answer equals the fleet.v1 answer for the same input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fleet.client import FleetClient
from fleet.v1 import inference_pb2
from services.local.processes import LocalFleet
from tests.client_envs import client_venv, run_script
from tests.conftest import TEST_KEY
from tests.e2e.foundation import CLIP, OCR, OCR_LINE, SAM, infer, inner_point, points, scene, text_image, texts
from tests.e2e.test_inference import encode

pytestmark = pytest.mark.slow

PROMPTS = ["one red circle", "two blue squares", "a green triangle"]

SCRIPT = """
import json
from inference_sdk import InferenceHTTPClient

URL, KEY, IMAGE, PAGE, PROMPTS, POINT = {url!r}, {key!r}, {image!r}, {page!r}, {prompts!r}, {point!r}
client = InferenceHTTPClient(api_url=URL, api_key=KEY)
out = {{
    "image": client.get_clip_image_embeddings(inference_input=IMAGE),
    "text": client.get_clip_text_embeddings(text=PROMPTS),
    "compare": client.clip_compare(subject=IMAGE, prompt=PROMPTS),
    "sam2": client.sam2_segment_image(IMAGE, prompts=[{{"points": [{{"x": POINT[0], "y": POINT[1], "positive": True}}]}}]),
    "ocr": client.ocr_image(PAGE, model="pp_ocr"),
}}
print(json.dumps(out))
"""


def test_inference_sdk_core_model_methods(fleet: LocalFleet, tmp_path: Path) -> None:
    s = scene(51)
    image, page = tmp_path / "scene.png", tmp_path / "page.png"
    image.write_bytes(encode(s.image, ".png"))
    page.write_bytes(text_image())
    point = inner_point(s.masks[0])
    with FleetClient(fleet.gateway.address, TEST_KEY) as client:
        clip = infer(client, CLIP, image.read_bytes(), text=texts(*PROMPTS)).embedding
        sam = infer(client, SAM, image.read_bytes(), points=points(point), parameters=inference_pb2.InferenceParameters(
            mask_format=inference_pb2.MASK_FORMAT_POLYGONS)).promptable_segmentation
        read = infer(client, OCR, page.read_bytes()).ocr

    python = client_venv("inference-sdk", ["inference-sdk"])
    out = run_script(python, SCRIPT.format(url=fleet.gateway.http_url, key=TEST_KEY, image=str(image), page=str(page),
                                           prompts=PROMPTS, point=point), tmp_path)
    vectors = np.array([e.values for e in clip.embeddings])
    assert np.allclose(out["image"]["embeddings"][0], vectors[0], atol=1e-4)
    assert np.allclose(out["text"]["embeddings"], vectors[1:], atol=1e-4)
    assert np.allclose(out["compare"]["similarity"], [x.similarity for x in clip.similarities], atol=1e-4)

    prediction = out["sam2"]["predictions"][0]
    best = sam.prompts[0].masks[0]
    assert len(out["sam2"]["predictions"]) == 1 and prediction["format"] == "polygon"
    assert abs(prediction["confidence"] - best.detection.confidence) < 1e-4
    outlines = [[[p.x, p.y] for p in part.points] for part in best.parts if not part.hole]
    assert len(prediction["masks"]) == len(outlines)
    for got, want in zip(prediction["masks"], outlines):
        assert np.abs(np.array(got) - np.array(want)).max() <= 0.5  # rounded to whole pixels

    assert out["ocr"]["result"] == read.text == OCR_LINE and out["ocr"]["predictions"][0]["class"] == OCR_LINE
