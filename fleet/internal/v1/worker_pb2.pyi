from fleet.internal.v1 import descriptor_pb2 as _descriptor_pb2
from fleet.v1 import inference_pb2 as _inference_pb2
from fleet.v1 import model_pb2 as _model_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_BACKGROUND: _ClassVar[Priority]
PRIORITY_UNSPECIFIED: Priority
PRIORITY_BACKGROUND: Priority

class ModelWorkerServiceInferRequest(_message.Message):
    __slots__ = ("model", "request", "require_loaded", "priority")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_LOADED_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    model: _descriptor_pb2.ModelDescriptor
    request: _inference_pb2.InferRequest
    require_loaded: bool
    priority: Priority
    def __init__(self, model: _Optional[_Union[_descriptor_pb2.ModelDescriptor, _Mapping]] = ..., request: _Optional[_Union[_inference_pb2.InferRequest, _Mapping]] = ..., require_loaded: bool = ..., priority: _Optional[_Union[Priority, str]] = ...) -> None: ...

class ModelWorkerServiceInferResponse(_message.Message):
    __slots__ = ("response", "not_loaded")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    NOT_LOADED_FIELD_NUMBER: _ClassVar[int]
    response: _inference_pb2.InferResponse
    not_loaded: bool
    def __init__(self, response: _Optional[_Union[_inference_pb2.InferResponse, _Mapping]] = ..., not_loaded: bool = ...) -> None: ...

class ModelWorkerServiceInferBatchRequest(_message.Message):
    __slots__ = ("model", "request", "require_loaded", "priority")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_LOADED_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    model: _descriptor_pb2.ModelDescriptor
    request: _inference_pb2.InferBatchRequest
    require_loaded: bool
    priority: Priority
    def __init__(self, model: _Optional[_Union[_descriptor_pb2.ModelDescriptor, _Mapping]] = ..., request: _Optional[_Union[_inference_pb2.InferBatchRequest, _Mapping]] = ..., require_loaded: bool = ..., priority: _Optional[_Union[Priority, str]] = ...) -> None: ...

class ModelWorkerServiceInferBatchResponse(_message.Message):
    __slots__ = ("response", "not_loaded")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    NOT_LOADED_FIELD_NUMBER: _ClassVar[int]
    response: _inference_pb2.InferBatchResponse
    not_loaded: bool
    def __init__(self, response: _Optional[_Union[_inference_pb2.InferBatchResponse, _Mapping]] = ..., not_loaded: bool = ...) -> None: ...

class CropPlan(_message.Message):
    __slots__ = ("detector", "request", "classifier", "classifier_parameters", "max_crops", "priority")
    DETECTOR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    MAX_CROPS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    detector: _descriptor_pb2.ModelDescriptor
    request: _inference_pb2.InferRequest
    classifier: _descriptor_pb2.ModelDescriptor
    classifier_parameters: _inference_pb2.InferenceParameters
    max_crops: int
    priority: Priority
    def __init__(self, detector: _Optional[_Union[_descriptor_pb2.ModelDescriptor, _Mapping]] = ..., request: _Optional[_Union[_inference_pb2.InferRequest, _Mapping]] = ..., classifier: _Optional[_Union[_descriptor_pb2.ModelDescriptor, _Mapping]] = ..., classifier_parameters: _Optional[_Union[_inference_pb2.InferenceParameters, _Mapping]] = ..., max_crops: _Optional[int] = ..., priority: _Optional[_Union[Priority, str]] = ...) -> None: ...

class ModelWorkerServiceInferCropsRequest(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: CropPlan
    def __init__(self, plan: _Optional[_Union[CropPlan, _Mapping]] = ...) -> None: ...

class ModelWorkerServiceInferCropsResponse(_message.Message):
    __slots__ = ("detections", "crops", "crops_skipped", "not_loaded", "not_loaded_models")
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    CROPS_FIELD_NUMBER: _ClassVar[int]
    CROPS_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    NOT_LOADED_FIELD_NUMBER: _ClassVar[int]
    NOT_LOADED_MODELS_FIELD_NUMBER: _ClassVar[int]
    detections: _inference_pb2.InferResponse
    crops: _inference_pb2.InferBatchResponse
    crops_skipped: bool
    not_loaded: bool
    not_loaded_models: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, detections: _Optional[_Union[_inference_pb2.InferResponse, _Mapping]] = ..., crops: _Optional[_Union[_inference_pb2.InferBatchResponse, _Mapping]] = ..., crops_skipped: bool = ..., not_loaded: bool = ..., not_loaded_models: _Optional[_Iterable[str]] = ...) -> None: ...

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

class WorkerState(_message.Message):
    __slots__ = ("worker_id", "address", "boot_id", "sequence", "published_at", "interval_seconds", "draining", "max_models", "loaded_bytes", "capacity_bytes", "memory_free_fraction", "execution_providers", "models", "outstanding", "outstanding_low", "outstanding_high", "load_window_seconds", "release_window_seconds", "loads_in_progress", "models_from", "models_removed", "models_added", "models_changed", "models_order", "models_loading")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    MAX_MODELS_FIELD_NUMBER: _ClassVar[int]
    LOADED_BYTES_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FREE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_LOW_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_HIGH_FIELD_NUMBER: _ClassVar[int]
    LOAD_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RELEASE_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LOADS_IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FROM_FIELD_NUMBER: _ClassVar[int]
    MODELS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    MODELS_ADDED_FIELD_NUMBER: _ClassVar[int]
    MODELS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    MODELS_ORDER_FIELD_NUMBER: _ClassVar[int]
    MODELS_LOADING_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    address: str
    boot_id: str
    sequence: int
    published_at: _timestamp_pb2.Timestamp
    interval_seconds: float
    draining: bool
    max_models: int
    loaded_bytes: int
    capacity_bytes: int
    memory_free_fraction: float
    execution_providers: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedCompositeFieldContainer[ModelLoad]
    outstanding: float
    outstanding_low: float
    outstanding_high: float
    load_window_seconds: float
    release_window_seconds: float
    loads_in_progress: int
    models_from: int
    models_removed: _containers.RepeatedScalarFieldContainer[int]
    models_added: _containers.RepeatedCompositeFieldContainer[ModelLoad]
    models_changed: _containers.RepeatedCompositeFieldContainer[ModelLoadChange]
    models_order: _containers.RepeatedScalarFieldContainer[int]
    models_loading: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, worker_id: _Optional[str] = ..., address: _Optional[str] = ..., boot_id: _Optional[str] = ..., sequence: _Optional[int] = ..., published_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., interval_seconds: _Optional[float] = ..., draining: bool = ..., max_models: _Optional[int] = ..., loaded_bytes: _Optional[int] = ..., capacity_bytes: _Optional[int] = ..., memory_free_fraction: _Optional[float] = ..., execution_providers: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[_Union[ModelLoad, _Mapping]]] = ..., outstanding: _Optional[float] = ..., outstanding_low: _Optional[float] = ..., outstanding_high: _Optional[float] = ..., load_window_seconds: _Optional[float] = ..., release_window_seconds: _Optional[float] = ..., loads_in_progress: _Optional[int] = ..., models_from: _Optional[int] = ..., models_removed: _Optional[_Iterable[int]] = ..., models_added: _Optional[_Iterable[_Union[ModelLoad, _Mapping]]] = ..., models_changed: _Optional[_Iterable[_Union[ModelLoadChange, _Mapping]]] = ..., models_order: _Optional[_Iterable[int]] = ..., models_loading: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelLoadChange(_message.Message):
    __slots__ = ("position", "in_flight", "queued", "requests_per_second_x100", "outstanding_x100", "outstanding_low_x100", "outstanding_high_x100", "idle_deciseconds", "measured_deciseconds")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_SECOND_X100_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_X100_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_LOW_X100_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_HIGH_X100_FIELD_NUMBER: _ClassVar[int]
    IDLE_DECISECONDS_FIELD_NUMBER: _ClassVar[int]
    MEASURED_DECISECONDS_FIELD_NUMBER: _ClassVar[int]
    position: int
    in_flight: int
    queued: int
    requests_per_second_x100: int
    outstanding_x100: int
    outstanding_low_x100: int
    outstanding_high_x100: int
    idle_deciseconds: int
    measured_deciseconds: int
    def __init__(self, position: _Optional[int] = ..., in_flight: _Optional[int] = ..., queued: _Optional[int] = ..., requests_per_second_x100: _Optional[int] = ..., outstanding_x100: _Optional[int] = ..., outstanding_low_x100: _Optional[int] = ..., outstanding_high_x100: _Optional[int] = ..., idle_deciseconds: _Optional[int] = ..., measured_deciseconds: _Optional[int] = ...) -> None: ...

class ModelLoad(_message.Message):
    __slots__ = ("model_id", "sha256", "workspace", "size_bytes", "pinned", "in_flight", "queued", "requests_per_second", "outstanding", "outstanding_low", "outstanding_high", "measured_seconds", "idle_seconds")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_LOW_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_HIGH_FIELD_NUMBER: _ClassVar[int]
    MEASURED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    sha256: str
    workspace: str
    size_bytes: int
    pinned: bool
    in_flight: int
    queued: int
    requests_per_second: float
    outstanding: float
    outstanding_low: float
    outstanding_high: float
    measured_seconds: float
    idle_seconds: float
    def __init__(self, model_id: _Optional[str] = ..., sha256: _Optional[str] = ..., workspace: _Optional[str] = ..., size_bytes: _Optional[int] = ..., pinned: bool = ..., in_flight: _Optional[int] = ..., queued: _Optional[int] = ..., requests_per_second: _Optional[float] = ..., outstanding: _Optional[float] = ..., outstanding_low: _Optional[float] = ..., outstanding_high: _Optional[float] = ..., measured_seconds: _Optional[float] = ..., idle_seconds: _Optional[float] = ...) -> None: ...
