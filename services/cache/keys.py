"""Redis key layout. Every key lives under one namespace (default ``fleet``)."""

from __future__ import annotations

import re

_HEX64 = re.compile(r"[0-9a-f]{64}")


class Keys:
    def __init__(self, namespace: str = "fleet") -> None:
        self.ns = namespace

    @staticmethod
    def _hash(value: str) -> str:
        if not _HEX64.fullmatch(value):
            raise ValueError("expected a hex sha256")
        return value

    # The registry's read-through cache of its database (services.cache.registry_cache): API keys only by
    # hash, model records, workspace-scoped aliases, each project's latest version per workspace.
    def principal(self, key_sha256: str) -> str:
        return f"{self.ns}:reg:key:{self._hash(key_sha256)}"

    def model(self, model_id: str) -> str:
        return f"{self.ns}:reg:model:{model_id}"

    def alias(self, workspace: str, alias: str) -> str:
        return f"{self.ns}:reg:alias:{workspace}:{alias}"

    def latest(self, project: str) -> str:
        return f"{self.ns}:reg:latest:{project}"

    def tombstone(self, key: str) -> str:
        """Set for a few seconds after ``key`` is invalidated: readers must not refill it meanwhile."""
        return f"{self.ns}:reg:tomb:{key}"

    def invalidations(self) -> str:
        """The pub/sub channel every registry write announces itself on."""
        return f"{self.ns}:registry:invalidations"

    # Inference log, as the seed's inference:{server}:{model} sorted sets.
    def inference_log(self, worker_id: str, model_id: str) -> str:
        return f"{self.ns}:inference:{worker_id}:{model_id}"

    # Response cache.
    def response(self, digest: str) -> str:
        return f"{self.ns}:response:{self._hash(digest)}"

    # Worker heartbeats.
    def worker(self, worker_id: str) -> str:
        return f"{self.ns}:worker:{worker_id}"

    def worker_compact(self, worker_id: str) -> str:
        """The same heartbeat as the difference from the one before (``heartbeat_codec``)."""
        return f"{self.ns}:worker-compact:{worker_id}"

    def workers_index(self) -> str:
        return f"{self.ns}:workers"

    # Copies of models kept by AddModel(copies=N), read by every gateway replica.
    def copy_floors(self) -> str:
        return f"{self.ns}:copies"

    # Loads in flight: which worker is loading this version of a model now (a short-lived placement record).
    def placement(self, model_id: str, sha256: str) -> str:
        return f"{self.ns}:placing:{model_id}@{self._hash(sha256)}"

    def copies_loading(self) -> str:
        """One hash: ``model id|worker address`` -> until when (unix ms) a copy decided by a gateway loads there."""
        return f"{self.ns}:copies-loading"
