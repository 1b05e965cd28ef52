"""The foundation models (shapes-clip, shapes-sam, pp-ocr from the demo catalog) at every edge of a real fleet:
fleet.v1 with typed inputs, the Roboflow routes (/clip/*, /sam2/*, /ocr/pp-ocr), OIP over gRPC and REST; and
every caller's mistake answered INVALID_ARGUMENT (HTTP 400) naming the input, never INTERNAL."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import pytest

from fleet.client import FleetClient
from fleet.v1 import inference_pb2
from fleet_oip.v2 import grpc_service_pb2 as oip
from fleet_oip.v2 import grpc_service_pb2_grpc as oip_grpc
from services.local.processes import LocalFleet
from tests.conftest import TEST_KEY
from tests.e2e.foundation import (
    CLIP, OCR, OCR_LINE, SAM, box, infer, inner_point, mask_iou, points, refused, scene, text_image, texts,
)
from tests.e2e.test_inference import encode

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
LONG_TEXT = "two red circles and a blue square " * 20  # far beyond the 32-token context


@pytest.fixture(scope="module")
def http(fleet: LocalFleet) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fleet.gateway.http_url, timeout=120, headers=AUTH) as client:
        yield client


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---- embeddings -------------------------------------------------------------------------------------------
def test_embeddings_on_fleet_v1_http_and_oip(fleet: LocalFleet, client: FleetClient, http: httpx.Client) -> None:
    image = encode(scene(11).image, ".png")
    prompts = ["one red circle", "two blue squares", LONG_TEXT]
    answer = infer(client, CLIP, image, text=texts(*prompts))
    result = answer.embedding
    assert [e.source for e in result.embeddings] == ["image", "text", "text", "text"]
    assert [e.truncated for e in result.embeddings] == [False, False, False, True]  # the long text, cut and said so
    vectors = np.array([e.values for e in result.embeddings])
    assert vectors.shape == (4, result.dimension) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    sims = [s.similarity for s in result.similarities]
    assert [s.prompt for s in result.similarities] == prompts
    assert np.allclose(sims, vectors[1:] @ vectors[0], atol=1e-4)

    # HTTP, as inference-sdk calls it: the same vectors and similarities.
    body = http.post("/clip/embed_text", json={"text": prompts}).json()
    assert np.allclose(body["embeddings"], vectors[1:], atol=1e-4) and body["truncated"] == [False, False, True]
    body = http.post("/clip/embed_image", json={"image": {"type": "base64", "value": b64(image)}}).json()
    assert np.allclose(body["embeddings"][0], vectors[0], atol=1e-4)
    body = http.post("/clip/compare", json={"subject": {"type": "base64", "value": b64(image)}, "subject_type": "image",
                                            "prompt": dict(zip("abc", prompts)), "prompt_type": "text"}).json()
    assert list(body["similarity"]) == ["a", "b", "c"] and np.allclose(list(body["similarity"].values()), sims,
                                                                       atol=1e-4)

    # OIP over gRPC: BYTES texts or an encoded image in, FP32 embeddings out.
    channel = grpc.insecure_channel(fleet.gateway.address)
    stub = oip_grpc.GRPCInferenceServiceStub(channel)
    metadata = (("authorization", f"Bearer {TEST_KEY}"),)
    try:
        meta = stub.ModelMetadata(oip.ModelMetadataRequest(name="shapes-clip", version="1"), metadata=metadata)
        assert [(i.name, i.datatype) for i in meta.inputs] == [("image", "BYTES"), ("text", "BYTES")]
        for name, items, expect in (("text", [p.encode() for p in prompts], vectors[1:]),
                                    ("image", [image], vectors[:1])):
            request = oip.ModelInferRequest(model_name="shapes-clip", model_version="1")
            request.inputs.add(name=name, datatype="BYTES", shape=[len(items)])
            request.raw_input_contents.append(b"".join(len(i).to_bytes(4, "little") + i for i in items))
            reply = stub.ModelInfer(request, metadata=metadata, timeout=60)
            out = {o.name: (o, raw) for o, raw in zip(reply.outputs, reply.raw_output_contents)}
            tensor, raw = out["embedding"]
            assert tensor.datatype == "FP32" and list(tensor.shape) == list(expect.shape)
            assert np.allclose(np.frombuffer(raw, np.float32).reshape(expect.shape), expect, atol=1e-4)
        assert reply.parameters.get("truncated_rows") is None
        with pytest.raises(grpc.RpcError) as err:  # a text sent to a detector's OIP endpoint: no such input
            request = oip.ModelInferRequest(model_name="shapes-det", model_version="1")
            request.inputs.add(name="text", datatype="BYTES", shape=[1])
            request.raw_input_contents.append((3).to_bytes(4, "little") + b"cat")
            stub.ModelInfer(request, metadata=metadata, timeout=60)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "'image'" in err.value.details()
    finally:
        channel.close()

    # OIP over REST: texts as JSON strings; the long one reported in truncated_rows.
    body = http.post("/v2/models/shapes-clip/versions/1/infer", json={"inputs": [
        {"name": "text", "datatype": "BYTES", "shape": [3], "data": prompts}]}).json()
    embedding = next(o for o in body["outputs"] if o["name"] == "embedding")
    assert embedding["shape"] == [3, result.dimension] and body["parameters"]["truncated_rows"] == "2"
    assert np.allclose(np.array(embedding["data"]).reshape(3, -1), vectors[1:], atol=1e-4)


# ---- promptable segmentation ------------------------------------------------------------------------------
def test_segmentation_on_fleet_v1_reuses_the_image_embedding(client: FleetClient) -> None:
    s = scene(21)
    image = encode(s.image, ".png")
    rle = inference_pb2.InferenceParameters(mask_format=inference_pb2.MASK_FORMAT_RLE)
    first = infer(client, SAM, image, parameters=rle, points=points(inner_point(s.masks[0])))
    result = first.promptable_segmentation
    assert not result.embedding_cached and result.image_hash == hashlib.sha256(image).hexdigest()
    masks = result.prompts[0].masks
    assert masks and [m.detection.confidence for m in masks] == sorted((m.detection.confidence for m in masks),
                                                                        reverse=True)
    assert mask_iou(masks[0], s.masks[0]) > 0.5 and len(masks[0].points) >= 3
    x0, y0, x1, y1 = s.boxes[-1].tolist()
    second = infer(client, SAM, image, parameters=rle, boxes=box(x0, y0, x1, y1))
    assert second.promptable_segmentation.embedding_cached  # the encoder did not run again
    assert mask_iou(second.promptable_segmentation.prompts[0].masks[0], s.masks[-1]) > 0.5


def test_sam2_routes(http: httpx.Client, client: FleetClient) -> None:
    s = scene(22)
    image = encode(s.image, ".jpg")
    ref = {"type": "base64", "value": b64(image)}
    embedded = http.post("/sam2/embed_image", json={"image": ref}).json()
    assert embedded["image_id"] == hashlib.sha256(image).hexdigest() and embedded["time"] > 0
    x, y = inner_point(s.masks[0])
    x0, y0, x1, y1 = s.boxes[0].tolist()
    prompts = [{"points": [{"x": x, "y": y, "positive": True}]},
               {"box": {"x": (x0 + x1) / 2, "y": (y0 + y1) / 2, "width": x1 - x0, "height": y1 - y0}}]
    for version in (None, "hiera_tiny", "sam2", SAM):  # the SDK's default name means the default model
        body = {"image": ref, "prompts": {"prompts": prompts}, "multimask_output": True, "format": "json",
                **({"sam2_version_id": version} if version else {})}
        answer = http.post("/sam2/segment_image", json=body)
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert len(predictions) == 2 and all(p["format"] == "polygon" and 0 <= p["confidence"] <= 1.0001
                                             for p in predictions)
        outline = np.array(predictions[0]["masks"][0])
        assert outline.ndim == 2 and outline.shape[1] == 2 and outline.shape[0] >= 3
        assert outline[:, 0].min() <= x <= outline[:, 0].max() and outline[:, 1].min() <= y <= outline[:, 1].max()
    rle = http.post("/sam2/segment_image", json={"image": ref, "prompts": {"prompts": prompts[:1]},
                                                 "format": "rle"}).json()["predictions"][0]
    height, width = s.image.shape[:2]
    assert rle["format"] == "rle" and rle["masks"]["size"] == [height, width]
    assert sum(rle["masks"]["counts"]) == height * width

    def status(**body: object) -> tuple[int, str]:
        reply = http.post("/sam2/segment_image", json={"image": ref, **body})
        return reply.status_code, reply.text

    assert status(sam2_version_id="no-such-model", prompts={"prompts": prompts})[0] == 404
    code, text = status(sam2_version_id="shapes-det/1", prompts={"prompts": prompts})
    assert code == 400 and "not a promptable-segmentation model" in text
    code, text = status(prompts={"prompts": []})
    assert code == 400 and "prompts" in text
    code, text = status(prompts={"prompts": [{"points": [{"x": width + 50, "y": 5, "positive": True}]}]})
    assert code == 400 and "'points'" in text and "outside" in text
    code, text = status(prompts={"prompts": [{"points": [{"x": 1, "y": 1, "positive": True}] * 17}]})
    assert code == 400 and "'points'" in text
    code, text = status(prompts={"prompts": prompts[:1] * 33})
    assert code == 400 and "at most 32" in text
    code, text = status(prompts={"prompts": prompts}, format="binary")
    assert code == 400 and "format" in text


# ---- OCR ---------------------------------------------------------------------------------------------------
def test_ocr_reads_a_rendered_line_exactly(client: FleetClient, http: httpx.Client) -> None:
    image = text_image()
    result = infer(client, OCR, image).ocr
    assert result.text == OCR_LINE and [line.text for line in result.lines] == [OCR_LINE]
    assert len(result.lines[0].polygon) == 4 and result.lines[0].confidence > 0.8
    for version in (None, "small-small", "pp-ocr"):
        body = http.post("/ocr/pp-ocr", json={"image": {"type": "base64", "value": b64(image)},
                                              **({"pp_ocr_version_id": version} if version else {})}).json()
        assert body["result"] == OCR_LINE and body["predictions"][0]["class"] == OCR_LINE
        assert body["image"] == {"width": 40 + 24 * len(OCR_LINE), "height": 120} and body["time"] > 0
    reply = http.post("/ocr/pp-ocr", json={"image": {"type": "base64", "value": b64(image)},
                                           "pp_ocr_version_id": "shapes-clip/1"})
    assert reply.status_code == 400 and "not a ocr model" in reply.text


# ---- bad input ---------------------------------------------------------------------------------------------
def test_mistakes_are_invalid_argument_naming_the_input(client: FleetClient) -> None:
    s = scene(23)
    image = encode(s.image, ".png")
    height, width = s.image.shape[:2]
    assert "'text'" in refused(client, CLIP, text=texts(""))
    assert "'text'" in refused(client, CLIP, text=texts(*["a circle"] * 65))  # the package's max_items: 64
    assert "prompt" in refused(client, SAM, image)  # neither points nor a box
    assert "'points'" in refused(client, SAM, image, points=points((width + 1.0, 10.0)))
    assert "'points'" in refused(client, SAM, image, points=points(*[(5.0, 5.0)] * 17))
    assert "'boxes'" in refused(client, SAM, image, boxes=box(-30, 0, 40, 40))
    assert "'points'" in refused(client, "shapes-det/1", image, points=points((5.0, 5.0)))  # a detector takes none
    assert "'text'" in refused(client, "shapes-det/1", image, text=texts("a circle"))


# ---- the CLI -----------------------------------------------------------------------------------------------
def cli(fleet: LocalFleet, *args: str) -> str:
    env = {**os.environ, "FLEET_ADDRESS": fleet.gateway.address, "FLEET_API_KEY": TEST_KEY}
    done = subprocess.run([sys.executable, "-m", "fleet.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_cli_infer_with_prompts_texts_compare_and_visualize(fleet: LocalFleet, tmp_path: Path) -> None:
    s = scene(24)
    path = tmp_path / "scene.png"
    path.write_bytes(encode(s.image, ".png"))
    x, y = inner_point(s.masks[0])
    x0, y0, x1, y1 = s.boxes[0].tolist()
    out = cli(fleet, "infer", str(path), "--model", "sam2", "--point", f"{x:.1f},{y:.1f}", "--point", "2,2,neg",
              "--box", f"{(x0 + x1) / 2:.1f},{(y0 + y1) / 2:.1f},{x1 - x0:.1f},{y1 - y0:.1f}",
              "--visualize", str(tmp_path / "masks.jpg"))
    assert "masks (image embedding" in out and "annotated image written" in out
    drawn = cv2.imread(str(tmp_path / "masks.jpg"))
    assert drawn.shape == s.image.shape and np.abs(drawn.astype(int) - s.image[..., ::-1]).mean() > 3

    body = json.loads(cli(fleet, "infer", "--model", "clip", "--text", "one red circle", "--text", "a blue square",
                          "--json"))
    assert [e["text"] for e in body["embedding"]["embeddings"]] == ["one red circle", "a blue square"]

    ranked = json.loads(cli(fleet, "compare", str(path), "one red circle", "two blue squares", "a triangle", "--json"))
    assert sorted(r["prompt"] for r in ranked) == ["a triangle", "one red circle", "two blue squares"]
    assert [r["similarity"] for r in ranked] == sorted((r["similarity"] for r in ranked), reverse=True)
    assert "rank  prompt" in cli(fleet, "compare", str(path), "one red circle", "a triangle")

    page = tmp_path / "line.png"
    page.write_bytes(text_image())
    out = cli(fleet, "infer", str(page), "--model", "pp-ocr", "--visualize", str(tmp_path / "ocr.jpg"))
    assert OCR_LINE in out and "1 lines" in out
    drawn = cv2.imread(str(tmp_path / "ocr.jpg"))
    assert (np.abs(drawn.astype(int) - cv2.imread(str(page)).astype(int)).max(axis=2) > 60).sum() > 200
