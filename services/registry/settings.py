"""Registry settings (env prefix FLEET_REGISTRY_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FLEET_REGISTRY_")
    require_client_cert: ClassVar[bool] = True

    port: int = Field(50052, ge=0, le=65535, description="gRPC port (0: pick a free one).")
    catalog: str = Field("", description="YAML catalog of workspaces, API-key hashes, models and aliases to load.")
