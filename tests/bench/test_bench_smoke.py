"""``python -m bench --smoke`` against real processes: every scenario runs and yields numbers of the
right shape. Speed is never asserted (this machine's CPUs are shared)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.paths import REPO_ROOT
from tests.conftest import PACKAGES
from tests.onnx_factory import write_package, yolov8_like

pytestmark = pytest.mark.slow

LATENCY_SCENARIOS = ("baseline", "transport", "worker_only", "fleet", "fleet_stream", "http", "oip", "baseline_end")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("bench")
    package = PACKAGES / "shapes-det"
    if not (package / "model.json").exists():  # the demo models are not built: a tiny stand-in
        package = write_package(tmp / "tiny-det", yolov8_like(size=64, num_classes=3), size=64, num_classes=3)
    out = tmp / "results"
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(out), "--package", str(package)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=480)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "results.json").read_text()), out


def _check_latency(point: dict) -> None:
    lat = point["latency_ms"]
    assert point["count"] > 0 and point["throughput_rps"] > 0
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert point["errors"] == {}
    assert point["cpu"]["total"]["cpu_ms_per_request"] > 0


def test_writes_every_output(results: tuple[dict, Path]) -> None:
    data, out = results
    for name in ("results.md", "results.json", "latency_throughput.png", "churn_rss.png"):
        assert (out / name).stat().st_size > 0, name
    text = (out / "results.md").read_text()
    for heading in ("Latency and throughput", "Issue #4 acceptance", "gRPC alone", "Model churn", "Cold start"):
        assert heading in text
    machine = data["machine"]
    assert machine["cpu_model"] and machine["logical_cpus"] >= 1 and machine["onnxruntime"] and machine["git_commit"]


def test_latency_scenarios_have_well_formed_points(results: tuple[dict, Path]) -> None:
    data, _ = results
    scenarios = data["scenarios"]
    for name in LATENCY_SCENARIOS:
        assert scenarios[name]["points"], name
        for point in scenarios[name]["points"]:
            _check_latency(point)
    assert [p["concurrency"] for p in scenarios["worker_only"]["points"]][-1] == 8
    assert [p["concurrency"] for p in scenarios["fleet"]["points"]] == [1, 4, 16, 64]
    for name in ("worker_only", "fleet", "fleet_stream"):
        for point in scenarios[name]["points"]:
            assert point["timings_mean"]["batch_size"] >= 1
            assert point["timings_mean"]["worker_ms"] > 0
            assert point["vs_baseline"]["throughput"] > 0
    for point in scenarios["fleet"]["points"]:
        assert point["timings_mean"]["gateway_ms"] >= point["timings_mean"]["worker_ms"]
    assert data["derived"]["baseline_drift"] > -1
    held = scenarios["transport"]["points"][1]
    assert held["hold_ms"] == scenarios["baseline"]["points"][0]["latency_ms"]["p50"]
    assert held["latency_ms"]["p50"] >= held["hold_ms"]  # the echo server really waited
    assert data["derived"]["transport"]["added_ms"] > 0
    acceptance = data["derived"]["acceptance"]
    assert acceptance["worker_c8_mean_batch_size"] >= 1
    assert isinstance(acceptance["p50_gap_ok"], bool) and isinstance(acceptance["speedup_ok"], bool)


def test_churn_reports_hit_rate_loads_and_rss(results: tuple[dict, Path]) -> None:
    churn = results[0]["scenarios"]["churn"]
    _check_latency(churn)
    assert 0.0 <= churn["hit_rate"] <= 1.0
    assert 0 <= churn["loads_by_responses"] <= churn["count"]
    assert churn["loads_by_worker"] >= 0 and churn["evictions_by_worker"] >= 0
    samples = churn["rss_mb"]["samples"]
    assert len(samples) >= 2 and all(mb > 0 for _, mb in samples)
    assert [t for t, _ in samples] == sorted(t for t, _ in samples)


def test_cold_start_measures_both_artifact_sources(results: tuple[dict, Path]) -> None:
    kinds = results[0]["scenarios"]["cold_start"]["kinds"]
    assert set(kinds) == {"file", "http"}
    for kind in kinds.values():
        assert kind["repeats"] >= 1 and kind["median_cold_ms"] > 0 and kind["median_warm_ms"] > 0
        for sample in kind["samples"]:
            assert sample["cold_start_flag"] and not sample["warm_cold_flag"]


def test_scale_out_compares_one_pinned_worker_with_two(results: tuple[dict, Path]) -> None:
    scale = results[0]["scenarios"]["scale_out"]
    one, two = scale["points"]
    for point in (one, two):
        _check_latency(point)
    assert (one["workers"], two["workers"]) == (1, 2) and one["cpus"] == ["0"] and len(two["cpus"]) == 2
    assert sum(one["requests_by_worker"].values()) == one["count"] and len(one["requests_by_worker"]) == 1
    assert sum(two["requests_by_worker"].values()) == two["count"] and len(two["requests_by_worker"]) == 2
    assert len(scale["rounds"]) == len(scale["round_ratios"]) == len(one["rounds_rps"]) >= 1
    assert scale["ratio"] > 0 and min(scale["round_ratios"]) <= scale["ratio"] <= max(scale["round_ratios"])
    assert "## Scale-out" in (results[1] / "results.md").read_text()


def test_levers_run_beside_the_defaults_and_the_goals_are_reported(results: tuple[dict, Path]) -> None:
    data, out = results
    scenarios = data["scenarios"]
    for name, setting in (("single_session", "FLEET_WORKER_ORT_ADAPTIVE_THREADS"),
                          ("ort_threads", "FLEET_WORKER_CONCURRENT_RUNS"),
                          ("reduced_decode", "FLEET_WORKER_JPEG_REDUCED_DECODE")):
        lever = scenarios[name]
        assert setting in lever["settings"]
        assert sorted((p["variant"], p["concurrency"]) for p in lever["points"]) == [
            ("defaults", 1), ("defaults", 16), ("lever", 1), ("lever", 16)]
        for point in lever["points"]:
            _check_latency(point)
        assert set(lever["ratios"]) == {"1", "16"} and all(r["rps"] > 0 for r in lever["ratios"].values())
        # every process's threads sleep and wake at least once per request (client, gateway, worker)
        assert all(p["cpu"]["total"]["wakeups_per_request"] >= 3 for p in lever["points"])
    prepare = scenarios["reduced_decode"]["in_process_prepare_ms"]
    assert prepare["full"] > 0 and prepare["reduced"] > 0
    assert scenarios["reduced_decode"]["image_bytes_mean"] > 100_000  # camera-sized JPEGs, not the scenes
    levers = [p for p in scenarios["transport"]["points"] if p.get("loop")]
    assert {(p["loop"], p["transport"]) for p in levers} >= {("uvloop", "tcp"), ("asyncio", "unix"), ("asyncio", "tcp")}
    text = (out / "results.md").read_text()
    assert "## Issue #16 goals" in text and "## Levers" in text and "(uvloop, TCP)" in text


def test_foundation_models_are_measured(results: tuple[dict, Path]) -> None:
    data, out = results
    foundation = data["scenarios"]["foundation"]
    assert [p["concurrency"] for p in foundation["embedding_fleet"]] == [1, 16]
    assert [p["concurrency"] for p in foundation["embedding_in_process"]] == [1, 16]
    assert all(p["count"] > 0 for p in foundation["embedding_fleet"] + foundation["embedding_in_process"])
    segment = foundation["segment"]
    assert segment["cached"]["cached_share"] > 0.5 and segment["uncached"]["cached_share"] == 0.0
    assert 0.0 <= segment["mix"]["cache_hit_share"] <= segment["mix"]["best_possible"]
    assert [s["lines"] for s in foundation["ocr_stages"]] == [1, 4, 8]
    assert all(s["recognize_ms"] > 0 for s in foundation["ocr_stages"])
    assert "## Foundation models" in (out / "results.md").read_text()


def test_edges_ab_measures_fleet_v1_and_http_in_the_same_rounds(results: tuple[dict, Path]) -> None:
    data, out = results
    ab = data["scenarios"]["edges_ab"]
    assert [p["edge"] for p in ab["points"]] == ["fleet_v1", "http"]
    for point in ab["points"]:
        _check_latency(point)
        assert point["concurrency"] == 1 and point["timings_mean"]["gateway_ms"] > 0
        assert all(point["cpu"][name]["cpu_ms_per_request"] > 0 for name in ("client", "gateway", "worker"))
    assert ab["rounds"] == len(ab["round_deltas"]) == len(ab["edges"]["http"]) >= 1
    assert set(ab["deltas"]) == {"p50_ms", "gateway_ms", "client_cpu_ms", "gateway_cpu_ms", "worker_cpu_ms"}
    assert "## HTTP edge against fleet.v1 (same run)" in (out / "results.md").read_text()


def test_workflow_scenarios_compare_with_infer_and_with_the_client(results: tuple[dict, Path]) -> None:
    data, out = results
    scenarios = data["scenarios"]
    overhead = scenarios["workflow_overhead"]
    assert sorted((p["setup"], p["concurrency"]) for p in overhead["points"]) == [
        ("Infer", 1), ("Infer", 16), ("one-step workflow", 1), ("one-step workflow", 16)]
    crops, isolation = scenarios["workflow_crops"], scenarios["workflow_isolation"]
    for point in overhead["points"] + crops["points"] + isolation["points"]:
        _check_latency(point)
    assert isinstance(overhead["p50_added_ms"], float) and overhead["rps_c16_ratio"] > 0
    client, per_crop, flow = crops["points"]
    assert crops["mean_crops"] >= 1 and flow["timings_mean"]["gateway_ms"] > 0  # scenes of several objects
    assert crops["speedup_c1"] in crops["round_ratios"] and len(crops["round_ratios"]) >= 1
    assert crops["speedup_c1_batched"] in crops["round_ratios_batched"]
    assert {"detect_call_ms", "client_crop_ms", "classify_call_ms"} <= set(client["timings_mean"])
    assert {"detect_call_ms", "client_crop_ms", "classify_calls_ms"} <= set(per_crop["timings_mean"])
    assert flow["stages_ms"]["step roboflow_object_detection_model@v1"] > 0  # where the workflow's time went
    assert any(k.startswith("worker ") for k in flow["stages_ms"])
    assert isolation["workflow_runs_meanwhile"] > 0 and isolation["p50_ratio"] > 0
    text = (out / "results.md").read_text()
    assert "## Workflows (issue #27)" in text and "Goal: the workflow at least 1.3x faster" in text
    assert "Where the time goes in that round" in text


def test_pipelines_scenario_measures_rate_latency_drops_takeover_and_handover(results: tuple[dict, Path]) -> None:
    data, out = results
    p = data["scenarios"]["pipelines"]
    assert [q["pipelines"] for q in p["points_by_pipelines"]] == [1, 2]
    for point in p["points_by_pipelines"]:
        assert point["total_fps"] > 0 and point["frames_read"] > 0 and 0 <= point["drop_ratio"] < 1
        assert 0 < point["latency_ms"]["p50"] <= point["latency_ms"]["p99"]
    gaps = p["takeover"]["gaps_s"]
    assert len(gaps) == 2 and all(0 < g < 30 for g in gaps)  # a number (the lease TTL and then some), not NaN
    handover = p["handover"]  # SIGTERM: capture-time intervals across the switch, both pipelines handed over
    assert len(handover["gaps_s"]) == 2 and all(0 < g < 5 for g in handover["gaps_s"]) and handover["steady_max_s"] > 0
    assert "## Video pipelines" in (out / "results.md").read_text()
