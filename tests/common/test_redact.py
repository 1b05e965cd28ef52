"""URLs lose their userinfo, query string and fragment before they reach a log line or an error message."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest

from services.common.errors import InvalidArgument, Unavailable
from services.common.logging_setup import JsonFormatter, TextFormatter, configure_logging
from services.common.redact import redact_url, redact_urls

PRESIGNED = ("https://bucket.s3.eu-west-1.amazonaws.com/models/det/3/model.onnx?X-Amz-Algorithm=AWS4-HMAC-SHA256"
             "&X-Amz-Credential=AKIASECRETCRED%2F20261206&X-Amz-Signature=5ECRE7516")
USERINFO = "http://alice:S3cretPass@images.example:8080/cat.jpg"
SECRETS = ("AKIASECRETCRED", "5ECRE7516", "S3cretPass", "alice")


@pytest.mark.parametrize(("url", "safe"), [
    (PRESIGNED, "https://bucket.s3.eu-west-1.amazonaws.com/models/det/3/model.onnx?[redacted]"),
    (USERINFO, "http://[redacted]@images.example:8080/cat.jpg"),
    ("https://u:p@h/p?q=1#frag", "https://[redacted]@h/p?[redacted]#[redacted]"),
    ("https://h/p#token=abc", "https://h/p#[redacted]"),
    ("https://h?sig=abc", "https://h?[redacted]"),
    ("redis://:pw@cache:6379/0", "redis://[redacted]@cache:6379/0"),
    ("http://u:pw@[not-a-host/x.jpg", "http://[redacted]@[not-a-host/x.jpg"),  # malformed: still split
    ("https://models.example/det/3/model.onnx", "https://models.example/det/3/model.onnx"),
    ("file:///srv/models/model.onnx", "file:///srv/models/model.onnx"),
    ("not a url", "not a url"),
])
def test_redact_url_keeps_scheme_host_port_and_path_only(url: str, safe: str) -> None:
    assert redact_url(url) == safe
    assert redact_url(safe) == safe  # idempotent: a redacted URL passes again unchanged


def test_every_url_in_free_text_is_redacted() -> None:
    text = f"GET {PRESIGNED} failed; retried '{USERINFO}' (see https://docs.example/a) and \"{PRESIGNED}\""
    out = redact_urls(text)
    assert not any(s in out for s in SECRETS), out
    assert "https://docs.example/a" in out and out.count("model.onnx?[redacted]") == 2
    assert "'http://[redacted]@images.example:8080/cat.jpg'" in out
    assert redact_urls("no url here: a?b=c user:pw@host") == "no url here: a?b=c user:pw@host"


def http_status_error() -> httpx.HTTPStatusError:
    """A real httpx error: its text quotes the whole URL it was for."""
    response = httpx.Response(403, request=httpx.Request("GET", PRESIGNED))
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        assert "X-Amz-Signature=5ECRE7516" in str(exc)
        return exc
    raise AssertionError("raise_for_status did not raise")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_lines_carry_no_url_secret_in_message_extras_or_traceback(fmt: str) -> None:
    stream = io.StringIO()
    configure_logging("test", "INFO", fmt, stream)
    log = logging.getLogger("fleet.test.redact")
    try:
        log.warning("download of %s failed", PRESIGNED, extra={"uri": PRESIGNED, "urls": [USERINFO],
                                                               "nested": {"image": USERINFO}, "attempts": 3})
        log.warning("unexpected", exc_info=http_status_error())
        try:
            httpx.get(USERINFO.replace("http://", "gopher://"))
        except httpx.UnsupportedProtocol:
            log.exception("image fetch failed")
    finally:
        logging.getLogger().handlers.clear()
    text = stream.getvalue()
    assert text.count("\n") >= 3
    assert not any(s in text for s in SECRETS), text
    assert "model.onnx?[redacted]" in text
    if fmt == "json":  # the text format shows no extra fields
        assert "[redacted]@images.example:8080/cat.jpg" in text
        first = json.loads(text.splitlines()[0])
        assert first["attempts"] == 3 and first["uri"].endswith("model.onnx?[redacted]")
        assert first["urls"] == ["http://[redacted]@images.example:8080/cat.jpg"]


def test_formatters_redact_records_made_by_hand() -> None:
    record = logging.LogRecord("x", logging.INFO, "", 0, "fetch %s", (USERINFO,), None)
    record.uri = PRESIGNED
    for formatter in (JsonFormatter("t"), TextFormatter("t")):
        line = formatter.format(record)
        assert not any(s in line for s in SECRETS), line


def test_error_messages_for_callers_carry_no_url_secret() -> None:
    for error in (InvalidArgument(f"the image URL {USERINFO!r} is malformed"),
                  Unavailable(f"could not download ({http_status_error()})")):
        assert not any(s in error.message for s in SECRETS), error.message
        assert not any(s in str(error) for s in SECRETS)
    assert "model.onnx?[redacted]" in Unavailable(str(http_status_error())).message
