"""The workflow scenarios' section of results.md (issue #27's targets)."""

from __future__ import annotations

TARGET_ADDED_P50_MS = 1.0
TARGET_CROP_SPEEDUP = 1.3
TARGET_ISOLATION_P50_RATIO = 1.3
NAMES = ("workflow_overhead", "workflow_crops", "workflow_isolation")


def _rows(points: list[dict]) -> list[list]:
    return [[p["setup"], p["concurrency"], round(p["throughput_rps"], 1), round(p["latency_ms"]["p50"], 2),
             round(p["latency_ms"]["p99"], 2), sum(p["errors"].values())] for p in points]


def section(results: dict, table) -> str:  # noqa: ANN001 - report._table
    """Markdown for whichever workflow scenarios ran ('' when none did)."""
    s = results["scenarios"]
    parts = []
    headers = ["setup", "concurrency", "req/s", "p50 ms", "p99 ms", "errors"]
    if "workflow_overhead" in s:
        o = s["workflow_overhead"]
        verdict = "meets" if o["p50_added_ms"] <= TARGET_ADDED_P50_MS else "misses"
        parts.append(f"One-step workflow (the detector) vs `Infer`, both fleet.v1 gRPC: the workflow adds "
                     f"**{o['p50_added_ms']:.2f} ms** at p50, c=1 ({verdict} the {TARGET_ADDED_P50_MS} ms target); "
                     f"req/s at c=16: **{o['rps_c16_ratio']:.2f}x** Infer's.\n\n" + table(headers, _rows(o["points"])))
    if "workflow_crops" in s:
        c = s["workflow_crops"]
        verdict = "meets" if c["speedup_c1"] >= TARGET_CROP_SPEEDUP else "misses"
        parts.append(f"Detect -> crop -> classify ({c['classifier']} on {c['mean_crops']:.1f} crops per scene), "
                     "c=1: the workflow is "
                     f"**{c['speedup_c1']:.2f}x** faster at p50 than a client making the calls itself "
                     f"({verdict} the {TARGET_CROP_SPEEDUP}x target; median of alternating rounds: "
                     f"{', '.join(f'{r:.2f}' for r in c['round_ratios'])}; the median round's points below).\n\n" + table(headers, _rows(c["points"])))
    if "workflow_isolation" in s:
        i = s["workflow_isolation"]
        target = i.get("target_p50_ratio", TARGET_ISOLATION_P50_RATIO)
        verdict = "met" if i["p50_ratio"] <= target else "not met"
        rates = ", ".join(f"{r:.1f}" for r in i.get("workflow_runs_per_s", []))
        parts.append(f"`Infer` latency of another caller (c=1) alone and while 16 callers run the crop workflow, "
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
