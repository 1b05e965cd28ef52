"""A trained detector back from its committed ONNX package, to fine-tune other tasks from.

The export folded every BatchNorm into the convolution before it, so each ``ConvBN`` gets the
folded weight and, in its BatchNorm, statistics that make it the identity plus the folded bias
(fine-tuning then keeps the BatchNorms in eval mode). The ONNX convolutions appear in the order
the traced forward ran them, which is the order the model's convolutions run in.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import torch
from onnx import numpy_helper
from torch import nn

from services.demo.train.models import ShapeYolo


def _conv_order(model: nn.Module, size: int) -> list[nn.Conv2d]:
    order: list[nn.Conv2d] = []
    hooks = [m.register_forward_hook(lambda mod, *_: order.append(mod)) for m in model.modules()
             if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.eval()
        model(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return order


def load_detector(path: Path, num_classes: int, size: int) -> ShapeYolo:
    """The ShapeYolo whose yolov8 export is ``path`` (exactly: same outputs up to float rounding)."""
    graph = onnx.load(str(path)).graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    model = ShapeYolo(num_classes)
    batchnorm_after = {}
    previous = None
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d) and previous is not None:
            batchnorm_after[previous] = module
        previous = module if isinstance(module, nn.Conv2d) else None
    order = _conv_order(model, size)
    if len(order) != len(convs):
        raise ValueError(f"{path} has {len(convs)} convolutions, the model {len(order)}")
    with torch.no_grad():
        for module, node in zip(order, convs):
            weight = torch.from_numpy(weights[node.input[1]].copy())
            bias = torch.from_numpy(weights[node.input[2]].copy()) if len(node.input) > 2 else None
            if weight.shape != module.weight.shape:
                raise ValueError(f"convolution shapes differ: {tuple(weight.shape)} vs {tuple(module.weight.shape)}")
            module.weight.copy_(weight)
            norm = batchnorm_after.get(module)
            if norm is not None:
                norm.weight.fill_(1.0)
                norm.running_mean.zero_()
                norm.running_var.fill_(1.0 - norm.eps)
                norm.bias.copy_(bias if bias is not None else torch.zeros_like(norm.bias))
            elif module.bias is not None and bias is not None:
                module.bias.copy_(bias)
    return model
