"""The plots: p50 latency against throughput per setup, and the worker's RSS during churn."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

CURVES = (("baseline", "in-process (threads)", "o-"), ("worker_only", "worker only (concurrency)", "s-"),
          ("fleet", "fleet via gateway (concurrency)", "^-"), ("fleet_stream", "fleet InferStream", "D"),
          ("baseline_end", "in-process single stream, again at the end", "x"))


def latency_throughput(results: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name, label, style in CURVES:
        points = results["scenarios"].get(name, {}).get("points", [])
        if not points:
            continue
        xs = [p["throughput_rps"] for p in points]
        ys = [p["latency_ms"]["p50"] for p in points]
        ax.plot(xs, ys, style, label=label)
        for p, x, y in zip(points, xs, ys):
            ax.annotate(str(p["concurrency"]), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("throughput (requests/s)")
    ax.set_ylabel("p50 latency (ms, log scale)")
    ax.set_yscale("log")
    model, machine = results["model"], results["machine"]
    ax.set_title(f"{model['name']} ({model['id']}) on {machine['logical_cpus']} CPUs: p50 latency vs throughput\n"
                 "(labels: threads / concurrent requests)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def churn_rss(results: dict, path: Path) -> Path | None:
    churn = results["scenarios"].get("churn")
    if not churn or not churn["rss_mb"]["samples"]:
        return None
    ts, mb = zip(*churn["rss_mb"]["samples"])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(ts, mb, "-", label="worker RSS")
    ax.axvline(churn["window_start_s"], color="grey", linestyle="--", label="measurement starts")
    loads = churn.get("load_times_s", [])
    if loads:
        counts = ax.twinx()
        counts.step(loads, range(1, len(loads) + 1), where="post", color="tab:orange", label="model loads (cumulative)")
        counts.set_ylabel("model loads in the measured window")
        counts.legend(loc="lower right")
    ax.set_xlabel("seconds")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title(f"Churn: {churn['models']} models, capacity {churn['capacity']}, Zipf s={churn['zipf_s']}: "
                 f"hit rate {churn['hit_rate']:.2f}, {churn['loads_by_worker']:.0f} loads", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
