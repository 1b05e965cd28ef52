"""The pipelines service's settings (env prefix FLEET_PIPELINES_), read once at start-up."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class PipelinesSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FLEET_PIPELINES_", extra="ignore", frozen=True,
                                      populate_by_name=True)

    gateway_address: str = Field("127.0.0.1:50051", description="The gateway (fleet.v1) frames are sent to.")
    registry_address: str = Field(
        "127.0.0.1:50052", description="Registry replicas (comma-separated) that validate API keys and models.")
    replica_id: str = Field("", description="This replica's name in leases and status (default: host-pid).")
    http_enabled: bool = Field(True, description="Serve the stream manager's HTTP routes (/inference_pipelines/...).")
    http_port: int = Field(0, ge=0, le=65535, description="HTTP port of the stream manager routes (0: a free one).")
    file_roots: str = Field(
        "", description="Directories (comma-separated) video files may be read from; empty: no file sources.")
    source_allowed_hosts: str = Field(
        "", description="Hosts (comma-separated; '*.example.com' matches subdomains) RTSP and HTTP sources may "
                        "name; empty: any host.")
    max_pipelines: int = Field(16, ge=1, description="Pipelines one replica runs at most (RESOURCE_EXHAUSTED beyond).")
    max_pipelines_per_workspace: int = Field(8, ge=1, description="Pipelines one workspace may have in the fleet.")
    max_sources: int = Field(8, ge=1, description="Sources one pipeline may read.")
    max_fps: float = Field(30.0, gt=0, description="Highest max_fps a pipeline may ask for (also its default).")
    results_buffer_size: int = Field(64, ge=1, le=10_000, description="Default size of the consume buffer.")
    max_results_buffer_size: int = Field(1024, ge=1, description="Largest consume buffer a pipeline may ask for.")
    redis_stream_maxlen: int = Field(1000, ge=1, description="MAXLEN of a pipeline's Redis Stream sink.")
    batch_max_frames: int = Field(8, ge=1, description="Frames sent to the gateway in one InferBatch at most.")
    batch_wait_s: float = Field(0.005, ge=0, description="How long frames of pipelines sharing a model wait to "
                                                         "join one batch.")
    infer_timeout_s: float = Field(10.0, gt=0, description="Deadline of one InferBatch call to the gateway.")
    frame_encoding: str = Field("raw", pattern="^(raw|jpeg)$",
                                description="How frames travel to the gateway: raw pixels (exact) or JPEG.")
    open_timeout_s: float = Field(5.0, gt=0, description="Time a source gets to connect (RTSP, HTTP).")
    read_timeout_s: float = Field(5.0, gt=0, description="A live source silent this long counts as dropped.")
    reconnect_initial_s: float = Field(0.5, gt=0, description="First wait before reconnecting a failed source.")
    reconnect_max_s: float = Field(10.0, gt=0, description="Longest wait between reconnect attempts.")
    terminate_timeout_s: float = Field(2.0, gt=0, description="Terminate waits this long for a source's reader; "
                                                              "a reader stuck longer is abandoned (counted).")
    lease_ttl_s: float = Field(3.0, gt=0, description="A pipeline's lease expires this long after its last renewal.")
    lease_renew_s: float = Field(1.0, gt=0, description="How often a replica renews the leases it holds.")
    key_sealing_key: str = Field(
        "", description="Fernet key (urlsafe base64 of 32 bytes) every replica shares: callers' API keys kept with "
                        "their pipelines are stored encrypted with it; empty: stored as they are (development).")
    claim_interval_s: float = Field(0.5, gt=0, description="How often a replica looks for pipelines without owner.")
    push_forward_wait_s: float = Field(
        10.0, gt=0, description="How long a frame pushed to a replica that does not run its pipeline waits for a "
                                "reachable owner (forwarded to it) before the push stream ends with UNAVAILABLE.")
    spec_refresh_s: float = Field(
        30.0, gt=0, description="A replica reads a pipeline's definition (and the list of pipelines) from the "
                                "registry when its change counter in Redis moves, and at least this often.")
