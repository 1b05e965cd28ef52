"""The committed shapes-clip package: files, graph inputs/outputs, and zero-shot matching without torch."""

from __future__ import annotations

import numpy as np
import pytest

from services.common.model_spec import ModelSpec

from services.demo import clip_package as pkg
from services.demo.captions import candidate_captions, caption, scene_counts
from services.demo.evaluate_clip import ClipPredictor, held_out_scenes, zero_shot
from services.model_worker.artifacts import sha256_file
from services.model_worker.processing.clip_tokenizer import VOCAB_FILE

MAX_ONNX_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def predictor() -> ClipPredictor:
    return ClipPredictor(pkg.PACKAGE_DIR)


def test_files_match_model_json() -> None:
    spec = ModelSpec.from_package(pkg.PACKAGE_DIR)  # the fleet's format, as the registry and workers read it
    assert (spec.name, spec.task_type, spec.model_type) == (pkg.NAME, "embedding", "clip")
    assert spec.options["logit_scale"] > 1.0 and spec.options["context_length"] == pkg.CONTEXT_LENGTH
    assert (spec.weights.file, spec.graphs["text_encoder"].file, spec.assets["vocab"].file) == (
        pkg.IMAGE_FILE, pkg.TEXT_FILE, VOCAB_FILE)
    for weights in spec.files.values():
        path = pkg.PACKAGE_DIR / weights.file
        assert sha256_file(path) == weights.sha256 and path.stat().st_size == weights.size_bytes
    for name in (pkg.IMAGE_FILE, pkg.TEXT_FILE):
        assert (pkg.PACKAGE_DIR / name).stat().st_size <= MAX_ONNX_BYTES
    assert spec.input == pkg.IMAGE_INPUT
    assert spec.metrics["zero_shot_top1"] >= 0.90


def test_graph_inputs_and_outputs(predictor: ClipPredictor) -> None:
    (image_in,), (image_out,) = predictor.image.get_inputs(), predictor.image.get_outputs()
    assert (image_in.name, image_in.type) == (pkg.IMAGE_INPUT_NAME, "tensor(float)")
    assert image_in.shape[1:] == [3, pkg.INPUT_SIZE, pkg.INPUT_SIZE] and isinstance(image_in.shape[0], str)
    (text_in,), (text_out,) = predictor.text.get_inputs(), predictor.text.get_outputs()
    assert (text_in.name, text_in.type) == (pkg.TEXT_INPUT_NAME, "tensor(int64)")
    assert text_in.shape[1:] == [pkg.CONTEXT_LENGTH] and isinstance(text_in.shape[0], str)
    for out in (image_out, text_out):
        assert out.name == pkg.OUTPUT_NAME and out.shape[1:] == [pkg.EMBEDDING_DIM] and isinstance(out.shape[0], str)


def test_dynamic_batch_and_unit_embeddings(predictor: ClipPredictor) -> None:
    scenes = held_out_scenes(3)
    batch = predictor.embed_images([s.image for s in scenes])
    single = predictor.embed_images([scenes[1].image])
    assert batch.shape == (3, pkg.EMBEDDING_DIM) and batch.dtype == np.float32
    np.testing.assert_allclose(single[0], batch[1], atol=1e-5)
    texts = predictor.embed_texts(["one circle", "two triangles and one rectangle", ""])
    assert texts.shape == (3, pkg.EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(np.concatenate([batch, texts]), axis=1), 1.0, atol=1e-4)


def test_held_out_scenes_match_their_captions(predictor: ClipPredictor) -> None:
    scenes = held_out_scenes(24)
    candidates = candidate_captions()
    scores = zero_shot(predictor, scenes, candidates)
    assert scores["top1"] >= 20 / 24, scores  # chance is 1/34
    # Two captions of very different scenes rank their own scene first.
    images = predictor.embed_images([scenes[0].image])
    own = caption(scene_counts(scenes[0]))
    other = next(c for c in ("four triangles", "one circle") if c != own)
    scores_own, scores_other = (images @ predictor.embed_texts([own, other]).T)[0]
    assert scores_own > scores_other

