"""A process of its own that keeps N workflow callers busy, so the bench process measuring another caller's
latency is not delayed by the load generator (its event loop, its GIL, its protobuf work).

``WorkflowLoad`` (in the bench process) starts the child once (``spawn``: no forked gRPC state) and drives it
over a pipe: ``start()`` sets the callers going, ``stop()`` stops them and returns how many runs completed and
failed since ``start()``. The child (``_serve``) is one asyncio loop running ``callers`` closed loops of
``RunWorkflow`` on one channel, cycling through the requests it was given (serialized protobuf).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LoadReport:
    runs: int
    errors: int
    seconds: float
    first_error: str = ""


class WorkflowLoad:
    """``with WorkflowLoad(address, api_key, requests, callers) as load: load.start(); ...; load.stop()``."""

    def __init__(self, address: str, api_key: str, requests: list[bytes], callers: int, idle: bool = False) -> None:
        """``idle``: the child runs every thread under SCHED_IDLE (it takes only CPU nothing else wants: a
        diagnostic of how much the load generator's own CPU costs the measured caller on a shared machine)."""
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, address, api_key, requests, callers, idle),
                                 name="bench-workflow-load", daemon=True)
        self._proc.start()
        child.close()
        if not self._conn.poll(READY_TIMEOUT_S):
            self.close()
            raise RuntimeError("the workflow load process was not ready in time")
        ready = self._conn.recv()
        if ready != "ready":
            self.close()
            raise RuntimeError(f"the workflow load process could not start: {ready}")

    @property
    def pid(self) -> int:
        return self._proc.pid or 0

    def start(self) -> None:
        self._conn.send("start")
        assert self._conn.recv() == "started"

    def stop(self) -> LoadReport:
        self._conn.send("stop")
        return self._conn.recv()

    def close(self) -> None:
        if self._proc.is_alive():
            try:
                self._conn.send("exit")
            except OSError:
                pass
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
        self._conn.close()

    def __enter__(self) -> WorkflowLoad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(conn: Connection, address: str, api_key: str, requests: list[bytes], callers: int,
           idle: bool = False) -> None:
    if idle:  # before any other thread starts (gRPC's): threads inherit the policy of the one that starts them
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    asyncio.run(_loop(conn, address, api_key, requests, callers))


async def _loop(conn: Connection, address: str, api_key: str, requests: list[bytes], callers: int) -> None:
    from bench.scenarios.workflows import WorkflowCaller  # noqa: PLC0415 - in the child only
    from fleet.v1 import workflow_pb2  # noqa: PLC0415

    parsed = [workflow_pb2.RunWorkflowRequest.FromString(r) for r in requests]
    loop = asyncio.get_running_loop()
    try:
        caller = await WorkflowCaller(address, api_key).__aenter__()
        await caller.run(parsed[0])  # compiled and its models loaded before the first window
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
        conn.send(f"{type(exc).__name__}: {exc}")
        return
    conn.send("ready")
    stop = asyncio.Event()
    counts = {"runs": 0, "errors": 0}
    first_error: list[str] = []

    async def saturate(k: int) -> None:
        n = k
        while not stop.is_set():
            try:
                await caller.run(parsed[n % len(parsed)])
                counts["runs"] += 1
            except Exception as exc:  # noqa: BLE001 - counted; the window goes on
                counts["errors"] += 1
                if not first_error:
                    first_error.append(f"{type(exc).__name__}: {str(exc)[:300]}")
            n += callers

    tasks: list[asyncio.Task[None]] = []
    started = 0.0
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "start":
            stop.clear()
            counts.update(runs=0, errors=0)
            first_error.clear()
            started = time.perf_counter()
            tasks = [asyncio.ensure_future(saturate(k)) for k in range(callers)]
            conn.send("started")
        elif command == "stop":
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            conn.send(LoadReport(counts["runs"], counts["errors"], time.perf_counter() - started,
                                 first_error[0] if first_error else ""))
        else:
            break
    await caller.__aexit__(None, None, None)
