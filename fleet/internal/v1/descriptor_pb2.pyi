from fleet.v1 import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResizeMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESIZE_MODE_UNSPECIFIED: _ClassVar[ResizeMode]
    RESIZE_MODE_LETTERBOX: _ClassVar[ResizeMode]
    RESIZE_MODE_STRETCH: _ClassVar[ResizeMode]
    RESIZE_MODE_CENTER_CROP: _ClassVar[ResizeMode]

class Interpolation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERPOLATION_UNSPECIFIED: _ClassVar[Interpolation]
    INTERPOLATION_LINEAR: _ClassVar[Interpolation]
    INTERPOLATION_AREA: _ClassVar[Interpolation]
    INTERPOLATION_CUBIC: _ClassVar[Interpolation]
    INTERPOLATION_LANCZOS: _ClassVar[Interpolation]
    INTERPOLATION_NEAREST: _ClassVar[Interpolation]

class LetterboxAnchor(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LETTERBOX_ANCHOR_UNSPECIFIED: _ClassVar[LetterboxAnchor]
    LETTERBOX_ANCHOR_CENTER: _ClassVar[LetterboxAnchor]
    LETTERBOX_ANCHOR_TOP_LEFT: _ClassVar[LetterboxAnchor]
RESIZE_MODE_UNSPECIFIED: ResizeMode
RESIZE_MODE_LETTERBOX: ResizeMode
RESIZE_MODE_STRETCH: ResizeMode
RESIZE_MODE_CENTER_CROP: ResizeMode
INTERPOLATION_UNSPECIFIED: Interpolation
INTERPOLATION_LINEAR: Interpolation
INTERPOLATION_AREA: Interpolation
INTERPOLATION_CUBIC: Interpolation
INTERPOLATION_LANCZOS: Interpolation
INTERPOLATION_NEAREST: Interpolation
LETTERBOX_ANCHOR_UNSPECIFIED: LetterboxAnchor
LETTERBOX_ANCHOR_CENTER: LetterboxAnchor
LETTERBOX_ANCHOR_TOP_LEFT: LetterboxAnchor

class InputSpec(_message.Message):
    __slots__ = ("name", "width", "height", "resize_mode", "color_order", "pad_value", "scale", "mean", "std", "interpolation", "anchor")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    RESIZE_MODE_FIELD_NUMBER: _ClassVar[int]
    COLOR_ORDER_FIELD_NUMBER: _ClassVar[int]
    PAD_VALUE_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    INTERPOLATION_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    width: int
    height: int
    resize_mode: ResizeMode
    color_order: _model_pb2.ColorOrder
    pad_value: int
    scale: float
    mean: _containers.RepeatedScalarFieldContainer[float]
    std: _containers.RepeatedScalarFieldContainer[float]
    interpolation: Interpolation
    anchor: LetterboxAnchor
    def __init__(self, name: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., resize_mode: _Optional[_Union[ResizeMode, str]] = ..., color_order: _Optional[_Union[_model_pb2.ColorOrder, str]] = ..., pad_value: _Optional[int] = ..., scale: _Optional[float] = ..., mean: _Optional[_Iterable[float]] = ..., std: _Optional[_Iterable[float]] = ..., interpolation: _Optional[_Union[Interpolation, str]] = ..., anchor: _Optional[_Union[LetterboxAnchor, str]] = ...) -> None: ...

class TaskDefaults(_message.Message):
    __slots__ = ("confidence", "iou_threshold", "max_detections", "class_agnostic_nms", "top_k")
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    IOU_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    CLASS_AGNOSTIC_NMS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    confidence: float
    iou_threshold: float
    max_detections: int
    class_agnostic_nms: bool
    top_k: int
    def __init__(self, confidence: _Optional[float] = ..., iou_threshold: _Optional[float] = ..., max_detections: _Optional[int] = ..., class_agnostic_nms: bool = ..., top_k: _Optional[int] = ...) -> None: ...

class KeypointSpec(_message.Message):
    __slots__ = ("names", "skeleton", "dims")
    class Edge(_message.Message):
        __slots__ = ("start", "end")
        START_FIELD_NUMBER: _ClassVar[int]
        END_FIELD_NUMBER: _ClassVar[int]
        start: int
        end: int
        def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...
    NAMES_FIELD_NUMBER: _ClassVar[int]
    SKELETON_FIELD_NUMBER: _ClassVar[int]
    DIMS_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    skeleton: _containers.RepeatedCompositeFieldContainer[KeypointSpec.Edge]
    dims: int
    def __init__(self, names: _Optional[_Iterable[str]] = ..., skeleton: _Optional[_Iterable[_Union[KeypointSpec.Edge, _Mapping]]] = ..., dims: _Optional[int] = ...) -> None: ...

class ModelDescriptor(_message.Message):
    __slots__ = ("model_id", "task_type", "model_type", "artifact_uri", "sha256", "class_names", "input", "workspace", "output_names", "max_batch_size", "multi_label", "defaults", "aliases", "public", "size_bytes", "metadata", "keypoints", "spec_json", "task")
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
    ARTIFACT_URI_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_NAMES_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MULTI_LABEL_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    task_type: _model_pb2.TaskType
    model_type: str
    artifact_uri: str
    sha256: str
    class_names: _containers.RepeatedScalarFieldContainer[str]
    input: InputSpec
    workspace: str
    output_names: _containers.RepeatedScalarFieldContainer[str]
    max_batch_size: int
    multi_label: bool
    defaults: TaskDefaults
    aliases: _containers.RepeatedScalarFieldContainer[str]
    public: bool
    size_bytes: int
    metadata: _containers.ScalarMap[str, str]
    keypoints: KeypointSpec
    spec_json: str
    task: str
    def __init__(self, model_id: _Optional[str] = ..., task_type: _Optional[_Union[_model_pb2.TaskType, str]] = ..., model_type: _Optional[str] = ..., artifact_uri: _Optional[str] = ..., sha256: _Optional[str] = ..., class_names: _Optional[_Iterable[str]] = ..., input: _Optional[_Union[InputSpec, _Mapping]] = ..., workspace: _Optional[str] = ..., output_names: _Optional[_Iterable[str]] = ..., max_batch_size: _Optional[int] = ..., multi_label: bool = ..., defaults: _Optional[_Union[TaskDefaults, _Mapping]] = ..., aliases: _Optional[_Iterable[str]] = ..., public: bool = ..., size_bytes: _Optional[int] = ..., metadata: _Optional[_Mapping[str, str]] = ..., keypoints: _Optional[_Union[KeypointSpec, _Mapping]] = ..., spec_json: _Optional[str] = ..., task: _Optional[str] = ...) -> None: ...
