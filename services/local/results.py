"""A pipeline's results followed from one pipelines replica: the bench's and the tests' subscriber."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import grpc

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
