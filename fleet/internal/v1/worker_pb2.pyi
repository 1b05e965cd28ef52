from fleet.internal.v1 import descriptor_pb2 as _descriptor_pb2
from fleet.v1 import inference_pb2 as _inference_pb2
from fleet.v1 import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelWorkerServiceInferRequest(_message.Message):
    __slots__ = ("model", "request")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    model: _descriptor_pb2.ModelDescriptor
    request: _inference_pb2.InferRequest
    def __init__(self, model: _Optional[_Union[_descriptor_pb2.ModelDescriptor, _Mapping]] = ..., request: _Optional[_Union[_inference_pb2.InferRequest, _Mapping]] = ...) -> None: ...

class ModelWorkerServiceInferResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _inference_pb2.InferResponse
    def __init__(self, response: _Optional[_Union[_inference_pb2.InferResponse, _Mapping]] = ...) -> None: ...

class ModelWorkerServiceInferBatchRequest(_message.Message):
    __slots__ = ("model", "request")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    model: _descriptor_pb2.ModelDescriptor
    request: _inference_pb2.InferBatchRequest
    def __init__(self, model: _Optional[_Union[_descriptor_pb2.ModelDescriptor, _Mapping]] = ..., request: _Optional[_Union[_inference_pb2.InferBatchRequest, _Mapping]] = ...) -> None: ...

class ModelWorkerServiceInferBatchResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _inference_pb2.InferBatchResponse
    def __init__(self, response: _Optional[_Union[_inference_pb2.InferBatchResponse, _Mapping]] = ...) -> None: ...

class LoadModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _descriptor_pb2.ModelDescriptor
    def __init__(self, model: _Optional[_Union[_descriptor_pb2.ModelDescriptor, _Mapping]] = ...) -> None: ...

class LoadModelResponse(_message.Message):
    __slots__ = ("model", "already_loaded")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ALREADY_LOADED_FIELD_NUMBER: _ClassVar[int]
    model: _model_pb2.LoadedModel
    already_loaded: bool
    def __init__(self, model: _Optional[_Union[_model_pb2.LoadedModel, _Mapping]] = ..., already_loaded: bool = ...) -> None: ...

class UnloadModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class UnloadModelResponse(_message.Message):
    __slots__ = ("unloaded",)
    UNLOADED_FIELD_NUMBER: _ClassVar[int]
    unloaded: bool
    def __init__(self, unloaded: bool = ...) -> None: ...

class ModelWorkerServiceClearModelsRequest(_message.Message):
    __slots__ = ("workspace",)
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    def __init__(self, workspace: _Optional[str] = ...) -> None: ...

class ModelWorkerServiceClearModelsResponse(_message.Message):
    __slots__ = ("model_ids",)
    MODEL_IDS_FIELD_NUMBER: _ClassVar[int]
    model_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelWorkerServiceDescribeModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelWorkerServiceDescribeModelsResponse(_message.Message):
    __slots__ = ("models", "load")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_model_pb2.LoadedModel]
    load: _model_pb2.WorkerLoad
    def __init__(self, models: _Optional[_Iterable[_Union[_model_pb2.LoadedModel, _Mapping]]] = ..., load: _Optional[_Union[_model_pb2.WorkerLoad, _Mapping]] = ...) -> None: ...
