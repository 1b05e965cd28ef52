"""The catalog file: workspaces (with API-key hashes), models and aliases, in YAML.

    workspaces:
      - name: demo
        api_key_sha256: [<hex sha256 of a key>]
    models:
      - id: shapes-det/1
        workspace: demo
        package: packages/shapes-det      # a model package directory, relative to this file
        public: true
        aliases: [shapes-detector]        # aliases in the model's own workspace
      - id: remote-det/3
        workspace: demo
        spec: {...}                       # model.json inline, instead of a package ...
        artifact_uri: https://models.example/remote-det/3/model.onnx   # ... and the weights elsewhere
    aliases:                              # aliases in other workspaces (to models they may see)
      - {workspace: other, alias: detector, model: shapes-det/1}

API keys never appear in a catalog, only their sha256 (``printf %s KEY | sha256sum``). Parsing is
all-or-nothing: every problem is reported with the file and line it is on (``CatalogError``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from services.common.errors import FleetError, InvalidArgument
from services.common.model_record import MODEL_ID_PATTERN, WORKSPACE_PATTERN, ModelRecord
from services.common.model_spec import ModelSpec

LATEST = "latest"


class CatalogError(InvalidArgument):
    """A catalog that cannot be applied; the message lists each problem as ``file:line: what``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkspaceEntry(_Strict):
    name: str
    api_key_sha256: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not WORKSPACE_PATTERN.fullmatch(v):
            raise ValueError("workspace names are letters, digits, '.', '_', '-' (at most 64)")
        return v

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
    package: str = ""
    spec: dict[str, Any] | None = None
    artifact_uri: str = ""
    public: bool = False
    aliases: tuple[str, ...] = ()


class AliasEntry(_Strict):
    workspace: str
    alias: str
    model: str


class CatalogFile(_Strict):
    workspaces: tuple[WorkspaceEntry, ...] = ()
    models: tuple[ModelEntry, ...] = ()
    aliases: tuple[AliasEntry, ...] = ()


@dataclass
class Catalog:
    """A catalog's desired state."""

    workspaces: set[str] = field(default_factory=set)
    keys: dict[str, str] = field(default_factory=dict)               # key sha256 -> workspace
    models: dict[str, ModelRecord] = field(default_factory=dict)     # model id -> record
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)  # (workspace, alias) -> model id
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)  # where each item was declared
    source: str = ""  # the file name, for messages

    @classmethod
    def load(cls, path: str | Path) -> Catalog:
        path = Path(path).resolve()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(f"{path}: could not be read: {exc}") from None
        return parse_catalog(text, str(path), path.parent)


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the YAML node at ``loc`` (as deep as it exists)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def check_alias(alias: str) -> str | None:
    """Why ``alias`` cannot be an alias, or None."""
    if not MODEL_ID_PATTERN.fullmatch(alias):
        return f"alias {alias!r} must be letters, digits, '.', '_', '-' (and at most one '/')"
    if alias.partition("/")[2] == LATEST:
        return f"alias {alias!r}: '<project>/latest' is reserved for the highest version"
    return None


def _record(entry: ModelEntry, base: Path) -> ModelRecord:
    if bool(entry.package) == (entry.spec is not None):
        raise ValueError("give exactly one of package (a model package directory) or spec (model.json inline)")
    if entry.package:
        package = (base / entry.package).resolve()
        spec = ModelSpec.from_package(package)
        uri = entry.artifact_uri or (package / spec.weights.file).as_uri()
    else:
        spec = ModelSpec.from_json(entry.spec or {}, source="spec")
        if not entry.artifact_uri:
            raise ValueError("a model given by spec needs artifact_uri (where its weights are)")
        uri = entry.artifact_uri
    try:
        return ModelRecord(model_id=entry.id, workspace=entry.workspace, artifact_uri=uri, spec=spec,
                           public=entry.public, aliases=entry.aliases)
    except ValidationError as exc:
        raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None


def parse_catalog(text: str, source: str, base_dir: Path) -> Catalog:
    """Parse and validate a catalog's text; package paths are relative to ``base_dir``."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise CatalogError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    problems: list[str] = []

    def problem(loc: tuple[Any, ...], message: str) -> None:
        problems.append(f"{source}:{_line_of(root, loc)}: {message}")

    if not isinstance(raw, dict):
        raise CatalogError(f"{source}:1: a catalog is a mapping with workspaces, models and aliases")
    try:
        parsed = CatalogFile.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            problem(loc, f"{'.'.join(map(str, loc)) or '(root)'}: {err['msg']}")
        raise CatalogError("\n".join(problems)) from None

    catalog = Catalog(source=source)
    for i, ws in enumerate(parsed.workspaces):
        if ws.name in catalog.workspaces:
            problem(("workspaces", i), f"workspace {ws.name!r} is declared twice")
        catalog.workspaces.add(ws.name)
        catalog.lines[("workspace", ws.name)] = _line_of(root, ("workspaces", i))
        for j, h in enumerate(ws.api_key_sha256):
            if catalog.keys.get(h, ws.name) != ws.name:
                problem(("workspaces", i, "api_key_sha256", j), "an API key hash is declared for two workspaces")
            catalog.keys[h] = ws.name
    for i, entry in enumerate(parsed.models):
        at = ("models", i)
        if entry.workspace not in catalog.workspaces:
            problem((*at, "workspace"), f"model {entry.id}: workspace {entry.workspace!r} is not declared")
            continue
        if entry.id in catalog.models:
            problem((*at, "id"), f"model {entry.id} is listed twice")
            continue
        if entry.id.partition("/")[2] == LATEST:
            problem((*at, "id"), f"model {entry.id}: version 'latest' is reserved (it resolves to the highest version)")
            continue
        try:
            record = _record(entry, base_dir)
        except FleetError as exc:  # the package or inline spec is broken
            problem((*at, "package" if entry.package else "spec"), f"model {entry.id}: {exc.message}")
            continue
        except ValueError as exc:
            field_name = "id" if "model id" in str(exc) else ("workspace" if "workspace" in str(exc) else None)
            problem((*at, field_name) if field_name else at, f"model {entry.id}: {exc}")
            continue
        catalog.models[entry.id] = record
        catalog.lines[("model", entry.id)] = _line_of(root, at)
        for j, alias in enumerate(entry.aliases):
            _add_alias(catalog, problem, (*at, "aliases", j), root, entry.workspace, alias, entry.id)
    for i, entry in enumerate(parsed.aliases):
        at = ("aliases", i)
        if entry.workspace not in catalog.workspaces:
            problem((*at, "workspace"), f"alias {entry.alias}: workspace {entry.workspace!r} is not declared")
            continue
        _add_alias(catalog, problem, at, root, entry.workspace, entry.alias, entry.model)
    if problems:
        raise CatalogError("\n".join(problems))
    return catalog


def _add_alias(catalog: Catalog, problem, at: tuple[Any, ...], root: yaml.Node | None,  # noqa: ANN001
               workspace: str, alias: str, model_id: str) -> None:
    if (why := check_alias(alias)) is not None:
        problem(at, why)
    elif (workspace, alias) in catalog.aliases:
        problem(at, f"alias {alias!r} of workspace {workspace!r} is declared twice")
    else:
        catalog.aliases[(workspace, alias)] = model_id
        catalog.lines[("alias", workspace, alias)] = _line_of(root, at)
