"""What a one-step workflow costs the gateway beyond an ``Infer`` (issue 27), in the gateway's own CPU time.

    python -m bench.workflow_cost [--calls 200] [--rounds 6] [--against DIR] [--worker-env NAME=VALUE]

Starts a fleet on loopback (registry, one worker, a gateway with its workflow engine process behind it: the
one-step detector workflow is light, so it runs in the gateway itself), then in each round sends ``--calls``
sequential ``Infer`` calls and as many sequential one-step ``RunWorkflow`` calls (the detector, the same images,
the same model; which goes first alternates by round). For each batch it reads the CPU seconds (user + system)
the gateway and the worker processes used, and the batch's p50 wall latency. Prints each round and the medians
over rounds: the gateway's CPU per call is far steadier on a shared machine than wall latency, which cannot
resolve sub-millisecond differences there.

``--against DIR``: a second fleet, its services started from the checkout at DIR (another commit), idle while
the first one is measured and measured in the same rounds, so a change is compared under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
from google.protobuf import json_format

from bench.config import DEFAULT_PACKAGE, SEED
from bench.environment import write_catalog
from bench.processes import cpu_seconds
from bench.scenarios.workflows import WorkflowCaller, one_step
from bench.workload import MODEL_ID, WORKSPACE, scene_jpegs
from fleet.v1 import inference_pb2, workflow_pb2
from services.cache.embedded import delete_namespace, machine_or_embedded
from services.local.processes import LocalFleet

IMAGES = 8
WARMUP_CALLS = 50
SETUPS = ("infer", "flow")


@dataclass(frozen=True)
class Batch:
    gateway_cpu_ms: float  # per call
    worker_cpu_ms: float  # per call
    p50_ms: float


@dataclass(frozen=True)
class Measured:
    """One fleet under test: its name, its address and the processes whose CPU is read."""

    name: str
    address: str
    gateway: psutil.Process
    worker: psutil.Process


def requests(images: list[bytes]) -> list[workflow_pb2.RunWorkflowRequest]:
    """The one-step workflow on each image, its definition inline (as ``bench.scenarios.workflows`` sends it)."""
    struct = json_format.ParseDict(one_step(), workflow_pb2.RunWorkflowRequest().definition)
    return [workflow_pb2.RunWorkflowRequest(definition=struct, images={
        "image": workflow_pb2.WorkflowImages(images=[inference_pb2.Image(encoded=i)])}) for i in images]


async def batch(call, calls: int, fleet: Measured) -> Batch:  # noqa: ANN001 - async (i) -> None
    latencies = []
    g0, w0 = cpu_seconds(fleet.gateway), cpu_seconds(fleet.worker)
    for i in range(calls):
        t0 = time.perf_counter()
        await call(i)
        latencies.append(time.perf_counter() - t0)
    g1, w1 = cpu_seconds(fleet.gateway), cpu_seconds(fleet.worker)
    return Batch((g1 - g0) * 1e3 / calls, (w1 - w0) * 1e3 / calls, statistics.median(latencies) * 1e3)


async def measure(fleets: list[Measured], api_key: str, calls: int,
                  rounds: int) -> dict[str, list[dict[str, Batch]]]:
    """Per fleet, per round: its Infer batch and its workflow batch."""
    images = scene_jpegs(IMAGES, SEED)
    runs = requests(images)
    out: dict[str, list[dict[str, Batch]]] = {f.name: [] for f in fleets}
    async with contextlib.AsyncExitStack() as stack:
        callers = [await stack.enter_async_context(WorkflowCaller(f.address, api_key)) for f in fleets]

        def calls_of(caller: WorkflowCaller) -> dict:
            async def infer(i: int) -> None:
                await caller.infer(MODEL_ID, images[i % len(images)])

            async def flow(i: int) -> None:
                await caller.run(runs[i % len(runs)])

            return {"infer": infer, "flow": flow}

        setups = [calls_of(c) for c in callers]
        for own in setups:  # each model loaded, the definition compiled, the channels warm
            for i in range(WARMUP_CALLS):
                await own["infer"](i)
                await own["flow"](i)
        for n in range(rounds):
            order = list(zip(fleets, setups))
            for fleet, own in order if n % 2 == 0 else order[::-1]:
                names = SETUPS if n % 2 == 0 else SETUPS[::-1]
                done = {name: await batch(own[name], calls, fleet) for name in names}
                out[fleet.name].append(done)
                print(f"round {n} {fleet.name}: {line(done['infer'], done['flow'])}", flush=True)
    return out


def line(i: Batch, f: Batch) -> str:
    return (f"gateway CPU/call Infer {i.gateway_cpu_ms:.3f} ms, workflow {f.gateway_cpu_ms:.3f} ms "
            f"(+{f.gateway_cpu_ms - i.gateway_cpu_ms:.3f}); worker {i.worker_cpu_ms:.3f} / {f.worker_cpu_ms:.3f} ms; "
            f"p50 {i.p50_ms:.2f} / {f.p50_ms:.2f} ms (+{f.p50_ms - i.p50_ms:.2f})")


def summary(name: str, rounds: list[dict[str, Batch]]) -> str:
    def med(values) -> float:  # noqa: ANN001
        return statistics.median(list(values))

    pairs = [(r["infer"], r["flow"]) for r in rounds]
    gi, gf = med(i.gateway_cpu_ms for i, _ in pairs), med(f.gateway_cpu_ms for _, f in pairs)
    added = med(f.gateway_cpu_ms - i.gateway_cpu_ms for i, f in pairs)
    pi, pf = med(i.p50_ms for i, _ in pairs), med(f.p50_ms for _, f in pairs)
    wi, wf = med(i.worker_cpu_ms for i, _ in pairs), med(f.worker_cpu_ms for _, f in pairs)
    return (f"{name}: median over {len(pairs)} rounds\n"
            f"  gateway CPU per call: Infer {gi:.3f} ms, one-step workflow {gf:.3f} ms, added {added:.3f} ms "
            f"(median of the rounds' differences)\n"
            f"  worker CPU per call:  Infer {wi:.3f} ms, one-step workflow {wf:.3f} ms\n"
            f"  p50 wall latency:     Infer {pi:.2f} ms, one-step workflow {pf:.2f} ms, added "
            f"{med(f.p50_ms - i.p50_ms for i, f in pairs):.2f} ms")


@contextlib.contextmanager
def started(fleet: LocalFleet, checkout: Path | None) -> Iterator[LocalFleet]:
    """``fleet`` started, its services run from ``checkout`` (``python -m`` finds the working directory's
    packages first) or from this one."""
    here = Path.cwd()
    try:
        if checkout is not None:
            os.chdir(checkout)
        fleet.start()
    finally:
        os.chdir(here)
    try:
        yield fleet
    finally:
        fleet.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="sequential calls per batch")
    parser.add_argument("--rounds", type=int, default=6, help="rounds (an Infer batch and a workflow batch each)")
    parser.add_argument("--against", type=Path, default=None, metavar="DIR",
                        help="a checkout whose fleet is measured in the same rounds (e.g. the commit before)")
    parser.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the workers (e.g. FLEET_WORKER_BACKGROUND_YIELD_IDLE=false: how the "
                             "worker serves the workflow's model step, a background call, weighs on its latency)")
    args = parser.parse_args()
    worker_env = dict(item.split("=", 1) for item in args.worker_env)
    api_key = "fk_bench_" + secrets.token_urlsafe(16)
    namespace = f"wfcost-{uuid.uuid4().hex[:10]}"
    checkouts = {"this checkout": None, **({f"against {args.against}": args.against.resolve()} if args.against else {})}
    with machine_or_embedded() as redis_url, tempfile.TemporaryDirectory(prefix="fleet-wfcost-") as tmp, \
            contextlib.ExitStack() as stack:
        catalog = write_catalog(Path(tmp) / "catalog.yaml", api_key,
                                [{"id": MODEL_ID, "workspace": WORKSPACE, "package": str(DEFAULT_PACKAGE)}])
        measured = []
        try:
            for n, (name, checkout) in enumerate(checkouts.items()):
                env = {"PYTHONPATH": str(checkout)} if checkout is not None else {}
                fleet = stack.enter_context(started(LocalFleet(
                    redis_url, catalog, workers=1, namespace=f"{namespace}-{n}", state_dir=Path(tmp) / f"run-{n}",
                    env=env, worker_env=worker_env), checkout))
                measured.append(Measured(name, fleet.gateway.address, psutil.Process(fleet.gateway.pid),
                                         psutil.Process(fleet.worker_processes[0].pid)))
                print(f"{name}: gateway pid {fleet.gateway.pid}, worker pid {fleet.worker_processes[0].pid}",
                      flush=True)
            for name, rounds in asyncio.run(measure(measured, api_key, args.calls, args.rounds)).items():
                print(summary(name, rounds))
        finally:
            stack.close()
            for n in range(len(checkouts)):
                delete_namespace(redis_url, f"{namespace}-{n}")


if __name__ == "__main__":
    main()
