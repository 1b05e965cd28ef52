"""``python -m bench``: the fleet against in-process ONNX Runtime on the demo detector.

    python -m bench            # the full suite (a few minutes; run it on a quiet machine)
    python -m bench --smoke    # every scenario for a couple of seconds (the smoke test runs this)

Writes results.md, results.json, latency_throughput.png and churn_rss.png to --out
(default bench/results/, or bench/results/smoke/ with --smoke, so a smoke run never
overwrites real numbers) and prints the tables.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import plots, report
from bench.config import DEFAULT_PACKAGE, RESULTS_DIR, SCENARIO_LIMIT_S, SEED, BenchConfig
from bench.environment import BenchEnv
from bench.machine import competing_jobs, machine_info
from bench.scenarios import (baseline, churn, cold_start, edges, edges_ab, fleet, foundation, levers, pipelines,
                             scale_out, transport, worker_only, workflows)
from bench.workload import Package, scene_jpegs

Runner = Callable[[BenchConfig, BenchEnv, list[bytes]], dict]
# name -> (planned seconds, runner, needs the fleet); run in this order
SCENARIOS: dict[str, tuple[Callable[[BenchConfig], float], Runner, bool]] = {
    "baseline": (baseline.planned_s, lambda cfg, env, images: baseline.run(cfg, images), False),
    "transport": (transport.planned_s, transport.run, False),
    "worker_only": (worker_only.planned_s, worker_only.run, True),
    "fleet": (fleet.planned_s, fleet.run, True),
    "fleet_stream": (fleet.planned_stream_s, fleet.run_stream, True),
    "http": (edges.planned_s, edges.run_http, True),
    "oip": (edges.planned_s, edges.run_oip, True),
    "workflow_overhead": (workflows.planned_overhead_s, workflows.run_overhead, True),
    "workflow_crops": (workflows.planned_alternating_s, workflows.run_crops, True),
    "workflow_isolation": (workflows.planned_rounds_s, workflows.run_isolation, True),
    "edges_ab": (edges_ab.planned_s, edges_ab.run, True),  # fleet.v1 and HTTP in alternating windows
    "cold_start": (cold_start.planned_s, cold_start.run, True),
    "churn": (churn.planned_s, churn.run, True),
    "pipelines": (pipelines.planned_s, pipelines.run, True),  # pipelines replicas beside the fleet
    "scale_out": (scale_out.planned_s, scale_out.run, False),  # fleets of its own, workers pinned to cores
    "single_session": (levers.planned_s, levers.run_single_session, False),  # a lever's fleet beside a default one
    "ort_threads": (levers.planned_s, levers.run_ort_threads, False),
    "reduced_decode": (levers.planned_decode_s, levers.run_reduced_decode, False),
    "foundation": (foundation.planned_s, foundation.run, False),  # a fleet of its own: embeddings, SAM, OCR
    "baseline_end": (baseline.planned_recheck_s, lambda cfg, env, images: baseline.recheck(cfg, images), False),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="a few seconds per scenario (checks that it runs)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"output directory (default {RESULTS_DIR}, or its smoke/ subdirectory with --smoke)")
    p.add_argument("--package", type=Path, default=DEFAULT_PACKAGE, help="model package (default: shapes-det)")
    p.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(SCENARIOS)}")
    p.add_argument("--keep-logs", action="store_true", help="keep the fleet's state directory and service logs")
    p.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra worker setting, e.g. FLEET_WORKER_MAX_QUEUE_DELAY_US=0 (repeatable)")
    p.add_argument("--workflows-in-gateway", action="store_true",
                   help="run workflows inside the gateway process (default: in the engine process behind it)")
    p.add_argument("--engine-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra setting of the workflow engine process alone (repeatable)")
    p.add_argument("--fleet-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra setting for every service of the fleet, e.g. FLEET_METRICS_MAX_MODELS=50 (repeatable)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out = args.out or (RESULTS_DIR / "smoke" if args.smoke else RESULTS_DIR)
    if not (args.package / "model.json").exists():
        print(f"no model package at {args.package}: build the demo models (make models) or pass --package",
              file=sys.stderr)
        return 2
    # A private copy, so a package rebuilt while the benchmark runs cannot change under it.
    snapshot_dir = Path(tempfile.mkdtemp(prefix="fleet-bench-package-"))
    package = Path(shutil.copytree(args.package, snapshot_dir / args.package.name))
    if not Package(package).verified():
        shutil.rmtree(snapshot_dir, ignore_errors=True)
        print(f"{args.package}: model.onnx does not match model.json's sha256 (being rebuilt?)", file=sys.stderr)
        return 2
    cfg = BenchConfig.quick(package) if args.smoke else BenchConfig.full(package)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}", file=sys.stderr)
        return 2
    try:
        return run(cfg, names, args, source=args.package)
    finally:
        shutil.rmtree(snapshot_dir, ignore_errors=True)


def run(cfg: BenchConfig, names: list[str], args: argparse.Namespace, source: Path) -> int:
    for name in names:
        if SCENARIOS[name][0](cfg) > SCENARIO_LIMIT_S:
            raise SystemExit(f"scenario {name} is planned for over {SCENARIO_LIMIT_S:.0f} s; shorten its config")

    results: dict = {"machine": machine_info(), "config": cfg.as_dict(), "seed": SEED,
                     "model": {**Package(cfg.package).describe(), "package": str(source)}, "scenarios": {}}
    images = scene_jpegs(cfg.images, SEED)
    worker_env = dict(item.split("=", 1) for item in args.worker_env)
    fleet_env = dict(item.split("=", 1) for item in args.fleet_env)
    results["worker_env"], results["fleet_env"] = worker_env, fleet_env
    results["workflow_engine"] = "gateway" if args.workflows_in_gateway else "own process"
    engine_env = dict(item.split("=", 1) for item in args.engine_env)
    results["engine_env"] = engine_env
    env = BenchEnv(cfg, keep_logs=args.keep_logs, worker_env=worker_env, env=fleet_env,
                   workflow_engine=not args.workflows_in_gateway, engine_env=engine_env)
    started = time.perf_counter()
    try:
        for name in names:
            planned, runner, needs_fleet = SCENARIOS[name]
            if name == "baseline_end":
                env.close()  # the fleet's idle processes stay out of the recheck
            if needs_fleet and "fleet_start_s" not in results:
                t0 = time.perf_counter()
                env.fleet  # noqa: B018 - starts registry, worker and gateway
                results["fleet_start_s"] = time.perf_counter() - t0
            print(f"[bench] {name} (planned {planned(cfg):.0f} s) ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            outcome = runner(cfg, env, images)
            results["scenarios"][name] = {**outcome, "wall_s": time.perf_counter() - t0, "planned_s": planned(cfg)}
            env.observed[name] = outcome
            gc.collect()
    finally:
        env.close()
    results["total_wall_s"] = time.perf_counter() - started
    results["machine"]["competing_jobs_at_end"] = competing_jobs()
    results["machine"]["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    report.derive(results)
    text = report.write(results, args.out)
    plots.latency_throughput(results, args.out / "latency_throughput.png")
    plots.churn_rss(results, args.out / "churn_rss.png")
    print(text)
    print(f"[bench] wrote {args.out} in {results['total_wall_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
