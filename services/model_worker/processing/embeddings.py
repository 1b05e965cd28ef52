"""Embeddings (CLIP-style models): the image encoder's output decoded, texts tokenized and encoded, cached.

A model.json of the embedding task has ``options`` (``EmbeddingOptions``): which graph encodes texts, its
input and output names, the tokenizer's vocabulary (an ``assets`` entry) and context length. Image
embeddings come from the model's first graph through the standard pipeline (batched with other requests);
texts of one request are encoded in one run of the text graph, each text's embedding cached by its text
while the model is held.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.common.errors import ModelLoadError
from services.common.model_spec import ModelSpec

TEXT_CACHE_ENTRIES = 4096


class EmbeddingOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text_graph: str = "text_encoder"
    text_input: str = "tokens"
    text_output: str = "embedding"
    vocabulary: str = "vocab"  # the assets entry holding the BPE merges (open_clip's bpe_simple_vocab_16e6.txt.gz)
    context_length: int = Field(77, ge=2, le=1024)
    logit_scale: float = Field(100.0, gt=0)


def options(spec: ModelSpec) -> EmbeddingOptions:
    try:
        return EmbeddingOptions.model_validate(spec.options)
    except ValidationError as exc:
        raise ModelLoadError(f"model.json options of an embedding model are invalid: {exc.errors()[0]['msg']}") from None


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero)."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def image_embedding(outputs: Sequence[np.ndarray], spec: ModelSpec, transform: Any, params: Any) -> np.ndarray:
    """The layout decoder of an image encoder: its one output, [D], L2-normalised."""
    return normalized(outputs[0].reshape(1, -1))[0]


@dataclass(frozen=True)
class TextEmbeddings:
    vectors: np.ndarray  # (N, D) float32, unit rows
    truncated: tuple[bool, ...]
    cached: int  # how many came from the cache


class TextEncoder:
    """A held model's tokenizer, text graph and text cache (kept in ``HeldModel.extras``)."""

    def __init__(self, model: Any) -> None:  # a services.model_worker.held_model.HeldModel
        from services.model_worker.processing.clip_tokenizer import ClipTokenizer  # noqa: PLC0415

        self.options = opts = options(model.record.spec)
        graph = model.graphs.get(opts.text_graph)
        vocabulary = model.assets.get(opts.vocabulary)
        if graph is None or vocabulary is None:
            raise ModelLoadError(f"an embedding model needs graphs.{opts.text_graph} and assets.{opts.vocabulary} "
                                 "to embed texts")
        if opts.text_input not in graph.input_names or opts.text_output not in graph.output_names:
            raise ModelLoadError(f"the text graph has inputs {graph.input_names} and outputs {graph.output_names}; "
                                 f"options name {opts.text_input!r} and {opts.text_output!r}")
        self.graph = graph
        self.tokenizer = ClipTokenizer(vocabulary, opts.context_length)
        self.cache: OrderedDict[str, tuple[np.ndarray, bool]] = OrderedDict()
        self._lock = threading.Lock()  # requests encode in several pool threads at once

    @classmethod
    def of(cls, model: Any) -> TextEncoder:
        return model.extra("text_encoder", cls)

    def encode(self, texts: Sequence[str]) -> TextEmbeddings:
        """Blocking (the worker's CPU pool): the texts not cached are tokenized and encoded in one run."""
        with self._lock:
            known = {t: self.cache[t] for t in texts if t in self.cache}
            for text in known:
                self.cache.move_to_end(text)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            tokens = self.tokenizer(missing)
            out = self.graph.run({self.options.text_input: tokens.ids})
            vectors = normalized(out[self.graph.output_names.index(self.options.text_output)])
            with self._lock:
                for text, vector, cut in zip(missing, vectors, tokens.truncated):
                    known[text] = self.cache[text] = (vector, cut)
                    if len(self.cache) > TEXT_CACHE_ENTRIES:
                        self.cache.popitem(last=False)
        found = [known[text] for text in texts]
        vectors = np.stack([v for v, _ in found]) if found else np.zeros((0, 0), np.float32)
        return TextEmbeddings(vectors, tuple(cut for _, cut in found), len(texts) - len(missing))
