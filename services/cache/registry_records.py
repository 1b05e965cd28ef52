"""Typed records the registry shares through Redis, each with its one codec."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal


@dataclass(frozen=True)
class PrincipalRecord:
    """Who an API key (by hash) belongs to."""

    workspace: str
    key_id: str

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> PrincipalRecord:
        data = json.loads(raw)
        return cls(workspace=str(data["workspace"]), key_id=str(data["key_id"]))


InvalidationKind = Literal["key", "model", "alias", "workflow"]


@dataclass(frozen=True)
class Invalidation:
    """A registry write: caches holding what it names must drop it.

    ``key``: the API key with hash ``key_sha256`` (revoked); ``model``: the model ``model_id`` (changed or
    deleted; ``<project>/latest`` may now mean another version); ``alias``: ``alias`` of ``workspace``.
    """

    kind: InvalidationKind
    key_sha256: str = ""
    model_id: str = ""
    workspace: str = ""
    alias: str = ""
    workflow_id: str = ""  # kind "workflow": the stored workflow ``workflow_id`` of ``workspace`` changed

    def encode(self) -> bytes:
        return json.dumps({k: v for k, v in asdict(self).items() if v}, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Invalidation:
        data = json.loads(raw)
        if data.get("kind") not in ("key", "model", "alias", "workflow"):
            raise ValueError(f"unknown invalidation kind {data.get('kind')!r}")
        return cls(kind=data["kind"], key_sha256=str(data.get("key_sha256", "")),
                   model_id=str(data.get("model_id", "")), workspace=str(data.get("workspace", "")),
                   alias=str(data.get("alias", "")), workflow_id=str(data.get("workflow_id", "")))

    @property
    def project(self) -> str:
        return self.model_id.partition("/")[0]
