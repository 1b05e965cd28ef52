"""A registered model: its package spec plus where it lives and who owns it."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.common.errors import InvalidArgument
from services.common.messages import quoted
from services.common.model_spec import ModelSpec

# "<project>/<version>", e.g. "shapes-det/1"; aliases use the same characters.
# Always matched with ``fullmatch``: ``re.match`` with ``$`` also accepts a trailing newline ("shapes-det/1\n").
MODEL_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,31})?")
WORKSPACE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_model_id(model_id: str) -> str:
    """Raise InvalidArgument unless ``model_id`` is a well-formed id or alias."""
    if not model_id:
        raise InvalidArgument("model_id is required (for example 'shapes-det/1')")
    if not MODEL_ID_PATTERN.fullmatch(model_id):
        raise InvalidArgument(
            "model_id must look like '<project>/<version>' or an alias: letters, digits, '.', '_', '-' "
            f"(at most 64 + 32 characters); got {quoted(model_id)}"
        )
    return model_id


class ModelRecord(BaseModel):
    """What the registry stores for a model and resolves ids and aliases to."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    workspace: str
    artifact_uri: str
    spec: ModelSpec
    public: bool = False
    aliases: tuple[str, ...] = Field(default=())

    @field_validator("model_id")
    @classmethod
    def _id(cls, v: str) -> str:
        if "/" not in v or not MODEL_ID_PATTERN.fullmatch(v):
            raise ValueError(f"model id {quoted(v)} must look like '<project>/<version>'")
        return v

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for alias in v:
            if not MODEL_ID_PATTERN.fullmatch(alias):
                raise ValueError(f"alias {quoted(alias)} has characters outside letters, digits, '.', '_', '-', '/'")
        return v

    @field_validator("workspace")
    @classmethod
    def _workspace(cls, v: str) -> str:
        if not WORKSPACE_PATTERN.fullmatch(v):
            raise ValueError(f"workspace {quoted(v)} must be letters, digits, '.', '_', '-'")
        return v

    def visible_to(self, workspace: str) -> bool:
        return self.public or self.workspace == workspace

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> ModelRecord:
        return cls.model_validate_json(data)
