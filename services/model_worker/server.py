"""The model worker's composition root."""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import grpc
import psutil

from fleet.internal.v1 import worker_pb2_grpc
from services.cache import FleetCache
from services.common import descriptors
from services.common.background import Turns, background_pool as background_pool_of
from services.common.errors import Unavailable
from services.common.model_record import ModelRecord
from services.common.server import Service
from services.model_worker import gpu, limits
from services.model_worker.artifacts import ArtifactStore
from services.model_worker.decode_budget import DecodeBudget
from services.model_worker.heartbeat import Heartbeat
from services.model_worker.inference_log import InferenceRecorder
from services.model_worker.manager import ManagerLimits, ModelManager
from services.model_worker.metrics import BACKGROUND_HELD_SECONDS, INFO
from services.model_worker.pipeline import Pipeline
from services.model_worker.processing.decode import ImageLimits
from services.model_worker.runtime import CPU, CUDA, RuntimeOptions
from services.model_worker.task_runtime import TaskRuntime
from services.model_worker.servicer import SERVICE_NAME, WorkerServicer
from services.model_worker.settings import WorkerSettings
from services.common.url_fetch import UrlFetcher
from services.model_worker.worker import Worker
from services.registry.client import RegistryClient

PRELOAD_REGISTRY_WAIT_S = 60.0
LOAD_SLOTS = 2  # loads at once: the load pool's threads, and the manager's load slots (the rest wait in demand order)


def capacity_bytes(settings: WorkerSettings) -> int:
    """The configured model-memory capacity, or half of the memory available at start-up (in a
    container: of its memory limit, when that is lower)."""
    if settings.memory_capacity_bytes:
        return settings.memory_capacity_bytes
    available = psutil.virtual_memory().available
    limit = limits.memory_limit_bytes()
    return (available if limit is None else min(available, limit)) // 2


def build(settings: WorkerSettings) -> Service:
    # Decode failures are answered to the caller; OpenCV's own warnings would only bypass the JSON logs.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    cpu_threads = settings.cpu_threads or limits.usable_cpus()
    cpu_pool = ThreadPoolExecutor(cpu_threads, thread_name_prefix="cpu")
    infer_pool = ThreadPoolExecutor(max(4, settings.concurrent_runs, limits.usable_cpus()), thread_name_prefix="ort")
    load_pool = ThreadPoolExecutor(LOAD_SLOTS, thread_name_prefix="load")
    # Background requests (a workflow's model steps) decode, run and post-process on threads of their own, niced.
    background_pool = background_pool_of(max(cpu_threads, settings.background_runs or 1), settings.background_nice,
                                          "background", settings.background_sched_idle)
    # Background work also takes turns with interactive requests between its stages (bounded), and runs on
    # SCHED_IDLE threads while they are about (docs/workflows.md, "Isolation").
    turns = Turns(settings.background_max_hold_ms / 1e3, settings.background_interactive_window_ms / 1e3,
                  BACKGROUND_HELD_SECONDS.observe, cpu_share=settings.background_cpu_share * cpu_threads)
    idle_pool = (turns.metered(background_pool_of(max(cpu_threads, settings.background_runs or 1), 0, "yielding",
                                                  idle=True))
                 if settings.background_yield_idle and not settings.background_sched_idle else None)
    cache = FleetCache.from_url(settings.redis_url, settings.redis_timeout_s, settings.redis_namespace)
    manager = ModelManager(
        ArtifactStore(settings.model_cache_dir, settings.download_timeout_s, settings.download_retries,
                      policy=settings.artifact_policy()),
        RuntimeOptions(settings.execution_provider, settings.ort_intra_op_threads, settings.ort_inter_op_threads,
                       settings.max_batch_size, settings.ort_allow_spinning, settings.ort_adaptive_threads),
        ManagerLimits(settings.max_active_models, capacity_bytes(settings), settings.memory_free_threshold,
                      settings.model_lock_acquire_timeout_s, settings.max_queue_delay_us / 1e6,
                      settings.max_queue_size, settings.concurrent_runs,
                      load_history=math.ceil(max(settings.load_history_s, settings.load_window_s)
                                             / settings.heartbeat_interval_s),
                      background_runs=settings.background_runs,
                      background_max_queue=settings.background_max_queue_size, eviction=settings.eviction,
                      load_slots=LOAD_SLOTS),
        load_pool, infer_pool, background_executor=background_pool, background_turns=turns,
        background_idle_executor=idle_pool,
    )
    INFO.labels(settings.worker_id, CUDA if manager.on_device else CPU).set(1)
    if manager.on_device:  # GPU memory gauges only on CUDA, and only where NVML answers
        gpu.export_memory_metrics(gpu.nvml())
    pipeline = Pipeline(
        manager, cpu_pool, ImageLimits(settings.max_image_pixels, settings.max_image_side),
        UrlFetcher(settings.url_input_enabled, settings.url_allow_private, settings.url_timeout_s,
                   settings.max_message_bytes, hosts=tuple(settings.url_hosts.split(","))),
        DecodeBudget(settings.decode_budget, settings.decode_budget_wait_s),
        reduced_decode=settings.jpeg_reduced_decode, background_cpu=background_pool, turns=turns,
        idle_cpu=idle_pool, one_thread_beside_background=settings.background_one_thread_interactive,
    )
    recorder = (InferenceRecorder(cache, settings.worker_id, settings.inference_log_expiry_s)
                if settings.inference_log_enabled else None)
    worker = Worker(settings.worker_id, settings.advertise_address, manager, pipeline, recorder, cache,
                    settings.heartbeat_interval_s, settings.load_window_s, settings.load_history_s,
                    TaskRuntime(pipeline, manager, pipeline.cpu, settings.embedding_cache_bytes))
    heartbeat = Heartbeat(cache, worker.state)

    async def preload() -> None:
        registry = RegistryClient(settings.registry_address, settings.max_message_bytes, settings.client_tls())

        async def resolve(model_id: str) -> ModelRecord:
            deadline = time.monotonic() + PRELOAD_REGISTRY_WAIT_S
            while True:  # the registry may be starting beside this worker
                try:
                    return descriptors.from_proto(await registry.resolve(model_id, settings.preload_workspace))
                except Unavailable:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)

        try:
            await worker.preload([m.strip() for m in settings.preload.split(",") if m.strip()], resolve)
        finally:
            await registry.close()

    def register(server: grpc.aio.Server) -> None:
        worker_pb2_grpc.add_ModelWorkerServiceServicer_to_server(WorkerServicer(worker), server)

    async def startup(port: int) -> None:
        worker.address = settings.advertised(port)
        await cache.ping()
        if settings.preload:
            await preload()
        if recorder is not None:
            recorder.start()
        heartbeat.start()

    async def drain() -> None:
        await worker.drain(heartbeat.beat, settings.drain_notice_s)

    async def shutdown() -> None:
        await heartbeat.stop()
        if recorder is not None:
            await recorder.stop()
        await manager.close()
        await cache.close()
        for pool in (cpu_pool, infer_pool, load_pool, background_pool, *([idle_pool] if idle_pool else [])):
            pool.shutdown(wait=False, cancel_futures=True)

    service = Service("worker", settings, register, [SERVICE_NAME], startup, shutdown,
                      dependencies={"redis": cache.ping}, drain_notice=drain)
    service.extra["worker"] = worker
    return service
