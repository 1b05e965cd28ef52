"""URLs made safe for logs and messages: no userinfo, no query string, no fragment.

A presigned artifact URL carries its signature in the query (``?X-Amz-Signature=...``), an image
URL may carry ``user:password@``; either would leak wherever the URL is logged or quoted. What is
kept is scheme, host, port and path (enough to tell which file was meant); what was removed is
named in place: ``https://[redacted]@host/path?[redacted]#[redacted]``.

``redact_url`` takes one URL (malformed ones too: the split is done on the text, not by a URL
parser that could refuse it); ``redact_urls`` does it to every ``scheme://`` URL inside free text,
so the log formatters (``services.common.logging_setup``) and every ``FleetError`` message pass
through it whatever a call site forgot.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"
# A scheme, "://", then anything up to whitespace, a quote, an angle bracket or a backtick: a URL in
# prose, in a repr ('...'), in a JSON string before it is escaped, or in an exception's text.
_URL = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>`]+")


def redact_url(url: str) -> str:
    """``url`` without userinfo, query or fragment (each replaced by ``[redacted]``); other text unchanged."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = len(rest)
    for stop in "?#":
        if (at := rest.find(stop)) != -1:
            end = min(end, at)
    head, tail = rest[:end], rest[end:]
    slash = head.find("/")
    authority, path = (head, "") if slash == -1 else (head[:slash], head[slash:])
    if "@" in authority:
        authority = f"{REDACTED}@{authority.rpartition('@')[2]}"
    suffix = ""
    if tail.startswith("?"):
        suffix = f"?{REDACTED}"
        tail = tail[1:]
        hash_at = tail.find("#")
        tail = tail[hash_at:] if hash_at != -1 else ""
    if tail.startswith("#"):
        suffix += f"#{REDACTED}"
    return f"{scheme}://{authority}{path}{suffix}"


def redact_urls(text: str) -> str:
    """``text`` with every ``scheme://`` URL in it passed through ``redact_url``."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: redact_url(m.group()), text)
