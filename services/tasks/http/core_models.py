"""The model a core-model route (``/sam2/*``, ``/ocr/*``) runs: the fleet model its version id names, else the
route's default alias.

The reference server's own version names (``hiera_tiny``, ``small-small``, ...) choose among its weights;
``inference-sdk`` sends one by default. Where no fleet model has that name, such a name means the route's
default model; any other unknown name is NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Collection

from fleet.internal.v1 import descriptor_pb2
from services.common.errors import InvalidArgument, NotFound
from services.gateway.caller import Caller
from services.gateway.gateway import Gateway
from services.tasks import registry as tasks


async def task_model(gateway: Gateway, caller: Caller, requested: str | None, default: str, task: str,
                     reference_names: Collection[str] = ()) -> descriptor_pb2.ModelDescriptor:
    name = requested or default
    try:
        model = await gateway.model(caller, name)
    except NotFound:
        if name not in reference_names:
            raise
        model = await gateway.model(caller, default)
    if tasks.of_model(model).name != task:
        raise InvalidArgument(f"model {model.model_id!r} is not a {task} model")
    return model
