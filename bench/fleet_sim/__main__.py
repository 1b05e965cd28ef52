"""``python -m bench.fleet_sim``: the fleet's routing and copy planning at 20, 200 and 2,000 workers.

    python -m bench.fleet_sim                    # the four scenarios (many minutes on two cores)
    python -m bench.fleet_sim --scenario s20 --requests 20000
    python -m bench.fleet_sim --scenario s200 --max-models 64 --capacity-mb 17408   # heartbeat costs

Writes results.md, results.json and hit_rate.png to --out (default bench/results/fleet_sim/) and prints the
table. The same seed gives the same trace to the fleet and both baselines.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

from bench.fleet_sim import report
from bench.fleet_sim.baselines import pooled_belady, pooled_lru, random_home_lru
from bench.fleet_sim.engine import Fleet
from bench.fleet_sim.workload import MB, Scenario, trace
from services.common import collector
from services.gateway.placement import Backlog
from services.gateway.settings import GatewaySettings
from services.model_worker.eviction import KINDS

SCENARIOS = {
    "s20": Scenario("20 workers x 2,000 models", workers=20, models=2_000, requests=120_000),
    "s200": Scenario("200 workers x 20,000 models", workers=200, models=20_000, requests=400_000),
    "s2000": Scenario("2,000 workers x 100,000 models", workers=2_000, models=100_000, requests=1_000_000),
    # The heartbeat-cost case: as s2000, with 64 models per worker (and the memory for them), the workers
    # starting full of idle models (a short run would not fill 64 places).
    "s2000m64": Scenario("2,000 workers x 100,000 models, 64 models per worker", workers=2_000, models=100_000,
                         requests=1_000_000, max_models=64, capacity_bytes=64 * 272 * MB, prefill=True),
}
OUT = Path(__file__).resolve().parents[1] / "results" / "fleet_sim"


def run(key: str, scenario: Scenario, seed: int, backlog: Backlog | None = None) -> dict:
    started = time.perf_counter()
    t = trace(scenario, seed)
    fleet = Fleet(scenario, t, seed, backlog=backlog)
    # The collector as the gateway sets it once started (services.gateway.server, from its settings): the simulated
    # gateways are built, so is the rest of this process's set-up.
    settings = GatewaySettings()
    collector.tune(settings.gc_young_threshold, settings.gc_freeze_at_start)
    try:
        stats = fleet.run()
    finally:
        gc.unfreeze()  # (the next scenario's set-up is frozen anew; this one's may go)
    wall = time.perf_counter() - started
    result = report.summarise(key, scenario, fleet, stats, wall)
    result["collector"] = {"young_threshold": settings.gc_young_threshold, "frozen": settings.gc_freeze_at_start}
    result["baseline_random_home_lru"] = random_home_lru(scenario, t, seed)
    result["bound_pooled_lru"] = pooled_lru(scenario, t)
    result["bound_pooled_belady"] = pooled_belady(scenario, t)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="default: all four")
    parser.add_argument("--requests", type=int, help="requests per scenario (default: each scenario's own)")
    parser.add_argument("--eviction", choices=KINDS, default=Scenario.eviction,
                        help="the workers' eviction policy (default: %(default)s)")
    parser.add_argument("--max-models", type=int, help="models per worker (default: each scenario's own)")
    parser.add_argument("--capacity-mb", type=int, help="bytes of models per worker, in MB (default: the scenario's)")
    parser.add_argument("--plan-budget", type=int, default=Backlog.budget,
                        help="models one planning step looks at, at most (the rest carried over)")
    parser.add_argument("--plan-seconds", type=float, default=Backlog.seconds,
                        help="CPU seconds one planning step may spend deciding (the models not reached carried over)")
    parser.add_argument("--relief-holders", type=int, default=Backlog.relief_holders,
                        help="saturated workers one planning step examines, at most")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    results = []
    for key in args.scenario or list(SCENARIOS):
        scenario = SCENARIOS[key]
        scenario = replace(scenario, eviction=args.eviction)
        if args.requests:
            scenario = replace(scenario, requests=args.requests)
        if args.max_models:
            scenario = replace(scenario, max_models=args.max_models)
        if args.capacity_mb:
            scenario = replace(scenario, capacity_bytes=args.capacity_mb * MB)
        result = run(key, scenario, args.seed, Backlog(budget=args.plan_budget, relief_holders=args.relief_holders,
                                                         seconds=args.plan_seconds))
        result["scenario"] = asdict(scenario)
        results.append(result)
        print(report.row_text(result), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"seed": args.seed, "results": results}, indent=2) + "\n")
    (args.out / "results.md").write_text(report.markdown(results, args.seed))
    report.plot(results, args.out / "hit_rate.png")
    print(report.markdown(results, args.seed))


if __name__ == "__main__":
    main()
