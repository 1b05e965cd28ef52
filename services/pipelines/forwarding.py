"""PushFrames through any replica: frames for a pipeline another replica runs go on to that owner.

A client behind a load-balanced Service reaches any replica. The replica it reaches pushes each frame into
the pipeline when it runs the pipeline itself; else it resolves the owner (the pipeline's lease names the
replica, the replica's ``peers.ReplicaAddress`` its address) and forwards the frames over one PushFrames
stream of its own, frame by frame (each acknowledged before the next is taken: the client's stream keeps
gRPC's flow control end to end). When the owner stops answering (killed, drained, its lease lost) the frame
is sent again after resolving the owner anew: the new owner, or this replica itself once it took the
pipeline over. While no replica runs the pipeline the frame waits, up to ``wait_s``; then the stream ends
with UNAVAILABLE (push again: any replica takes the stream). A forwarded stream is never forwarded again (a
replica that does not run the pipeline answers it UNAVAILABLE and the forwarding replica resolves again),
so replicas whose views of ownership differ for a moment cannot pass frames around in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

import grpc

from fleet.v1 import pipelines_pb2, pipelines_pb2_grpc
from services.common.errors import FleetError, Unavailable
from services.common.rpc_errors import from_rpc_error
from services.pipelines.manager import PipelineManager
from services.pipelines.peers import ReplicaDirectory
from services.pipelines.requests import PushItem, Requester

FORWARDED = "x-fleet-pipelines-forwarded"  # metadata a forwarding replica sets on its stream to the owner
RETRY_S = 0.1  # how often a frame waiting for an owner looks again


class _Upstream:
    """One PushFrames stream to the owning replica."""

    def __init__(self, call: grpc.aio.StreamStreamCall, timeout_s: float) -> None:
        self.call, self.timeout_s = call, timeout_s

    async def send(self, item: PushItem) -> int:
        """The owner's frame id; Unavailable when the owner cannot take it (resolve again)."""
        request = pipelines_pb2.PushFramesRequest(pipeline_id=item.pipeline_id, source_id=item.source_id,
                                                  image=item.image, captured_at=item.captured_at or 0.0)
        try:
            await asyncio.wait_for(self.call.write(request), self.timeout_s)
            reply = await asyncio.wait_for(self.call.read(), self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                raise Unavailable("the pipeline's owner did not take the frame") from None
            raise from_rpc_error(exc, "pipelines replica running the pipeline") from None
        except (TimeoutError, asyncio.InvalidStateError):
            raise Unavailable("the pipeline's owner did not answer") from None
        if reply is grpc.aio.EOF:
            raise Unavailable("the pipeline's owner ended the stream")
        return reply.frame_id

    def close(self) -> None:
        self.call.cancel()


class PeerChannels:
    """One channel per peer replica's address, the least recently used closed beyond ``limit``."""

    def __init__(self, opener: Callable[[str], grpc.aio.Channel], limit: int = 32) -> None:
        self.opener, self.limit = opener, limit
        self._channels: OrderedDict[str, grpc.aio.Channel] = OrderedDict()
        self._closing: set[asyncio.Task] = set()

    def get(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.pop(address, None) or self.opener(address)
        self._channels[address] = channel
        while len(self._channels) > self.limit:
            task = asyncio.get_running_loop().create_task(self._channels.popitem(last=False)[1].close(grace=1.0))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return channel

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._channels.values()), *self._closing, return_exceptions=True)
        self._channels.clear()


class PushRouter:
    def __init__(self, manager: PipelineManager, directory: ReplicaDirectory, channels: PeerChannels,
                 wait_s: float) -> None:
        self.manager, self.directory, self.channels, self.wait_s = manager, directory, channels, wait_s

    async def frames(self, caller: Requester, items: AsyncIterator[PushItem], forwarded: bool) -> AsyncIterator[int]:
        """Each pushed frame's id (the owner's), in order."""
        session = _Session(self, caller, forwarded)
        try:
            async for item in items:
                yield await session.push(item)
        finally:
            session.close()


class _Session:
    def __init__(self, router: PushRouter, caller: Requester, forwarded: bool) -> None:
        self.router, self.caller, self.forwarded = router, caller, forwarded
        self.ownership = router.manager.ownership
        self.upstream: _Upstream | None = None
        self.checked = ""  # the pipeline the caller was found to see (checked once a stream)

    async def push(self, item: PushItem) -> int:
        deadline = time.monotonic() + self.router.wait_s
        while True:
            if item.pipeline_id in self.ownership.running:  # run here
                self.close()
                with contextlib.suppress(Unavailable):  # stopped meanwhile (lease lost): resolve again
                    return await self.router.manager.push_frame(self.caller, item.pipeline_id, item.source_id,
                                                                item.image, item.captured_at)
            elif self.forwarded:
                raise Unavailable("the pipeline runs on another replica; push its frames there (retry to reconnect)")
            else:
                if item.pipeline_id != self.checked:  # tenancy: another workspace's pipeline is NOT_FOUND
                    await self.router.manager.spec(self.caller, item.pipeline_id)
                    self.checked = item.pipeline_id
                if self.ownership.draining:
                    raise Unavailable("this pipelines replica is shutting down; push again (any replica takes it)")
                if self.upstream is None:
                    self.upstream = await self._connect(item.pipeline_id)
                if self.upstream is not None:
                    try:
                        return await self.upstream.send(item)
                    except Unavailable:
                        self.close()
                        self.checked = ""  # terminated meanwhile? checked again before the next try
            if time.monotonic() >= deadline:
                raise Unavailable("no pipelines replica runs the pipeline now (its owner is being replaced); "
                                  "push again shortly")
            await asyncio.sleep(RETRY_S)

    async def _connect(self, pipeline_id: str) -> _Upstream | None:
        """A stream to the pipeline's owner (None while it has none, or it is this replica)."""
        try:
            owner = await self.ownership.store.owner(pipeline_id)
            record = await self.router.directory.lookup(owner) if owner else None
        except FleetError:  # Redis away: wait for it like for an owner
            return None
        if record is None or owner == self.ownership.replica_id:
            return None
        metadata = (("authorization", f"Bearer {self.caller.api_key}"), (FORWARDED, "1"))
        stub = pipelines_pb2_grpc.PipelineServiceStub(self.router.channels.get(record.address))
        return _Upstream(stub.PushFrames(metadata=metadata), self.router.wait_s)

    def close(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None
