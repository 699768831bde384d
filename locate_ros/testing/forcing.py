"""Logits hooks that force a known answer through the real decoder (tests and benchmarks).

The model still does all its work (vision, prefill, every forward with the real cache, masks and
positions); only the logits the loop reads are replaced, the way NVIDIA's golden run scripted its
switching scenarios.
"""
from __future__ import annotations

import numpy as np
import torch

from ..model.config import TokenIds


def box_answer(boxes, tokens: TokenIds) -> list[int]:
    """Token ids of `<box><x1><y1><x2><y2></box>` per box (values 0..1000), then `<|im_end|>`."""
    ids = []
    for b in boxes:
        ids += [tokens.box_start, *(tokens.coord_token(int(v)) for v in b), tokens.box_end]
    return ids + [tokens.im_end]


def random_boxes(n: int, seed: int = 0) -> list[tuple[int, int, int, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x1, y1 = (int(v) for v in rng.integers(0, 900, size=2))
        w, h = (int(v) for v in rng.integers(10, 100, size=2))
        out.append((x1, y1, x1 + w, y1 + h))
    return out


class ForceAnswer:
    """Row j of a forward must predict target[n + j]: a confident one-hot row replaces the model's."""

    def __init__(self, target: list[int], confidence_logit: float = 10.0, background: float = -1e4):
        self.target = list(target)
        self.hi, self.lo = confidence_logit, background

    def __call__(self, call: int, kind: str, logits: torch.Tensor, n: int) -> torch.Tensor:
        out = torch.full_like(logits, self.lo)
        last = len(self.target) - 1
        idx = torch.tensor([self.target[min(n + j, last)] for j in range(logits.shape[0])], device=logits.device)
        out.scatter_(1, idx[:, None], self.hi)
        return out
