from fleet.v1 import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RawImage(_message.Message):
    __slots__ = ("data", "width", "height", "channels", "color_order")
    DATA_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    COLOR_ORDER_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    width: int
    height: int
    channels: int
    color_order: _model_pb2.ColorOrder
    def __init__(self, data: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., channels: _Optional[int] = ..., color_order: _Optional[_Union[_model_pb2.ColorOrder, str]] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("encoded", "url", "raw")
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    encoded: bytes
    url: str
    raw: RawImage
    def __init__(self, encoded: _Optional[bytes] = ..., url: _Optional[str] = ..., raw: _Optional[_Union[RawImage, _Mapping]] = ...) -> None: ...

class InferenceParameters(_message.Message):
    __slots__ = ("confidence", "iou_threshold", "class_agnostic_nms", "max_detections", "class_filter", "visualize", "max_candidates")
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    IOU_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CLASS_AGNOSTIC_NMS_FIELD_NUMBER: _ClassVar[int]
    MAX_DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    CLASS_FILTER_FIELD_NUMBER: _ClassVar[int]
    VISUALIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    confidence: float
    iou_threshold: float
    class_agnostic_nms: bool
    max_detections: int
    class_filter: _containers.RepeatedScalarFieldContainer[str]
    visualize: bool
    max_candidates: int
    def __init__(self, confidence: _Optional[float] = ..., iou_threshold: _Optional[float] = ..., class_agnostic_nms: bool = ..., max_detections: _Optional[int] = ..., class_filter: _Optional[_Iterable[str]] = ..., visualize: bool = ..., max_candidates: _Optional[int] = ...) -> None: ...

class Detection(_message.Message):
    __slots__ = ("x", "y", "width", "height", "confidence", "class_name", "class_id", "detection_id")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    DETECTION_ID_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    width: float
    height: float
    confidence: float
    class_name: str
    class_id: int
    detection_id: str
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., width: _Optional[float] = ..., height: _Optional[float] = ..., confidence: _Optional[float] = ..., class_name: _Optional[str] = ..., class_id: _Optional[int] = ..., detection_id: _Optional[str] = ...) -> None: ...

class ObjectDetectionResult(_message.Message):
    __slots__ = ("detections",)
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    def __init__(self, detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class SegmentedInstance(_message.Message):
    __slots__ = ("detection", "points")
    DETECTION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    detection: Detection
    points: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, detection: _Optional[_Union[Detection, _Mapping]] = ..., points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class InstanceSegmentationResult(_message.Message):
    __slots__ = ("instances",)
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    instances: _containers.RepeatedCompositeFieldContainer[SegmentedInstance]
    def __init__(self, instances: _Optional[_Iterable[_Union[SegmentedInstance, _Mapping]]] = ...) -> None: ...

class ClassPrediction(_message.Message):
    __slots__ = ("class_name", "class_id", "confidence")
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    class_name: str
    class_id: int
    confidence: float
    def __init__(self, class_name: _Optional[str] = ..., class_id: _Optional[int] = ..., confidence: _Optional[float] = ...) -> None: ...

class ClassificationResult(_message.Message):
    __slots__ = ("top_class", "top_class_id", "top_confidence", "predictions", "multi_label", "predicted_classes")
    TOP_CLASS_FIELD_NUMBER: _ClassVar[int]
    TOP_CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    TOP_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    MULTI_LABEL_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_CLASSES_FIELD_NUMBER: _ClassVar[int]
    top_class: str
    top_class_id: int
    top_confidence: float
    predictions: _containers.RepeatedCompositeFieldContainer[ClassPrediction]
    multi_label: bool
    predicted_classes: _containers.RepeatedCompositeFieldContainer[ClassPrediction]
    def __init__(self, top_class: _Optional[str] = ..., top_class_id: _Optional[int] = ..., top_confidence: _Optional[float] = ..., predictions: _Optional[_Iterable[_Union[ClassPrediction, _Mapping]]] = ..., multi_label: bool = ..., predicted_classes: _Optional[_Iterable[_Union[ClassPrediction, _Mapping]]] = ...) -> None: ...

class StageTimings(_message.Message):
    __slots__ = ("decode_ms", "preprocess_ms", "queue_ms", "inference_ms", "postprocess_ms", "worker_ms", "gateway_ms", "batch_size", "cold_start")
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    PREPROCESS_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    POSTPROCESS_MS_FIELD_NUMBER: _ClassVar[int]
    WORKER_MS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_MS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    COLD_START_FIELD_NUMBER: _ClassVar[int]
    decode_ms: float
    preprocess_ms: float
    queue_ms: float
    inference_ms: float
    postprocess_ms: float
    worker_ms: float
    gateway_ms: float
    batch_size: int
    cold_start: bool
    def __init__(self, decode_ms: _Optional[float] = ..., preprocess_ms: _Optional[float] = ..., queue_ms: _Optional[float] = ..., inference_ms: _Optional[float] = ..., postprocess_ms: _Optional[float] = ..., worker_ms: _Optional[float] = ..., gateway_ms: _Optional[float] = ..., batch_size: _Optional[int] = ..., cold_start: bool = ...) -> None: ...

class InferRequest(_message.Message):
    __slots__ = ("model_id", "image", "parameters", "bypass_cache")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    BYPASS_CACHE_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    image: Image
    parameters: InferenceParameters
    bypass_cache: bool
    def __init__(self, model_id: _Optional[str] = ..., image: _Optional[_Union[Image, _Mapping]] = ..., parameters: _Optional[_Union[InferenceParameters, _Mapping]] = ..., bypass_cache: bool = ...) -> None: ...

class InferResponse(_message.Message):
    __slots__ = ("inference_id", "model_id", "task_type", "image_width", "image_height", "object_detection", "classification", "instance_segmentation", "visualization", "timings", "worker_id", "cached")
    INFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OBJECT_DETECTION_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    VISUALIZATION_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    inference_id: str
    model_id: str
    task_type: _model_pb2.TaskType
    image_width: int
    image_height: int
    object_detection: ObjectDetectionResult
    classification: ClassificationResult
    instance_segmentation: InstanceSegmentationResult
    visualization: bytes
    timings: StageTimings
    worker_id: str
    cached: bool
    def __init__(self, inference_id: _Optional[str] = ..., model_id: _Optional[str] = ..., task_type: _Optional[_Union[_model_pb2.TaskType, str]] = ..., image_width: _Optional[int] = ..., image_height: _Optional[int] = ..., object_detection: _Optional[_Union[ObjectDetectionResult, _Mapping]] = ..., classification: _Optional[_Union[ClassificationResult, _Mapping]] = ..., instance_segmentation: _Optional[_Union[InstanceSegmentationResult, _Mapping]] = ..., visualization: _Optional[bytes] = ..., timings: _Optional[_Union[StageTimings, _Mapping]] = ..., worker_id: _Optional[str] = ..., cached: bool = ...) -> None: ...

class ErrorStatus(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
