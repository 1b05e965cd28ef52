"""The CLIP-style demo model: a small CNN image encoder and a small causal transformer over CLIP BPE ids.

* :class:`ImageEncoder`: 96x96 input, four stride-2 stages (24/48/96/192 channels), global mean
  pooling, a two-layer head to the embedding.
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

from services.demo.train.models import ConvBN

VOCAB_SIZE = 49408
MAX_LOGIT_SCALE = 100.0


class ImageEncoder(nn.Module):
    def __init__(self, dim: int, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBN(3, widths[0], stride=2)]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [ConvBN(c_in, c_out, stride=2), ConvBN(c_out, c_out)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(widths[-1], 2 * widths[-1]), nn.ReLU(inplace=True),
                                  nn.Linear(2 * widths[-1], dim))

    def forward(self, pixels: Tensor) -> Tensor:
        pooled = self.features(pixels).mean(dim=(2, 3))
        return F.normalize(self.head(pooled), dim=-1)


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
    def __init__(self, dim: int, known_ids: list[int], context_length: int) -> None:
        super().__init__()
        self.image = ImageEncoder(dim)
        self.text = TextEncoder(dim, known_ids, context_length)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def logit_scale(self) -> Tensor:
        return self.log_logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)


def clip_loss(image: Tensor, text: Tensor, scale: Tensor, same: Tensor) -> Tensor:
    """Symmetric InfoNCE; ``same[i, j]`` is True where items i and j have the same description."""
    logits = scale * image @ text.T
    targets = same.float() / same.float().sum(dim=1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets.T))
