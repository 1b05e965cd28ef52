"""Where ``Infer``'s extra latency beside a workflow flood comes from (issue #27, docs/workflows.md "Isolation").

Starts the bench's fleet (one worker, the engine in its own process) and measures ``Infer`` of one caller (c=1)
in rounds of windows taking turns, in a rotating order so a drift in the machine's load hits each alike:

- ``alone``: nothing else;
- ``gateway``: 16 callers run the crop workflow through the gateway (what ``bench --only workflow_isolation``
  measures);
- ``direct``: the same callers call the engine's port themselves (the gateway forwards nothing);
- ``idle-load``: through the gateway, the load generator's process under SCHED_IDLE (its own CPU no longer
  competes with the fleet: on a deployment the callers run elsewhere).

Each window's p50, where each ``Infer``'s time went (means: they add up), the cores each process used and the
workflow runs/s; then per window kind the median over rounds of its p50 ratio to the same round's ``alone``:

    PYTHONPATH=$PWD .venv/bin/python scripts/isolation_breakdown.py --rounds 6 [--kinds alone,gateway,direct]

``--perf DIR`` (root, ``perf`` installed) also records the scheduler's events in the first windows, so
``scripts/perf_waits.py`` can say what ran on the core while ``Infer``'s threads waited for one. ``--engine-env
FLEET_GATEWAY_WORKFLOWS_PROCESS_NICE=0`` keeps the flood going on a VM whose other jobs would starve the niced
engine (docs/workflows.md, "Benchmark").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

from bench.config import SEED, BenchConfig
from bench.environment import BenchEnv
from bench.scenarios.workflows import ISOLATION_LOAD, WorkflowCaller, _point, _requests, crop_and_classify
from bench.workflow_load import WorkflowLoad
from bench.workload import MODEL_ID, scene_jpegs
from bench.clients import timings

KINDS = ("alone", "gateway", "direct", "idle-load")
PERF_ROUNDS, PERF_S = 2, 3
PARTS = ("client_side", "gateway_side", "worker_other", "decode", "preprocess", "queue", "inference", "postprocess")


async def measure(cfg: BenchConfig, env: BenchEnv, images: list[bytes], kinds: list[str], rounds: int,
                  perf_dir: str = "") -> list[dict]:
    requests = [r.SerializeToString() for r in _requests(crop_and_classify(), images)]
    gateway, engine = env.fleet.gateway.address, env.fleet.gateway.engine.address
    loads = {}
    try:
        for kind in kinds:
            if kind != "alone":
                loads[kind] = WorkflowLoad(engine if kind == "direct" else gateway, env.api_key, requests,
                                           ISOLATION_LOAD, idle=kind == "idle-load")
        pids = {**env.pids(), **{f"load {k}": v.pid for k, v in loads.items()}}
        out = []
        async with WorkflowCaller(gateway, env.api_key) as other:
            await other.infer(MODEL_ID, images[0])

            async def infer(i: int) -> dict[str, float]:
                return timings(await other.infer(MODEL_ID, images[i % len(images)]))

            for n in range(rounds):
                order = kinds[n % len(kinds):] + kinds[:n % len(kinds)]
                for kind in order:
                    load = loads.get(kind)
                    if load is not None:
                        load.start()
                    perf = None
                    if perf_dir and n < PERF_ROUNDS:  # the scheduler's events, the first seconds of the window
                        perf = subprocess.Popen(["perf", "sched", "record", "-o", f"{perf_dir}/{kind}-{n}.data", "-a",
                                                 "sleep", str(PERF_S)], stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
                    t_window = time.perf_counter()
                    try:
                        point = await _point(cfg, env, infer, 1, kind, short=True, pids=pids)
                    finally:
                        report = load.stop() if load is not None else None
                        if perf is not None:
                            perf.wait()
                            _threads(pids, f"{perf_dir}/{kind}-{n}.threads.json")
                    cpu = point["cpu"]
                    out.append({"round": n, "kind": kind, "t": [t_window, time.perf_counter()], "p50_ms": point["latency_ms"]["p50"],
                                "mean_ms": point["latency_ms"]["mean"],
                                "split_mean_ms": {k: v["mean"] for k, v in point["split_ms"].items()},
                                "cores": {k: round(v["cores"], 3) for k, v in cpu.items() if isinstance(v, dict)},
                                "others_cores": cpu["others_cores"],
                                "runs_per_s": report.runs / max(report.seconds, 1e-9) if report else 0.0,
                                "errors": report.errors if report else 0})
                    print(_line(out[-1]), file=sys.stderr, flush=True)
    finally:
        for load in loads.values():
            load.close()
    return out


def _threads(pids: dict[str, int], path: str) -> None:
    """Each thread of the fleet's processes, for scripts/perf_waits.py: tid -> [role, pid, policy, nice, comm]."""
    out = {}
    for role, pid in pids.items():
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    stat = f.read()
                fields = stat.rsplit(")", 1)[1].split()
                out[tid] = [role, pid, int(fields[38]), int(fields[16]), stat[stat.index("(") + 1:stat.rindex(")")]]
        except OSError:
            pass
    with open(path, "w") as f:
        json.dump(out, f)


def _line(w: dict) -> str:
    c = w["cores"]
    loads = sum(v for k, v in c.items() if k.startswith("load"))
    return (f"r{w['round']} {w['kind']:<9} p50 {w['p50_ms']:6.2f} mean {w['mean_ms']:6.2f} | "
            + " ".join(f"{w['split_mean_ms'].get(k, 0):5.2f}" for k in PARTS)
            + f" | gw {c.get('gateway', 0):.2f} eng {c.get('workflows', 0):.2f} wrk {c.get('worker', 0):.2f}"
              f" cli {c.get('client', 0):.2f} load {loads:.2f} oth {w['others_cores']:.2f} | {w['runs_per_s']:.0f} runs/s")


def summary(windows: list[dict]) -> dict:
    alone = {w["round"]: w for w in windows if w["kind"] == "alone"}
    out = {}
    for kind in sorted({w["kind"] for w in windows}):
        ws = [w for w in windows if w["kind"] == kind]
        ratios = [w["p50_ms"] / alone[w["round"]]["p50_ms"] for w in ws if w["round"] in alone]
        extra = {k: statistics.median(w["split_mean_ms"].get(k, 0) - alone[w["round"]]["split_mean_ms"].get(k, 0)
                                      for w in ws if w["round"] in alone) for k in PARTS}
        out[kind] = {"p50_ratio_median": statistics.median(ratios) if ratios else None,
                     "p50_ratios": [round(r, 2) for r in ratios],
                     "extra_mean_ms_median": {k: round(v, 2) for k, v in extra.items()},
                     "runs_per_s_median": statistics.median(w["runs_per_s"] for w in ws),
                     "others_cores_median": statistics.median(w["others_cores"] for w in ws)}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated subset of {', '.join(KINDS)}")
    p.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--fleet-env", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--engine-env", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--out", default="", help="write the windows and the summary as JSON here")
    p.add_argument("--perf", default="", metavar="DIR",
                   help=f"record `perf sched` for the first {PERF_S} s of each window of the first {PERF_ROUNDS} "
                        "rounds into DIR, with the fleet's threads (read them with scripts/perf_waits.py)")
    args = p.parse_args()
    kinds = args.kinds.split(",")
    if "alone" not in kinds or any(k not in KINDS for k in kinds):
        p.error(f"--kinds needs alone and only {KINDS}")
    cfg = BenchConfig()
    env = BenchEnv(cfg, worker_env=dict(i.split("=", 1) for i in args.worker_env),
                   env=dict(i.split("=", 1) for i in args.fleet_env),
                   engine_env=dict(i.split("=", 1) for i in args.engine_env))
    load_before = os.getloadavg()[0]
    try:
        if args.perf:
            os.makedirs(args.perf, exist_ok=True)
        windows = asyncio.run(measure(cfg, env, scene_jpegs(cfg.images, SEED), kinds, args.rounds, args.perf))
    finally:
        env.close()
    result = {"windows": windows, "summary": summary(windows),
              "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    print(json.dumps(result["summary"], indent=1))
    print(f"load average (1 min) at start and end: {result['load_average_1m']}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
