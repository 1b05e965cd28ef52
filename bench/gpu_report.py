"""``bench.gpu_check`` results -> ratios to raw ONNX Runtime, the target, gpu_check.md and gpu_check.json."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.report import _batch_scaling, _table  # the suite's own table format

SETUPS = ("baseline", "worker_only", "fleet")
TARGET_RATIO = 0.9
TARGET_CONCURRENCY = 32


def _at(points: list[dict], concurrency: int) -> dict | None:
    return next((p for p in points if p["concurrency"] == concurrency), None)


def derive(results: dict[str, Any]) -> dict[str, Any]:
    """Each point's throughput and p50 over raw ONNX Runtime's at the same concurrency; the target."""
    scenarios = results["scenarios"]
    raw = scenarios.get("baseline", {}).get("points", [])
    for name in SETUPS:
        for p in scenarios.get(name, {}).get("points", []):
            ref = _at(raw, p["concurrency"])
            if ref is not None and ref["throughput_rps"] > 0:
                p["vs_raw"] = {"throughput": p["throughput_rps"] / ref["throughput_rps"],
                               "p50": p["latency_ms"]["p50"] / max(ref["latency_ms"]["p50"], 1e-9)}
    fleet = _at(scenarios.get("fleet", {}).get("points", []), TARGET_CONCURRENCY)
    ratio = fleet.get("vs_raw", {}).get("throughput") if fleet else None
    target = {"concurrency": TARGET_CONCURRENCY, "wanted": TARGET_RATIO, "ratio": ratio,
              "met": ratio is not None and ratio >= TARGET_RATIO, "applies": results["provider"] == "cuda"}
    results["target"] = target
    return target


def _rows(results: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for name in SETUPS:
        for p in results["scenarios"].get(name, {}).get("points", []):
            lat, batch = p["latency_ms"], p.get("timings_mean", {}).get("batch_size", 1.0)
            ratio = p.get("vs_raw", {}).get("throughput")
            rows.append([p["setup"], p["concurrency"], p["count"], p["throughput_rps"], lat["p50"], lat["p99"], batch,
                         sum(p["errors"].values()), f"{ratio:.2f}x" if ratio is not None else "-"])
    return rows


def _target_line(results: dict[str, Any]) -> str:
    t = results.get("target", {})
    if t.get("ratio") is None:
        return f"Target (fleet at c={TARGET_CONCURRENCY} >= {TARGET_RATIO}x raw ONNX Runtime): not measured."
    verdict = "met" if t["met"] else "NOT met"
    scope = "" if t["applies"] else " (informational: this is a CPU run; the target is for CUDA)"
    return (f"Target: fleet at c={TARGET_CONCURRENCY} >= {TARGET_RATIO}x raw ONNX Runtime ({results['provider']}) "
            f"at c={TARGET_CONCURRENCY}: {t['ratio']:.2f}x, {verdict}{scope}.")


def _providers(results: dict[str, Any]) -> str:
    lines = []
    if "raw_session" in results:
        r = results["raw_session"]
        lines.append(f"- raw session: asked {r['asked']}, `get_providers()` = {r['got']}")
    if "baseline" in results["scenarios"]:
        lines.append(f"- in-process pipeline session: {results['scenarios']['baseline']['provider']}")
    if "worker_session" in results:
        w = results["worker_session"]
        lines.append(f"- worker (DescribeModels): {w['models']}; it asks for {w['requested']}")
    return "\n".join(lines)


def _eviction(results: dict[str, Any]) -> str:
    e = results["scenarios"].get("eviction")
    if not e:
        return ""
    if "skipped" in e:
        return f"Skipped: {e['skipped']}."
    gib = 2**30

    def mem(s: dict, key: str) -> str:
        return f"{s[key] / gib:.2f}" if s.get(key) is not None else "-"

    rows = [[s["step"], mem(s, "nvml_used_bytes"), mem(s, "nvml_free_bytes"),
             f"{s.get('nvml_free_fraction', s['host_free_fraction']):.4f}", f"{s['worker_free_fraction']:.4f}",
             s["worker_rss_bytes"] / 2**20, len(s["models_held"]), s["pressure_evictions"]] for s in e["steps"]]
    head = (f"{e['mode']}, worker threshold {e['threshold']}: {e['pressure_evictions']:.0f} pressure evictions, "
            f"{'as expected' if e['ok'] else 'NOT as expected'}. {e['note']}.")
    return head + "\n\n" + _table(["step", "NVML used GiB", "NVML free GiB", "free fraction (here)",
                                   "free fraction (worker)", "worker RSS MiB", "models held", "pressure evictions"],
                                  rows)


def markdown(results: dict[str, Any]) -> str:
    m, rt = results["machine"], results["runtime"]
    ort, nvml = rt["onnxruntime"], rt["nvml"]
    gpus = ", ".join(f"{g['name']} ({g['memory_total_bytes'] / 2**30:.0f} GiB)" for g in nvml.get("gpus", [])) or "none"
    c = results["config"]
    parts = [
        f"# GPU check ({results['provider']})",
        f"{m['cpu_model']}, {m['logical_cpus']} CPUs; GPUs: {gpus}; ONNX Runtime {ort.get('version')} "
        f"({', '.join(ort.get('distributions', {}))}, providers {ort.get('available_providers')}); commit "
        f"{m['git_commit'][:12]}, {m['date_utc']}. Windows: {c['warmup_s']} s warm-up, {c['measure_s']} s measured "
        f"per point; worker settings {results.get('worker_env', {})}.",
        "## Providers\n\n" + _providers(results),
        "## Throughput and latency\n\nRatio: req/s over raw ONNX Runtime's at the same concurrency (threads sharing "
        "one session, decode to post-process in this process).\n\n"
        + _table(["setup", "concurrency", "requests", "req/s", "p50 ms", "p99 ms", "mean batch", "errors",
                  "vs raw ORT"], _rows(results)),
        _target_line(results),
    ]
    scaling = _batch_scaling(results)
    if scaling:
        parts.append("## ONNX Runtime alone on batches\n\n" + scaling)
    if "eviction" in results["scenarios"]:
        parts.append("## Memory-pressure eviction\n\n" + _eviction(results))
    checks = "\n".join(f"- {name}: {'ok' if ok else 'FAILED'}" for name, ok in results["checks"].items())
    parts.append("## Checks\n\n" + (checks or "- none completed")
                 + (f"\n\nFailure: {results['failure']}" if "failure" in results else ""))
    return "\n\n".join(parts) + "\n"


def write(results: dict[str, Any], out_dir: Path) -> str:
    """Derive, then write gpu_check.md and gpu_check.json; returns the markdown."""
    results["total_wall_s"] = time.perf_counter() - results.pop("_t0", time.perf_counter())
    derive(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(results)
    (out_dir / "gpu_check.md").write_text(text, encoding="utf-8")
    (out_dir / "gpu_check.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    return text
