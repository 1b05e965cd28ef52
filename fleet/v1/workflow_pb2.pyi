from fleet.v1 import inference_pb2 as _inference_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StoredWorkflow(_message.Message):
    __slots__ = ("workspace", "workflow_id", "version_id")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    workflow_id: str
    version_id: str
    def __init__(self, workspace: _Optional[str] = ..., workflow_id: _Optional[str] = ..., version_id: _Optional[str] = ...) -> None: ...

class WorkflowImages(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[_inference_pb2.Image]
    def __init__(self, images: _Optional[_Iterable[_Union[_inference_pb2.Image, _Mapping]]] = ...) -> None: ...

class RunWorkflowRequest(_message.Message):
    __slots__ = ("definition", "stored", "images", "parameters", "excluded_fields")
    class ImagesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: WorkflowImages
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[WorkflowImages, _Mapping]] = ...) -> None: ...
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    definition: _struct_pb2.Struct
    stored: StoredWorkflow
    images: _containers.MessageMap[str, WorkflowImages]
    parameters: _struct_pb2.Struct
    excluded_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, definition: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., stored: _Optional[_Union[StoredWorkflow, _Mapping]] = ..., images: _Optional[_Mapping[str, WorkflowImages]] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., excluded_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class ValidateWorkflowRequest(_message.Message):
    __slots__ = ("definition", "stored")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    definition: _struct_pb2.Struct
    stored: StoredWorkflow
    def __init__(self, definition: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., stored: _Optional[_Union[StoredWorkflow, _Mapping]] = ...) -> None: ...

class WorkflowInput(_message.Message):
    __slots__ = ("name", "image", "required")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    name: str
    image: bool
    required: bool
    def __init__(self, name: _Optional[str] = ..., image: bool = ..., required: bool = ...) -> None: ...

class ValidateWorkflowResponse(_message.Message):
    __slots__ = ("version_id", "inputs")
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    version_id: str
    inputs: _containers.RepeatedCompositeFieldContainer[WorkflowInput]
    def __init__(self, version_id: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[WorkflowInput, _Mapping]]] = ...) -> None: ...

class WorkflowValue(_message.Message):
    __slots__ = ("json", "image")
    JSON_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    json: _struct_pb2.Value
    image: bytes
    def __init__(self, json: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., image: _Optional[bytes] = ...) -> None: ...

class WorkflowResult(_message.Message):
    __slots__ = ("fields",)
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: WorkflowValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[WorkflowValue, _Mapping]] = ...) -> None: ...
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.MessageMap[str, WorkflowValue]
    def __init__(self, fields: _Optional[_Mapping[str, WorkflowValue]] = ...) -> None: ...

class RunWorkflowResponse(_message.Message):
    __slots__ = ("outputs", "gateway_ms")
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_MS_FIELD_NUMBER: _ClassVar[int]
    outputs: _containers.RepeatedCompositeFieldContainer[WorkflowResult]
    gateway_ms: float
    def __init__(self, outputs: _Optional[_Iterable[_Union[WorkflowResult, _Mapping]]] = ..., gateway_ms: _Optional[float] = ...) -> None: ...

class RunWorkflowStreamRequest(_message.Message):
    __slots__ = ("correlation_id", "request")
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    correlation_id: str
    request: RunWorkflowRequest
    def __init__(self, correlation_id: _Optional[str] = ..., request: _Optional[_Union[RunWorkflowRequest, _Mapping]] = ...) -> None: ...

class RunWorkflowStreamResponse(_message.Message):
    __slots__ = ("correlation_id", "response", "error")
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    correlation_id: str
    response: RunWorkflowResponse
    error: _inference_pb2.ErrorStatus
    def __init__(self, correlation_id: _Optional[str] = ..., response: _Optional[_Union[RunWorkflowResponse, _Mapping]] = ..., error: _Optional[_Union[_inference_pb2.ErrorStatus, _Mapping]] = ...) -> None: ...
