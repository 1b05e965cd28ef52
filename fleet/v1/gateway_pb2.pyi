from fleet.v1 import inference_pb2 as _inference_pb2
from fleet.v1 import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InferStreamRequest(_message.Message):
    __slots__ = ("correlation_id", "request")
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    correlation_id: str
    request: _inference_pb2.InferRequest
    def __init__(self, correlation_id: _Optional[str] = ..., request: _Optional[_Union[_inference_pb2.InferRequest, _Mapping]] = ...) -> None: ...

class InferStreamResponse(_message.Message):
    __slots__ = ("correlation_id", "response", "error")
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    correlation_id: str
    response: _inference_pb2.InferResponse
    error: _inference_pb2.ErrorStatus
    def __init__(self, correlation_id: _Optional[str] = ..., response: _Optional[_Union[_inference_pb2.InferResponse, _Mapping]] = ..., error: _Optional[_Union[_inference_pb2.ErrorStatus, _Mapping]] = ...) -> None: ...

class AddModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class AddModelResponse(_message.Message):
    __slots__ = ("model", "worker_ids")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WORKER_IDS_FIELD_NUMBER: _ClassVar[int]
    model: _model_pb2.ModelSummary
    worker_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[_Union[_model_pb2.ModelSummary, _Mapping]] = ..., worker_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class RemoveModelResponse(_message.Message):
    __slots__ = ("worker_ids",)
    WORKER_IDS_FIELD_NUMBER: _ClassVar[int]
    worker_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, worker_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ClearModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClearModelsResponse(_message.Message):
    __slots__ = ("unloaded",)
    UNLOADED_FIELD_NUMBER: _ClassVar[int]
    unloaded: int
    def __init__(self, unloaded: _Optional[int] = ...) -> None: ...

class DescribeModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_model_pb2.LoadedModel]
    def __init__(self, models: _Optional[_Iterable[_Union[_model_pb2.LoadedModel, _Mapping]]] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetServerInfoResponse(_message.Message):
    __slots__ = ("name", "version", "workers")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    workers: _containers.RepeatedCompositeFieldContainer[_model_pb2.WorkerLoad]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., workers: _Optional[_Iterable[_Union[_model_pb2.WorkerLoad, _Mapping]]] = ...) -> None: ...
