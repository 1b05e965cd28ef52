"""Forwarding workflow calls to the engine's own process: settings that cannot work are refused at start-up,
the engine's answers keep their status and message, and a failure to reach it names no internal address."""

from __future__ import annotations

import os
import threading

import grpc
import pytest
from pydantic import ValidationError

from services.common import errors
from services.common.background import lower_this_process
from services.gateway.settings import GatewaySettings
from services.gateway.workflow_forward import engine_error


def rpc_error(code: grpc.StatusCode, details: str, trailer: tuple = ()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailer), details)


def test_forwarding_needs_the_engines_http_address_while_the_http_api_is_on() -> None:
    with pytest.raises(ValidationError, match="workflows_http_address"):
        GatewaySettings(workflows_address="127.0.0.1:7001")
    with pytest.raises(ValidationError, match="host:port"):
        GatewaySettings(workflows_address="127.0.0.1:7001", workflows_http_address="engine")
    assert GatewaySettings(workflows_address="127.0.0.1:7001", http_enabled=False).forwards_workflows()
    assert GatewaySettings(workflows_address="dns:///fleet-workflows:50051",
                           workflows_http_address="fleet-workflows:9001").forwards_workflows()
    assert not GatewaySettings().forwards_workflows()
    with pytest.raises(ValidationError, match="runs workflows itself"):
        GatewaySettings(role="workflows", workflows_address="127.0.0.1:7001", http_enabled=False)


def test_the_engines_own_errors_keep_status_and_message() -> None:
    answered = engine_error(rpc_error(grpc.StatusCode.UNAVAILABLE, "no worker can serve model shapes-det/1",
                                      (("x-request-id", "r-1"),)))
    assert isinstance(answered, errors.Unavailable) and answered.message == "no worker can serve model shapes-det/1"
    invalid = engine_error(rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "step 'det': unknown field",
                                     (("x-request-id", "r-2"),)))
    assert isinstance(invalid, errors.InvalidArgument) and invalid.message == "step 'det': unknown field"


def test_failing_to_reach_the_engine_names_no_address() -> None:
    lost = engine_error(rpc_error(grpc.StatusCode.UNAVAILABLE,
                                  "failed to connect to all addresses; last error: ipv4:10.0.3.7:50051: refused"))
    assert isinstance(lost, errors.Unavailable) and lost.code is grpc.StatusCode.UNAVAILABLE
    assert "workflow engine is unavailable" in lost.message and "10.0.3.7" not in lost.message


def test_lowering_the_process_reaches_every_thread_those_started_later_and_its_autogroup() -> None:
    def child() -> None:  # a fresh process: a test must not lower the test runner itself
        os.setsid()  # a session of its own, as the fleet starts its services: its autogroup is its own
        before = os.getpriority(os.PRIO_PROCESS, 0)
        started = threading.Event()
        done = threading.Event()
        seen: dict[str, int] = {}

        def early() -> None:
            seen["early_tid"] = threading.get_native_id()
            started.set()
            done.wait(10)

        threading.Thread(target=early).start()
        started.wait(10)
        now = lower_this_process(5)
        seen["early"] = os.getpriority(os.PRIO_PROCESS, seen["early_tid"])
        later: list[int] = []
        t = threading.Thread(target=lambda: later.append(os.getpriority(os.PRIO_PROCESS, 0)))
        t.start()
        t.join()
        done.set()
        try:
            group = int(open("/proc/self/autogroup").read().split()[-1])  # noqa: SIM115
        except OSError:  # a kernel without autogroups
            group = now
        os.write(w, f"{before} {now} {seen['early']} {later[0]} {group}".encode())
        os._exit(0)

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        child()
    os.close(w)
    os.waitpid(pid, 0)
    before, now, early, later, group = (int(x) for x in os.read(r, 100).split())
    os.close(r)
    expected = min(19, before + 5)
    assert now == early == later == group == expected


def test_the_inline_definition_is_read_off_the_wire_as_the_parser_reads_it() -> None:
    from google.protobuf import json_format

    from fleet.v1 import inference_pb2, workflow_pb2
    from services.gateway.workflow_light import inline_definition
    from tests.workflows.definitions import detect_crop_classify

    request = workflow_pb2.RunWorkflowRequest(excluded_fields=["top"], images={
        name: workflow_pb2.WorkflowImages(images=[inference_pb2.Image(encoded=bytes(range(256)) * 300)] * 2)
        for name in ("image", "other")})
    json_format.ParseDict(detect_crop_classify(), request.definition)
    json_format.ParseDict({"confidence": 0.5}, request.parameters)
    wire = request.SerializeToString()
    found = inline_definition(wire)
    assert found is not None and found == request.definition.SerializeToString()
    assert json_format.MessageToDict(workflow_pb2.RunWorkflowRequest.FromString(wire).definition) == \
        json_format.MessageToDict(type(request.definition).FromString(found))
    stored = workflow_pb2.RunWorkflowRequest(stored=workflow_pb2.StoredWorkflow(workspace="w", workflow_id="f"))
    assert inline_definition(stored.SerializeToString()) is None
    doubled = wire + workflow_pb2.RunWorkflowRequest(definition=request.definition).SerializeToString()
    assert inline_definition(doubled) is None  # two parts merge: the parser decides
    assert inline_definition(wire[:-3]) is None and inline_definition(b"\xff\xff") is None
    assert inline_definition(b"") is None
