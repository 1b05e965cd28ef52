"""Report section for ``bench.scenarios.edges_ab``: the HTTP Roboflow route against fleet.v1, same run."""

from __future__ import annotations

from bench.report import _table

PROCESSES = ("client", "gateway", "worker")


def edges_ab(results: dict) -> str:
    scenario = results["scenarios"].get("edges_ab")
    if not scenario:
        return ""
    rows = []
    for point in scenario["points"]:
        cpu = point["cpu"]
        rows.append([point["edge"], point["latency_ms"]["p50"], point["timings_mean"]["gateway_ms"],
                     *(cpu.get(p, {}).get("cpu_ms_per_request", 0.0) for p in PROCESSES), cpu["others_cores"]])
    d = scenario["deltas"]
    rows.append(["HTTP minus fleet.v1 (median of rounds)", f"{d['p50_ms']:+.2f}", f"{d['gateway_ms']:+.2f}",
                 *(f"{d[f'{p}_cpu_ms']:+.2f}" for p in PROCESSES), "-"])
    return (f"fleet.v1 `Infer` and HTTP `POST /infer/object_detection` at concurrency 1 on the same fleet, in "
            f"{scenario['rounds']} alternating rounds (the median round of each edge shown; the deltas are "
            "medians of the rounds' own). Milliseconds per request.\n\n" + _table(
                ["edge", "p50", "gateway time", *(f"CPU {p}" for p in PROCESSES), "others (cores)"], rows))
