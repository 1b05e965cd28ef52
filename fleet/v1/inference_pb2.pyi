from fleet.v1 import model_pb2 as _model_pb2
from google.protobuf import any_pb2 as _any_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MaskFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MASK_FORMAT_UNSPECIFIED: _ClassVar[MaskFormat]
    MASK_FORMAT_POLYGONS: _ClassVar[MaskFormat]
    MASK_FORMAT_RLE: _ClassVar[MaskFormat]
MASK_FORMAT_UNSPECIFIED: MaskFormat
MASK_FORMAT_POLYGONS: MaskFormat
MASK_FORMAT_RLE: MaskFormat

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
    __slots__ = ("confidence", "iou_threshold", "class_agnostic_nms", "max_detections", "class_filter", "visualize", "max_candidates", "top_k", "mask_format")
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    IOU_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CLASS_AGNOSTIC_NMS_FIELD_NUMBER: _ClassVar[int]
    MAX_DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    CLASS_FILTER_FIELD_NUMBER: _ClassVar[int]
    VISUALIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MASK_FORMAT_FIELD_NUMBER: _ClassVar[int]
    confidence: float
    iou_threshold: float
    class_agnostic_nms: bool
    max_detections: int
    class_filter: _containers.RepeatedScalarFieldContainer[str]
    visualize: bool
    max_candidates: int
    top_k: int
    mask_format: MaskFormat
    def __init__(self, confidence: _Optional[float] = ..., iou_threshold: _Optional[float] = ..., class_agnostic_nms: bool = ..., max_detections: _Optional[int] = ..., class_filter: _Optional[_Iterable[str]] = ..., visualize: bool = ..., max_candidates: _Optional[int] = ..., top_k: _Optional[int] = ..., mask_format: _Optional[_Union[MaskFormat, str]] = ...) -> None: ...

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

class Polygon(_message.Message):
    __slots__ = ("points", "hole")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    HOLE_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[Point]
    hole: bool
    def __init__(self, points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., hole: bool = ...) -> None: ...

class RleMask(_message.Message):
    __slots__ = ("height", "width", "counts")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    height: int
    width: int
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, height: _Optional[int] = ..., width: _Optional[int] = ..., counts: _Optional[_Iterable[int]] = ...) -> None: ...

class SegmentedInstance(_message.Message):
    __slots__ = ("detection", "points", "parts", "rle")
    DETECTION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    RLE_FIELD_NUMBER: _ClassVar[int]
    detection: Detection
    points: _containers.RepeatedCompositeFieldContainer[Point]
    parts: _containers.RepeatedCompositeFieldContainer[Polygon]
    rle: RleMask
    def __init__(self, detection: _Optional[_Union[Detection, _Mapping]] = ..., points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., parts: _Optional[_Iterable[_Union[Polygon, _Mapping]]] = ..., rle: _Optional[_Union[RleMask, _Mapping]] = ...) -> None: ...

class InstanceSegmentationResult(_message.Message):
    __slots__ = ("instances",)
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    instances: _containers.RepeatedCompositeFieldContainer[SegmentedInstance]
    def __init__(self, instances: _Optional[_Iterable[_Union[SegmentedInstance, _Mapping]]] = ...) -> None: ...

class Keypoint(_message.Message):
    __slots__ = ("x", "y", "confidence", "name")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    confidence: float
    name: str
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., confidence: _Optional[float] = ..., name: _Optional[str] = ...) -> None: ...

class KeypointInstance(_message.Message):
    __slots__ = ("detection", "keypoints")
    DETECTION_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    detection: Detection
    keypoints: _containers.RepeatedCompositeFieldContainer[Keypoint]
    def __init__(self, detection: _Optional[_Union[Detection, _Mapping]] = ..., keypoints: _Optional[_Iterable[_Union[Keypoint, _Mapping]]] = ...) -> None: ...

class SkeletonEdge(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class KeypointDetectionResult(_message.Message):
    __slots__ = ("instances", "skeleton")
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    SKELETON_FIELD_NUMBER: _ClassVar[int]
    instances: _containers.RepeatedCompositeFieldContainer[KeypointInstance]
    skeleton: _containers.RepeatedCompositeFieldContainer[SkeletonEdge]
    def __init__(self, instances: _Optional[_Iterable[_Union[KeypointInstance, _Mapping]]] = ..., skeleton: _Optional[_Iterable[_Union[SkeletonEdge, _Mapping]]] = ...) -> None: ...

class OrientedBox(_message.Message):
    __slots__ = ("x", "y", "width", "height", "angle", "confidence", "class_name", "class_id", "detection_id", "corners")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ANGLE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    DETECTION_ID_FIELD_NUMBER: _ClassVar[int]
    CORNERS_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    width: float
    height: float
    angle: float
    confidence: float
    class_name: str
    class_id: int
    detection_id: str
    corners: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., width: _Optional[float] = ..., height: _Optional[float] = ..., angle: _Optional[float] = ..., confidence: _Optional[float] = ..., class_name: _Optional[str] = ..., class_id: _Optional[int] = ..., detection_id: _Optional[str] = ..., corners: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class OrientedDetectionResult(_message.Message):
    __slots__ = ("boxes",)
    BOXES_FIELD_NUMBER: _ClassVar[int]
    boxes: _containers.RepeatedCompositeFieldContainer[OrientedBox]
    def __init__(self, boxes: _Optional[_Iterable[_Union[OrientedBox, _Mapping]]] = ...) -> None: ...

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

class Embedding(_message.Message):
    __slots__ = ("values", "source", "text", "truncated")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    source: str
    text: str
    truncated: bool
    def __init__(self, values: _Optional[_Iterable[float]] = ..., source: _Optional[str] = ..., text: _Optional[str] = ..., truncated: bool = ...) -> None: ...

class Similarity(_message.Message):
    __slots__ = ("prompt", "similarity")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    similarity: float
    def __init__(self, prompt: _Optional[str] = ..., similarity: _Optional[float] = ...) -> None: ...

class EmbeddingResult(_message.Message):
    __slots__ = ("embeddings", "similarities", "dimension")
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    SIMILARITIES_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    embeddings: _containers.RepeatedCompositeFieldContainer[Embedding]
    similarities: _containers.RepeatedCompositeFieldContainer[Similarity]
    dimension: int
    def __init__(self, embeddings: _Optional[_Iterable[_Union[Embedding, _Mapping]]] = ..., similarities: _Optional[_Iterable[_Union[Similarity, _Mapping]]] = ..., dimension: _Optional[int] = ...) -> None: ...

class PromptedMasks(_message.Message):
    __slots__ = ("masks",)
    MASKS_FIELD_NUMBER: _ClassVar[int]
    masks: _containers.RepeatedCompositeFieldContainer[SegmentedInstance]
    def __init__(self, masks: _Optional[_Iterable[_Union[SegmentedInstance, _Mapping]]] = ...) -> None: ...

class PromptableSegmentationResult(_message.Message):
    __slots__ = ("prompts", "embedding_cached", "image_hash")
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_CACHED_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HASH_FIELD_NUMBER: _ClassVar[int]
    prompts: _containers.RepeatedCompositeFieldContainer[PromptedMasks]
    embedding_cached: bool
    image_hash: str
    def __init__(self, prompts: _Optional[_Iterable[_Union[PromptedMasks, _Mapping]]] = ..., embedding_cached: bool = ..., image_hash: _Optional[str] = ...) -> None: ...

class TextLine(_message.Message):
    __slots__ = ("text", "confidence", "polygon")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    POLYGON_FIELD_NUMBER: _ClassVar[int]
    text: str
    confidence: float
    polygon: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, text: _Optional[str] = ..., confidence: _Optional[float] = ..., polygon: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class OcrResult(_message.Message):
    __slots__ = ("lines", "text")
    LINES_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[TextLine]
    text: str
    def __init__(self, lines: _Optional[_Iterable[_Union[TextLine, _Mapping]]] = ..., text: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("model_id", "image", "parameters", "bypass_cache", "inputs")
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: InputValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[InputValue, _Mapping]] = ...) -> None: ...
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    BYPASS_CACHE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    image: Image
    parameters: InferenceParameters
    bypass_cache: bool
    inputs: _containers.MessageMap[str, InputValue]
    def __init__(self, model_id: _Optional[str] = ..., image: _Optional[_Union[Image, _Mapping]] = ..., parameters: _Optional[_Union[InferenceParameters, _Mapping]] = ..., bypass_cache: bool = ..., inputs: _Optional[_Mapping[str, InputValue]] = ...) -> None: ...

class InputValue(_message.Message):
    __slots__ = ("image", "texts", "points", "boxes", "tensor")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    image: Image
    texts: Texts
    points: PointPrompts
    boxes: BoxPrompts
    tensor: Tensor
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ..., texts: _Optional[_Union[Texts, _Mapping]] = ..., points: _Optional[_Union[PointPrompts, _Mapping]] = ..., boxes: _Optional[_Union[BoxPrompts, _Mapping]] = ..., tensor: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class Texts(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class PointPrompt(_message.Message):
    __slots__ = ("x", "y", "negative")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    negative: bool
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., negative: bool = ...) -> None: ...

class PointPrompts(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[PointPrompt]
    def __init__(self, points: _Optional[_Iterable[_Union[PointPrompt, _Mapping]]] = ...) -> None: ...

class BoxPrompt(_message.Message):
    __slots__ = ("x", "y", "width", "height")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    width: float
    height: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., width: _Optional[float] = ..., height: _Optional[float] = ...) -> None: ...

class BoxPrompts(_message.Message):
    __slots__ = ("boxes",)
    BOXES_FIELD_NUMBER: _ClassVar[int]
    boxes: _containers.RepeatedCompositeFieldContainer[BoxPrompt]
    def __init__(self, boxes: _Optional[_Iterable[_Union[BoxPrompt, _Mapping]]] = ...) -> None: ...

class Tensor(_message.Message):
    __slots__ = ("datatype", "shape", "data")
    DATATYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    datatype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    def __init__(self, datatype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ...) -> None: ...

class InferResponse(_message.Message):
    __slots__ = ("inference_id", "model_id", "task_type", "image_width", "image_height", "object_detection", "classification", "instance_segmentation", "keypoint_detection", "oriented_detection", "embedding", "promptable_segmentation", "ocr", "task_result", "visualization", "timings", "worker_id", "cached", "task")
    INFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OBJECT_DETECTION_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    KEYPOINT_DETECTION_FIELD_NUMBER: _ClassVar[int]
    ORIENTED_DETECTION_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    PROMPTABLE_SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    OCR_FIELD_NUMBER: _ClassVar[int]
    TASK_RESULT_FIELD_NUMBER: _ClassVar[int]
    VISUALIZATION_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    inference_id: str
    model_id: str
    task_type: _model_pb2.TaskType
    image_width: int
    image_height: int
    object_detection: ObjectDetectionResult
    classification: ClassificationResult
    instance_segmentation: InstanceSegmentationResult
    keypoint_detection: KeypointDetectionResult
    oriented_detection: OrientedDetectionResult
    embedding: EmbeddingResult
    promptable_segmentation: PromptableSegmentationResult
    ocr: OcrResult
    task_result: _any_pb2.Any
    visualization: bytes
    timings: StageTimings
    worker_id: str
    cached: bool
    task: str
    def __init__(self, inference_id: _Optional[str] = ..., model_id: _Optional[str] = ..., task_type: _Optional[_Union[_model_pb2.TaskType, str]] = ..., image_width: _Optional[int] = ..., image_height: _Optional[int] = ..., object_detection: _Optional[_Union[ObjectDetectionResult, _Mapping]] = ..., classification: _Optional[_Union[ClassificationResult, _Mapping]] = ..., instance_segmentation: _Optional[_Union[InstanceSegmentationResult, _Mapping]] = ..., keypoint_detection: _Optional[_Union[KeypointDetectionResult, _Mapping]] = ..., oriented_detection: _Optional[_Union[OrientedDetectionResult, _Mapping]] = ..., embedding: _Optional[_Union[EmbeddingResult, _Mapping]] = ..., promptable_segmentation: _Optional[_Union[PromptableSegmentationResult, _Mapping]] = ..., ocr: _Optional[_Union[OcrResult, _Mapping]] = ..., task_result: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., visualization: _Optional[bytes] = ..., timings: _Optional[_Union[StageTimings, _Mapping]] = ..., worker_id: _Optional[str] = ..., cached: bool = ..., task: _Optional[str] = ...) -> None: ...

class InferBatchRequest(_message.Message):
    __slots__ = ("model_id", "images", "parameters", "bypass_cache")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    BYPASS_CACHE_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    images: _containers.RepeatedCompositeFieldContainer[Image]
    parameters: InferenceParameters
    bypass_cache: bool
    def __init__(self, model_id: _Optional[str] = ..., images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., parameters: _Optional[_Union[InferenceParameters, _Mapping]] = ..., bypass_cache: bool = ...) -> None: ...

class InferBatchItem(_message.Message):
    __slots__ = ("response", "error")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    response: InferResponse
    error: ErrorStatus
    def __init__(self, response: _Optional[_Union[InferResponse, _Mapping]] = ..., error: _Optional[_Union[ErrorStatus, _Mapping]] = ...) -> None: ...

class InferBatchResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[InferBatchItem]
    def __init__(self, items: _Optional[_Iterable[_Union[InferBatchItem, _Mapping]]] = ...) -> None: ...

class ErrorStatus(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
