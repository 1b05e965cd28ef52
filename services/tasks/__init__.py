"""Tasks: one module each, found through ``registry`` (see ``base`` for what a task owns).

Importing this package registers the built-in tasks; ``registry.load_plugins`` adds plug-in tasks.
"""

from services.tasks import registry
from services.tasks.base import Task, TensorSpec
from services.tasks.classification import Classification
from services.tasks.detection import ObjectDetection
from services.tasks.embedding import Embedding
from services.tasks.keypoints import KeypointDetection
from services.tasks.ocr import Ocr
from services.tasks.oriented import OrientedDetection
from services.tasks.promptable import PromptableSegmentation
from services.tasks.segmentation import InstanceSegmentation

for _task in (ObjectDetection, InstanceSegmentation, Classification, KeypointDetection, OrientedDetection,
              Embedding, PromptableSegmentation, Ocr):
    registry.register(_task)

__all__ = ["Task", "TensorSpec", "registry"]
