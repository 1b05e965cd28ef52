"""CLIP's byte-level BPE tokenizer without torch: the exact ids of open_clip's ``tokenize``.

Text becomes ``[<start_of_text>, bpe tokens..., <end_of_text>, 0, 0, ...]`` of length
``context_length`` (77 for CLIP). A text longer than that is cut to ``context_length`` ids whose
last one is replaced by ``<end_of_text>``, as open_clip does; :class:`TokenizedTexts` says which
texts were cut, so a caller can be told.

The vocabulary is the BPE merges file open_clip ships (``bpe_simple_vocab_16e6.txt.gz``, MIT
licensed, from OpenAI's CLIP); a model package carries its own copy and the path is given here.
Cleaning matches open_clip's default (``clean="lower"``): ``ftfy.fix_text``, HTML unescaping
(twice), whitespace collapsed, lower-cased.
"""

from __future__ import annotations

import gzip
import html
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import ftfy
import numpy as np
import regex

from services.common.errors import ModelPackageError

__all__ = ["ClipTokenizer", "TokenizedTexts", "DEFAULT_CONTEXT_LENGTH", "VOCAB_FILE"]

DEFAULT_CONTEXT_LENGTH = 77
VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
START_TOKEN = "<start_of_text>"
END_TOKEN = "<end_of_text>"
# open_clip reads merges[1 : 49152 - 256 - 2 + 1]: the header line skipped, 48,894 merges kept.
_MERGES = 49152 - 256 - 2
_VOCAB_SIZE = 2 * 256 + _MERGES + 2  # bytes, bytes + "</w>", merges, start, end = 49408
_BPE_CACHE_WORDS = 65536  # distinct words remembered (open_clip's cache is unbounded)


@lru_cache(maxsize=1)
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map of the 256 byte values to printable unicode characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {byte: chr(char) for byte, char in zip(printable, chars)}


@dataclass(frozen=True)
class TokenizedTexts:
    """Token ids of a batch of texts."""

    ids: np.ndarray  # N x context_length int64, zero-padded
    truncated: tuple[bool, ...]  # per text: True if it did not fit and was cut

    @property
    def any_truncated(self) -> bool:
        return any(self.truncated)


class ClipTokenizer:
    """open_clip's ``SimpleTokenizer`` (default cleaning, no reduction) in pure Python + numpy."""

    def __init__(self, vocab_path: Path | str, context_length: int = DEFAULT_CONTEXT_LENGTH) -> None:
        if context_length < 2:
            raise ValueError(f"context_length must be at least 2 (start and end tokens), not {context_length}")
        self.context_length = context_length
        merges = _read_merges(Path(vocab_path))
        byte_chars = list(_bytes_to_unicode().values())
        vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] + [START_TOKEN, END_TOKEN]
        self._encoder = {token: index for index, token in enumerate(vocab)}
        self._decoder = {index: token for token, index in self._encoder.items()}
        self._ranks = {merge: rank for rank, merge in enumerate(merges)}
        self._byte_encoder = _bytes_to_unicode()
        self._byte_decoder = {char: byte for byte, char in self._byte_encoder.items()}
        self.start_id = self._encoder[START_TOKEN]
        self.end_id = self._encoder[END_TOKEN]
        self.vocab_size = len(self._encoder)
        self._pattern = regex.compile(
            rf"{START_TOKEN}|{END_TOKEN}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+",
            regex.IGNORECASE,
        )
        self._bpe = lru_cache(maxsize=_BPE_CACHE_WORDS)(self._bpe_uncached)

    def encode(self, text: str, limit: int | None = None) -> list[int]:
        """BPE ids of ``text`` (cleaned), without start/end tokens; with ``limit``, BPE stops once
        at least that many ids are known (the ids are then a prefix of the full encoding)."""
        ids: list[int] = []
        for match in self._pattern.finditer(_clean(text)):
            word = match.group()
            if word in (START_TOKEN, END_TOKEN):
                ids.append(self._encoder[word])
            else:
                chars = "".join(self._byte_encoder[b] for b in word.encode("utf-8"))
                ids.extend(self._encoder[piece] for piece in self._bpe(chars))
            if limit is not None and len(ids) >= limit:
                break
        return ids

    def decode(self, ids: list[int] | np.ndarray) -> str:
        """Text of BPE ids (special tokens included as text; words end with a space)."""
        text = "".join(self._decoder[int(i)] for i in ids)
        raw = bytearray(self._byte_decoder[c] for c in text)
        return raw.decode("utf-8", errors="replace").replace("</w>", " ")

    def __call__(self, texts: str | list[str], context_length: int | None = None) -> TokenizedTexts:
        """Token ids of ``texts`` as open_clip's ``tokenize(texts, context_length)`` returns them."""
        if isinstance(texts, str):
            texts = [texts]
        length = context_length or self.context_length
        if length < 2:
            raise ValueError(f"context_length must be at least 2 (start and end tokens), not {length}")
        ids = np.zeros((len(texts), length), dtype=np.int64)
        truncated = []
        for row, text in enumerate(texts):
            # length - 1 ids are enough to know the text does not fit: no BPE of a long text's tail.
            tokens = [self.start_id, *self.encode(text, limit=length - 1), self.end_id]
            cut = len(tokens) > length
            if cut:
                tokens = tokens[:length]
                tokens[-1] = self.end_id
            ids[row, : len(tokens)] = tokens
            truncated.append(cut)
        return TokenizedTexts(ids, tuple(truncated))

    def _bpe_uncached(self, word: str) -> tuple[str, ...]:
        """Merge the characters of one pre-tokenized word by rank, lowest first."""
        parts = (*word[:-1], word[-1] + "</w>")
        while len(parts) > 1:
            pairs = set(zip(parts, parts[1:]))
            best = min(pairs, key=lambda pair: self._ranks.get(pair, _MERGES + 1))
            if best not in self._ranks:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = tuple(merged)
        return parts


def _clean(text: str) -> str:
    """open_clip's ``clean="lower"``: fix mojibake, unescape HTML twice, collapse whitespace, lower-case."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).lower()


def _read_merges(path: Path) -> list[tuple[str, str]]:
    try:
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ModelPackageError(f"cannot read the CLIP BPE vocabulary {path.name}: {exc.__class__.__name__}") from exc
    merges = [tuple(line.split()) for line in lines[1 : _MERGES + 1]]
    if len(merges) != _MERGES or any(len(m) != 2 for m in merges):
        raise ModelPackageError(f"{path.name} is not a CLIP BPE merges file (expected {_MERGES} merge pairs)")
    return merges  # type: ignore[return-value]  # every entry has 2 items (checked above)
