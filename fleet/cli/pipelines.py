"""``fleet pipelines ...``: create, list, inspect, control and watch video pipelines (fleet.v1 PipelineService)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import grpc

from fleet.cli import connection
from fleet.client import read_state
from fleet.v1 import pipelines_pb2, pipelines_pb2_grpc

DEFAULT_ADDRESS = "127.0.0.1:50060"


def _stub(args: argparse.Namespace) -> tuple[pipelines_pb2_grpc.PipelineServiceStub, tuple]:
    saved = read_state(connection.state_path(args))
    api_key = args.api_key or os.environ.get("FLEET_API_KEY") or saved.get("api_key")
    if not api_key:
        sys.exit("fleet: no API key; pass --api-key, set FLEET_API_KEY, or start the fleet with `fleet up`")
    address = args.address or os.environ.get("FLEET_PIPELINES_ADDRESS") or saved.get("pipelines") or DEFAULT_ADDRESS
    where = connection.Target(address, args.ca or os.environ.get("FLEET_CA") or saved.get("ca") or None)
    return pipelines_pb2_grpc.PipelineServiceStub(where.channel()), (("authorization", f"Bearer {api_key}"),)


def _show(info: pipelines_pb2.PipelineInfo) -> None:
    report = json.loads(info.report_json) if info.report_json else {}
    runs = f"workflow={info.workflow}" if info.workflow else f"model={info.model_id}"
    print(f"{info.pipeline_id}  {info.state or '-'}  {runs}  max_fps={info.max_fps:g}")
    for source in report.get("sources_metadata", []):
        error = f"  ({source['last_error']})" if source.get("last_error") else ""
        print(f"  source {source['source_id']}: {source['state']} reconnects={source['reconnects']}{error}")
    if frames := report.get("frames"):
        print("  frames: " + " ".join(f"{k}={v}" for k, v in frames.items()))


def _workflow(args: argparse.Namespace) -> pipelines_pb2.PipelineWorkflow | None:
    """The workflow --workflow FILE or --workflow-id WORKSPACE/ID[@VERSION] names (None: a model)."""
    if not args.workflow and not args.workflow_id:
        if args.params:
            sys.exit("fleet: --param is for a workflow (--workflow or --workflow-id)")
        return None
    message = pipelines_pb2.PipelineWorkflow(image_input_name=args.image_input)
    if args.workflow:
        try:
            message.definition.update(json.loads(Path(args.workflow).read_text()))
        except (OSError, ValueError, AttributeError) as err:
            sys.exit(f"fleet: --workflow {args.workflow}: not a readable JSON object ({err})")
    else:
        named, _, version = args.workflow_id.partition("@")
        workspace, _, workflow_id = named.partition("/")
        if not workspace or not workflow_id:
            sys.exit("fleet: --workflow-id takes WORKSPACE/WORKFLOW_ID[@VERSION]")
        message.stored.workspace, message.stored.workflow_id, message.stored.version_id = workspace, workflow_id, version
    for item in args.params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            sys.exit(f"fleet: --param {item!r}: expected NAME=VALUE (VALUE as JSON, else a string)")
        try:
            message.parameters[name] = json.loads(value)
        except ValueError:
            message.parameters[name] = value
    return message


def run(args: argparse.Namespace) -> int:
    stub, metadata = _stub(args)
    pipeline_id = getattr(args, "pipeline_id", "")
    try:
        if args.action == "list":
            for pipeline_id in stub.ListPipelines(pipelines_pb2.ListPipelinesRequest(), metadata=metadata).pipeline_ids:
                print(pipeline_id)
        elif args.action == "create":
            request = pipelines_pb2.CreatePipelineRequest(
                model_id=args.model or "", max_fps=args.max_fps or 0, workflow=_workflow(args),
                sources=[pipelines_pb2.VideoSource(reference=r, rtsp_transport=args.rtsp_transport)
                         for r in args.source])
            _show(stub.CreatePipeline(request, metadata=metadata, timeout=30).pipeline)
        elif args.action == "status":
            info = stub.GetPipeline(pipelines_pb2.GetPipelineRequest(pipeline_id=pipeline_id), metadata=metadata,
                                    timeout=10).pipeline
            print(info.report_json if args.json else "", end="\n" if args.json else "")
            if not args.json:
                _show(info)
        elif args.action in ("pause", "resume"):
            if args.action == "pause":
                reply = stub.PausePipeline(pipelines_pb2.PausePipelineRequest(pipeline_id=pipeline_id),
                                           metadata=metadata, timeout=10)
            else:
                reply = stub.ResumePipeline(pipelines_pb2.ResumePipelineRequest(pipeline_id=pipeline_id),
                                            metadata=metadata, timeout=10)
            _show(reply.pipeline)
        elif args.action == "terminate":
            stub.TerminatePipeline(pipelines_pb2.TerminatePipelineRequest(pipeline_id=pipeline_id), metadata=metadata,
                                   timeout=30)
            print(f"terminated {args.pipeline_id}")
        elif args.action == "add-source":
            source = pipelines_pb2.VideoSource(source_id=args.source_id or "", reference=args.reference,
                                               rtsp_transport=args.rtsp_transport)
            _show(stub.AddSource(pipelines_pb2.AddSourceRequest(pipeline_id=args.pipeline_id, source=source),
                                 metadata=metadata, timeout=30).pipeline)
        elif args.action == "remove-source":
            request = pipelines_pb2.RemoveSourceRequest(pipeline_id=args.pipeline_id, source_id=args.source_id)
            _show(stub.RemoveSource(request, metadata=metadata, timeout=30).pipeline)
        elif args.action == "watch":
            request = pipelines_pb2.SubscribeResultsRequest(pipeline_id=pipeline_id)
            for shown, item in enumerate(stub.SubscribeResults(request, metadata=metadata)):
                result = item.result
                outputs = json.loads(result.outputs_json) if result.outputs_json else {}
                found = sum(len(v.get("predictions", [])) for v in outputs.values() if isinstance(v, dict))
                print(f"{result.source_id} frame {result.frame_id}: "
                      f"{result.error or f'{found} predictions'} ({result.completed_at - result.captured_at:.3f}s)")
                if args.count and shown + 1 >= args.count:
                    break
    except grpc.RpcError as exc:
        print(f"fleet: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pipelines", help="video pipelines: create, list, status, pause, resume, terminate, watch")
    actions = p.add_subparsers(dest="action", required=True)

    def action(name: str, help_text: str, with_id: bool = True) -> argparse.ArgumentParser:
        a = actions.add_parser(name, help=help_text)
        if with_id:
            a.add_argument("pipeline_id")
        a.add_argument("--address", help="pipelines service host:port (default: FLEET_PIPELINES_ADDRESS, or the "
                                         f"one `fleet up` saved, else {DEFAULT_ADDRESS})")
        a.add_argument("--ca", help="CA certificate (PEM) to trust: connect over TLS")
        a.add_argument("--state-file", help="state file `fleet up --state-file` wrote")
        a.add_argument("--api-key", help="API key (default: FLEET_API_KEY, or the one `fleet up` saved)")
        a.set_defaults(func=run)
        return a

    action("list", "your workspace's pipelines", with_id=False)
    create = action("create", "start a pipeline on video sources", with_id=False)
    create.add_argument("source", nargs="+", help="rtsp://, http(s)://, a file under the fleet's video roots, push://")
    target = create.add_mutually_exclusive_group(required=True)
    target.add_argument("--model", help="model id or alias, e.g. shapes-det/1")
    target.add_argument("--workflow", metavar="FILE", help="a workflow definition (JSON) to run frames through")
    target.add_argument("--workflow-id", metavar="WORKSPACE/ID[@VERSION]",
                        help="a stored workflow (its current version unless @VERSION), pinned at creation")
    create.add_argument("--image-input", default="image", help="the workflow's image input frames go to")
    create.add_argument("--param", dest="params", action="append", default=[], metavar="NAME=VALUE",
                        help="a workflow parameter (VALUE as JSON, else a string); repeatable")
    create.add_argument("--max-fps", type=float, help="frames per second per source at most (default: the fleet's)")
    create.add_argument("--rtsp-transport", choices=["tcp", "udp"], default="tcp")
    action("status", "a pipeline's state, sources and frame counts").add_argument("--json", action="store_true")
    action("pause", "stop processing frames (sources stay connected)")
    action("resume", "process frames again")
    action("terminate", "stop and delete a pipeline")
    add = action("add-source", "add a source to a running pipeline")
    add.add_argument("reference")
    add.add_argument("--source-id")
    add.add_argument("--rtsp-transport", choices=["tcp", "udp"], default="tcp")
    action("remove-source", "remove a source from a pipeline").add_argument("source_id")
    action("watch", "print results as they come").add_argument("--count", type=int, default=0,
                                                                 help="stop after this many (0: never)")
