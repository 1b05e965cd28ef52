"""Images as HTTP callers send them (base64 text, data URIs, raw bytes, URLs) -> fleet.v1.Image."""

from __future__ import annotations

import base64
import binascii

from fleet.v1 import inference_pb2
from services.common.errors import InvalidImage
from services.common.messages import quoted
from services.common.redact import redact_url
from services.gateway.http.errors import RequestTooLarge

# Leading bytes of the encoded formats the workers decode (JPEG, PNG, BMP, WebP/RIFF).
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"BM", b"RIFF")


def looks_encoded(data: bytes) -> bool:
    return data.startswith(_MAGIC)


def from_base64(text: str | bytes, max_bytes: int) -> bytes:
    """Decoded bytes of base64 text (a ``data:...;base64,`` prefix is allowed)."""
    if isinstance(text, str):
        text = text.encode("ascii", "ignore")
    if text[:5].lower() == b"data:":
        text = text.partition(b",")[2]
    text = b"".join(text.split())
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage("the image is not valid base64 (send the encoded file's bytes in base64)") from None
    check_size(len(data), max_bytes)
    return data


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise RequestTooLarge(f"image larger than max ({size} vs. {max_bytes} bytes)")


def body_image(body: bytes, max_bytes: int) -> inference_pb2.Image:
    """A legacy-route body: base64 text, or the encoded file itself."""
    if not body.strip():
        raise InvalidImage("the request carries no image: send it base64-encoded as the body, as the multipart "
                           "field 'file', or as ?image=<url>")
    if looks_encoded(body):
        check_size(len(body), max_bytes)
        return inference_pb2.Image(encoded=body)
    return inference_pb2.Image(encoded=from_base64(body, max_bytes))


def reference_image(kind: str, value: str, max_bytes: int) -> inference_pb2.Image:
    """Roboflow's ``{"type": ..., "value": ...}`` image reference."""
    kind = (kind or "base64").lower()
    if kind == "base64":
        return inference_pb2.Image(encoded=from_base64(value, max_bytes))
    if kind == "url":
        if not value.startswith(("http://", "https://")):
            raise InvalidImage(f"image url must start with http:// or https://, got {quoted(redact_url(value), 64)}")
        return inference_pb2.Image(url=value)
    raise InvalidImage(f"image type {kind!r} is not accepted: send type 'base64' or 'url'")
