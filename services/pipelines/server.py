"""The pipelines service's composition root."""

from __future__ import annotations

import os
import socket

import grpc
from redis.asyncio import Redis

from fleet.v1 import gateway_pb2_grpc, pipelines_pb2_grpc, workflow_pb2_grpc
from services.common.channels import open_channel
from services.common.errors import FleetError
from services.common.server import Service
from services.common.tls import HttpsContexts
from services.gateway.http.app import HttpServer
from services.pipelines.access import Access
from services.pipelines.forwarding import PeerChannels, PushRouter
from services.pipelines.http_routes import build_app
from services.pipelines.manager import Limits, PipelineManager
from services.pipelines.ownership import Ownership
from services.pipelines.peers import ReplicaDirectory
from services.pipelines.pipeline import Pipeline
from services.pipelines.processors import GatewayBatcher, GatewayWorkflows, ModelProcessor, WorkflowProcessor
from services.pipelines.readers import PushReader, Reader, ReaderTiming, VideoReader
from services.pipelines.references import SourcePolicy
from services.pipelines.sealing import KeySealer
from services.pipelines.servicer import SERVICE_NAME, PipelineServicer
from services.pipelines.settings import PipelinesSettings
from services.pipelines.sinks import ResultSinks
from services.pipelines.spec import PipelineSpec, SourceSpec
from services.pipelines.store import PipelineStore
from services.registry.client import RegistryClient


def build(settings: PipelinesSettings) -> Service:
    redis = Redis.from_url(settings.redis_url, socket_timeout=settings.redis_timeout_s)
    tls = settings.client_tls()
    registry = RegistryClient(settings.registry_address, settings.max_message_bytes, tls)
    access = Access(registry)
    gateway_channel = open_channel(settings.gateway_address, settings.max_message_bytes, tls)
    batcher = GatewayBatcher(gateway_pb2_grpc.GatewayServiceStub(gateway_channel), settings.batch_max_frames,
                             settings.batch_wait_s, settings.infer_timeout_s, settings.frame_encoding,
                             settings.max_message_bytes - 64 * 1024)
    workflows = workflow_pb2_grpc.WorkflowServiceStub(gateway_channel)
    workflow_check = GatewayWorkflows(workflows, settings.infer_timeout_s)
    policy = SourcePolicy.from_settings(settings.file_roots, settings.source_allowed_hosts)
    timing = ReaderTiming(settings.open_timeout_s, settings.read_timeout_s, settings.reconnect_initial_s,
                          settings.reconnect_max_s)
    replica_id = settings.replica_id or f"{socket.gethostname()}-{os.getpid()}"
    store = PipelineStore(registry, redis, settings.redis_namespace, KeySealer(settings.key_sealing_key))
    sinks = ResultSinks(redis, store.prefix, settings.redis_stream_maxlen, replica_id)

    def reader(source: SourceSpec, pipeline: Pipeline) -> Reader:
        pid = pipeline.spec.pipeline_id
        try:
            kind = policy.kind(source.reference)
            if kind == "push":
                return PushReader(source, pid, pipeline.notify)
            location = str(policy.file_path(source.reference)) if kind == "file" else source.reference
            return VideoReader(source, pid, pipeline.notify, location, kind == "live", timing)
        except FleetError as exc:  # checked at initialise; a file removed since fails this source alone
            failed = Reader(source, pid, pipeline.notify)
            failed.set_state("failed", exc.message)
            return failed

    def pipeline(spec: PipelineSpec) -> Pipeline:
        processor = (WorkflowProcessor(workflows, spec.target, settings.frame_encoding, settings.infer_timeout_s)
                     if spec.target.is_workflow else ModelProcessor(batcher, spec.target))
        built = Pipeline(spec, processor, [], sinks)
        for source in spec.sources:
            built.readers[source.source_id] = reader(source, built)
        return built

    ownership = Ownership(store, sinks, redis, pipeline, reader, replica_id, settings.max_pipelines,
                          settings.lease_ttl_s, settings.lease_renew_s, settings.claim_interval_s,
                          settings.terminate_timeout_s, settings.spec_refresh_s)
    limits = Limits(settings.max_pipelines_per_workspace, settings.max_sources, settings.max_fps,
                    settings.results_buffer_size, settings.max_results_buffer_size)
    manager = PipelineManager(access, store, sinks, ownership, policy, limits, redis, workflow_check)
    directory = ReplicaDirectory(redis, store.prefix, replica_id, settings.lease_ttl_s, settings.lease_renew_s)
    peers = PeerChannels(lambda address: open_channel(address, settings.max_message_bytes, tls))
    pushes = PushRouter(manager, directory, peers, settings.push_forward_wait_s)
    server_tls = settings.server_tls()
    http = (HttpServer(build_app(manager, access), settings.host, settings.http_port, settings.shutdown_grace_s,
                       HttpsContexts(server_tls).front if server_tls else None)
            if settings.http_enabled else None)

    def register(server: grpc.aio.Server) -> None:
        pipelines_pb2_grpc.add_PipelineServiceServicer_to_server(PipelineServicer(manager, access, pushes), server)

    async def startup(port: int) -> None:
        ownership.start()
        directory.start(settings.advertised(port))  # where other replicas forward frames pushed to them
        if http is not None:
            service.ports["http_port"] = await http.start()

    async def drain_notice() -> None:  # SIGTERM: hand the pipelines over while still answering
        await ownership.drain(settings.shutdown_grace_s)

    async def draining() -> None:
        if http is not None:
            await http.stop()

    async def shutdown() -> None:
        await ownership.close()
        await directory.close()
        await peers.close()
        await registry.close()
        await gateway_channel.close()
        await redis.aclose()

    async def ping() -> None:
        await redis.ping()

    service = Service("pipelines", settings, register, [SERVICE_NAME], startup, shutdown, draining=draining,
                      drain_notice=drain_notice, dependencies={"redis": ping, "registry": registry.check})
    return service
