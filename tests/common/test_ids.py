"""Ids are matched whole (fullmatch): ``re.match`` with ``$`` accepted a trailing newline."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.cache.keys import Keys
from services.common.context import request_id_from
from services.common.errors import InvalidArgument
from services.common.model_record import ModelRecord, check_model_id
from services.model_worker.artifacts import ArtifactStore
from tests.model_worker.test_service import descriptor
from tests.onnx_factory import write_package, yolov8_like


@pytest.mark.parametrize("model_id", ["shapes-det/1\n", "shapes-det\n", "shapes-det/1\r\n", "\nshapes-det/1"])
def test_a_model_id_with_a_newline_is_refused(model_id: str) -> None:
    with pytest.raises(InvalidArgument, match="model_id must look like"):
        check_model_id(model_id)


def test_records_refuse_ids_aliases_and_workspaces_with_a_newline(tmp_path) -> None:  # noqa: ANN001
    from services.common import descriptors

    record = descriptors.from_proto(descriptor(write_package(tmp_path / "m", yolov8_like()), "m/1"))
    for change in ({"model_id": "m/1\n"}, {"aliases": ("alias\n",)}, {"workspace": "demo\n"}):
        with pytest.raises(ValidationError):
            ModelRecord(**{**record.model_dump(), **change})


def test_request_ids_and_digests_with_a_newline_are_refused() -> None:
    assert request_id_from([("x-request-id", "abc\n")]) != "abc\n"
    assert request_id_from([("x-request-id", "abc")]) == "abc"
    digest = "a" * 64
    with pytest.raises(InvalidArgument):
        ArtifactStore("/tmp/unused").cached_path(digest + "\n")
    with pytest.raises(ValueError):
        Keys().principal(digest + "\n")
