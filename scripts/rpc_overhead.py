"""Per-call cost of the ``@rpc`` server decorator, the client helper and tracing spans, for A/B comparisons.

Drives a decorated no-op handler (or one outbound call, or one ``tracing.span``) ``N`` times without an
event loop (the coroutine never suspends), so what is counted is the instrumentation's own work:
request id, metrics, tracing, log checks. Wall-clock timings on a shared 2-core machine are noisy;
``--callgrind`` counts instructions under valgrind instead, twice (N and 2N calls), and prints the
difference per call, which removes start-up:

    .venv/bin/python scripts/rpc_overhead.py --callgrind --mode server
    PYTHONPATH=<other checkout> .venv/bin/python scripts/rpc_overhead.py --callgrind --mode server   # A/B

Modes: ``server`` (the decorator, a successful call), ``server-error`` (the handler raises a FleetError),
``server-traced`` (tracing on, spans to an in-memory exporter), ``client-bare`` (a stub call with
``outgoing_metadata()``, as the clients made them before), ``client`` (the same through
``rpc_client.ClientMethod``), ``span`` (``with tracing.span(...)`` while tracing is off).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time


class _Aborted(Exception):
    pass


class FakeContext:
    """Enough of grpc.aio.ServicerContext for the decorator: metadata in, abort out."""

    _metadata = (("user-agent", "grpc-python/1.85"), ("authorization", "Bearer fk_xxx"),
                 ("x-request-id", "bench-request-1"))

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    async def abort(self, code: object, details: str, trailing: object = ()) -> None:
        raise _Aborted(details)

    def code(self) -> None:
        return None


def _drive(coro) -> object:  # noqa: ANN001
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    except _Aborted:
        return None
    raise RuntimeError("the handler suspended; this benchmark needs one that does not")


def server_handler(fail: bool):  # noqa: ANN201
    from services.common.errors import InvalidArgument
    from services.common.rpc import rpc

    class Servicer:
        @rpc("fleet.v1.GatewayService")
        async def Infer(self, request, context):  # noqa: N802, ANN001
            if fail:
                raise InvalidArgument("bad image")
            return request

    servicer, context = Servicer(), FakeContext()
    return lambda: _drive(servicer.Infer(b"request", context))


async def _stub(request, timeout=None, metadata=None):  # noqa: ANN001, ANN202
    return request


def client_call():  # noqa: ANN201
    from services.common.rpc_client import ClientMethod

    method = ClientMethod("fleet.internal.v1.ModelWorkerService", "Infer")
    return lambda: _drive(method(_stub, b"request", 1.0))


def bare_client_call():  # noqa: ANN201
    from services.common.rpc import outgoing_metadata

    return lambda: _drive(_stub(b"request", timeout=1.0, metadata=outgoing_metadata()))


def span_call():  # noqa: ANN201
    from services.common import tracing

    def call() -> None:
        with tracing.span("resolve"):
            pass

    return call


def traced_server():  # noqa: ANN201
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from services.common import tracing

    exporter = InMemorySpanExporter()
    tracing.configure("bench", env={}, exporter=exporter)
    call = server_handler(False)

    def traced() -> None:
        call()
        exporter.clear()

    return traced


MODES = {"server": lambda: server_handler(False), "server-error": lambda: server_handler(True),
         "server-traced": traced_server, "client": client_call, "client-bare": bare_client_call, "span": span_call}


def callgrind(mode: str, calls: int) -> None:
    """Instructions per call: the difference between runs of ``calls`` and ``2 * calls`` under callgrind."""
    totals = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (calls, 2 * calls):
            out = os.path.join(tmp, f"cg.{n}")
            run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                                  __file__, "--mode", mode, "--calls", str(n)], capture_output=True, text=True)
            found = re.search(r"Collected : (\d+)|I\s+refs:\s+([\d,]+)", run.stderr)
            if run.returncode != 0 or not found:
                raise SystemExit(f"valgrind failed: {run.stderr[-2000:]}")
            totals.append(int((found.group(1) or found.group(2)).replace(",", "")))
    print(f"{mode}: {(totals[1] - totals[0]) / calls:,.0f} instructions per call (callgrind, {calls} vs {2 * calls})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--mode", choices=sorted(MODES), default="server")
    parser.add_argument("--callgrind", action="store_true", help="count instructions per call under valgrind")
    args = parser.parse_args()
    if args.callgrind:
        return callgrind(args.mode, min(args.calls, 2000))
    call = MODES[args.mode]()
    for _ in range(200):  # warm: first calls create label children, caches
        call()
    started = time.perf_counter_ns()
    for _ in range(args.calls):
        call()
    elapsed = time.perf_counter_ns() - started
    print(f"{args.mode}: {args.calls} calls, {elapsed / max(1, args.calls):.0f} ns/call")


if __name__ == "__main__":
    main()
