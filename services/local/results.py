"""A pipeline's results followed from one pipelines replica (the bench's and the tests' subscriber), and the
handover gap measured on them by capture time."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
import redis

from fleet.v1 import pipelines_pb2

if TYPE_CHECKING:
    from fleet.v1.pipelines_pb2_grpc import PipelineServiceStub


class ResultFollower:
    """Every result of one pipeline as a replica's ``SubscribeResults`` delivers it, collected in a thread
    until the stream ends or ``stop``."""

    def __init__(self, stub: PipelineServiceStub, metadata: tuple[tuple[str, str], ...], pipeline_id: str) -> None:
        self.results: list[pipelines_pb2.PipelineResult] = []
        self.call = stub.SubscribeResults(pipelines_pb2.SubscribeResultsRequest(pipeline_id=pipeline_id),
                                          metadata=metadata)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for item in self.call:
                self.results.append(item.result)
        except grpc.RpcError:
            pass  # cancelled by stop(), or the replica went away: the results so far are the answer

    def stop(self) -> None:
        self.call.cancel()
        self.thread.join(5)


def stream_results(redis_url: str, namespace: str, pipeline_id: str) -> list[dict]:
    """Every result of a pipeline still in its Redis Stream sink, as written (each names its ``replica``)."""
    with redis.Redis.from_url(redis_url) as client:
        entries = client.xrange(f"{namespace}:pipelines:results:{pipeline_id}")
    return [json.loads(fields[b"result"]) for _, fields in entries]


@dataclass(frozen=True)
class Handover:
    """A SIGTERM handover of one source, in capture time (when the frames were taken, not when processed)."""

    gap_s: float  # the largest interval between consecutive processed frames across the switch
    steady_s: tuple[float, ...]  # the intervals between the old owner's processed frames just before it
    own_s: tuple[float, ...]  # each replica's intervals between its own processed frames across the switch
    overlap_s: float  # how long both replicas wrote results (the old's last completion after the new's first)
    gap_at_s: float  # where the largest interval starts, in capture time after the SIGTERM (negative: before)
    gap_between: tuple[str, str]  # the replicas that processed the frames at either end of it


def handover(results: list[dict], old: str, new: str, drained_at: float, source_id: str = "0",
             steady_s: float = 3.0) -> Handover:
    """Over the union of both replicas' results for ``source_id`` (one capture time counted once): the
    largest interval between consecutive capture times from the last frame processed before the SIGTERM
    (``drained_at``) to the new owner's first frame captured after the old owner's last. A frame missing
    at the switch (neither replica processed it) shows as an interval longer than the pipeline's rate
    allows; frames both processed only shorten intervals, so they cannot hide one."""
    rows = [r for r in results if r["source_id"] == source_id and not r.get("error")]
    olds = [r for r in rows if r["replica"] == old]
    start = max(r["captured_at"] for r in olds if r["completed_at"] <= drained_at)
    old_last = max(r["captured_at"] for r in olds)
    end = min(r["captured_at"] for r in rows if r["replica"] == new and r["captured_at"] > old_last)
    by_time = {r["captured_at"]: r["replica"] for r in rows}  # a frame both processed: counted once
    times = sorted(t for t in by_time if start <= t <= end)
    gap, at, then = max((b - a, a, b) for a, b in zip(times, times[1:], strict=False))
    steady = sorted(r["captured_at"] for r in olds if drained_at - steady_s <= r["completed_at"] <= drained_at)
    new_first = min(r["completed_at"] for r in rows if r["replica"] == new and r["completed_at"] > drained_at)
    own = []
    for replica in (old, new):
        mine = sorted(r["captured_at"] for r in rows if r["replica"] == replica and start <= r["captured_at"] <= end)
        own += [b - a for a, b in zip(mine, mine[1:], strict=False)]
    return Handover(gap_s=gap, steady_s=tuple(b - a for a, b in zip(steady, steady[1:], strict=False)),
                    own_s=tuple(own),
                    overlap_s=max(r["completed_at"] for r in olds) - new_first, gap_at_s=at - drained_at,
                    gap_between=(by_time[at], by_time[then]))


def stamp_offset(results: list[dict], old: str, new: str, period_s: float, source_id: str = "0") -> float:
    """How far apart two replicas stamp the frames of one live stream: each stamps a frame when it has decoded
    it, and their delays differ. Over the stretch both processed frames, the median distance of the new
    owner's capture times from the old owner's grid (its nearest one, give or take whole source intervals of
    ``period_s``). About 0 for pushed frames (the client stamps them)."""
    rows = [r for r in results if r["source_id"] == source_id and not r.get("error")]
    olds = sorted(r["captured_at"] for r in rows if r["replica"] == old)
    news = [r["captured_at"] for r in rows if r["replica"] == new and olds[0] <= r["captured_at"] <= olds[-1]]
    distances = sorted(abs(d - round(d / period_s) * period_s)
                       for n in news for d in [n - min(olds, key=lambda o: abs(n - o))])
    return distances[len(distances) // 2] if distances else 0.0
