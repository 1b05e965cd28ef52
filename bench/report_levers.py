"""Report sections for issue 16: the fleet's own cost against the in-process pipeline (the goals), and
each lever measured against the worker's defaults in the same run (``bench.scenarios.levers``)."""

from __future__ import annotations

from bench.report import _at, _table

TARGET_C16_RATIO = 1.0  # fleet req/s at concurrency 16 over the in-process single stream
TARGET_P50_GAP_MS = 2.0  # fleet p50 at concurrency 1 minus in-process p50
TARGET_CPU_GAP_MS = 3.0  # CPU per request over every process minus in-process


def _cpu(point: dict) -> float:
    return point["cpu"]["total"]["cpu_ms_per_request"]


def goals(results: dict) -> str:
    scenarios = results["scenarios"]
    base = _at(scenarios.get("baseline", {}).get("points", []), 1)
    fleet = scenarios.get("fleet", {}).get("points", [])
    one, sixteen = _at(fleet, 1), _at(fleet, 16)
    if not (base and one and sixteen):
        return ""
    ratio = sixteen["throughput_rps"] / base["throughput_rps"]
    gap = one["latency_ms"]["p50"] - base["latency_ms"]["p50"]
    cpu1, cpu16 = _cpu(one) - _cpu(base), _cpu(sixteen) - _cpu(base)
    rows = [
        ["fleet req/s at concurrency 16 / in-process single stream", f"{ratio:.2f}x", f">= {TARGET_C16_RATIO}x",
         _met(ratio >= TARGET_C16_RATIO)],
        ["fleet p50 at concurrency 1 minus in-process p50", f"{gap:+.2f} ms", f"<= +{TARGET_P50_GAP_MS} ms",
         _met(gap <= TARGET_P50_GAP_MS)],
        ["CPU per request, all processes, minus in-process (concurrency 1)", f"{cpu1:+.2f} ms",
         f"<= +{TARGET_CPU_GAP_MS} ms", _met(cpu1 <= TARGET_CPU_GAP_MS)],
        ["the same at concurrency 16", f"{cpu16:+.2f} ms", f"<= +{TARGET_CPU_GAP_MS} ms",
         _met(cpu16 <= TARGET_CPU_GAP_MS)],
    ]
    return ("The worker's defaults against the in-process pipeline (single stream, "
            f"{base['throughput_rps']:.0f} req/s, p50 {base['latency_ms']['p50']:.2f} ms, "
            f"{_cpu(base):.2f} ms of CPU per request).\n\n" + _table(["goal", "measured", "target", "met"], rows))


def _met(ok: bool) -> str:
    return "yes" if ok else "no"


def _wakeups(point: dict) -> str:
    woken = point["cpu"]["total"].get("wakeups_per_request")
    return "-" if woken is None else f"{woken:.1f}"


def lever_runs(results: dict) -> list[dict]:
    """The lever scenarios that ran (each a fleet with its settings beside the defaults), in run order."""
    return [s for s in results["scenarios"].values() if "settings" in s and "ratios" in s]


def levers(results: dict) -> str:
    rows = []
    for lever in lever_runs(results):
        settings = ", ".join(f"{k}={v}" for k, v in lever["settings"].items())
        for concurrency, r in lever["ratios"].items():
            pair = [p for p in lever["points"] if p["concurrency"] == int(concurrency)]
            defaults = next(p for p in pair if p["variant"] == "defaults")
            chosen = next(p for p in pair if p["variant"] == "lever")
            rows.append([settings, concurrency, defaults["throughput_rps"], chosen["throughput_rps"], f"{r['rps']:.2f}x",
                         defaults["latency_ms"]["p50"], chosen["latency_ms"]["p50"], f"{r['p50_ms_delta']:+.2f}",
                         _cpu(defaults), _cpu(chosen), f"{r['cpu_ms_delta']:+.2f}", _wakeups(defaults),
                         _wakeups(chosen), f"{r['wakeups_delta']:+.1f}" if "wakeups_delta" in r else "-"])
    if not rows:
        return ""
    text = ("Each lever's fleet beside one with the defaults, measured in alternating windows "
            f"({lever_runs(results)[0]['rounds']} "
            "rounds; best window of each shown, ratios and deltas are medians of the rounds'). Wake-ups: voluntary "
            "context switches per request over every process, a count this machine's timing noise cannot move. "
            "`reduced_decode` runs on camera-sized JPEGs (the scenes enlarged 3x).\n\n" + _table(
                ["lever", "conc.", "req/s defaults", "req/s lever", "ratio", "p50 defaults", "p50 lever", "p50 delta ms",
                 "CPU ms/req defaults", "CPU ms/req lever", "CPU delta ms", "wake-ups defaults", "wake-ups lever",
                 "wake-ups delta"], rows))
    prepare = results["scenarios"].get("reduced_decode", {}).get("in_process_prepare_ms")
    if prepare:
        text += (f"\n\nDecode + pre-process of those JPEGs in one thread (median per image): full {prepare['full']:.2f} ms, "
                 f"reduced {prepare['reduced']:.2f} ms.")
    return text
