"""The observed fleet (see conftest): what Prometheus scraped, what the dashboard queries, the alert rules
evaluating, one trace across the three services, the logs, and the series count under the cap."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable

import grpc
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from fleet.client import FleetClient, build_request
from tests.conftest import OTHER_KEY, TEST_KEY
from tests.observability.conftest import CUDA_ONLY, MAX_MODELS, REPO, RULES, Observed, documented_families

pytestmark = pytest.mark.slow
DASHBOARD = REPO / "deploy" / "grafana" / "inference-fleet.json"
# docs/metrics.md, "Cardinality": series per process without model_id (upper bounds) and per model_id.
BASE_SERIES = {"worker": 350, "gateway": 1700, "registry": 650, "pipelines": 700}
PER_MODEL_SERIES = {"worker": 91, "gateway": 35, "registry": 0, "pipelines": 0}
BASE_SERIES["workflows"], PER_MODEL_SERIES["workflows"] = 1700, 35  # the gateway program in the workflows role


def poll(check: Callable[[], list[str]], timeout_s: float = 60.0) -> list[str]:
    """Run ``check`` (returning what is still missing) until nothing is, or the deadline."""
    deadline = time.monotonic() + timeout_s
    while (missing := check()) and time.monotonic() < deadline:
        time.sleep(1.0)
    return missing


def test_every_documented_family_has_series(observed: Observed) -> None:
    families = documented_families()
    assert len(families) > 40

    def missing() -> list[str]:
        out = []
        for name, row in families.items():
            found = observed.prometheus.query(f'count({{__name__=~"{name}|{name}_bucket"}})')
            if not CUDA_ONLY.search(row) and not found:
                out.append(name)
        return out

    assert poll(missing) == []
    exported = {re.sub(r"_(bucket|sum|count)$", "", n) for n in observed.prometheus.api("label/__name__/values")
                if n.startswith(("fleet_", "grpc_"))}
    assert exported - set(families) == set(), "exported but not in docs/metrics.md"
    for name, row in families.items():  # GPU gauges: absent on this CPU-only fleet, as documented
        if CUDA_ONLY.search(row):
            assert observed.prometheus.query(f'count({{__name__="{name}"}})') == [], name
    # Evictions, cold starts and the 'other' bucket happened, not just zero-valued series.
    assert float(observed.prometheus.query("sum(fleet_worker_evictions_total)")[0]["value"][1]) > 0
    assert float(observed.prometheus.query("sum(fleet_worker_cold_starts_total)")[0]["value"][1]) > 0
    assert observed.prometheus.query('fleet_gateway_requests_total{model_id="other"}')
    hits = observed.prometheus.query('sum(fleet_gateway_response_cache_total{job="gateway", result="hit"})')
    assert hits and float(hits[0]["value"][1]) >= 3


def dashboard_expressions() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [(panel["title"], target["expr"]) for panel in board["panels"] for target in panel.get("targets", [])]


def test_every_dashboard_expression_returns_data(observed: Observed) -> None:
    expressions = dashboard_expressions()
    assert len(expressions) > 25

    def instantiate(expr: str) -> str:  # as Grafana would, with "All" selected and a window over the traffic
        return (expr.replace("$__rate_interval", "5m").replace('"$model_id"', '".*"')
                .replace('"$instance"', '".*"'))

    def missing() -> list[str]:
        out = []
        for title, expr in expressions:
            result = observed.prometheus.query(instantiate(expr))
            values = [float(r["value"][1]) for r in result]
            if title.startswith("GPU memory"):
                if result:
                    out.append(f"{title}: data on a CPU-only fleet")
            elif not any(math.isfinite(v) for v in values):
                out.append(f"{title}: {expr} -> {values}")
        return out

    assert poll(missing) == []


def test_alert_rules_load_and_evaluate_against_the_fleet(observed: Observed) -> None:
    expected = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}

    def missing() -> list[str]:
        rules = [r for g in observed.prometheus.api("rules")["groups"] for r in g["rules"]]
        healthy = {r["name"] for r in rules if r["health"] == "ok"}
        return sorted(expected - healthy) + [f"{r['name']}: {r.get('lastError')}" for r in rules
                                             if r["health"] not in ("ok", "unknown")]

    assert poll(missing) == []
    firing = [a["labels"]["alertname"] for a in observed.prometheus.api("alerts")["alerts"]
              if a["state"] == "firing"]
    assert "FleetRedisUnavailable" not in firing and "FleetNoWorkers" not in firing


def test_one_request_is_one_trace_across_gateway_registry_and_worker(observed: Observed) -> None:
    trace_id, parent = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    with FleetClient(observed.fleet.gateway.address, TEST_KEY) as client:
        # An alias nobody resolved yet and a model not loaded yet: the registry and a model load are on the path.
        client.stub.Infer(build_request("shapes-classifier", observed_image()), timeout=60,
                          metadata=client.metadata + (("traceparent", f"00-{trace_id}-{parent}-01"),))
    wanted = {"auth", "resolve", "routing", "model_load", "queue", "decode", "preprocess", "inference",
              "postprocess", "fleet.v1.GatewayService/Infer", "fleet.internal.v1.RegistryService/ResolveModel",
              "fleet.internal.v1.ModelWorkerService/Infer"}

    def missing() -> list[str]:
        spans = observed.otlp.trace(trace_id)
        return sorted(wanted - {s.name for s in spans}) + sorted(
            {"fleet-gateway", "fleet-registry", "fleet-worker"} - {s.service for s in spans})

    assert poll(missing, timeout_s=30) == []
    spans = observed.otlp.trace(trace_id)
    by_id = {s.span_id: s for s in spans}
    print(f"{len(spans)} spans:", sorted((s.service, s.name) for s in spans))
    for span in spans:  # one tree: every parent is in the trace, up to the caller's span
        assert span.parent_id == parent or span.parent_id in by_id, span
    [root] = [s for s in spans if s.parent_id == parent]
    assert (root.service, root.name) == ("fleet-gateway", "fleet.v1.GatewayService/Infer")
    worker_server = next(s for s in spans if s.service == "fleet-worker" and s.name.endswith("/Infer"))
    assert by_id[worker_server.parent_id].service == "fleet-gateway"  # the gateway's client span
    inference = next(s for s in spans if s.name == "inference")
    assert inference.parent_id == worker_server.span_id and inference.attributes["fleet.model_id"] == "shapes-cls/1"


def test_a_workflow_run_has_a_span_per_step_under_its_call(observed: Observed) -> None:
    from fleet.v1 import inference_pb2, workflow_pb2, workflow_pb2_grpc  # noqa: PLC0415
    from google.protobuf import json_format  # noqa: PLC0415

    from tests.workflows.definitions import detect_crop_classify  # noqa: PLC0415

    trace_id, parent = "6c8efff798038103d269b633813fc60d", "fee19b7ec3c1b175"
    from tests.observability.conftest import jpeg  # noqa: PLC0415

    def request_on(image: bytes) -> workflow_pb2.RunWorkflowRequest:
        request = workflow_pb2.RunWorkflowRequest(images={"image": workflow_pb2.WorkflowImages(
            images=[inference_pb2.Image(encoded=image)])})
        json_format.ParseDict(detect_crop_classify(), request.definition)
        return request

    # The first run loads both models; the traced one is on an image of its own (a response served from the
    # gateway's cache has no routing span)
    with grpc.insecure_channel(observed.fleet.gateway.address) as channel:
        stub = workflow_pb2_grpc.WorkflowServiceStub(channel)
        stub.RunWorkflow(request_on(jpeg(9_300_101)), timeout=60, metadata=(("authorization", f"Bearer {TEST_KEY}"),))
        stub.RunWorkflow(request_on(jpeg(9_300_102)), timeout=60, metadata=(
            ("authorization", f"Bearer {TEST_KEY}"), ("traceparent", f"00-{trace_id}-{parent}-01")))

    def missing() -> list[str]:
        steps = {s.attributes.get("fleet.step") for s in observed.otlp.trace(trace_id) if s.name == "workflow.step"}
        return sorted({"det", "crop", "cls", "top"} - steps)

    assert poll(missing, timeout_s=30) == []
    spans = observed.otlp.trace(trace_id)
    by_id = {s.span_id: s for s in spans}
    [root] = [s for s in spans if s.parent_id == parent]
    assert root.name == "fleet.v1.WorkflowService/RunWorkflow"
    if observed.fleet.gateway.engine is not None:  # the gateway forwarded the call: the engine's span is its child
        [run] = [s for s in spans if s.parent_id == root.span_id and s.name == root.name]
    else:
        run = root
    steps = {s.attributes["fleet.step"]: s for s in spans if s.name == "workflow.step"}
    assert all(s.parent_id == run.span_id for s in steps.values())
    assert steps["cls"].attributes["fleet.block"] == "roboflow_core/roboflow_classification_model@v1"
    routed = {by_id[s.parent_id].attributes.get("fleet.step") for s in spans if s.name == "routing"}
    # each model step's call to the fleet sits under its step; where one worker held both models the chain
    # was one call (fused), routed under the detector's step, naming the classifier
    fused = [s for s in spans if s.name == "routing" and s.attributes.get("fleet.fused_with")]
    assert routed == ({"det"} if fused else {"det", "cls"}), routed
    assert all(s.attributes["fleet.fused_with"] == "shapes-cls/1" for s in fused)
    print(f"workflow trace: fused={bool(fused)}")


def observed_image() -> bytes:
    from tests.observability.conftest import jpeg  # noqa: PLC0415

    return jpeg(9_300_000)


def test_logs_are_json_with_failure_messages_and_no_secrets(observed: Observed) -> None:
    for process in observed.fleet.processes:
        text = process.log_path.read_text(encoding="utf-8")
        entries = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
        assert entries, process.name
        for secret in (TEST_KEY, OTHER_KEY, "Bearer "):
            assert secret not in text, f"{process.name} logged {secret!r}"
    worker_entries = [json.loads(line) for p in observed.fleet.worker_processes
                      for line in p.log_path.read_text().splitlines()]
    gateway_entries = [json.loads(line) for line in observed.fleet.gateway.log_path.read_text().splitlines()]
    http_failures = [e for e in gateway_entries if e.get("status") == 400]
    assert http_failures and all("image" in e["msg"] and e["details"] for e in http_failures), http_failures
    decode_failures = [e for e in worker_entries if e.get("code") == "INVALID_ARGUMENT"]
    assert len(decode_failures) >= observed.traffic["corrupt"]
    assert all(e["msg"].startswith("rpc Infer INVALID_ARGUMENT: the ") and e["details"] for e in decode_failures)
    native: dict[str, float] = {}
    for p in observed.fleet.worker_processes:
        for family in text_string_to_metric_families(observed.scrape(p.name)):
            for sample in family.samples:
                if sample.name == "fleet_native_messages_total":
                    native[sample.labels["library"]] = native.get(sample.labels["library"], 0) + sample.value
    print(f"{observed.traffic['corrupt']} corrupt images -> native lines captured: {native}")
    assert native["libpng"] > 0 and native["libjpeg"] > 0


def test_series_stay_under_the_documented_cap(observed: Observed) -> None:
    for process in observed.fleet.processes:
        kind = re.sub(r"-\d+$", "", process.name)
        series, model_ids = 0, set()
        per_model = 0
        for family in text_string_to_metric_families(observed.scrape(process.name)):
            for sample in family.samples:
                series += 1
                if "model_id" in sample.labels:
                    per_model += 1
                    model_ids.add(sample.labels["model_id"])
        bound = BASE_SERIES[kind] + PER_MODEL_SERIES[kind] * (MAX_MODELS + 1)
        print(f"{process.name}: {series} series ({per_model} with model_id, {len(model_ids)} model ids); "
              f"bound {bound}")
        assert len(model_ids) <= MAX_MODELS + 1
        assert per_model <= PER_MODEL_SERIES[kind] * (MAX_MODELS + 1)
        assert series - per_model <= BASE_SERIES[kind] and series <= bound
        if kind == "gateway":
            assert "other" in model_ids  # 54 models seen, 20 kept their own series
