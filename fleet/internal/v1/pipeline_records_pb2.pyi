from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PipelineRecord(_message.Message):
    __slots__ = ("pipeline_id", "workspace", "definition_json")
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_JSON_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    workspace: str
    definition_json: str
    def __init__(self, pipeline_id: _Optional[str] = ..., workspace: _Optional[str] = ..., definition_json: _Optional[str] = ...) -> None: ...

class PutPipelineRecordRequest(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: PipelineRecord
    def __init__(self, record: _Optional[_Union[PipelineRecord, _Mapping]] = ...) -> None: ...

class PutPipelineRecordResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPipelineRecordRequest(_message.Message):
    __slots__ = ("pipeline_id",)
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    def __init__(self, pipeline_id: _Optional[str] = ...) -> None: ...

class GetPipelineRecordResponse(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: PipelineRecord
    def __init__(self, record: _Optional[_Union[PipelineRecord, _Mapping]] = ...) -> None: ...

class DeletePipelineRecordRequest(_message.Message):
    __slots__ = ("pipeline_id",)
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    def __init__(self, pipeline_id: _Optional[str] = ...) -> None: ...

class DeletePipelineRecordResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: bool = ...) -> None: ...

class ListPipelineRecordsRequest(_message.Message):
    __slots__ = ("workspace",)
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    def __init__(self, workspace: _Optional[str] = ...) -> None: ...

class ListPipelineRecordsResponse(_message.Message):
    __slots__ = ("pipeline_ids",)
    PIPELINE_IDS_FIELD_NUMBER: _ClassVar[int]
    pipeline_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, pipeline_ids: _Optional[_Iterable[str]] = ...) -> None: ...
