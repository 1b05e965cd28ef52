"""The workflow scenarios' section of results.md (issue #27's targets)."""

from __future__ import annotations

TARGET_ADDED_P50_MS = 1.0
TARGET_CROP_SPEEDUP = 1.3
TARGET_ISOLATION_P50_RATIO = 1.3
NAMES = ("workflow_overhead", "workflow_crops", "workflow_isolation")


def _rows(points: list[dict]) -> list[list]:
    return [[p["setup"], p["concurrency"], round(p["throughput_rps"], 1), round(p["latency_ms"]["p50"], 2),
             round(p["latency_ms"]["p99"], 2), sum(p["errors"].values())] for p in points]


def _stages(points: list[dict], table) -> str:  # noqa: ANN001
    """Where each setup's time went in that round (means, ms): the client's own timings of its calls, the
    gateway's per-step histograms, the worker's per-request histograms (per image, or per crop)."""
    names: list[str] = []
    for p in points:
        names += [k for k in (*p.get("timings_mean", {}), *p.get("stages_ms", {})) if k not in names]
    if not names:
        return ""
    def value(p: dict, name: str) -> object:
        v = p.get("timings_mean", {}).get(name, p.get("stages_ms", {}).get(name))
        return "—" if v is None else round(v, 2)

    rows = [[name, *(value(p, name) for p in points)] for name in names]
    return ("\n\nWhere the time goes in that round (means, ms; `step` rows: the gateway's workflow steps, a fused "
            "detector step holding the whole detect -> crop -> classify call; `worker` rows: per image or crop "
            "served, both setups' calls together):\n\n" + table(["stage", *(p["setup"] for p in points)], rows))


def section(results: dict, table) -> str:  # noqa: ANN001 - report._table
    """Markdown for whichever workflow scenarios ran ('' when none did)."""
    s = results["scenarios"]
    parts = []
    headers = ["setup", "concurrency", "req/s", "p50 ms", "p99 ms", "errors"]
    if "workflow_overhead" in s:
        o = s["workflow_overhead"]
        verdict = "meets" if o["p50_added_ms"] <= TARGET_ADDED_P50_MS else "misses"
        parts.append(f"One-step workflow (the detector) vs `Infer`, both fleet.v1 gRPC: the workflow adds "
                     f"**{o['p50_added_ms']:.2f} ms** at p50, c=1 ({verdict} the {TARGET_ADDED_P50_MS} ms target"
                     + (f"; median of {len(o['round_added_ms'])} rounds taking turns call by call: "
                        + ", ".join(f"{r:+.2f}" for r in o["round_added_ms"]) if o.get("round_added_ms") else "")
                     + "); "
                     f"req/s at c=16: **{o['rps_c16_ratio']:.2f}x** Infer's.\n\n" + table(headers, _rows(o["points"])))
    if "workflow_crops" in s:
        c = s["workflow_crops"]
        verdict = "met" if c["speedup_c1"] >= TARGET_CROP_SPEEDUP else "not met"
        batched = (f" Against a client that also batches its crops itself (one `InferBatch`, saving what the "
                   f"workflow's batching saves): **{c['speedup_c1_batched']:.2f}x** (rounds: "
                   f"{', '.join(f'{r:.2f}' for r in c['round_ratios_batched'])})." if "speedup_c1_batched" in c else "")
        parts.append(f"Detect -> crop -> classify ({c['classifier']} on {c['mean_crops']:.1f} crops per scene), "
                     f"c=1. Goal: the workflow at least {TARGET_CROP_SPEEDUP}x faster at p50 than a client making "
                     f"the same calls itself (the detector, then the classifier on each crop, those calls at once): "
                     f"**{verdict}**, **{c['speedup_c1']:.2f}x** (median of "
                     f"{len(c['round_ratios'])} rounds, the setups taking turns call by call in each: "
                     f"{', '.join(f'{r:.2f}' for r in c['round_ratios'])}).{batched} The median round's points "
                     "below, each setup's req/s over the shared window, the CPU the setups' together.\n\n"
                     + table(headers, _rows(c["points"])) + _stages(c["points"], table))
    if "workflow_isolation" in s:
        i = s["workflow_isolation"]
        target = i.get("target_p50_ratio", TARGET_ISOLATION_P50_RATIO)
        verdict = "met" if i["p50_ratio"] <= target else "not met"
        rates = ", ".join(f"{r:.1f}" for r in i.get("workflow_runs_per_s", []))
        parts.append(f"`Infer` latency of another caller (c=1) alone and while 16 callers run the crop workflow"
                     f"{' (from a process of their own)' if i.get('load_in_own_process') else ''}, "
                     f"one worker: p50 **{i['p50_ratio']:.2f}x** alone's (goal: at most {target}x, within noise: "
                     f"**{verdict}**; median of alternating rounds: "
                     f"{', '.join(f'{r:.2f}' for r in i.get('round_ratios', [i['p50_ratio']]))}), p99 "
                     f"**{i['p99_ratio']:.2f}x**; {i['workflow_runs_meanwhile']} workflow runs meanwhile "
                     f"({rates} runs/s per round, {i.get('workflow_errors', 0)} failed). Workflows' model steps "
                     "are background calls: the worker serves them in a lane of their own, on threads of their "
                     "own (see docs/workflows.md, \"Isolation\", for their CPU priority). The median round's "
                     "points below.\n\n"
                     + table(headers, _rows(i["points"])))
    return "\n\n".join(parts)
