"""The simulator measures control costs on the real code: heartbeat bytes from the real encoded records."""

from __future__ import annotations

from bench.fleet_sim.engine import Fleet
from bench.fleet_sim.workload import MB, Scenario, trace

MANY_MODELS = Scenario("small, 32 models a worker", workers=12, models=600, requests=6_000, max_models=32,
                       capacity_bytes=32 * 272 * MB)


def test_gateways_read_compact_heartbeats_and_rebuild_the_workers_records() -> None:
    fleet = Fleet(MANY_MODELS, trace(MANY_MODELS, seed=3), seed=3)
    stats = fleet.run()
    assert stats.rejected == 0
    gateway = fleet.gateways[0]
    assert gateway.compact_reads > 10 * gateway.full_reads  # full records only for a first read (or a missed beat)
    assert gateway.bytes_read_measured > 0 and gateway.bytes_read < gateway.bytes_full / 2
    rebuilt = 0
    for worker in fleet.workers:
        held = gateway.view.endpoints[worker.address].state
        if held is not None and held.sequence == worker.state.sequence:
            assert held == worker.state  # decoded from compact records: the worker's own full record
            rebuilt += 1
    assert rebuilt >= len(fleet.workers) // 2
    assert max(len(w.state.models) for w in fleet.workers) > 8
    assert gateway.plan_seconds and gateway.backlog.budget > 0
