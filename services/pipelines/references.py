"""Which source references a pipeline may read: checked before a pipeline exists (as image URLs are)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from services.common.errors import InvalidArgument

LIVE_SCHEMES = ("rtsp", "rtsps", "http", "https")
PUSH = "push"


@dataclass(frozen=True)
class SourcePolicy:
    file_roots: tuple[Path, ...]
    allowed_hosts: tuple[str, ...]  # empty: any host

    @classmethod
    def from_settings(cls, roots: str, hosts: str) -> SourcePolicy:
        return cls(tuple(Path(r.strip()).resolve() for r in roots.split(",") if r.strip()),
                   tuple(h.strip().lower() for h in hosts.split(",") if h.strip()))

    def kind(self, reference: str) -> str:
        """'live', 'file' or 'push' for an acceptable reference; InvalidArgument says why one is not."""
        if not reference or len(reference) > 2048:
            raise InvalidArgument("a video reference must be a non-empty URL or path of at most 2048 characters")
        parts = urlsplit(reference)
        scheme = parts.scheme.lower()
        if scheme == PUSH:
            return "push"
        if scheme in LIVE_SCHEMES:
            host = (parts.hostname or "").lower()
            if not host:
                raise InvalidArgument(f"the video reference {reference} names no host")
            if self.allowed_hosts and not any(fnmatch.fnmatch(host, p) for p in self.allowed_hosts):
                raise InvalidArgument(f"video sources on host {host} are not allowed on this fleet")
            return "live"
        if scheme in ("", "file"):
            self.file_path(reference)
            return "file"
        raise InvalidArgument(f"unsupported video reference scheme {scheme!r}: use rtsp, rtsps, http, https, file "
                              "or push")

    def file_path(self, reference: str) -> Path:
        raw = urlsplit(reference).path if reference.startswith("file:") else reference
        if not self.file_roots:
            raise InvalidArgument("this fleet reads no video files: file sources are off")
        # A relative path names a file under one of the roots (the first that has it).
        candidates = ([Path(raw).resolve()] if Path(raw).is_absolute()
                      else [(root / raw).resolve() for root in self.file_roots])
        inside = [p for p in candidates if any(p.is_relative_to(root) for root in self.file_roots)]
        if not inside:
            raise InvalidArgument("the video file is outside the directories this fleet may read")
        for path in inside:
            if path.is_file():
                return path
        raise InvalidArgument("the video file does not exist under the allowed directories")
