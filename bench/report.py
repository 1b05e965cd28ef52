"""Results -> derived comparisons, markdown tables (results.md, stdout) and results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LATENCY_SCENARIOS = ("baseline", "worker_only", "fleet", "fleet_stream", "http", "oip", "baseline_end")
TARGET_P50_GAP_MS = 1.5
TARGET_SPEEDUP = 1.3


def _points(results: dict, name: str) -> list[dict]:
    return results["scenarios"].get(name, {}).get("points", [])


def _all_points(results: dict, name: str) -> list[dict]:
    scenario = results["scenarios"].get(name, {})
    return scenario.get("points", []) or ([scenario] if "cpu" in scenario else [])


def _at(points: list[dict], concurrency: int) -> dict | None:
    return next((p for p in points if p["concurrency"] == concurrency), None)


def derive(results: dict) -> dict:
    """Ratios against the in-process single stream and the issue-#4 acceptance numbers."""
    base = _at(_points(results, "baseline"), 1)
    if base is None:
        return {}
    best = max(_points(results, "baseline"), key=lambda p: p["throughput_rps"])
    out: dict[str, Any] = {"baseline_p50_ms": base["latency_ms"]["p50"], "baseline_rps": base["throughput_rps"],
                           "best_in_process_rps": best["throughput_rps"], "best_in_process_label": best["label"]}
    for name in LATENCY_SCENARIOS:
        for p in _points(results, name):
            p["vs_baseline"] = {
                "p50": p["latency_ms"]["p50"] / base["latency_ms"]["p50"],
                "p99": p["latency_ms"]["p99"] / base["latency_ms"]["p99"],
                "throughput": p["throughput_rps"] / base["throughput_rps"],
                "throughput_vs_best": p["throughput_rps"] / best["throughput_rps"],
            }
    again = _at(_points(results, "baseline_end"), 1)
    if again is not None:
        out["baseline_end_rps"] = again["throughput_rps"]
        out["baseline_drift"] = again["throughput_rps"] / base["throughput_rps"] - 1
    workers = _points(results, "worker_only")
    w1, w8 = _at(workers, 1), _at(workers, 8)
    if w1 and w8:
        gap = w1["latency_ms"]["p50"] - base["latency_ms"]["p50"]
        speedup = w8["throughput_rps"] / base["throughput_rps"]
        out["acceptance"] = {
            "worker_p50_minus_in_process_p50_ms": gap, "p50_gap_ok": gap <= TARGET_P50_GAP_MS,
            "worker_c8_rps_over_in_process_rps": speedup, "speedup_ok": speedup >= TARGET_SPEEDUP,
            "worker_c8_mean_batch_size": w8.get("timings_mean", {}).get("batch_size", 0.0),
        }
    floor = _points(results, "transport")
    if len(floor) >= 2:
        at_once, held = floor[:2]
        out["transport"] = {"at_once_p50_ms": at_once["latency_ms"]["p50"], "hold_ms": held["hold_ms"],
                            "held_p50_ms": held["latency_ms"]["p50"],
                            "added_ms": held["latency_ms"]["p50"] - held["hold_ms"]}
    results["derived"] = out
    return out


# ---- markdown -------------------------------------------------------------------------------
def _table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.0f}" if abs(v) >= 100 or v.is_integer() else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _header(results: dict) -> str:
    m, model = results["machine"], results["model"]
    competing = [f"at start: {j}" for j in m["competing_jobs_at_start"]]
    competing += [f"at end: {j}" for j in m.get("competing_jobs_at_end", [])]
    lines = [
        "# Inference Fleet benchmark" + (" (smoke run: numbers not meaningful)" if results["config"]["smoke"] else ""),
        "",
        f"- Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs ({m['physical_cores']} cores), "
        f"{m['ram_gib']} GiB RAM, {m['os']}",
        f"- Python {m['python']}, onnxruntime {m['onnxruntime']}, grpcio {m['grpcio']}, numpy {m['numpy']}, "
        f"opencv {m['opencv']}",
        f"- Commit {m['git_commit']}"
        + (f" + uncommitted changes to {', '.join(m['git_uncommitted'])}" if m.get("git_uncommitted") else "")
        + f", {m['date_utc']}, load average at start {m['load_average_1m']}, "
        f"at end {m.get('load_average_1m_end', '-')}",
        f"- Model: package `{model['name']}` as `{model['id']}` ({model['model_type']}, input {model['input']}, "
        f"{model['weights_bytes'] / 2**20:.1f} MiB weights), CPUExecutionProvider; "
        f"{results['config']['images']} JPEG scenes (fixed seed), closed-loop callers, warm-up "
        f"{results['config']['warmup_s']} s then {results['config']['measure_s']} s measured per point",
        "- Other busy processes (over 20% of a CPU): " + ("; ".join(competing) if competing else "none"),
    ]
    others = [p["cpu"].get("others_cores", 0.0) for n in (*LATENCY_SCENARIOS, "churn", "scale_out")
              for p in _all_points(results, n)]
    if others:
        lines.append(f"- CPU used by other processes during the measured points: up to {max(others):.2f} cores "
                     f"(mean {sum(others) / len(others):.2f})" + ("; numbers skewed" if max(others) > 0.1 else ""))
    drift = results.get("derived", {}).get("baseline_drift")
    if drift is not None:
        lines.append(f"- In-process single stream at the end vs at the start: {drift:+.1%} req/s (machine drift; "
                     "ratios use the start)")
    if results.get("worker_env"):
        lines.append(f"- Worker settings changed for this run: {results['worker_env']}")
    if results.get("workflow_engine"):
        lines.append(f"- Workflows run in: {results['workflow_engine']} (docs/workflows.md, 'Where the engine runs')"
                     + (f"; engine settings changed: {results['engine_env']}" if results.get("engine_env") else ""))
    return "\n".join(lines)


def _latency_table(results: dict) -> str:
    rows = []
    for name in LATENCY_SCENARIOS:
        for p in _points(results, name):
            lat, vs = p["latency_ms"], p.get("vs_baseline", {})
            rows.append([p["setup"], p["concurrency"], p["count"], p["throughput_rps"], lat["p50"], lat["p90"],
                         lat["p99"], p.get("timings_mean", {}).get("batch_size", "-") if name != "baseline" else "-",
                         vs.get("p50", 1.0), vs.get("throughput", 1.0), p["cpu"].get("total", {}).get("cores", 0.0),
                         p["cpu"].get("others_cores", 0.0), sum(p["errors"].values())])
    return _table(["setup", "concurrency", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "mean batch",
                   "p50 / baseline", "req/s / baseline", "CPU cores (bench)", "CPU cores (others)", "errors"], rows)


def _breakdown_table(results: dict) -> str:
    rows = []
    for name in LATENCY_SCENARIOS:
        for p in _points(results, name):
            t, cpu = p.get("timings_mean", {}), p["cpu"]
            worker_ms = t.get("worker_ms", 0.0) or sum(t.get(k, 0.0) for k in ("decode_ms", "preprocess_ms",
                                                                               "inference_ms", "postprocess_ms"))
            outer = t.get("gateway_ms", 0.0) or worker_ms
            rows.append([p["setup"], p["concurrency"], p["latency_ms"]["mean"], t.get("gateway_ms", "-"),
                         worker_ms, t.get("decode_ms", 0.0), t.get("preprocess_ms", 0.0), t.get("queue_ms", "-"),
                         t.get("inference_ms", 0.0), t.get("postprocess_ms", 0.0),
                         p["latency_ms"]["mean"] - outer, (t["gateway_ms"] - worker_ms) if t.get("gateway_ms") and worker_ms else "-",
                         *(cpu.get(k, {}).get("cpu_ms_per_request", "-") for k in
                           ("client", "gateway", "worker", "registry", "redis", "total"))])
    return _table(["setup", "conc.", "client mean", "gateway", "worker", "decode", "pre", "queue", "ORT run", "post",
                   "outside outermost service", "gateway minus worker", "CPU client", "CPU gateway", "CPU worker",
                   "CPU registry", "CPU redis", "CPU total"], rows)


def _acceptance(results: dict) -> str:
    d = results.get("derived", {})
    a = d.get("acceptance")
    if not a:
        return "(needs the baseline and worker-only scenarios)"
    return _table(["check", "measured", "target", "met"], [
        ["worker-only p50 (concurrency 1) minus in-process p50", f"{a['worker_p50_minus_in_process_p50_ms']:.2f} ms",
         f"<= {TARGET_P50_GAP_MS} ms", "yes" if a["p50_gap_ok"] else "no"],
        ["worker-only req/s (concurrency 8) / in-process single-stream req/s",
         f"{a['worker_c8_rps_over_in_process_rps']:.2f}x", f">= {TARGET_SPEEDUP}x", "yes" if a["speedup_ok"] else "no"],
        ["mean batch size formed by the worker at concurrency 8", f"{a['worker_c8_mean_batch_size']:.2f}", "-", "-"],
        ["best in-process pool / single stream",
         f"{d['best_in_process_rps'] / d['baseline_rps']:.2f}x ({d['best_in_process_label']})", "-", "-"],
        *([["bare grpc.aio call, same sizes, handler awaiting a thread for the in-process p50: p50 minus that wait",
            f"{d['transport']['added_ms']:.2f} ms", "-", "-"]] if "transport" in d else []),
    ])


def _transport(results: dict) -> str:
    t = results["scenarios"].get("transport")
    if not t:
        return ""
    rows = [[p["label"], p["count"], p["throughput_rps"], p["latency_ms"]["p50"], p["latency_ms"]["p99"],
             p["latency_ms"]["p50"] - p["hold_ms"], p["cpu"]["server"]["cpu_ms_per_request"],
             p["cpu"]["client"]["cpu_ms_per_request"]] for p in t["points"]]
    return (f"A bare `grpc.aio` server in another process (`bench/echo_server.py`): request "
            f"{t['request_bytes'] / 1024:.1f} KiB, response {t['response_bytes']} bytes, concurrency 1, no "
            "protobuf parsing, no model. What gRPC and a thread hop cost before the worker does anything.\n\n"
            + _table(["handler", "requests", "req/s", "p50 ms", "p99 ms", "p50 minus the wait", "CPU ms server",
                      "CPU ms client"], rows))


def _batch_scaling(results: dict) -> str:
    rows = results["scenarios"].get("baseline", {}).get("batch_scaling")
    if not rows:
        return ""
    one = rows[0]["ms_per_image"]
    return _table(["batch size", "ms per run (median)", "ms per image", "images/s", "per-image speed-up vs batch 1"],
                  [[r["batch_size"], r["ms_per_run"], r["ms_per_image"], r["images_per_s"], one / r["ms_per_image"]]
                   for r in rows])


def _fixed_costs(results: dict) -> str:
    f = results["scenarios"].get("worker_only", {}).get("fixed_costs_us")
    if not f:
        return ""
    rows = [[k.replace("_", " "), v] for k, v in f.items() if not k.endswith("bytes")]
    sizes = f"Worker request {f['request_bytes'] / 1024:.1f} KiB, response {f['response_bytes'] / 1024:.1f} KiB."
    return (sizes + "\n\n" + _table(["work per request (in-process microbenchmark)", "microseconds"], rows))


def _churn(results: dict) -> str:
    c = results["scenarios"].get("churn")
    if not c:
        return ""
    rss = c["rss_mb"]
    return _table(
        ["models", "capacity", "Zipf s", "conc.", "requests", "req/s", "hit rate", "loads (responses)",
         "loads (worker)", "evictions", "p50 ms", "p99 ms", "hit p50", "miss p50", "miss p99", "RSS MiB min/max",
         "RSS first -> last"],
        [[c["models"], c["capacity"], c["zipf_s"], c["concurrency"], c["count"], c["throughput_rps"], c["hit_rate"],
          c["loads_by_responses"], c["loads_by_worker"], c["evictions_by_worker"], c["latency_ms"]["p50"],
          c["latency_ms"]["p99"], c["hit_latency_ms"]["p50"], c["miss_latency_ms"]["p50"],
          c["miss_latency_ms"]["p99"], f"{rss['min']:.0f} / {rss['max']:.0f}",
          f"{rss['first']:.0f} -> {rss['last']:.0f}"]])


def _cold(results: dict) -> str:
    c = results["scenarios"].get("cold_start")
    if not c:
        return ""
    rows = [[k["title"], k["repeats"], k["median_cold_ms"], k["median_warm_ms"], k["median_load_ms"],
             ", ".join(f"{s['cold_ms']:.0f}" for s in k["samples"])] for k in c["kinds"].values()]
    return _table(["weights", "repeats", "median first response ms", "median warm ms",
                   "median load in worker ms", "each first response ms"], rows)


def _scale_out(results: dict) -> str:
    s = results["scenarios"].get("scale_out")
    if not s:
        return ""
    rows = []
    for p in s["points"]:
        cpu = p["cpu"]
        workers = sum(v["cores"] for k, v in cpu.items() if k.startswith("worker"))
        spread = p.get("requests_by_worker_all_rounds", p["requests_by_worker"])
        count = max(1, sum(spread.values()))
        rows.append([p["setup"], "+".join(p["cpus"]) or "any", ", ".join(f"{r:.0f}" for r in p["rounds_rps"]),
                     p["throughput_rps"], p["latency_ms"]["p50"], p["latency_ms"]["p99"],
                     p.get("timings_mean", {}).get("batch_size", "-"),
                     ", ".join(f"{w} {n} ({n / count:.0%})" for w, n in spread.items()), workers,
                     cpu.get("gateway", {}).get("cores", 0.0), cpu.get("client", {}).get("cores", 0.0),
                     cpu.get("others_cores", 0.0)])
    verdict = "meets" if s["ratio"] >= s["target_ratio"] else "misses"
    pinning = "workers pinned to their own core (`taskset`)" if s.get("pinned") else "workers NOT pinned (no taskset)"
    ratios = ", ".join(f"{r:.2f}" for r in s["round_ratios"])
    cfg = results["config"]
    return (f"One hot model, one InferStream holding {s['concurrency']} requests in flight, {pinning}, ONNX Runtime "
            f"intra-op threads 1; the two setups measured in alternating windows ({cfg.get('scale_warmup_s', 1.0)} s "
            f"warm-up, {cfg.get('scale_measure_s', 4.0)} s measured), {len(s['round_ratios'])} rounds. "
            f"Two workers over one: **{s['ratio']:.2f}x** (median of the rounds: {ratios}; {verdict} the "
            f"{s['target_ratio']}x target) on a machine with {s['cores']} logical CPUs that the client and the "
            "gateway share with the workers. The row shows the median round; requests by worker add up every round."
            "\n\n"
            + _table(["setup", "CPUs", "req/s each round", "req/s (median)", "p50 ms", "p99 ms", "mean batch",
                      "requests by worker", "cores: workers", "gateway", "client", "others"], rows))


def _pipelines(results: dict) -> str:
    p = results["scenarios"].get("pipelines")
    if not p:
        return ""
    rows = [[q["pipelines"], q["total_fps"], q["per_pipeline_fps"], q["frames_read"], q["frames_dropped"],
             q["drop_ratio"], q["latency_ms"]["p50"], q["latency_ms"]["p99"]] for q in p["points_by_pipelines"]]
    t = p["takeover"]
    return (_table(["pipelines", "frames/s total", "frames/s each", "frames read", "dropped", "drop ratio",
                    "capture-to-result p50 ms", "p99 ms"], rows)
            + f"\n\nTakeover after SIGKILL of a replica holding {t['pipelines']} pipelines (lease TTL "
              f"{t['lease_ttl_s']:.0f} s): gaps {', '.join(f'{g:.2f}' for g in t['gaps_s'])} s."
            + _handover(p.get("handover")))


def _handover(h: dict | None) -> str:
    if not h:
        return ""
    return (f" Handover on SIGTERM of the replica then holding them ({h['max_fps']} fps): largest interval between "
            f"processed frames across the switch, in capture time, {', '.join(f'{g:.3f}' for g in h['gaps_s'])} s "
            f"(one replica just before: p50 {h['steady_p50_s']:.3f} s, max {h['steady_max_s']:.3f} s).")


def _walls(results: dict) -> str:
    return _table(["scenario", "wall s", "planned s"],
                  [[n, s["wall_s"], s["planned_s"]] for n, s in results["scenarios"].items()])


def _foundation(results: dict) -> str:
    from bench.scenarios import foundation  # noqa: PLC0415

    if "foundation" not in results["scenarios"]:  # an --only run without it (the sections are built eagerly)
        return ""
    return foundation.report(results["scenarios"]["foundation"])


def markdown(results: dict) -> str:
    """The report: a section for each part of the suite that ran (``--only`` runs a subset)."""
    from bench import report_edges, report_levers, report_workflows  # noqa: PLC0415 - they use this module's tables

    ran = set(results["scenarios"])
    latency = bool(ran & set(LATENCY_SCENARIOS))
    sections: list[tuple[bool, str]] = [
        (True, _header(results)),
        (latency, "## Latency and throughput\n\nRatios are against the in-process single stream. CPU cores: what the "
         "benchmark's processes used together, and what everything else on the machine (or hypervisor steal) "
         f"took meanwhile (this machine has {results['machine']['logical_cpus']}; 'others' above ~0.1 means the "
         "numbers are skewed)."
         "\n\n" + _latency_table(results)),
        ("baseline" in ran or "worker_only" in ran, "## Issue #4 acceptance\n\n" + _acceptance(results)),
        ("transport" in ran, "## gRPC alone (the transport floor)\n\n" + _transport(results)),
        (latency, "## Where the time goes\n\nMean milliseconds per request: client-observed latency, the gateway's "
         "and the worker's own totals and the worker's stages (from `timings`), then CPU milliseconds per request "
         "spent in each process.\n\n" + _breakdown_table(results)),
        ("baseline" in ran, "## ONNX Runtime alone, by batch size\n\nThe same session as the baseline, no decode or "
         "post-processing: what dynamic batching can gain on this CPU at most (other processes took "
         f"{results['scenarios'].get('baseline', {}).get('batch_scaling_others_cores', 0.0):.2f} cores meanwhile)."
         "\n\n" + _batch_scaling(results)),
        ("worker_only" in ran, "## Fixed per-request costs\n\n" + _fixed_costs(results)),
        ("churn" in ran, "## Model churn\n\nRSS over time: `churn_rss.png`.\n\n" + _churn(results)),
        ("cold_start" in ran, "## Cold start\n\n" + _cold(results)),
        ("scale_out" in ran, "## Scale-out\n\n" + _scale_out(results)),
        ("pipelines" in ran, "## Video pipelines\n\nA 30 fps video file per pipeline (max_fps 30: frames drop only when "
         "processing falls behind), one pipelines replica, the fleet's one worker.\n\n" + _pipelines(results)),
        ("fleet" in ran and "baseline" in ran, "## Issue #16 goals\n\n" + report_levers.goals(results)),
        (bool(report_levers.lever_runs(results)), "## Levers\n\n" + report_levers.levers(results)),
        ("foundation" in ran, "## Foundation models\n\n" + _foundation(results)),
        ("edges_ab" in ran, "## HTTP edge against fleet.v1 (same run)\n\n" + report_edges.edges_ab(results)),
        (bool(ran & set(report_workflows.NAMES)), "## Workflows (issue #27)\n\n"
         + report_workflows.section(results, _table)),
        (True, "## Scenario wall times\n\n" + _walls(results)),
    ]
    return "\n\n".join(text for wanted, text in sections if wanted and text) + "\n"


def write(results: dict, out_dir: Path) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(results)
    (out_dir / "results.md").write_text(text, encoding="utf-8")
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    return text
