"""Settings shared by every service; each service subclasses with its own env prefix.

Settings objects are built once, at start-up, from the environment (never at import)
and passed to the code that needs them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Transport, observability and Redis settings common to all services."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    host: str = Field("127.0.0.1", description="Address the gRPC server binds (0.0.0.0 in containers).")
    port: int = Field(0, ge=0, le=65535, description="gRPC port (0: pick a free one and log it).")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics HTTP port (0: pick a free one).")
    advertise_address: str = Field("", description="host:port other services use to reach this one (default host:port).")
    log_level: str = Field("INFO", description="Python log level.")
    log_format: Literal["json", "text"] = Field("json", description="json (one object per line) or text.")
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "FLEET_REDIS_URL"),
        description="Redis for caches, catalog and heartbeats (env REDIS_URL).",
    )
    redis_timeout_s: float = Field(2.0, gt=0, description="Socket timeout for Redis calls.")
    redis_namespace: str = Field(
        "fleet",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        validation_alias=AliasChoices("FLEET_REDIS_NAMESPACE"),
        description="Prefix of every Redis key; fleets sharing one Redis need different ones.",
    )
    shutdown_grace_s: float = Field(10.0, ge=0, description="On SIGTERM, time in-flight calls get to finish.")
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Largest gRPC message accepted.")
    ready_file: str = Field("", description="Write the bound ports here as JSON once serving (for supervisors).")
    metrics_max_models: int = Field(
        200, ge=1, validation_alias=AliasChoices("FLEET_METRICS_MAX_MODELS"),
        description="Distinct model_id label values per process; later models are counted as 'other'.",
    )


def env_help(settings_cls: type[BaseSettings]) -> str:
    """A table of the environment variables a settings class reads, for --help."""
    prefix = settings_cls.model_config.get("env_prefix", "")
    lines = ["environment variables:"]
    for name, field in settings_cls.model_fields.items():
        alias = field.validation_alias
        env = " / ".join(alias.choices) if isinstance(alias, AliasChoices) else f"{prefix}{name}".upper()
        default = field.default if field.default is not None else ""
        if isinstance(default, (list, tuple)):
            default = ",".join(map(str, default))
        lines.append(f"  {env:<44} {field.description or ''} [default: {default!s}]")
    return "\n".join(lines)
