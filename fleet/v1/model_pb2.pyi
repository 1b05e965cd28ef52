from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_TYPE_UNSPECIFIED: _ClassVar[TaskType]
    TASK_TYPE_OBJECT_DETECTION: _ClassVar[TaskType]
    TASK_TYPE_CLASSIFICATION: _ClassVar[TaskType]
    TASK_TYPE_INSTANCE_SEGMENTATION: _ClassVar[TaskType]
    TASK_TYPE_KEYPOINT_DETECTION: _ClassVar[TaskType]
    TASK_TYPE_ORIENTED_DETECTION: _ClassVar[TaskType]
    TASK_TYPE_EMBEDDING: _ClassVar[TaskType]
    TASK_TYPE_PROMPTABLE_SEGMENTATION: _ClassVar[TaskType]
    TASK_TYPE_OCR: _ClassVar[TaskType]

class ColorOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLOR_ORDER_UNSPECIFIED: _ClassVar[ColorOrder]
    COLOR_ORDER_RGB: _ClassVar[ColorOrder]
    COLOR_ORDER_BGR: _ClassVar[ColorOrder]
TASK_TYPE_UNSPECIFIED: TaskType
TASK_TYPE_OBJECT_DETECTION: TaskType
TASK_TYPE_CLASSIFICATION: TaskType
TASK_TYPE_INSTANCE_SEGMENTATION: TaskType
TASK_TYPE_KEYPOINT_DETECTION: TaskType
TASK_TYPE_ORIENTED_DETECTION: TaskType
TASK_TYPE_EMBEDDING: TaskType
TASK_TYPE_PROMPTABLE_SEGMENTATION: TaskType
TASK_TYPE_OCR: TaskType
COLOR_ORDER_UNSPECIFIED: ColorOrder
COLOR_ORDER_RGB: ColorOrder
COLOR_ORDER_BGR: ColorOrder

class ModelSummary(_message.Message):
    __slots__ = ("model_id", "task_type", "model_type", "class_names", "input_width", "input_height", "aliases", "public", "max_batch_size", "size_bytes", "metadata", "task", "inputs")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    INPUT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    INPUT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    task_type: TaskType
    model_type: str
    class_names: _containers.RepeatedScalarFieldContainer[str]
    input_width: int
    input_height: int
    aliases: _containers.RepeatedScalarFieldContainer[str]
    public: bool
    max_batch_size: int
    size_bytes: int
    metadata: _containers.ScalarMap[str, str]
    task: str
    inputs: _containers.RepeatedCompositeFieldContainer[InputDeclaration]
    def __init__(self, model_id: _Optional[str] = ..., task_type: _Optional[_Union[TaskType, str]] = ..., model_type: _Optional[str] = ..., class_names: _Optional[_Iterable[str]] = ..., input_width: _Optional[int] = ..., input_height: _Optional[int] = ..., aliases: _Optional[_Iterable[str]] = ..., public: bool = ..., max_batch_size: _Optional[int] = ..., size_bytes: _Optional[int] = ..., metadata: _Optional[_Mapping[str, str]] = ..., task: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[InputDeclaration, _Mapping]]] = ...) -> None: ...

class InputDeclaration(_message.Message):
    __slots__ = ("name", "kind", "required", "max_items")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    required: bool
    max_items: int
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., required: bool = ..., max_items: _Optional[int] = ...) -> None: ...

class LoadedModel(_message.Message):
    __slots__ = ("model_id", "task_type", "model_type", "worker_id", "size_bytes", "loaded_at", "last_used_at", "request_count", "load_seconds", "execution_provider", "pinned", "sha256", "workspace", "in_flight", "queued", "requests_per_second", "task")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_COUNT_FIELD_NUMBER: _ClassVar[int]
    LOAD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    task_type: TaskType
    model_type: str
    worker_id: str
    size_bytes: int
    loaded_at: _timestamp_pb2.Timestamp
    last_used_at: _timestamp_pb2.Timestamp
    request_count: int
    load_seconds: float
    execution_provider: str
    pinned: bool
    sha256: str
    workspace: str
    in_flight: int
    queued: int
    requests_per_second: float
    task: str
    def __init__(self, model_id: _Optional[str] = ..., task_type: _Optional[_Union[TaskType, str]] = ..., model_type: _Optional[str] = ..., worker_id: _Optional[str] = ..., size_bytes: _Optional[int] = ..., loaded_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., request_count: _Optional[int] = ..., load_seconds: _Optional[float] = ..., execution_provider: _Optional[str] = ..., pinned: bool = ..., sha256: _Optional[str] = ..., workspace: _Optional[str] = ..., in_flight: _Optional[int] = ..., queued: _Optional[int] = ..., requests_per_second: _Optional[float] = ..., task: _Optional[str] = ...) -> None: ...

class WorkerLoad(_message.Message):
    __slots__ = ("worker_id", "address", "loaded_models", "max_models", "loaded_bytes", "capacity_bytes", "in_flight", "queued", "execution_providers", "memory_free_fraction", "draining")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LOADED_MODELS_FIELD_NUMBER: _ClassVar[int]
    MAX_MODELS_FIELD_NUMBER: _ClassVar[int]
    LOADED_BYTES_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FREE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    address: str
    loaded_models: int
    max_models: int
    loaded_bytes: int
    capacity_bytes: int
    in_flight: int
    queued: int
    execution_providers: _containers.RepeatedScalarFieldContainer[str]
    memory_free_fraction: float
    draining: bool
    def __init__(self, worker_id: _Optional[str] = ..., address: _Optional[str] = ..., loaded_models: _Optional[int] = ..., max_models: _Optional[int] = ..., loaded_bytes: _Optional[int] = ..., capacity_bytes: _Optional[int] = ..., in_flight: _Optional[int] = ..., queued: _Optional[int] = ..., execution_providers: _Optional[_Iterable[str]] = ..., memory_free_fraction: _Optional[float] = ..., draining: bool = ...) -> None: ...

class ModelCopy(_message.Message):
    __slots__ = ("worker_id", "in_flight", "queued", "requests_per_second", "outstanding")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    in_flight: int
    queued: int
    requests_per_second: float
    outstanding: float
    def __init__(self, worker_id: _Optional[str] = ..., in_flight: _Optional[int] = ..., queued: _Optional[int] = ..., requests_per_second: _Optional[float] = ..., outstanding: _Optional[float] = ...) -> None: ...

class ModelPlacement(_message.Message):
    __slots__ = ("model_id", "copies", "min_copies", "max_copies")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    COPIES_FIELD_NUMBER: _ClassVar[int]
    MIN_COPIES_FIELD_NUMBER: _ClassVar[int]
    MAX_COPIES_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    copies: _containers.RepeatedCompositeFieldContainer[ModelCopy]
    min_copies: int
    max_copies: int
    def __init__(self, model_id: _Optional[str] = ..., copies: _Optional[_Iterable[_Union[ModelCopy, _Mapping]]] = ..., min_copies: _Optional[int] = ..., max_copies: _Optional[int] = ...) -> None: ...
