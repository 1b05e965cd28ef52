"""Registry settings (env prefix FLEET_REGISTRY_)."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from fleet.paths import state_dir
from services.common.settings import ServiceSettings


def default_database_url() -> str:
    return f"sqlite:///{state_dir() / 'registry.db'}"


class RegistrySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FLEET_REGISTRY_")
    require_client_cert: ClassVar[bool] = True

    port: int = Field(50052, ge=0, le=65535, description="gRPC port (0: pick a free one).")
    database_url: str = Field(
        default_factory=default_database_url,
        description="The registry's database, the system of record: sqlite:///FILE (default: registry.db in the "
                    "state directory) or postgresql://user:pass@host/db.",
    )
    auto_migrate: bool = Field(False, description="Migrate the database schema at start-up instead of refusing to start "
                                                  "on an unmigrated one (else: fleet-registry migrate).")
    catalog: str = Field("", description="YAML catalog applied at start-up (as `fleet catalog apply` does).")
    catalog_prune: bool = Field(False, description="Apply the start-up catalog with --prune.")
    admin_token_sha256: str = Field(
        "", description="Hex sha256 of the admin token (FLEET_ADMIN_TOKEN of the CLI); empty: no admin plane.",
    )
    cache_key_ttl_s: int = Field(600, ge=1, description="Redis cache of API-key lookups.")
    cache_model_ttl_s: int = Field(3600, ge=1, description="Redis cache of model records, aliases and latest versions.")
    upstream_url: str = Field("", description="Upstream model source for ids not known here (HTTP JSON; empty: none).")
    upstream_token: str = Field("", description="Bearer token sent to the upstream model source.")
    upstream_timeout_s: float = Field(5.0, gt=0, description="Timeout of one upstream lookup.")
    upstream_ttl_s: int = Field(3600, ge=1, description="How long an upstream answer is kept (unless it says ttl_s).")
    upstream_negative_ttl_s: float = Field(30.0, ge=0, description="How long an upstream 404 is remembered.")

    @field_validator("admin_token_sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        if v and not re.fullmatch(r"[0-9a-f]{64}", v):
            raise ValueError("admin_token_sha256 must be a lowercase hex sha256 (printf %s TOKEN | sha256sum)")
        return v
