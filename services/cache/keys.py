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

    # API keys: the registry's table (no TTL) and the gateway's cache (1 h TTL); both hashed.
    def api_key(self, key_sha256: str) -> str:
        return f"{self.ns}:apikey:{self._hash(key_sha256)}"

    def auth_cache(self, key_sha256: str) -> str:
        return f"{self.ns}:auth:{self._hash(key_sha256)}"

    # Model metadata owned by the registry.
    def model(self, model_id: str) -> str:
        return f"{self.ns}:model:{model_id}"

    def models_index(self) -> str:
        return f"{self.ns}:models"

    def alias(self, alias: str) -> str:
        return f"{self.ns}:alias:{alias}"

    # Inference log, as the seed's inference:{server}:{model} sorted sets.
    def inference_log(self, worker_id: str, model_id: str) -> str:
        return f"{self.ns}:inference:{worker_id}:{model_id}"

    # Response cache.
    def response(self, digest: str) -> str:
        return f"{self.ns}:response:{self._hash(digest)}"

    # Worker heartbeats.
    def worker(self, worker_id: str) -> str:
        return f"{self.ns}:worker:{worker_id}"

    def workers_index(self) -> str:
        return f"{self.ns}:workers"
