"""The CLIP-style demo model: a small CNN image encoder and a small causal transformer over CLIP BPE ids.

* :class:`ImageEncoder`: the committed shapes-det detector (a small CNN trained by this project on
  the same scenes; 320x320 letterbox input), frozen, read out as per-class soft counts of its
  score peaks and pooled neck features, then a trained MLP head to the embedding. (A CNN trained
  from scratch inside the time budget, at 64 and 96 px, reached only 0.51-0.67 top-1: it counted
  shapes well but confused their classes.)
* :class:`TextEncoder`: CLIP's text tower in miniature: token + position embeddings, pre-LN
  transformer blocks under a causal mask, the features at the ``<end_of_text>`` position (the
  largest id, found with argmax as CLIP does), a linear projection. Only the BPE ids the training
  captions use get their own embedding row; every other id shares an "unknown" row (a lookup
  table over the full 49,408-id vocabulary does the mapping, so the graph stays small).
* :func:`clip_loss`: symmetric InfoNCE with a learned logit scale; captions repeat within a batch,
  so each row's target is spread evenly over all entries with the same scene description.

Both encoders return L2-normalised embeddings.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from services.demo.train.models import NECK_WIDTH, STRIDES, ShapeYolo

VOCAB_SIZE = 49408
MAX_LOGIT_SCALE = 100.0


class ImageEncoder(nn.Module):
    """The project's trained shape detector (frozen) read as counts, then a small trained head.

    ``features``: per level (strides 8/16/32) and class, the detector's sigmoid scores kept only at
    3x3 local maxima ("peaks"): their sum and soft counts above 0.25 and 0.5; each class's best
    score; the mean of each level's neck features. ``head``: BatchNorm + MLP to the embedding.
    """

    def __init__(self, detector: ShapeYolo, dim: int) -> None:
        super().__init__()
        self.detector = detector.eval().requires_grad_(False)
        classes, width = detector.num_classes, NECK_WIDTH
        self.feature_dim = len(STRIDES) * (3 * classes + width) + classes
        self.head = nn.Sequential(nn.BatchNorm1d(self.feature_dim), nn.Linear(self.feature_dim, 256),
                                  nn.ReLU(inplace=True), nn.Linear(256, 256), nn.ReLU(inplace=True),
                                  nn.Linear(256, dim))

    def features(self, pixels: Tensor) -> Tensor:
        levels = self.detector.neck(self.detector.backbone(pixels))
        parts, best = [], []
        for head, level in zip(self.detector.heads, levels):
            batch, _, height, width = level.shape
            logits = head(level)[:, 4 : 4 + self.detector.num_classes]  # B x nc x (H*W)
            scores = torch.sigmoid(logits).reshape(batch, -1, height, width)
            peaks = scores * (scores >= F.max_pool2d(scores, 3, 1, 1)).float()
            parts += [peaks.sum(dim=(2, 3)), torch.sigmoid((peaks - 0.25) * 20).sum(dim=(2, 3)),
                      torch.sigmoid((peaks - 0.5) * 20).sum(dim=(2, 3)), level.mean(dim=(2, 3))]
            best.append(scores.amax(dim=(2, 3)))
        return torch.cat([*parts, torch.stack(best).amax(dim=0)], dim=1)

    def forward(self, pixels: Tensor) -> Tensor:
        return F.normalize(self.head(self.features(pixels)), dim=-1)

    def train(self, mode: bool = True) -> ImageEncoder:
        super().train(mode)
        self.detector.eval()  # frozen, its BatchNorms folded: always in eval mode
        return self


class _Block(nn.Module):
    """Pre-LN transformer block; attention written out so the ONNX graph is plain MatMul/Softmax."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        batch, length, width = x.shape
        head_dim = width // self.heads
        qkv = self.qkv(self.ln1(x)).reshape(batch, length, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attention = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / math.sqrt(head_dim)) + mask, dim=-1)
        x = x + self.out((attention @ v).transpose(1, 2).reshape(batch, length, width))
        return x + self.mlp(self.ln2(x))


class TextEncoder(nn.Module):
    def __init__(self, dim: int, known_ids: list[int], context_length: int,
                 width: int = 128, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        remap = torch.zeros(VOCAB_SIZE, dtype=torch.long)  # id -> embedding row; row 0: unknown
        remap[torch.tensor(sorted(set(known_ids)))] = torch.arange(1, len(set(known_ids)) + 1)
        self.register_buffer("remap", remap)
        self.embed = nn.Embedding(len(set(known_ids)) + 1, width)
        self.position = nn.Parameter(torch.randn(context_length, width) * 0.01)
        self.register_buffer("mask", torch.full((context_length, context_length), -1e4).triu(1))
        self.blocks = nn.ModuleList(_Block(width, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(width)
        self.proj = nn.Linear(width, dim, bias=False)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(self.remap[tokens]) + self.position
        for block in self.blocks:
            x = block(x, self.mask)
        end = tokens.argmax(dim=-1)  # <end_of_text> (49407) is the largest id
        pooled = torch.gather(self.ln(x), 1, end[:, None, None].expand(-1, 1, x.shape[-1]))[:, 0]
        return F.normalize(self.proj(pooled), dim=-1)


class ClipModel(nn.Module):
    def __init__(self, detector: ShapeYolo, dim: int, known_ids: list[int], context_length: int) -> None:
        super().__init__()
        self.image = ImageEncoder(detector, dim)
        self.text = TextEncoder(dim, known_ids, context_length)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def logit_scale(self) -> Tensor:
        return self.log_logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)


def clip_loss(image: Tensor, text: Tensor, scale: Tensor, same: Tensor) -> Tensor:
    """Symmetric InfoNCE; ``same[i, j]`` is True where items i and j have the same description."""
    logits = scale * image @ text.T
    targets = same.float() / same.float().sum(dim=1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets.T))
