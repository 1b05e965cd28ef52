"""What the store hands out: typed rows, never dicts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.common.model_record import ModelRecord

CATALOG = "catalog"   # declared by a catalog file: `fleet catalog apply --prune` may remove it
ADMIN = "admin"       # made through the admin plane (RegisterModel, `fleet keys create`, `fleet models alias`)
UPSTREAM = "upstream"  # copied from FLEET_REGISTRY_UPSTREAM_URL, looked up again when it expires


@dataclass(frozen=True)
class ApiKey:
    id: str
    prefix: str
    sha256: str
    workspace: str
    name: str
    source: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class StoredModel:
    record: ModelRecord  # its aliases are those of the owning workspace
    source: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Alias:
    workspace: str
    alias: str
    model_id: str
    source: str


@dataclass(frozen=True)
class StoredWorkflow:
    workspace: str
    workflow_id: str
    public: bool
    current_version: int
    versions: int
    updated_at: datetime
