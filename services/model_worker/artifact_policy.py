"""Where a worker may take model weights from: schemes, local roots, download hosts.

A model descriptor names its artifact by URI. Whoever can send a worker a descriptor could
otherwise make it read any file it can open (``file:///etc/...``) or fetch from any host, so
every artifact URI, and every redirect hop of a download, is checked here first:

- the scheme must be allowed (``FLEET_WORKER_ARTIFACT_SCHEMES``, default file, http, https);
- a ``file://`` path must lie, once symlinks are resolved, under one of the configured roots
  (``FLEET_WORKER_ARTIFACT_ROOTS``; none: local artifacts refused);
- an http(s) host must be on the allow-list when one is configured
  (``FLEET_WORKER_ARTIFACT_HOSTS``: exact names, or ``.example.com`` for a domain and its subdomains).

Refusals are FAILED_PRECONDITION with a message that names the setting, never the path or URI
(those go to the worker's log, the URI without its userinfo and query: ``redact_url``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from services.common.errors import ModelPackageError
from services.common.redact import redact_url

log = logging.getLogger("fleet.worker.artifacts")

SCHEMES = frozenset({"file", "http", "https"})


def split_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


@dataclass(frozen=True)
class ArtifactPolicy:
    schemes: frozenset[str] = SCHEMES
    roots: tuple[Path, ...] = ()
    hosts: tuple[str, ...] = ()  # empty: any host
    _resolved: tuple[Path, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = self.schemes - SCHEMES
        if unknown:
            raise ValueError(f"artifact schemes {sorted(unknown)} are not supported; use {sorted(SCHEMES)}")
        object.__setattr__(self, "_resolved", tuple(Path(r).expanduser().resolve() for r in self.roots))
        object.__setattr__(self, "hosts", tuple(h.lower() for h in self.hosts))

    @classmethod
    def from_settings(cls, schemes: str, roots: str, hosts: str) -> ArtifactPolicy:
        return cls(frozenset(s.lower() for s in split_list(schemes)), tuple(Path(r) for r in split_list(roots)),
                   tuple(split_list(hosts)))

    @staticmethod
    def _refuse(why: str, uri: str) -> ModelPackageError:
        log.warning("artifact refused by the artifact policy", extra={"reason": why, "uri": redact_url(uri)[:500]})
        return ModelPackageError(f"the model's artifact location is not allowed on this worker ({why})")

    def local_path(self, uri: str) -> Path | None:
        """For a ``file://`` URI, the resolved path it may be read from; None for http(s). Refusals raise."""
        parsed = urlparse(uri)
        scheme = parsed.scheme.lower()
        if scheme not in SCHEMES:
            raise ModelPackageError(f"artifact URI scheme {scheme[:20]!r} is not supported; use file:// or https://")
        if scheme not in self.schemes:
            raise self._refuse(f"scheme {scheme} is not in FLEET_WORKER_ARTIFACT_SCHEMES", uri)
        if scheme != "file":
            self.check_host(parsed.hostname or "", uri)
            return None
        if parsed.netloc not in ("", "localhost"):
            raise self._refuse("file:// URIs must name a local path", uri)
        path = Path(unquote(parsed.path)).resolve()
        if not any(path.is_relative_to(root) for root in self._resolved):
            raise self._refuse("the file is not under FLEET_WORKER_ARTIFACT_ROOTS", uri)
        return path

    def check_url(self, scheme: str, host: str, uri: str) -> None:
        """An http(s) request of a download (every redirect hop included)."""
        if scheme.lower() not in self.schemes or scheme.lower() == "file":
            raise self._refuse(f"scheme {scheme} is not in FLEET_WORKER_ARTIFACT_SCHEMES", uri)
        self.check_host(host, uri)

    def check_host(self, host: str, uri: str) -> None:
        if not host:
            raise self._refuse("the URI has no host", uri)
        if self.hosts and not any(_host_matches(host.lower(), allowed) for allowed in self.hosts):
            raise self._refuse("the host is not in FLEET_WORKER_ARTIFACT_HOSTS", uri)


def _host_matches(host: str, allowed: str) -> bool:
    if allowed.startswith("*."):
        allowed = allowed[1:]
    if allowed.startswith("."):
        return host == allowed[1:] or host.endswith(allowed)
    return host == allowed
