"""What ran on the core while the worker's interactive threads waited for one: reads a ``perf sched record``
file and the thread map ``scripts/isolation_breakdown.py --perf DIR`` wrote beside it.

A thread "waits" from its wake-up (or from being preempted while runnable) until it runs again; over those
intervals the time goes to whatever ran on the core whose run queue held it (and, apart, on the other cores).
The threads followed are the worker's interactive ones: its threads of normal policy other than its event loop
and gRPC's (the CPU pool running ``Infer``'s pipeline and ONNX Runtime's intra-op threads), or ``--tids``.

    .venv/bin/python scripts/perf_waits.py DIR/gateway-0.data DIR/gateway-0.threads.json [--tids 123,124]
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess

EVENT = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$")
POLICY = {0: "normal", 3: "batch", 5: "SCHED_IDLE"}


def fields(text: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in re.findall(r"(\w+=\S+)", text))


def analyse(data: str, threads: dict[str, list], targets: set[int]) -> dict:
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,tid,cpu,time,event,trace"],
                         capture_output=True, text=True, check=True).stdout
    running: dict[int, int] = {}  # cpu -> tid on it
    pid_of: dict[int, int] = {}
    comm_of: dict[int, str] = {}
    waiting: dict[int, int] = {}  # target tid -> the cpu whose run queue holds it
    since: dict[int, float] = {}
    preempter: dict[int, int] = {}
    here, elsewhere, preempted_by = collections.Counter(), collections.Counter(), collections.Counter()
    total, waits, last = 0.0, 0, None
    for line in out.splitlines():
        m = EVENT.match(line)
        if not m:
            continue
        pid, tid, cpu, t, event, rest = (int(m.group(2)), int(m.group(3)), int(m.group(4)), float(m.group(5)),
                                         m.group(6), m.group(7))
        pid_of[tid], comm_of[tid] = pid, m.group(1)
        if last is not None:
            for queue_cpu in waiting.values():
                dt = t - last
                total += dt
                here[running.get(queue_cpu, -1)] += dt
                for other_cpu, other in running.items():
                    if other_cpu != queue_cpu:
                        elsewhere[other] += dt
        last = t
        if event == "sched:sched_switch":
            f = fields(rest)
            prev, nxt = int(f["prev_pid"]), int(f["next_pid"])
            comm_of.setdefault(nxt, f["next_comm"])
            running[cpu] = nxt
            if prev in targets and f["prev_state"].startswith("R"):
                waiting[prev], since[prev], preempter[prev] = cpu, t, nxt
            if nxt in targets and nxt in waiting:
                del waiting[nxt]
                waits += 1
                if nxt in preempter:
                    preempted_by[preempter.pop(nxt)] += t - since[nxt]
        elif event == "sched:sched_wakeup":
            f = fields(rest)
            woken = int(f["pid"])
            if woken in targets:
                waiting[woken], since[woken] = int(f["target_cpu"]), t
                preempter.pop(woken, None)
        elif event == "sched:sched_migrate_task":
            f = fields(rest)
            moved = int(f["pid"])
            if moved in waiting:
                waiting[moved] = int(f["dest_cpu"])

    def name(tid: int) -> str:
        th = threads.get(str(tid))
        if th:
            what = "loop" if th[1] == tid else ("interactive" if tid in targets else "thread")
            return f"{th[0]} {what} ({POLICY.get(th[2], th[2])})"
        return "idle" if tid == 0 else f"other: pid {pid_of.get(tid, '?')} {comm_of.get(tid, '?')}"

    def grouped(counter: collections.Counter) -> list[tuple[str, float]]:
        agg: collections.Counter = collections.Counter()
        for tid, seconds in counter.items():
            agg[name(tid)] += seconds
        return [(k, round(v * 1e3, 1)) for k, v in agg.most_common(12)]

    return {"waited_ms": round(total * 1e3, 1), "waits": waits, "on_its_core_ms": grouped(here),
            "preempted_by_ms": grouped(preempted_by), "on_the_other_cores_ms": grouped(elsewhere)}


def interactive_threads(threads: dict[str, list]) -> set[int]:
    """The worker's threads of normal policy but its event loop and gRPC's own (named ``event_engine``,
    ``grpc_...``)."""
    return {int(tid) for tid, (role, pid, policy, *rest) in threads.items()
            if role == "worker" and policy == 0 and int(tid) != pid
            and not (rest[-1].startswith(("event_engine", "grpc")) if len(rest) > 1 else False)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data")
    p.add_argument("threads")
    p.add_argument("--tids", default="", help="comma-separated thread ids to follow (default: see above)")
    args = p.parse_args()
    with open(args.threads, encoding="utf-8") as f:
        threads = json.load(f)
    targets = {int(t) for t in args.tids.split(",")} if args.tids else interactive_threads(threads)
    result = analyse(args.data, threads, targets)
    print(f"{args.data}: {result['waited_ms']} ms waited runnable, {result['waits']} waits")
    for key in ("on_its_core_ms", "preempted_by_ms", "on_the_other_cores_ms"):
        print(f" {key}:")
        for who, ms in result[key]:
            print(f"  {ms:9.1f}  {who}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
