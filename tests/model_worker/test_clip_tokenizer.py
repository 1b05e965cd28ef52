"""The torch-free CLIP tokenizer against open_clip's own ids (fixture) and its edge cases."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from services.common.errors import ModelPackageError
from services.model_worker.processing.clip_tokenizer import VOCAB_FILE, ClipTokenizer

FIXTURE = Path(__file__).parent / "data" / "clip_tokens.json"
VOCAB = Path(__file__).resolve().parents[2] / "models" / "packages" / "shapes-clip" / VOCAB_FILE
START, END = 49406, 49407


@pytest.fixture(scope="module")
def tokenizer() -> ClipTokenizer:
    return ClipTokenizer(VOCAB)


def test_matches_open_clip_on_the_fixture(tokenizer: ClipTokenizer) -> None:
    """scripts/gen_clip_token_fixture.py wrote open_clip.tokenize's ids for 300+ texts."""
    cases = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]
    assert len(cases) > 600 and any(c["truncated"] for c in cases) and any(not c["truncated"] for c in cases)
    mismatched = []
    for case in cases:
        out = tokenizer([case["text"]], case["context_length"])
        expected = np.zeros(case["context_length"], dtype=np.int64)
        expected[: len(case["ids"])] = case["ids"]
        if not np.array_equal(out.ids[0], expected) or out.truncated[0] != case["truncated"]:
            mismatched.append((case["text"][:40], case["context_length"]))
    assert not mismatched, f"{len(mismatched)} texts differ from open_clip, e.g. {mismatched[:5]}"


def test_batch_shape_padding_and_special_tokens(tokenizer: ClipTokenizer) -> None:
    out = tokenizer(["a photo of a cat", ""])
    assert out.ids.shape == (2, 77) and out.ids.dtype == np.int64
    assert out.ids[0, :7].tolist() == [START, 320, 1125, 539, 320, 2368, END]
    assert out.ids[1, :2].tolist() == [START, END]
    assert not out.ids[0, 7:].any() and not out.ids[1, 2:].any()
    assert out.truncated == (False, False) and not out.any_truncated


def test_truncation_keeps_the_end_token_and_is_reported(tokenizer: ClipTokenizer) -> None:
    long = " ".join(["circle"] * 100)
    out = tokenizer([long, "circle"], context_length=8)
    assert out.ids.shape == (2, 8)
    assert out.ids[0].tolist() == [START] + [tokenizer.encode("circle")[0]] * 6 + [END]
    assert out.truncated == (True, False) and out.any_truncated
    exact = tokenizer(["circle " * 6], context_length=8)  # start + 6 + end: fits exactly
    assert exact.truncated == (False,) and exact.ids[0, -1] == END


def test_context_length_default_and_override() -> None:
    short = ClipTokenizer(VOCAB, context_length=16)
    assert short("two circles").ids.shape == (1, 16)
    assert short("two circles", context_length=77).ids.shape == (1, 77)
    with pytest.raises(ValueError, match="at least 2"):
        ClipTokenizer(VOCAB, context_length=1)
    with pytest.raises(ValueError, match="at least 2"):
        short("x", context_length=1)


def test_cleaning_case_whitespace_and_html(tokenizer: ClipTokenizer) -> None:
    assert tokenizer.encode("  Two\tCIRCLES\n") == tokenizer.encode("two circles")
    assert tokenizer.encode("fish &amp;amp; chips") == tokenizer.encode("fish & chips")
    assert tokenizer.encode("<end_of_text>") == [END]  # a literal special token is that token, as in open_clip


def test_decode_round_trips_words(tokenizer: ClipTokenizer) -> None:
    text = "two red circles and a café 😀"
    assert tokenizer.decode(tokenizer.encode(text)).strip() == text
    assert tokenizer.vocab_size == 49408 and (tokenizer.start_id, tokenizer.end_id) == (START, END)


def test_unreadable_or_wrong_vocabulary_is_a_package_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt.gz"
    with pytest.raises(ModelPackageError, match="cannot read"):
        ClipTokenizer(missing)
    not_gzip = tmp_path / "plain.txt.gz"
    not_gzip.write_text("hello")
    with pytest.raises(ModelPackageError, match="cannot read"):
        ClipTokenizer(not_gzip)
    short = tmp_path / "short.txt.gz"
    short.write_bytes(gzip.compress(b"#version: 0.2\na b\n"))
    with pytest.raises(ModelPackageError, match="not a CLIP BPE merges file"):
        ClipTokenizer(short)


def test_long_text_stops_early_with_the_same_ids(tokenizer: ClipTokenizer) -> None:
    words = " ".join(f"word{i}" for i in range(5000))
    full = tokenizer.encode(words)
    assert tokenizer.encode(words, limit=10) == full[: len(tokenizer.encode(words, limit=10))]
    assert 10 <= len(tokenizer.encode(words, limit=10)) < 14
    out = tokenizer([words], context_length=77)
    expected = [START, *full[:75], END]
    assert out.ids[0].tolist() == expected and out.truncated == (True,)
