"""What callers ask of the manager, as domain types the edges build (HTTP and gRPC alike)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from services.pipelines.spec import SourceSpec, Target


@dataclass(frozen=True)
class Requester:
    """An API key's caller: the key travels with the pipeline (frames go to the gateway as the caller)."""

    api_key: str
    workspace: str


@dataclass(frozen=True)
class NewPipeline:
    sources: list[SourceSpec]
    target: Target
    max_fps: float | None = None
    buffer_size: int | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PushItem:
    """One frame a client pushes into a pipeline's push source (an encoded image)."""

    pipeline_id: str
    source_id: str
    image: bytes
    captured_at: float | None  # wall-clock seconds of the capture (None: when received)


class WorkflowCheck(Protocol):
    async def check(self, api_key: str, target: Target) -> Target:
        """The workflow target as the caller may run it (a stored one pinned to a version), validated in full
        by the gateway: INVALID_ARGUMENT or NOT_FOUND otherwise."""
        ...
