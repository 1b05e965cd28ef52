"""The catalog file: workspaces (with API-key hashes), models and aliases, in YAML.

    workspaces:
      - name: demo
        api_key_sha256: [<hex sha256 of a key>]
    models:
      - id: shapes-det/1
        workspace: demo
        package: packages/shapes-det      # a model package directory, relative to this file
        public: true
        aliases: [shapes-detector]
      - id: remote-det/3
        workspace: demo
        package: packages/remote-det      # metadata from the package ...
        artifact_uri: https://models.example/remote-det/3/model.onnx   # ... weights from elsewhere

API keys never appear in a catalog, only their sha256 (``printf %s KEY | sha256sum``).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.common.errors import ModelPackageError
from services.common.model_record import ModelRecord
from services.common.model_spec import ModelSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkspaceEntry(_Strict):
    name: str
    api_key_sha256: tuple[str, ...] = ()

    @field_validator("api_key_sha256")
    @classmethod
    def _hex(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for h in v:
            if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
                raise ValueError("api_key_sha256 entries must be lowercase hex sha256 digests, never keys")
        return v


class ModelEntry(_Strict):
    id: str
    workspace: str
    package: str
    artifact_uri: str = ""
    public: bool = False
    aliases: tuple[str, ...] = ()


class CatalogFile(_Strict):
    workspaces: tuple[WorkspaceEntry, ...] = ()
    models: tuple[ModelEntry, ...] = Field(default=())


class Catalog:
    """A parsed catalog: model records plus the key-hash -> workspace table."""

    def __init__(self, records: list[ModelRecord], key_hashes: dict[str, str]) -> None:
        self.records = records
        self.key_hashes = key_hashes

    @classmethod
    def load(cls, path: str | Path) -> Catalog:
        path = Path(path).resolve()
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            parsed = CatalogFile.model_validate(raw)
        except (OSError, yaml.YAMLError) as exc:
            raise ModelPackageError(f"catalog {path} could not be read: {exc}") from None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ModelPackageError(f"catalog {path} is invalid: {problems}") from None
        workspaces = {w.name for w in parsed.workspaces}
        key_hashes = {h: w.name for w in parsed.workspaces for h in w.api_key_sha256}
        records = [cls._record(entry, path.parent, workspaces) for entry in parsed.models]
        ids = [r.model_id for r in records]
        if len(set(ids)) != len(ids):
            raise ModelPackageError(f"catalog {path} lists a model id twice")
        return cls(records, key_hashes)

    @staticmethod
    def _record(entry: ModelEntry, base: Path, workspaces: set[str]) -> ModelRecord:
        if entry.workspace not in workspaces:
            raise ModelPackageError(f"model {entry.id}: workspace {entry.workspace!r} is not declared")
        package = (base / entry.package).resolve()
        spec = ModelSpec.from_package(package)
        uri = entry.artifact_uri or (package / spec.weights.file).as_uri()
        try:
            return ModelRecord(
                model_id=entry.id, workspace=entry.workspace, artifact_uri=uri, spec=spec,
                public=entry.public, aliases=entry.aliases,
            )
        except ValidationError as exc:
            raise ModelPackageError(f"model {entry.id}: {exc.errors()[0]['msg']}") from None
