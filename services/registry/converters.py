"""Registry domain objects <-> the admin plane's protobuf messages."""

from __future__ import annotations

import json
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from fleet.v1 import admin_pb2
from services.common import descriptors
from services.common.errors import InvalidArgument, ModelPackageError
from services.common.model_record import ModelRecord
from services.common.model_spec import ModelSpec
from services.registry.catalog_apply import Change
from services.registry.store.records import ApiKey, StoredModel

_ACTIONS = {"added": admin_pb2.CHANGE_ACTION_ADDED, "changed": admin_pb2.CHANGE_ACTION_CHANGED,
            "removed": admin_pb2.CHANGE_ACTION_REMOVED}


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def change(c: Change) -> admin_pb2.CatalogChange:
    return admin_pb2.CatalogChange(action=_ACTIONS[c.action], kind=c.kind, name=c.name, detail=c.detail)


def registered(m: StoredModel) -> admin_pb2.RegisteredModel:
    r = m.record
    return admin_pb2.RegisteredModel(
        summary=descriptors.summary(descriptors.to_proto(r)), workspace=r.workspace, artifact_uri=r.artifact_uri,
        sha256=r.spec.sha256, source=m.source, created_at=_ts(m.created_at), updated_at=_ts(m.updated_at),
        expires_at=_ts(m.expires_at),
    )


def key_info(k: ApiKey) -> admin_pb2.ApiKeyInfo:
    return admin_pb2.ApiKeyInfo(
        key_id=k.id, prefix=k.prefix, workspace=k.workspace, name=k.name, created_at=_ts(k.created_at),
        revoked_at=_ts(k.revoked_at), last_used_at=_ts(k.last_used_at), revoked=k.revoked,
    )


def record_from_register(request: admin_pb2.RegisterModelRequest) -> ModelRecord:
    """The record a RegisterModel request describes; InvalidArgument when it is malformed."""
    if not request.artifact_uri:
        raise InvalidArgument("artifact_uri is required (file:// or http(s):// of the ONNX weights)")
    try:
        spec = ModelSpec.from_json(json.loads(request.spec_json or "{}"), source="spec_json")
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"spec_json is not JSON: {exc}") from None
    except ModelPackageError as exc:
        raise InvalidArgument(exc.message) from None
    try:
        return ModelRecord(model_id=request.model_id, workspace=request.workspace, artifact_uri=request.artifact_uri,
                           spec=spec, public=request.public, aliases=tuple(request.aliases))
    except ValueError as exc:  # pydantic's ValidationError
        problems = getattr(exc, "errors", lambda: [{"msg": str(exc)}])()
        raise InvalidArgument("; ".join(p["msg"].removeprefix("Value error, ") for p in problems)) from None
