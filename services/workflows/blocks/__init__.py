"""The blocks the engine runs, by canonical id (``roboflow_core/<name>@v1``) and legacy alias."""

from __future__ import annotations

from services.workflows.blocks.base import Block
from services.workflows.blocks.consensus import DetectionsConsensus
from services.workflows.blocks.crop import DynamicCrop
from services.workflows.blocks.filter import DetectionsFilter
from services.workflows.blocks.flow import ContinueIf
from services.workflows.blocks.foundation import FOUNDATION_BLOCKS
from services.workflows.blocks.models import MODEL_BLOCKS
from services.workflows.blocks.offset import DetectionOffset
from services.workflows.blocks.properties import PropertyDefinition
from services.workflows.blocks.visualize import VISUALIZATION_BLOCKS

ALL: tuple[Block, ...] = (*MODEL_BLOCKS, *FOUNDATION_BLOCKS, DynamicCrop(), DetectionsFilter(), DetectionOffset(), DetectionsConsensus(),
                          PropertyDefinition(), ContinueIf(), *VISUALIZATION_BLOCKS)
_BY_TYPE: dict[str, Block] = {name: b for b in ALL for name in (b.id, *b.aliases)}


def find(type_name: str) -> Block | None:
    return _BY_TYPE.get(type_name)


def supported() -> list[str]:
    return [b.id for b in ALL]


def describe() -> list[dict]:
    return [b.describe() for b in ALL]
