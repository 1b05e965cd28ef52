"""NVIDIA's ``tritonclient[grpc]`` (from PyPI, in its own client environment) calling an embedding model over the
Open Inference Protocol: a BYTES ``text`` input of UTF-8 strings or a BYTES ``image`` input, FP32 ``embedding``
out; equal to fleet.v1's embeddings; a text beyond the model's context is reported in ``truncated_rows``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fleet.client import FleetClient
from services.local.processes import LocalFleet
from tests.client_envs import client_venv, run_script
from tests.conftest import TEST_KEY
from tests.e2e.foundation import CLIP, infer, scene, texts
from tests.e2e.test_inference import encode

pytestmark = pytest.mark.slow

PROMPTS = ["one red circle", "deux carrés bleus", "a green triangle " * 20]

SCRIPT = """
import json
import numpy as np
import tritonclient.grpc as triton

ADDRESS, KEY, IMAGE, PROMPTS = {address!r}, {key!r}, {image!r}, {prompts!r}
headers = {{"authorization": "Bearer " + KEY}}
client = triton.InferenceServerClient(ADDRESS)
meta = client.get_model_metadata("shapes-clip", "1", headers=headers, as_json=True)
text = triton.InferInput("text", [len(PROMPTS)], "BYTES")
text.set_data_from_numpy(np.array([p.encode() for p in PROMPTS], dtype=object))
by_text = client.infer("shapes-clip", [text], model_version="1", headers=headers)
image = triton.InferInput("image", [1], "BYTES")
image.set_data_from_numpy(np.array([open(IMAGE, "rb").read()], dtype=object))
by_image = client.infer("shapes-clip", [image], model_version="1", headers=headers)
response = by_text.get_response(as_json=True)
print(json.dumps({{"inputs": [[i["name"], i["datatype"]] for i in meta["inputs"]],
                  "text": by_text.as_numpy("embedding").tolist(), "text_dtype": str(by_text.as_numpy("embedding").dtype),
                  "image": by_image.as_numpy("embedding").tolist(),
                  "truncated": response["parameters"]["truncated_rows"]["string_param"]}}))
"""


def test_tritonclient_embeds_texts_and_images(fleet: LocalFleet, tmp_path: Path) -> None:
    image = tmp_path / "scene.png"
    image.write_bytes(encode(scene(61).image, ".png"))
    with FleetClient(fleet.gateway.address, TEST_KEY) as client:
        answer = infer(client, CLIP, image.read_bytes(), text=texts(*PROMPTS)).embedding
    vectors = np.array([e.values for e in answer.embeddings], np.float32)

    python = client_venv("tritonclient", ["tritonclient[grpc]"])
    out = run_script(python, SCRIPT.format(address=fleet.gateway.address, key=TEST_KEY, image=str(image),
                                           prompts=PROMPTS), tmp_path)
    assert out["inputs"] == [["image", "BYTES"], ["text", "BYTES"]]
    assert out["text_dtype"] == "float32" and np.allclose(out["text"], vectors[1:], atol=1e-5)
    assert np.allclose(out["image"], vectors[:1], atol=1e-5)
    assert out["truncated"] == "2"
