"""Model worker settings (env prefix FLEET_WORKER_; the seed's names are accepted too)."""

from __future__ import annotations

import os
import socket
from typing import ClassVar, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings
from services.model_worker.artifact_policy import ArtifactPolicy


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _default_artifact_roots() -> str:
    from fleet.paths import MODELS_DIR  # noqa: PLC0415 - read when settings are built, not at import

    return str(MODELS_DIR)


class WorkerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FLEET_WORKER_")
    require_client_cert: ClassVar[bool] = True

    port: int = Field(50053, ge=0, le=65535, description="gRPC port (0: pick a free one).")
    max_message_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Largest gRPC message accepted (above the gateway's, which forwards).",
    )
    worker_id: str = Field(default_factory=_default_worker_id, description="Name in heartbeats, logs and responses.")
    model_cache_dir: str = Field(
        os.path.join(os.path.expanduser("~"), ".cache", "inference-fleet", "models"),
        validation_alias=AliasChoices("FLEET_WORKER_MODEL_CACHE_DIR", "MODEL_CACHE_DIR"),
        description="Where downloaded artifacts are kept (content-addressed by sha256).",
    )
    max_active_models: int = Field(
        8, ge=1, validation_alias=AliasChoices("FLEET_WORKER_MAX_ACTIVE_MODELS", "MAX_ACTIVE_MODELS"),
        description="Most models held at once; one is evicted beyond it (see eviction).",
    )
    eviction: Literal["gdsf", "lru"] = Field(
        "gdsf", description="Which model goes when the worker is over its count or memory limit: gdsf "
                            "(Greedy-Dual-Size-Frequency: the lowest of uses × load time / size, plus a clock that "
                            "ages old popularity; a model used often outlives a burst of one-off models, a small "
                            "model slow to load per byte outlives a large one) or lru (the least recently used). "
                            "Pinned models and the model just loaded are never evicted.",
    )
    memory_capacity_bytes: int = Field(
        0, ge=0, description="Most bytes of loaded models (0: half of the memory available at start-up, or of "
                             "the container's memory limit when lower).",
    )
    memory_free_threshold: float = Field(
        0.0, ge=0.0, lt=1.0,
        validation_alias=AliasChoices("FLEET_WORKER_MEMORY_FREE_THRESHOLD", "MEMORY_FREE_THRESHOLD"),
        description="Evict while free/total memory is below this fraction (0: off).",
    )
    model_lock_acquire_timeout_s: float = Field(
        60.0, gt=0,
        validation_alias=AliasChoices("FLEET_WORKER_MODEL_LOCK_ACQUIRE_TIMEOUT", "MODEL_LOCK_ACQUIRE_TIMEOUT"),
        description="How long a request waits for another request's load of the same model.",
    )
    preload: str = Field("", description="Comma-separated model ids or aliases to load at start-up and pin "
                                         "(resolved through the registry).")
    preload_workspace: str = Field("", description="Workspace whose private models and aliases preload may name "
                                                   "(empty: public models by id only).")
    registry_address: str = Field(
        "127.0.0.1:50052", description="Registry replicas for preload (comma-separated host:port, or dns:///name:port).",
    )
    execution_provider: Literal["auto", "cuda", "cpu"] = Field(
        "auto", description="auto: CUDA when the session really gets it, else CPU.",
    )
    ort_intra_op_threads: int = Field(0, ge=0, description="ONNX Runtime intra-op threads (0: its default).")
    ort_inter_op_threads: int = Field(0, ge=0, description="ONNX Runtime inter-op threads (0: its default).")
    ort_allow_spinning: bool = Field(
        False, description="Let idle ONNX Runtime threads spin (faster alone, slower beside other CPU work).",
    )
    ort_adaptive_threads: bool = Field(
        True, description="On CPU, a second session of each model with one intra-op thread runs the batches "
                          "formed under load, as many at once as ort_intra_op_threads (else one per usable "
                          "CPU), while a request that finds the model idle runs with every intra-op thread. "
                          "The second session is opened once a first batch forms (in the background; a cold "
                          "start opens one) and counted in the model's footprint; where it does not fit even "
                          "after evicting others, it is given back. Off when ort_intra_op_threads is 1 or on "
                          "one CPU.",
    )
    cpu_threads: int = Field(
        0, ge=0, description="Threads for decode, pre- and post-processing (0: the CPUs this process may use, "
                             "within its cgroup quota).",
    )
    max_batch_size: int = Field(16, ge=1, le=1024, description="Upper bound on dynamic batches (and the model's own).")
    max_queue_delay_us: int = Field(
        2000, ge=0, description="Longest a request waits for others to join its batch (only while more are coming).",
    )
    concurrent_runs: int = Field(
        0, ge=0, le=64,
        description="ONNX Runtime runs of one model at once (each a batch); more than 1 overlaps runs on CPUs "
                    "where bigger batches gain little (0: with ort_adaptive_threads, as many as the intra-op "
                    "threads, else 1).",
    )
    max_queue_size: int = Field(256, ge=1, description="Requests queued per model before RESOURCE_EXHAUSTED.")
    background_runs: int = Field(
        0, ge=0, le=64,
        description="Runs of one model at once for background requests (a workflow's model steps), apart from "
                    "concurrent_runs, which stay for interactive requests (0: half of the model's concurrent "
                    "runs, at least 1).",
    )
    background_max_queue_size: int = Field(
        64, ge=1, description="Background requests queued per model before RESOURCE_EXHAUSTED (interactive "
                              "requests have max_queue_size of their own).",
    )
    background_yield_idle: bool = Field(
        True, description="While interactive requests are in flight on this worker, or were within "
                          "background_interactive_window_ms, run background work on threads under the SCHED_IDLE "
                          "policy (Linux; preempted at once by any other thread), else on threads of "
                          "background_nice: workflows beside interactive traffic yield the CPU to it, and a "
                          "workflow without it runs at full speed (docs/workflows.md, \"Isolation\").",
    )
    background_interactive_window_ms: float = Field(
        1000.0, ge=0, le=60_000,
        description="How long after the last interactive request background work still yields as if one "
                    "were in flight (background_yield_idle).",
    )
    background_max_hold_ms: float = Field(
        50.0, ge=0, le=10_000,
        description="Longest a stage of background work (a decode, a model run, a post-processing of a "
                    "workflow's model step) waits for its turn while interactive requests are in flight on "
                    "this worker: it starts at once when none is, else when the last ends or after this long "
                    "(so workflows slow down beside interactive traffic but are never starved; 0: no waiting, "
                    "the lane and its threads' priority only; docs/workflows.md, \"Isolation\").",
    )
    background_cpu_share: float = Field(
        0.0625, ge=0, le=1,
        description="Share of the worker's cores that background work (decodes, model runs, post-processing of "
                    "workflows' model steps) may take while interactive requests are in flight (a stage's CPU "
                    "time counted in the proportion of its time that overlapped them): a stage that finds the "
                    "share spent while interactive requests are about (background_interactive_window_ms) waits "
                    "until it has refilled, so workflows go on at that rate at least and at full speed once "
                    "interactive traffic is gone (0: no bound; docs/workflows.md, \"Isolation\"). The default, a "
                    "sixteenth, kept Infer beside full-load workflows within 1.2x of alone on two cores.",
    )
    background_one_thread_interactive: bool = Field(
        False, description="While background work is about (a stage of it within background_interactive_window_ms), "
                          "an interactive request that finds its model idle runs on the model's one-intra-op-thread "
                          "session (once opened) rather than across every core, where any other thread taking a "
                          "core stalls the run at each operator (docs/workflows.md, \"Isolation\").",
    )
    background_sched_idle: bool = Field(
        False, description="Run those threads under the SCHED_IDLE policy (Linux): only when nothing else on the "
                           "host wants the core, preempted at once by any other thread, whatever its process "
                           "(for a host of its own: elsewhere other tenants' work starves workflows; "
                           "docs/workflows.md).",
    )
    background_nice: int = Field(
        0, ge=0, le=19,
        description="How much lower the CPU priority (nice) of the threads that decode, run and post-process "
                    "background requests is than the worker's (Linux, per thread; 0: the same priority). 19 keeps "
                    "Infer beside full-load workflows closest to alone, but background work then also yields "
                    "to the worker's model loads (docs/workflows.md, \"Isolation\").",
    )
    embedding_cache_bytes: int = Field(
        256 * 1024 * 1024, ge=0,
        description="Image embeddings kept for promptable segmentation (a second prompt on the same image skips the "
                    "image encoder), least recently used out first; a model's go when it is unloaded (0: none kept).")
    max_image_pixels: int = Field(40_000_000, ge=1, description="Images declaring more pixels are refused before decoding.")
    max_image_side: int = Field(16_384, ge=1, description="Longest image side accepted.")
    decode_budget_pixels: int = Field(
        0, ge=0,
        description="Decoded pixels in flight across all requests at once (0: max_image_pixels, so images "
                    "at the limit decode one at a time); at least max_image_pixels.",
    )
    decode_budget_wait_s: float = Field(
        2.0, ge=0, description="How long a request waits for the decode budget before RESOURCE_EXHAUSTED.",
    )
    jpeg_reduced_decode: bool = Field(
        False, description="Decode a JPEG at 1/2, 1/4 or 1/8 scale when it is at least that much larger than the "
                           "size it is resized to (letterbox and stretch; not with visualize): less CPU per "
                           "request, pixels slightly different from a full decode (see docs/performance.md).",
    )
    url_input_enabled: bool = Field(True, description="Accept images by http(s) URL.")
    url_allow_private: bool = Field(False, description="Allow URLs that resolve to loopback or private addresses.")
    url_timeout_s: float = Field(
        10.0, gt=0, description="Deadline for fetching an image URL: resolution, connection, redirects and the whole body.",
    )
    url_hosts: str = Field(
        "", description="Comma-separated hosts image URLs may name, every redirect included ('.example.com': the "
                        "domain and its subdomains; empty: any host).",
    )
    artifact_schemes: str = Field(
        "file,http,https", description="Comma-separated artifact URI schemes this worker accepts (of file, http, https).",
    )
    artifact_roots: str = Field(
        default_factory=_default_artifact_roots,
        description="Comma-separated directories file:// artifacts must lie under (symlinks resolved; empty: no "
                    "local artifacts). Default: the demo models directory.",
    )
    artifact_hosts: str = Field(
        "", description="Comma-separated hosts http(s) artifacts may come from, every redirect included "
                        "('.example.com': the domain and its subdomains; empty: any host).",
    )
    download_timeout_s: float = Field(300.0, gt=0, description="Timeout for one artifact download.")
    download_retries: int = Field(3, ge=0, description="Retries (with backoff) for a failed artifact download.")
    inference_log_enabled: bool = Field(True, description="Record each inference in Redis (off the request path).")
    inference_log_expiry_s: int = Field(3600, ge=1, description="Expiry of the inference-log sorted sets.")
    heartbeat_interval_s: float = Field(2.0, gt=0, description="How often the worker publishes its state to Redis.")
    load_window_s: float = Field(
        10.0, gt=0,
        description="Heartbeats carry each model's lowest load (mean requests inside per interval) over this window: "
                    "gateways add copies of a model busy throughout it (match the gateway's copy_window_s).",
    )
    load_history_s: float = Field(
        60.0, gt=0,
        description="Heartbeats carry each model's highest load over this window: gateways release a copy only when "
                    "it was quiet throughout it (match the gateway's copy_release_window_s).",
    )
    drain_notice_s: float = Field(
        3.0, ge=0,
        description="On SIGTERM: how long the worker keeps serving after announcing it is draining (heartbeat, "
                    "health NOT_SERVING) so gateways move away, before it stops taking calls and finishes its own.",
    )

    @model_validator(mode="after")
    def _decode_budget_fits_an_image(self) -> WorkerSettings:
        if self.decode_budget_pixels and self.decode_budget_pixels < self.max_image_pixels:
            raise ValueError(
                f"decode_budget_pixels ({self.decode_budget_pixels}) must be at least max_image_pixels "
                f"({self.max_image_pixels}), or an image within the limits could never be decoded"
            )
        return self

    @field_validator("artifact_schemes")
    @classmethod
    def _known_schemes(cls, v: str) -> str:
        ArtifactPolicy.from_settings(v, "", "")  # raises ValueError naming unknown schemes
        return v

    def artifact_policy(self) -> ArtifactPolicy:
        return ArtifactPolicy.from_settings(self.artifact_schemes, self.artifact_roots, self.artifact_hosts)

    @property
    def decode_budget(self) -> int:
        return self.decode_budget_pixels or self.max_image_pixels
