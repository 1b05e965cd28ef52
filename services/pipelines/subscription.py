"""Following a pipeline's results: read from its Redis Stream at the subscriber's own pace.

gRPC sends the next result only when the subscriber has taken the previous ones (flow control), and the
stream is bounded (MAXLEN): the pipeline never waits for a subscriber and nothing buffers without bound; a
subscriber far behind misses what was trimmed meanwhile. The subscription ends when the pipeline is
terminated, and with UNAVAILABLE when this replica shuts down (subscribe again: any replica serves it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.common.errors import NotFound, Unavailable
from services.pipelines.manager import PipelineManager
from services.pipelines.requests import Requester

BLOCK_MS = 1000


async def follow(manager: PipelineManager, caller: Requester, pipeline_id: str) -> AsyncIterator[dict]:
    last_id = "$"
    while True:
        if manager.ownership.draining:
            raise Unavailable("this pipelines replica is shutting down; subscribe again")
        entries = await manager.sinks.read_stream(pipeline_id, last_id, BLOCK_MS, 16)
        if not entries:
            try:
                await manager.spec(caller, pipeline_id)
            except NotFound:
                return  # terminated
            continue
        for entry_id, body in entries:
            last_id = entry_id
            yield body
