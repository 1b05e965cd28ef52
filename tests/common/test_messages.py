"""Bounded messages: whatever a caller sends, the error it gets fits in a gRPC trailer."""

from __future__ import annotations

from services.common.errors import InvalidArgument
from services.common.messages import MAX_MESSAGE_CHARS, bounded, quoted, summarize


def test_lists_are_summarised() -> None:
    assert summarize(["a", "b", "c"], "unknown class", "unknown classes") == "3 unknown classes: 'a', 'b', 'c'"
    assert summarize(["a"], "unknown class", "unknown classes") == "1 unknown class: 'a'"
    many = summarize([f"n{i}" for i in range(120)], "unknown class", "unknown classes")
    assert many == "120 unknown classes: 'n0', 'n1', 'n2', … (117 more)"


def test_values_and_messages_are_cut() -> None:
    assert len(quoted("x" * 10_000)) == 40 and quoted("x" * 10_000).endswith("…'")
    assert len(bounded("y" * 10_000)) == MAX_MESSAGE_CHARS
    assert bounded("short") == "short"


def test_every_domain_error_is_bounded() -> None:
    error = InvalidArgument("names: " + ", ".join(["é" * 50] * 1000))
    assert len(error.message) <= MAX_MESSAGE_CHARS
    # Percent-encoded in the grpc-message trailer (up to 12 bytes for a 4-byte character): well under 8 KiB.
    assert len(error.message.encode()) * 3 < 8 * 1024
