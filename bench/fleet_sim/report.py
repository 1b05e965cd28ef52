"""Figures of one simulated run, the goals table, and the plot."""

from __future__ import annotations

from statistics import mean

import numpy as np

from bench.fleet_sim.engine import Fleet, Stats
from bench.fleet_sim.workload import Scenario



def _us(samples: list[float], q: float) -> float:
    return float(np.quantile(samples, q)) * 1e6 if samples else 0.0


def load_capacity(scenario: Scenario, trace) -> float:  # noqa: ANN001 - a Trace
    """Loads per second the fleet's load threads can do: two per worker, each 0.2 s + size / 250 MB/s."""
    from bench.fleet_sim.worker import LOAD_BYTES_PER_S, LOAD_FIXED_S, LOAD_THREADS

    mean_load_s = LOAD_FIXED_S + float(trace.sizes.mean()) / LOAD_BYTES_PER_S
    return scenario.workers * LOAD_THREADS / mean_load_s


SPREAD_QUANTILES = (0.5, 0.9, 0.99, 0.999)
OVER = 1.5  # the goal's bound on a worker's requests over the mean worker's


def per_worker(served: list[int]) -> dict:
    """Requests per worker over the mean worker's: quantiles, the max, and how many workers are over ``OVER``
    (one figure, max / mean, says nothing of whether one worker or a hundred are over the goal)."""
    ratios = np.asarray(served, dtype=float) / max(1e-9, float(np.mean(served))) if served else np.zeros(1)
    return {"quantiles": {str(q): float(np.quantile(ratios, q)) for q in SPREAD_QUANTILES},
            "max": float(ratios.max()), "over": int((ratios > OVER).sum())}


def summarise(key: str, scenario: Scenario, fleet: Fleet, stats: Stats, wall_s: float) -> dict:
    served = [stats.served_by.get(w.index, 0) for w in fleet.workers]
    spread = per_worker(served)  # (its max is max / mean)
    route = [s for g in fleet.gateways for s in g.route_seconds]
    plans = [s for g in fleet.gateways for s in g.plan_seconds]
    plans_gc = [s for g in fleet.gateways for s in g.plan_gc_seconds]
    worst = max(range(len(plans)), key=plans.__getitem__) if plans else None
    own = [p - g for p, g in zip(plans, plans_gc)]  # each step less the collections of the simulator's heap in it
    simulated_s = float(fleet.trace.times[-1])
    heartbeat_bytes = mean(g.bytes_read for g in fleet.gateways) / simulated_s
    full_bytes = mean(g.bytes_full for g in fleet.gateways) / simulated_s
    steady_bytes = mean(g.bytes_read_measured for g in fleet.gateways) / max(1e-9, simulated_s - fleet.measured_from_s)
    old_bytes = mean(g.bytes_before for g in fleet.gateways) / simulated_s
    models_listed = sum(len(w.state.models) for w in fleet.workers if w.state is not None)
    return {
        "key": key,
        "requests": scenario.requests,
        "measured": stats.measured,
        "simulated_s": round(simulated_s, 1),
        "wall_s": round(wall_s, 1),
        "hit_rate": stats.hits / max(1, stats.measured),
        "no_load_rate": 1 - stats.loads_measured / max(1, stats.measured),
        "cold_loads": stats.cold_loads,
        "duplicate_loads": stats.duplicate_loads,
        "duplicate_share": stats.duplicate_loads / max(1, stats.cold_loads),
        "copy_loads": stats.copy_loads,
        "overflow_loads": stats.overflow_loads,
        "copies_added": stats.copies_added,
        "copies_released": stats.copies_released,
        "max_over_mean": spread["max"],
        "per_worker": spread,
        "rejected": stats.rejected,
        "rejected_share": stats.rejected / max(1, stats.measured),
        "queue_full_retries": stats.queue_full_retries,
        "p50_s": float(np.quantile(stats.latencies, 0.5)) if stats.latencies else 0.0,
        "p99_s": float(np.quantile(stats.latencies, 0.99)) if stats.latencies else 0.0,
        "route_p50_us": _us(route, 0.5),
        "route_p99_us": _us(route, 0.99),
        "plan_mean_ms": mean(plans) * 1e3 if plans else 0.0,
        "plan_p99_ms": float(np.quantile(plans, 0.99)) * 1e3 if plans else 0.0,
        "plan_max_ms": max(plans) * 1e3 if plans else 0.0,
        "plan_max_gc_ms": plans_gc[worst] * 1e3 if worst is not None else 0.0,
        "plan_max_without_gc_ms": max(own, default=0.0) * 1e3,
        "plan_mean_without_gc_ms": mean(own) * 1e3 if own else 0.0,
        "plan_p99_without_gc_ms": float(np.quantile(own, 0.99)) * 1e3 if own else 0.0,
        "plan_steps_with_gc_over_10ms": sum(g > 0.01 for g in plans_gc),
        "plan_steps": len(plans),
        "plan_deferred": sum(g.plan_deferred for g in fleet.gateways),
        "heartbeat_read_bytes_per_s": heartbeat_bytes,
        "heartbeat_read_bytes_per_s_full_records": full_bytes,
        "heartbeat_read_bytes_per_s_after_warmup": steady_bytes,
        "heartbeat_full_reads": sum(g.full_reads for g in fleet.gateways),
        "heartbeat_compact_reads": sum(g.compact_reads for g in fleet.gateways),
        "heartbeat_decode_ms_per_s": mean(g.decode_seconds for g in fleet.gateways) / simulated_s * 1e3,
        "spread_ms_per_s": mean(g.spread_seconds for g in fleet.gateways) / simulated_s * 1e3,
        "models_per_worker": models_listed / max(1, sum(w.state is not None for w in fleet.workers)),
        "heartbeat_read_bytes_per_s_with_history": old_bytes,
        "heartbeat_bytes_per_model": heartbeat_bytes / max(1, models_listed) * scenario.heartbeat_s,
        "load_capacity_per_s": load_capacity(scenario, fleet.trace),
        "loads_per_s": stats.loads_measured / max(1e-9, simulated_s - fleet.measured_from_s),
    }


def row_text(r: dict) -> str:
    return (f"{r['key']}: hit {r['hit_rate']:.1%} (random home {r['baseline_random_home_lru']:.1%}, Belady "
            f"{r['bound_pooled_belady']:.1%}), duplicate loads {r['duplicate_loads']}/{r['cold_loads']}, max/mean "
            f"{r['max_over_mean']:.2f} (p99.9 {r['per_worker']['quantiles']['0.999']:.2f}, "
            f"{r['per_worker']['over']} over 1.5), rejected {r['rejected']} ({r['rejected_share']:.3%}), "
            f"p99 {r['p99_s']:.2f} s, "
            f"route p50 {r['route_p50_us']:.0f} us, plan mean/p99/max {r['plan_mean_ms']:.1f}/{r['plan_p99_ms']:.1f}/"
            f"{r['plan_max_ms']:.1f} ms (less collections {r['plan_mean_without_gc_ms']:.1f}/"
            f"{r['plan_p99_without_gc_ms']:.1f}/{r['plan_max_without_gc_ms']:.1f}), heartbeats {r['heartbeat_read_bytes_per_s_after_warmup'] / 1e6:.2f} MB/s (full records "
            f"{r['heartbeat_read_bytes_per_s_full_records'] / 1e6:.2f}), wall {r['wall_s']} s")


def _pct(x: float) -> str:
    return f"{x:.1%}"


def markdown(results: list[dict], seed: int) -> str:
    cols = [r["scenario"]["name"] for r in results]
    rows = [
        ("requests simulated (measured after warm-up)", lambda r: f"{r['requests']:,} ({r['measured']:,}) over {r['simulated_s']} s"),
        ("workers' eviction policy (FLEET_WORKER_EVICTION)", lambda r: r["scenario"].get("eviction", "lru")),
        ("requests served by a worker already holding the model", lambda r: _pct(r["hit_rate"])),
        ("requests that needed no load (1 - loads started / requests: what the baselines count)",
         lambda r: _pct(r["no_load_rate"])),
        ("baseline: one random home per model, LRU, same memory", lambda r: _pct(r["baseline_random_home_lru"])),
        ("bound while workers evict by LRU: one pooled LRU cache of the same size, loads taking no time",
         lambda r: _pct(r["bound_pooled_lru"]) if "bound_pooled_lru" in r else "-"),
        ("bound: one pooled cache of the same size, Belady", lambda r: _pct(r["bound_pooled_belady"])),
        ("cold loads started while another worker was loading that model",
         lambda r: f"{r['duplicate_loads']} of {r['cold_loads']:,} ({r['duplicate_share']:.1%})"),
        ("copies added / released by demand; copy loads (of which: holders' queues full)",
         lambda r: f"{r['copies_added']:,} / {r['copies_released']:,}; {r['copy_loads']:,} ({r['overflow_loads']:,})"),
        ("loads per second: started (measured part) / what the load threads can do",
         lambda r: f"{r['loads_per_s']:.0f} / {r['load_capacity_per_s']:.0f}"),
        ("loads per second a zero-time random-home LRU / Belady would need",
         lambda r: f"{(1 - r['baseline_random_home_lru']) * r['scenario']['load'] * r['scenario']['workers'] / r['scenario']['run_s']:.0f}"
                   f" / {(1 - r['bound_pooled_belady']) * r['scenario']['load'] * r['scenario']['workers'] / r['scenario']['run_s']:.0f}"),
        ("max / mean requests per worker", lambda r: f"{r['max_over_mean']:.2f}"),
        ("requests per worker over the mean: p50 / p90 / p99 / p99.9; workers over 1.5",
         lambda r: (" / ".join(f"{v:.2f}" for v in r["per_worker"]["quantiles"].values())
                    + f"; {r['per_worker']['over']:,}") if "per_worker" in r else "-"),
        ("rejected (every queue full)", lambda r: f"{r['rejected']:,} ({r['rejected_share']:.3%})"),
        ("requests sent on after a full queue", lambda r: f"{r['queue_full_retries']:,}"),
        ("latency p50 / p99", lambda r: f"{r['p50_s']:.2f} s / {r['p99_s']:.2f} s"),
        ("routing decision p50 / p99 (first attempt)", lambda r: f"{r['route_p50_us']:.0f} / {r['route_p99_us']:.0f} µs"),
        ("holders' shares worked out at each heartbeat read (CPU per gateway)",
         lambda r: f"{r['spread_ms_per_s']:.1f} ms/s"),
        ("planning step mean / p99 / max (goal at 2,000 workers: <= 100 ms)",
         lambda r: f"{r['plan_mean_ms']:.1f} / {r['plan_p99_ms']:.1f} / {r['plan_max_ms']:.1f} ms"),
        ("longest step: of which garbage collection; steps less their collections: mean / p99 / max",
         lambda r: f"{r['plan_max_gc_ms']:.1f} ms; {r.get('plan_mean_without_gc_ms', 0):.1f} / "
                   f"{r.get('plan_p99_without_gc_ms', 0):.1f} / {r['plan_max_without_gc_ms']:.1f} ms"),
        ("planning steps (with > 10 ms of collection); models carried to the next step, summed over steps",
         lambda r: f"{r['plan_steps']:,} ({r['plan_steps_with_gc_over_10ms']:,}); {r['plan_deferred']:,}"),
        ("garbage collector, as the gateway sets it once started (FLEET_GATEWAY_GC_*): young threshold; set-up frozen",
         lambda r: (f"{r['collector']['young_threshold']:,}; {'yes' if r['collector']['frozen'] else 'no'}"
                    if "collector" in r else "-")),
        ("models per worker (mean, last heartbeat)", lambda r: f"{r['models_per_worker']:.1f}"),
        ("heartbeat reads per gateway: compact records, after warm-up (goal at 2,000 workers: <= 1 MB/s)",
         lambda r: f"{r['heartbeat_read_bytes_per_s_after_warmup'] / 1e6:.2f} MB/s"),
        ("same, the whole run (each worker's first record is a full one)",
         lambda r: f"{r['heartbeat_read_bytes_per_s'] / 1e6:.2f} MB/s"),
        ("same, full records (changed only: before)",
         lambda r: f"{r['heartbeat_read_bytes_per_s_full_records'] / 1e6:.2f} MB/s"),
        ("same, every record with 60-sample histories (before that)",
         lambda r: f"{r['heartbeat_read_bytes_per_s_with_history'] / 1e6:.2f} MB/s"),
        ("records read compact / full; decoding them (CPU per gateway)",
         lambda r: f"{r['heartbeat_compact_reads']:,} / {r['heartbeat_full_reads']:,}; "
                   f"{r['heartbeat_decode_ms_per_s']:.0f} ms/s"),
        ("simulator wall time (this 2-core machine)", lambda r: f"{r['wall_s']} s"),
    ]
    lines = [f"# Fleet simulator (seed {seed})", "",
             "`python -m bench.fleet_sim`: the gateway's real routing, placement and copy-planning code with "
             "simulated workers and gateways (see bench/fleet_sim/). Zipf(1.0) popularity, 20-500 MB models, "
             "loads of 0.2 s + size / 250 MB/s (two at a time), 50 ms per request one at a time, Poisson arrivals "
             "at 50 % of capacity, 8 models and 1.5 GB per worker (64 and 17 GB in the last column), heartbeats every 2 s read every 1 s by each of "
             "3 gateways. Request counts are scaled down to fit minutes on two cores; the first 30 % warm the "
             "caches and are not counted.", "",
             "| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for label, fmt in rows:
        lines.append(f"| {label} | " + " | ".join(fmt(r) for r in results) + " |")
    return "\n".join(lines) + "\n"


def plot(results: list[dict], path) -> None:  # noqa: ANN001 - a Path
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['scenario']['workers']:,} workers" for r in results]
    x = np.arange(len(results))
    fig, ax = plt.subplots(figsize=(7, 4))
    for offset, (name, key) in enumerate([("random home + LRU", "baseline_random_home_lru"),
                                          ("the fleet (simulated)", "hit_rate"),
                                          ("pooled Belady bound", "bound_pooled_belady")]):
        ax.bar(x + (offset - 1) * 0.27, [100 * r[key] for r in results], 0.27, label=name)
    ax.set_xticks(x, labels)
    ax.set_ylabel("requests served by a holder (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
