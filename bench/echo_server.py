"""A bare ``grpc.aio`` server for the transport-floor scenario: no protobuf, no model, no thread pool.

``python -m bench.echo_server REPLY_BYTES`` prints its port, then answers ``/bench.Echo/Call``
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


async def serve(reply_bytes: int) -> None:
    reply = b"r" * reply_bytes
    pool = ThreadPoolExecutor(2, thread_name_prefix="hold")

    async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        hold_ms = next((float(v) for k, v in context.invocation_metadata() if k == "x-hold-ms"), 0.0)
        if hold_ms > 0:
            await asyncio.get_running_loop().run_in_executor(pool, time.sleep, hold_ms / 1e3)
        return reply

    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
    handler = grpc.method_handlers_generic_handler("bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(call)})
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
