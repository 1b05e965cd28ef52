"""Write open_clip's token ids for a fixed set of texts to tests/model_worker/data/clip_tokens.json.

The fleet's torch-free tokenizer (``services.model_worker.processing.clip_tokenizer``) is tested
against this file in the normal suite, which has neither torch nor open_clip. Regenerate with
open_clip installed (the ``train`` extra):

    python scripts/gen_clip_token_fixture.py

The texts are hand-picked edge cases plus seeded random strings (letters of several scripts,
digits, punctuation, emoji, HTML entities, whitespace); each is tokenized at a few context lengths.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import random
from pathlib import Path


def _open_clip_tokenizer():  # type: ignore[no-untyped-def]
    """open_clip's ``tokenizer`` module alone: importing the package pulls in torchvision, whose
    wheel next to torch 2.13 (CPU) fails to import; the tokenizer needs only torch, ftfy, regex."""
    spec = importlib.util.find_spec("open_clip")
    assert spec is not None and spec.submodule_search_locations, "open_clip is not installed (the train extra)"
    path = Path(list(spec.submodule_search_locations)[0]) / "tokenizer.py"
    module_spec = importlib.util.spec_from_file_location("open_clip_tokenizer", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


OUT = Path(__file__).resolve().parent.parent / "tests" / "model_worker" / "data" / "clip_tokens.json"
SEED = 26
CONTEXT_LENGTHS = (77, 16, 5, 2)

HAND_PICKED = [
    "",
    " ",
    "\t\n  \r\n",
    "a",
    "A photo of a cat.",
    "two red circles and a blue square",
    "one circle, two rectangles and one triangle",
    "TWO   Circles\tand\nA   triangle",
    "don't won't it's we're they've I'm you'll he'd",
    "DON'T IT'S",
    "hello!!! ??? ... ,,, ;;; :-) (^_^) <3",
    "<start_of_text> inside <end_of_text> text",
    "<START_OF_TEXT>",
    "&amp; &lt;b&gt; &amp;amp; &quot;quoted&quot; &#39;single&#39; &nbsp;",
    "cafÃ© mojibake â€œquotesâ€\x9d",
    "café naïve façade résumé jalapeño Ångström",
    "Straße ΣΊΣΥΦΟΣ İstanbul ǅemal ﬁne ﬂow",
    "Привет, мир! Москва 2024",
    "日本語のテキストと漢字、かな。",
    "中文文本：猫和狗。",
    "한국어 텍스트입니다",
    "مرحبا بالعالم",
    "שלום עולם",
    "हिन्दी पाठ",
    "ภาษาไทย",
    "emoji 😀🎉👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️",
    "12345 3.14159 1,000,000 0x1F 42nd 2nd",
    "e-mail: someone@example.com http://example.com/a?b=c&d=e#f",
    "C++ and C# and .NET and node.js",
    "snake_case camelCase kebab-case PascalCase",
    "tab\tseparated\tvalues",
    "zero\u200bwidth\u200cjoiners\u200d",
    "combining e\u0301 vs \u00e9",
    "full-width ＡＢＣ１２３",
    "superscript x² H₂O ½ ⅓",
    "math ∑ ∫ √ ∞ ≠ ≤ ≥ ±",
    "currency $ € £ ¥ ₹ ₿",
    "quotes “double” ‘single’ «guillemets» „low“",
    "dashes - – — ― and ellipsis …",
    "control\x00\x01\x07chars",
    "a" * 300,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    " ".join(["word"] * 100),
    " ".join(f"token{i}" for i in range(120)),
    "The quick brown fox jumps over the lazy dog. " * 10,
    "!" * 50,
    "1" * 80,
]

_ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyz",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    " " * 10,
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœ",
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    "αβγδεζηθικλμνξοπρστυφχψω",
    "日本語中文字漢かなカナ한국어",
    "😀🎉👍🐍🚀🌍✨",
    "\t\n\u00a0\u2003",
]
_WORDS = ["circle", "circles", "rectangle", "triangle", "red", "blue", "green", "one", "two", "three",
          "four", "and", "a", "the", "photo", "of", "image", "with", "shapes", "'s", "n't"]


def random_texts(count: int, rng: random.Random) -> list[str]:
    texts = []
    for i in range(count):
        if i % 3 == 0:  # sentences of real words
            texts.append(" ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 25))))
        else:  # character soup from a few alphabets
            alphabet = "".join(rng.sample(_ALPHABETS, rng.randint(1, 4)))
            texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120))))
    return texts


def main() -> None:
    tokenizer = _open_clip_tokenizer()
    texts = HAND_PICKED + random_texts(260, random.Random(SEED))
    cases = []
    for index, text in enumerate(texts):
        for length in CONTEXT_LENGTHS if index % 4 == 0 or index < len(HAND_PICKED) else (77,):
            ids = tokenizer.tokenize([text], context_length=length)[0].tolist()
            fits = len(tokenizer._tokenizer.encode(text)) + 2 <= length
            while ids and ids[-1] == 0:  # padding; the last real id is always <end_of_text> (49407)
                ids.pop()
            cases.append({"text": text, "context_length": length, "ids": ids, "truncated": not fits})
    document = {
        "source": f"open_clip {importlib.metadata.version('open-clip-torch')} tokenize(); scripts/gen_clip_token_fixture.py",
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    lines = ",\n".join(json.dumps(case, ensure_ascii=True) for case in cases)  # one case a line
    OUT.write_text(f'{{"source": {json.dumps(document["source"])},\n"cases": [\n{lines}\n]}}\n', encoding="utf-8")
    print(f"wrote {len(cases)} cases ({len(texts)} texts) to {OUT}")


if __name__ == "__main__":
    main()
