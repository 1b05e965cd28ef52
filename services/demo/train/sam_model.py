"""A small SAM-style promptable segmenter: an image encoder and a prompt decoder.

* :class:`SamEncoder`: the committed ``shapes-det`` backbone and feature pyramid (stride-8 level,
  48 channels) and a small head -> ``image_embedding`` [B, 64, 40, 40] for a 320x320 input.
* :class:`SamDecoder`: the embedding plus prompts in SAM's ONNX convention (``point_coords`` in
  input pixels, ``point_labels`` 1 positive, 0 negative, -1 padding, 2/3 box corners, a previous
  low-res mask and its flag) -> ``masks`` [B, 1, 80, 80] logits (stride 4) and ``iou_predictions``
  [B, 1]. Points become Gaussian maps on the embedding grid; the embedding sampled under the
  positive points (and inside the box) is the query whose per-pixel similarity with the embedding
  tells the decoder which region the prompt means (what SAM's cross-attention does, much cheaper).

Every prompt operation is a broadcast or a sum over points, so the number of points is dynamic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from services.demo.train.models import ConvBN, ShapeYolo

SAM_INPUT = 320
EMBED_STRIDE = 8
EMBED_DIM = 64
MASK_STRIDE = 4
KEY_DIM = 32
DECODER_WIDTH = 48
UP_WIDTH = 24
_SIGMA = 8.0  # input pixels: spread of a point's Gaussian on the embedding grid
_BOX_EDGE = 3.0  # input pixels: softness of the box map's edges


class SamEncoder(nn.Module):
    """Pretrained detector backbone + pyramid (stride 8) and a 3x3 + 1x1 head."""

    def __init__(self, detector: ShapeYolo) -> None:
        super().__init__()
        self.backbone = detector.backbone
        self.neck = detector.neck
        width = detector.neck.lateral[0].out_channels
        self.head = nn.Sequential(ConvBN(width, EMBED_DIM), nn.Conv2d(EMBED_DIM, EMBED_DIM, 1))

    def pretrained(self) -> list[nn.Module]:
        return [self.backbone, self.neck]

    def forward(self, pixels: Tensor) -> Tensor:
        return self.head(self.neck(self.backbone(pixels))[0])


class DilatedResidual(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


class SamDecoder(nn.Module):
    """Prompts + embedding -> one mask (low-res logits) and its predicted IoU."""

    grid_x: Tensor
    grid_y: Tensor

    def __init__(self, grid: int = SAM_INPUT // EMBED_STRIDE) -> None:
        super().__init__()
        centres = (torch.arange(grid, dtype=torch.float32) + 0.5) * EMBED_STRIDE
        self.register_buffer("grid_x", centres.view(1, 1, 1, grid), persistent=False)
        self.register_buffer("grid_y", centres.view(1, 1, grid, 1), persistent=False)
        self.key = nn.Conv2d(EMBED_DIM, KEY_DIM, 1)
        self.query_pos = nn.Linear(EMBED_DIM, KEY_DIM, bias=False)
        self.query_neg = nn.Linear(EMBED_DIM, KEY_DIM, bias=False)
        self.mask_in = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        fused = EMBED_DIM + 2 * KEY_DIM + 3 + 8 + 1
        self.fuse = nn.Sequential(nn.Conv2d(fused, DECODER_WIDTH, 1, bias=False), nn.BatchNorm2d(DECODER_WIDTH),
                                  nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*(DilatedResidual(DECODER_WIDTH, d) for d in (1, 2, 4, 8)))
        self.up = nn.Sequential(nn.ConvTranspose2d(DECODER_WIDTH, UP_WIDTH, 2, stride=2), nn.ReLU(inplace=True),
                                ConvBN(UP_WIDTH + 8, UP_WIDTH), nn.Conv2d(UP_WIDTH, 1, 1))
        self.iou = nn.Sequential(nn.Linear(2 * DECODER_WIDTH, 64), nn.ReLU(inplace=True), nn.Linear(64, 1))

    def forward(
        self, embedding: Tensor, coords: Tensor, labels: Tensor, mask_input: Tensor, has_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        b, c, h, w = embedding.shape
        x = coords[..., 0].unsqueeze(-1).unsqueeze(-1)  # B x N x 1 x 1
        y = coords[..., 1].unsqueeze(-1).unsqueeze(-1)
        gauss = torch.exp(-((self.grid_x - x) ** 2 + (self.grid_y - y) ** 2) / (2 * _SIGMA**2))  # B x N x h x w
        pos = (labels == 1).float()
        neg = (labels == 0).float()
        pos_map = (gauss * pos[..., None, None]).sum(1, keepdim=True).clamp(max=1.0)
        neg_map = (gauss * neg[..., None, None]).sum(1, keepdim=True).clamp(max=1.0)

        box_map, has_box = self._box_map(coords, labels)
        flat = embedding.flatten(2)  # B x C x hw
        weights = gauss.flatten(2)
        weights = weights / weights.sum(-1, keepdim=True).clamp(min=1e-6)
        sampled = torch.bmm(weights, flat.transpose(1, 2))  # B x N x C: embedding under each point
        box_w = box_map.flatten(2)
        box_feat = torch.bmm(box_w / box_w.sum(-1, keepdim=True).clamp(min=1e-6), flat.transpose(1, 2))[:, 0]
        pos_feat = ((sampled * pos.unsqueeze(-1)).sum(1) + box_feat * has_box) / (
            pos.sum(1, keepdim=True) + has_box).clamp(min=1.0)
        neg_feat = (sampled * neg.unsqueeze(-1)).sum(1) / neg.sum(1, keepdim=True).clamp(min=1.0)
        keys = self.key(embedding)
        sim_pos = keys * self.query_pos(pos_feat)[..., None, None]
        sim_neg = keys * self.query_neg(neg_feat)[..., None, None]

        flag = has_mask.view(b, 1, 1, 1)
        mask_features = self.mask_in(torch.tanh(mask_input / 4.0)) * flag
        fused = torch.cat([embedding, sim_pos, sim_neg, pos_map, neg_map, box_map, mask_features,
                           flag.expand(b, 1, h, w)], dim=1)
        features = self.blocks(self.fuse(fused))
        up = self.up[1](self.up[0](features))
        mask_hi = F.interpolate(mask_features, scale_factor=2.0, mode="nearest")
        masks = self.up[3](self.up[2](torch.cat([up, mask_hi], dim=1)))
        pooled = torch.cat([features.mean((2, 3)), features.amax((2, 3))], dim=1)
        return masks, torch.sigmoid(self.iou(pooled))

    def _box_map(self, coords: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """B x 1 x h x w soft inside-the-box map (zero without a box) and B x 1 has-box flags."""
        first = (labels == 2).float()
        second = (labels == 3).float()
        has_box = first.amax(1, keepdim=True)
        c1 = (coords * first.unsqueeze(-1)).sum(1) / first.sum(1, keepdim=True).clamp(min=1.0)  # B x 2
        c2 = (coords * second.unsqueeze(-1)).sum(1) / second.sum(1, keepdim=True).clamp(min=1.0)
        x1, y1 = c1[:, 0].view(-1, 1, 1, 1), c1[:, 1].view(-1, 1, 1, 1)
        x2, y2 = c2[:, 0].view(-1, 1, 1, 1), c2[:, 1].view(-1, 1, 1, 1)
        inside = (torch.sigmoid((self.grid_x - x1) / _BOX_EDGE) * torch.sigmoid((x2 - self.grid_x) / _BOX_EDGE)
                  * torch.sigmoid((self.grid_y - y1) / _BOX_EDGE) * torch.sigmoid((y2 - self.grid_y) / _BOX_EDGE))
        return inside * has_box.view(-1, 1, 1, 1), has_box
