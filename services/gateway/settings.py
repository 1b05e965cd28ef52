"""Gateway settings (env prefix FLEET_GATEWAY_)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings
from services.gateway.discovery import split_host_port


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FLEET_GATEWAY_")

    port: int = Field(50051, ge=0, le=65535, description="gRPC port of the public API (0: pick a free one).")
    registry_address: str = Field(
        "127.0.0.1:50052",
        description="Registry replicas: comma-separated host:port list, or a name such as dns:///registry:50052 "
                    "resolving to several; calls fail over between them.",
    )
    discovery: Literal["static", "heartbeats", "dns"] = Field(
        "heartbeats",
        description="How workers are found: static (the workers list only), heartbeats (that list plus every worker "
                    "publishing a heartbeat in Redis) or dns (every address workers_dns resolves to). Heartbeats, "
                    "where Redis has them, give every worker's load and models in each mode.",
    )
    workers: str = Field("", description="Comma-separated worker host:port list (static and heartbeats discovery).")
    workers_dns: str = Field(
        "", description="host:port whose A/AAAA records are the workers, for dns discovery (a headless Service such "
                        "as fleet-worker.inference-fleet.svc:50053).",
    )
    workers_dns_refresh_s: float = Field(5.0, gt=0, description="How often workers_dns is resolved again.")
    auth_refresh_s: float = Field(
        10.0, ge=0, description="Valid API keys (by hash) are asked of the registry again after this long; the bound "
                                "on a revocation reaching this gateway when Redis pub/sub is down.",
    )
    auth_max_stale_s: float = Field(600.0, ge=0, description="While the registry is unavailable, keys seen before keep "
                                                             "working this long after they were last confirmed.")
    auth_negative_ttl_s: float = Field(5.0, ge=0, description="In-process cache of rejected API keys (by hash).")
    model_cache_ttl_s: float = Field(10.0, ge=0, description="Resolved models are asked of the registry again after "
                                                             "this long (invalidations drop them at once).")
    model_max_stale_s: float = Field(3600.0, ge=0, description="While the registry is unavailable, models resolved "
                                                               "before keep resolving this long.")
    request_timeout_s: float = Field(30.0, gt=0, description="Deadline for calls whose client set none.")
    worker_attempts: int = Field(3, ge=1, description="Workers tried per request when one is unavailable.")
    worker_probe_interval_s: float = Field(
        2.0, gt=0,
        validation_alias=AliasChoices("FLEET_GATEWAY_WORKER_PROBE_INTERVAL_S", "FLEET_GATEWAY_WORKER_COOLDOWN_S"),
        description="How often an unreachable worker is health-checked when heartbeats cannot say it is back (no "
                    "Redis, or it publishes none); until then it is out of rotation. Also read from the older name "
                    "FLEET_GATEWAY_WORKER_COOLDOWN_S.",
    )
    placement_refresh_s: float = Field(1.0, gt=0, description="How often worker heartbeats are read and copies planned.")
    heartbeat_grace_s: float = Field(
        6.0, ge=0,
        description="A worker whose heartbeat record expired keeps its last state this long more (late): its copies "
                    "count for copy floors and planning (no stand-in is placed), routing sends it requests only when "
                    "no holder with a fresh heartbeat is left. Not for a worker a call found unreachable, nor one "
                    "draining (0: forget at once; docs/placement.md).",
    )
    gc_freeze_at_start: bool = Field(
        True,
        description="Once start-up has finished, move every object the process holds then into Python's permanent "
                    "garbage-collector generation (gc.freeze): full collections then walk what the gateway made since, "
                    "not its ~97,000 start-up objects (~50 ms each time, on the event loop).",
    )
    gc_young_threshold: int = Field(
        50_000, ge=0,
        description="Python's generation-0 threshold, set at start (0: leave Python's, 700): net allocations of "
                    "tracked objects between young collections. Fewer young collections, and fewer objects living a "
                    "few seconds (heartbeats, calls) promoted to be walked by the older ones (docs/placement.md).",
    )
    max_copies: int = Field(0, ge=0, description="Most workers one model is copied to (0: up to every worker, as its "
                                                 "demand needs; 1: never copy; AddModel may ask for up to this many).")
    copy_load_threshold: float = Field(
        4.0, gt=0,
        description="What one copy should carry: a model gets ceil(its load / this) copies when its copies have held "
                    "more than this many requests on average (from heartbeats) throughout copy_window_s, or twice "
                    "that in the last heartbeat interval.",
    )
    copy_window_s: float = Field(
        10.0, gt=0, description="How long a model must stay above copy_load_threshold before a copy is added.",
    )
    copy_release_threshold: float = Field(
        0.5, ge=0,
        description="A surplus copy is released when, with one copy fewer, each would have held fewer requests than "
                    "this on average throughout copy_release_window_s.",
    )
    copy_release_window_s: float = Field(
        60.0, gt=0, description="How long a model must stay cold before a surplus copy is released.",
    )
    copy_load_timeout_s: float = Field(120.0, gt=0, description="Deadline for loading a new copy on a worker.")
    stream_max_in_flight: int = Field(
        32, ge=1,
        description="InferStream items one stream holds at once (being served or answered but not yet sent); at "
                    "the bound the gateway stops reading that stream.",
    )
    stream_max_buffered_bytes: int = Field(
        8 * 1024 * 1024, ge=1024,
        description="Bytes one stream (InferStream, OIP ModelStreamInfer) holds before the gateway stops reading it: "
                    "answers not yet sent, and the requests being served (each with the stream's mean answer size).",
    )
    response_cache_ttl_s: int = Field(0, ge=0, description="Cache identical requests' responses in Redis (0: off).")
    registry_wait_s: float = Field(30.0, ge=0, description="At start-up, how long to wait for the registry.")
    http_enabled: bool = Field(True, description="Serve the HTTP API (Roboflow-compatible and KServe v2 REST routes).")
    http_port: int = Field(9001, ge=0, le=65535, description="HTTP API port (0: pick a free one).")
    http_max_body_bytes: int = Field(
        0, ge=0, description="Largest HTTP request body (0: room for a base64 image of max_message_bytes).")
    workflow_max_steps: int = Field(64, ge=1, description="Most steps a workflow definition may have.")
    workflow_max_definition_bytes: int = Field(262144, ge=1024, description="Largest workflow definition (JSON bytes).")
    workflow_max_images: int = Field(16, ge=1, description="Most images one workflow run takes per image input.")
    workflow_max_crops_per_image: int = Field(256, ge=1, description="Most crops a workflow step cuts from one image.")
    workflow_cpu_threads: int = Field(4, ge=1, description="Threads for workflow CPU work (decoding, crops, drawing).")
    url_input_enabled: bool = Field(True, description="Fetch workflow image inputs sent by http(s) URL (Infer's URLs "
                                                     "are fetched by the workers: FLEET_WORKER_URL_*).")
    url_allow_private: bool = Field(False, description="Allow workflow image URLs that resolve to loopback or private "
                                                       "addresses.")
    url_timeout_s: float = Field(10.0, gt=0, description="Deadline for fetching a workflow image URL: resolution, "
                                                         "connection, redirects and the whole body.")
    url_hosts: str = Field("", description="Comma-separated hosts workflow image URLs may name, every redirect "
                                           "included ('.example.com': the domain and its subdomains; empty: any host).")
    workflow_fuse_crops: bool = Field(True, description="Run a workflow's detect -> crop -> classify steps as one call "
                                      "on a worker holding both models (false: always step by step).")
    workflow_cpu_sched_idle: bool = Field(
        False, description="Run those threads under the SCHED_IDLE policy (Linux): only when nothing else on the "
                           "host wants the core, preempted at once by any other thread, whatever its process "
                           "(for a host of its own: elsewhere other tenants' work starves workflows; "
                           "docs/workflows.md).",
    )
    workflow_cpu_nice: int = Field(
        19, ge=0, le=19,
        description="How much lower the CPU priority (nice) of those threads is than the gateway's, so a "
                    "workflow's CPU work yields to the gateway's own (Linux, per thread; 0: the same priority).",
    )
    role: Literal["gateway", "workflows"] = Field(
        "gateway",
        description="gateway: the public API (fleet.v1, OIP, admin, HTTP); workflows: the workflow engine alone "
                    "(fleet.v1.WorkflowService and the HTTP workflow routes, each caller authenticated again), the "
                    "process a public gateway's workflows_address names (docs/workflows.md, 'Where the engine runs').",
    )
    workflows_address: str = Field(
        "", description="gRPC host:port of the workflow engine (a gateway in the workflows role); set, this gateway "
                        "forwards WorkflowService calls there as they came (empty: it runs workflows itself).",
    )
    workflows_http_address: str = Field(
        "", description="host:port of the workflow engine's HTTP API, where this gateway forwards the HTTP workflow "
                        "routes (needed with workflows_address when the HTTP API is on).",
    )
    workflows_light_in_gateway: bool = Field(
        True, description="With workflows_address set, runs that do no image work (model steps on the input images "
                          "as they came, pure-JSON blocks: no crops, drawing or image outputs) run in this gateway, "
                          "as an Infer would, rather than one hop away; the others go to the engine (false: every "
                          "call goes to the engine; docs/workflows.md, 'Where the engine runs').",
    )
    workflows_process_nice: int = Field(
        10, ge=0, le=19,
        description="In the workflows role, how far the whole process lowers its CPU priority (nice) at start-up, "
                    "so on a shared host interactive Infer work wins the cores (0: not lowered).",
    )
    oip_enabled: bool = Field(True, description="Serve the Open Inference Protocol (inference.GRPCInferenceService) "
                                                "on the gRPC port.")

    def http_body_limit(self) -> int:
        return self.http_max_body_bytes or self.max_message_bytes * 4 // 3 + 64 * 1024

    def worker_addresses(self) -> list[str]:
        return [a.strip() for a in self.workers.split(",") if a.strip()]

    @model_validator(mode="after")
    def _discovery_has_its_source(self) -> GatewaySettings:
        if self.discovery == "dns" and not self.workers_dns:
            raise ValueError("discovery=dns needs workers_dns (host:port of the workers' headless Service)")
        if self.workers_dns:
            split_host_port(self.workers_dns)  # ValueError naming what is wrong
        if self.discovery == "static" and not self.worker_addresses():
            raise ValueError("discovery=static needs workers (a comma-separated host:port list)")
        return self

    @model_validator(mode="after")
    def _workflows_forwarding_complete(self) -> GatewaySettings:
        if self.role == "workflows" and self.workflows_address:
            raise ValueError("the workflows role runs workflows itself: leave workflows_address empty")
        if self.workflows_address and self.http_enabled and not self.workflows_http_address:
            raise ValueError("workflows_address needs workflows_http_address (the engine's HTTP host:port) while "
                             "the HTTP API is on, or the HTTP workflow routes would have nowhere to go")
        if self.workflows_address and not self.workflows_address.startswith(("dns:", "unix:")):
            split_host_port(self.workflows_address)  # ValueError naming what is wrong
        if self.workflows_http_address:
            split_host_port(self.workflows_http_address)
        return self

    def forwards_workflows(self) -> bool:
        return bool(self.workflows_address) and self.role == "gateway"

    @model_validator(mode="after")
    def _release_below_growth(self) -> GatewaySettings:
        if self.copy_release_threshold >= self.copy_load_threshold:
            raise ValueError("copy_release_threshold must be below copy_load_threshold, or copies would be added "
                             "and released in turn")
        return self


class WorkflowEngineSettings(GatewaySettings):
    """``fleet-workflows``: the gateway's settings (env prefix FLEET_GATEWAY_), in the workflows role by default."""

    role: Literal["gateway", "workflows"] = Field(
        "workflows", description="workflows (the default of fleet-workflows): the workflow engine alone, behind the "
                                 "gateways; gateway: the public API, as fleet-gateway.",
    )
