"""Per-call cost of the ``@rpc`` server decorator (and of the client helper), for A/B comparisons.

Drives a decorated no-op handler ``N`` times without an event loop (its coroutine never suspends),
so what is counted is the decorator's own work: request id, metrics, tracing check, log check.
Wall-clock timings on a shared 2-core machine are noisy; count instructions instead, twice, and
take the difference, which removes start-up:

    for n in 2000 4000; do valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n \\
        .venv/bin/python scripts/rpc_overhead.py --calls $n; done
    # instructions per call = (Ir(4000) - Ir(2000)) / 2000   (Ir: the "summary:" line of each file)

``--mode`` picks what is driven: ``server`` (the decorator, successful call), ``server-error``
(a handler raising a FleetError), ``client`` (the outbound-call helper, when it exists).
Run against another checkout with ``PYTHONPATH=<checkout>``. Without valgrind it prints ns/call.
"""

from __future__ import annotations

import argparse
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


def client_call():  # noqa: ANN201
    from services.common.rpc_client import ClientMethod

    async def stub(request, timeout=None, metadata=None):  # noqa: ANN001, ANN202
        return request

    method = ClientMethod("fleet.internal.v1.ModelWorkerService", "Infer")
    return lambda: _drive(method(stub, b"request", 1.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--mode", choices=["server", "server-error", "client"], default="server")
    args = parser.parse_args()
    call = client_call() if args.mode == "client" else server_handler(args.mode == "server-error")
    for _ in range(200):  # warm: first calls create label children, caches
        call()
    started = time.perf_counter_ns()
    for _ in range(args.calls):
        call()
    elapsed = time.perf_counter_ns() - started
    print(f"{args.mode}: {args.calls} calls, {elapsed / max(1, args.calls):.0f} ns/call")


if __name__ == "__main__":
    main()
