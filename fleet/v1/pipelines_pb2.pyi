from fleet.v1 import workflow_pb2 as _workflow_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VideoSource(_message.Message):
    __slots__ = ("source_id", "reference", "rtsp_transport")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    RTSP_TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    reference: str
    rtsp_transport: str
    def __init__(self, source_id: _Optional[str] = ..., reference: _Optional[str] = ..., rtsp_transport: _Optional[str] = ...) -> None: ...

class CreatePipelineRequest(_message.Message):
    __slots__ = ("sources", "model_id", "confidence", "max_fps", "results_buffer_size", "workflow")
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MAX_FPS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_BUFFER_SIZE_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedCompositeFieldContainer[VideoSource]
    model_id: str
    confidence: float
    max_fps: float
    results_buffer_size: int
    workflow: PipelineWorkflow
    def __init__(self, sources: _Optional[_Iterable[_Union[VideoSource, _Mapping]]] = ..., model_id: _Optional[str] = ..., confidence: _Optional[float] = ..., max_fps: _Optional[float] = ..., results_buffer_size: _Optional[int] = ..., workflow: _Optional[_Union[PipelineWorkflow, _Mapping]] = ...) -> None: ...

class PipelineWorkflow(_message.Message):
    __slots__ = ("definition", "stored", "image_input_name", "parameters")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    IMAGE_INPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    definition: _struct_pb2.Struct
    stored: _workflow_pb2.StoredWorkflow
    image_input_name: str
    parameters: _struct_pb2.Struct
    def __init__(self, definition: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., stored: _Optional[_Union[_workflow_pb2.StoredWorkflow, _Mapping]] = ..., image_input_name: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CreatePipelineResponse(_message.Message):
    __slots__ = ("pipeline",)
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    pipeline: PipelineInfo
    def __init__(self, pipeline: _Optional[_Union[PipelineInfo, _Mapping]] = ...) -> None: ...

class ListPipelinesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPipelinesResponse(_message.Message):
    __slots__ = ("pipeline_ids",)
    PIPELINE_IDS_FIELD_NUMBER: _ClassVar[int]
    pipeline_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, pipeline_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetPipelineRequest(_message.Message):
    __slots__ = ("pipeline_id",)
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    def __init__(self, pipeline_id: _Optional[str] = ...) -> None: ...

class GetPipelineResponse(_message.Message):
    __slots__ = ("pipeline",)
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    pipeline: PipelineInfo
    def __init__(self, pipeline: _Optional[_Union[PipelineInfo, _Mapping]] = ...) -> None: ...

class PausePipelineRequest(_message.Message):
    __slots__ = ("pipeline_id",)
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    def __init__(self, pipeline_id: _Optional[str] = ...) -> None: ...

class PausePipelineResponse(_message.Message):
    __slots__ = ("pipeline",)
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    pipeline: PipelineInfo
    def __init__(self, pipeline: _Optional[_Union[PipelineInfo, _Mapping]] = ...) -> None: ...

class ResumePipelineRequest(_message.Message):
    __slots__ = ("pipeline_id",)
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    def __init__(self, pipeline_id: _Optional[str] = ...) -> None: ...

class ResumePipelineResponse(_message.Message):
    __slots__ = ("pipeline",)
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    pipeline: PipelineInfo
    def __init__(self, pipeline: _Optional[_Union[PipelineInfo, _Mapping]] = ...) -> None: ...

class TerminatePipelineRequest(_message.Message):
    __slots__ = ("pipeline_id",)
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    def __init__(self, pipeline_id: _Optional[str] = ...) -> None: ...

class TerminatePipelineResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AddSourceRequest(_message.Message):
    __slots__ = ("pipeline_id", "source")
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    source: VideoSource
    def __init__(self, pipeline_id: _Optional[str] = ..., source: _Optional[_Union[VideoSource, _Mapping]] = ...) -> None: ...

class AddSourceResponse(_message.Message):
    __slots__ = ("pipeline",)
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    pipeline: PipelineInfo
    def __init__(self, pipeline: _Optional[_Union[PipelineInfo, _Mapping]] = ...) -> None: ...

class RemoveSourceRequest(_message.Message):
    __slots__ = ("pipeline_id", "source_id")
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    source_id: str
    def __init__(self, pipeline_id: _Optional[str] = ..., source_id: _Optional[str] = ...) -> None: ...

class RemoveSourceResponse(_message.Message):
    __slots__ = ("pipeline",)
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    pipeline: PipelineInfo
    def __init__(self, pipeline: _Optional[_Union[PipelineInfo, _Mapping]] = ...) -> None: ...

class SubscribeResultsRequest(_message.Message):
    __slots__ = ("pipeline_id",)
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    def __init__(self, pipeline_id: _Optional[str] = ...) -> None: ...

class SubscribeResultsResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: PipelineResult
    def __init__(self, result: _Optional[_Union[PipelineResult, _Mapping]] = ...) -> None: ...

class PipelineInfo(_message.Message):
    __slots__ = ("pipeline_id", "model_id", "sources", "max_fps", "state", "report_json", "workflow")
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    MAX_FPS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    model_id: str
    sources: _containers.RepeatedCompositeFieldContainer[VideoSource]
    max_fps: float
    state: str
    report_json: str
    workflow: str
    def __init__(self, pipeline_id: _Optional[str] = ..., model_id: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[VideoSource, _Mapping]]] = ..., max_fps: _Optional[float] = ..., state: _Optional[str] = ..., report_json: _Optional[str] = ..., workflow: _Optional[str] = ...) -> None: ...

class PipelineResult(_message.Message):
    __slots__ = ("source_id", "frame_id", "captured_at", "completed_at", "outputs_json", "error")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    frame_id: int
    captured_at: float
    completed_at: float
    outputs_json: str
    error: str
    def __init__(self, source_id: _Optional[str] = ..., frame_id: _Optional[int] = ..., captured_at: _Optional[float] = ..., completed_at: _Optional[float] = ..., outputs_json: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class PushFramesRequest(_message.Message):
    __slots__ = ("pipeline_id", "source_id", "image", "captured_at")
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    source_id: str
    image: bytes
    captured_at: float
    def __init__(self, pipeline_id: _Optional[str] = ..., source_id: _Optional[str] = ..., image: _Optional[bytes] = ..., captured_at: _Optional[float] = ...) -> None: ...

class PushFramesResponse(_message.Message):
    __slots__ = ("frame_id",)
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    def __init__(self, frame_id: _Optional[int] = ...) -> None: ...
