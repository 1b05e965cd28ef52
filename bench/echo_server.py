"""A bare gRPC server for the transport-floor scenario: no protobuf, no model, no thread pool.

``python -m bench.echo_server REPLY_BYTES [LOOP [UNIX_PATH]]`` prints its port (0 when it listens on the
Unix socket UNIX_PATH instead; LOOP: asyncio, uvloop, or sync for a synchronous ``grpc.server`` whose
handler threads wait themselves, with no hop), then answers ``/bench.Echo/Call``
with REPLY_BYTES bytes, after a thread of its pool has slept ``x-hold-ms`` milliseconds when the call's
metadata carries it (standing in for a handler that awaits inference in a thread pool, as the
worker does; ``time.sleep`` overshoots by well under 0.1 ms here, ``asyncio.sleep`` by over 1 ms).
"""

from __future__ import annotations

import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from bench.clients import MAX_MESSAGE_BYTES


def loop_factory(name: str):  # noqa: ANN201 - Callable[[], AbstractEventLoop] | None
    """The event loop to run on: the standard library's (None) or uvloop's (a sync server's client: asyncio)."""
    if name in ("asyncio", "sync"):
        return None
    import uvloop  # noqa: PLC0415 - only for that variant (the bench extra)

    return uvloop.new_event_loop


async def serve(reply_bytes: int, unix_path: str = "") -> None:
    reply = b"r" * reply_bytes
    pool = ThreadPoolExecutor(2, thread_name_prefix="hold")

    async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        hold_ms = next((float(v) for k, v in context.invocation_metadata() if k == "x-hold-ms"), 0.0)
        if hold_ms > 0:
            await asyncio.get_running_loop().run_in_executor(pool, time.sleep, hold_ms / 1e3)
        return reply

    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
    _listen(server, call, unix_path)
    await server.start()
    await server.wait_for_termination()


def serve_sync(reply_bytes: int, unix_path: str = "") -> None:
    """The same with grpc's synchronous server: the handler runs, and waits, in one of its pool's threads."""
    reply = b"r" * reply_bytes

    def call(request: bytes, context: grpc.ServicerContext) -> bytes:
        hold_ms = next((float(v) for k, v in context.invocation_metadata() if k == "x-hold-ms"), 0.0)
        if hold_ms > 0:
            time.sleep(hold_ms / 1e3)
        return reply

    server = grpc.server(ThreadPoolExecutor(4, thread_name_prefix="handler"),
                         options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
    _listen(server, call, unix_path)
    server.start()
    server.wait_for_termination()


def _listen(server, call, unix_path: str) -> None:  # noqa: ANN001 - a grpc or grpc.aio server and handler
    handler = grpc.method_handlers_generic_handler("bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(call)})
    server.add_generic_rpc_handlers((handler,))
    if unix_path:
        server.add_insecure_port(f"unix:{unix_path}")
        port = 0
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    print(port, flush=True)


if __name__ == "__main__":
    loop, path = (sys.argv[2:] + ["asyncio", ""])[:2]
    if loop == "sync":
        serve_sync(int(sys.argv[1]), path)
    else:
        with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
            runner.run(serve(int(sys.argv[1]), path))
