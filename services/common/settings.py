"""Settings shared by every service; each service subclasses with its own env prefix.

Settings objects are built once, at start-up, from the environment (never at import)
and passed to the code that needs them.
"""

from __future__ import annotations

import ipaddress
from typing import ClassVar, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.tls import ClientTls, ServerTls, client_tls, server_tls


class ServiceSettings(BaseSettings):
    """Transport, observability and Redis settings common to all services."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    host: str = Field("127.0.0.1", description="Address the gRPC server binds (0.0.0.0 in containers).")
    port: int = Field(0, ge=0, le=65535, description="gRPC port (0: pick a free one and log it).")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics HTTP port (0: pick a free one).")
    advertise_address: str = Field(
        "", description="host:port other services use to reach this one, or a bare host or IP (a pod IP from the "
                        "Kubernetes downward API) to which the bound port is added (default host:port).",
    )
    log_level: str = Field("INFO", description="Python log level.")
    log_format: Literal["json", "text"] = Field("json", description="json (one object per line) or text.")
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "FLEET_REDIS_URL"),
        description="Redis for caches, catalog and heartbeats (env REDIS_URL).",
    )
    redis_timeout_s: float = Field(2.0, gt=0, description="Socket timeout for Redis calls.")
    task_modules: str = Field(
        "", validation_alias=AliasChoices("FLEET_TASK_MODULES"),
        description="Plug-in task modules to import at start-up (comma-separated Python module names; each "
                    "registers its tasks: services.tasks). Every service and the CLI need the same list.",
    )
    redis_namespace: str = Field(
        "fleet",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        validation_alias=AliasChoices("FLEET_REDIS_NAMESPACE"),
        description="Prefix of every Redis key; fleets sharing one Redis need different ones.",
    )
    shutdown_grace_s: float = Field(10.0, ge=0, description="On SIGTERM, time in-flight calls get to finish.")
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Largest gRPC message accepted.")
    ready_file: str = Field("", description="Write the bound ports here as JSON once serving (for supervisors).")
    dependency_check_interval_s: float = Field(
        5.0, gt=0, description="How often Redis (and, for the gateway, the registry) are checked for fleet_dependency_up.",
    )
    dependency_check_timeout_s: float = Field(2.0, gt=0, description="A dependency check slower than this counts as down.")
    capture_native_output: bool = Field(
        True, description="Turn what native libraries (libpng, libjpeg, ONNX Runtime) write to stderr into log records "
                          "(counted in fleet_native_messages_total) instead of raw lines among the JSON logs.",
    )
    metrics_max_models: int = Field(
        200, ge=1, validation_alias=AliasChoices("FLEET_METRICS_MAX_MODELS"),
        description="Distinct model_id label values per process; later models are counted as 'other'.",
    )
    grpc_event_engine: bool = Field(
        True, validation_alias=AliasChoices("FLEET_GRPC_EVENT_ENGINE"),
        description="gRPC core's EventEngine for sockets (its threads hand each socket event to the polling "
                    "thread); false: the polling thread polls the sockets itself, one thread wake-up fewer per "
                    "event (applied before grpc is imported; an explicit GRPC_EXPERIMENTS wins).",
    )
    health_port: int = Field(
        0, ge=0, le=65535, description="A plaintext port serving only the gRPC health service, for probes that "
                                       "cannot speak TLS, such as Kubernetes' (0: none; health is on the gRPC port).",
    )
    # This service's own gRPC port (env <PREFIX>TLS_CERT, ...). Files are re-read when they change.
    tls_cert: str = Field("", description="PEM certificate (chain) the gRPC port serves; empty: plaintext.")
    tls_key: str = Field("", description="PEM private key of the TLS certificate.")
    tls_client_ca: str = Field(
        "", description="PEM CA bundle clients' certificates must chain to; set, clients must present one (mTLS). "
                        "Registry and workers default to FLEET_TLS_CA: with TLS on they always require one.",
    )
    # Calls this service makes to other fleet services (gateway -> registry and workers, worker -> registry).
    internal_tls_ca: str = Field(
        "", validation_alias=AliasChoices("FLEET_TLS_CA"),
        description="PEM CA bundle trusted on calls to other fleet services; set, those calls use TLS.",
    )
    internal_tls_cert: str = Field(
        "", validation_alias=AliasChoices("FLEET_TLS_CERT"),
        description="PEM client certificate presented on calls to other fleet services (mTLS).",
    )
    internal_tls_key: str = Field(
        "", validation_alias=AliasChoices("FLEET_TLS_KEY"), description="PEM private key of FLEET_TLS_CERT.",
    )
    internal_tls_server_name: str = Field(
        "", validation_alias=AliasChoices("FLEET_TLS_SERVER_NAME"),
        description="Name other fleet services' certificates carry, when it is not the address dialled "
                    "(e.g. workers reached by pod IP).",
    )

    # Registry and workers hold the internal plane: with TLS on they require client certificates.
    require_client_cert: ClassVar[bool] = False

    @model_validator(mode="after")
    def _tls_consistent(self) -> ServiceSettings:
        prefix = self.model_config.get("env_prefix", "")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError(f"{prefix}TLS_CERT and {prefix}TLS_KEY must be set together")
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError(f"{prefix}TLS_CLIENT_CA needs {prefix}TLS_CERT and {prefix}TLS_KEY")
        if bool(self.internal_tls_cert) != bool(self.internal_tls_key):
            raise ValueError("FLEET_TLS_CERT and FLEET_TLS_KEY must be set together")
        if self.require_client_cert and self.tls_cert and not (self.tls_client_ca or self.internal_tls_ca):
            raise ValueError(
                f"with TLS on, this service requires client certificates: set {prefix}TLS_CLIENT_CA "
                "(or FLEET_TLS_CA) to the CA that signs the fleet's client certificates"
            )
        return self

    def server_tls(self) -> ServerTls | None:
        """The gRPC port's TLS (None: plaintext)."""
        client_ca = self.tls_client_ca or (self.internal_tls_ca if self.require_client_cert else "")
        return server_tls(self.tls_cert, self.tls_key, client_ca)

    def client_tls(self) -> ClientTls | None:
        """TLS for calls to other fleet services (None: plaintext)."""
        return client_tls(self.internal_tls_ca, self.internal_tls_cert, self.internal_tls_key,
                          self.internal_tls_server_name)

    def advertised(self, port: int) -> str:
        """The host:port to publish: ``advertise_address`` (with ``port`` added to a bare host), else host:port."""
        address = self.advertise_address.strip() or self.host
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address if ":" in address else f"{address}:{port}"
        return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def env_help(settings_cls: type[BaseSettings]) -> str:
    """A table of the environment variables a settings class reads, for --help."""
    prefix = settings_cls.model_config.get("env_prefix", "")
    lines = ["environment variables:"]
    for name, field in settings_cls.model_fields.items():
        alias = field.validation_alias
        env = " / ".join(alias.choices) if isinstance(alias, AliasChoices) else f"{prefix}{name}".upper()
        if field.default is PydanticUndefined and field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        else:
            default = field.default if field.default is not None else ""
        if isinstance(default, (list, tuple)):
            default = ",".join(map(str, default))
        lines.append(f"  {env:<44} {field.description or ''} [default: {default!s}]")
    return "\n".join(lines)
