"""Token sampling for one decode step (spec §9 step 3), as the reference `sample_tokens` does it.

Rows are the read positions: 6 for an MTP window, 1 for an AR step. The order is fixed by the
reference: repetition penalty -> /temperature -> top-p -> top-k -> softmax, and the hybrid checks
read these final probabilities. Nothing here loops over the vocabulary or sorts it unless top-p or
top-k asks for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch

from locate_ros.decoding.hybrid import (
    DEFAULT_THRESHOLDS,
    HybridThresholds,
    Mode,
    decode_bbox_avg,
)
from locate_ros.model.config import TokenIds

Ids = Union[torch.Tensor, Sequence[int]]


@dataclass(frozen=True)
class Sampled:
    x0: list[int]  # the sampled (or argmax) id per row
    probs: torch.Tensor  # [R, V] float32, after penalty, temperature, top-p and top-k
    confidence: torch.Tensor  # [R] probs at x0 (left on the device)
    box_avg: Optional[list[int]]  # decode_bbox_avg of an MTP window (fast/hybrid), else None


def apply_repetition_penalty(logits: torch.Tensor, generated: Ids, penalty: float) -> torch.Tensor:
    """Penalize every id that occurs in `generated`: logits > 0 are divided, logits <= 0 multiplied.

    logits [R, V]. `generated` is one id history shared by all rows ([S]: the whole sequence, or a
    precomputed tensor of its unique ids, which is cheaper) or one history per row ([R, S]). Ids
    outside [0, V) (e.g. -1 padding) are ignored. Returns a new tensor.
    """
    if penalty == 1.0:
        return logits
    R, V = logits.shape
    ids = torch.as_tensor(generated, dtype=torch.long, device=logits.device)
    ids = ids.expand(R, -1) if ids.dim() == 1 else ids
    # Column V is a scratch slot that absorbs the ignored ids, so one gather/scatter does it all;
    # repeated ids are harmless because each copy writes the same value.
    ids = torch.where((ids >= 0) & (ids < V), ids, V)
    out = torch.nn.functional.pad(logits, (0, 1))
    picked = out.gather(1, ids)
    out.scatter_(1, ids, torch.where(picked > 0, picked / penalty, picked * penalty))
    return out[:, :V]


def top_p_logits(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter: drop ids once the cumulative probability before them exceeds top_p."""
    sorted_logits, order = torch.sort(logits, descending=True)
    cum = sorted_logits.softmax(-1).cumsum(-1)
    drop = torch.zeros_like(cum, dtype=torch.bool)
    drop[..., 1:] = cum[..., :-1] > top_p  # shifted right: the first id is always kept
    return logits.scatter(-1, order, sorted_logits.masked_fill(drop, torch.finfo(logits.dtype).min))


def top_k_logits(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep ids whose logit is at least the k-th largest (ties at the k-th all stay)."""
    kth = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)


def sample_tokens(
    logits: torch.Tensor,
    generated: Ids,
    *,
    tokens: TokenIds,
    mode: Mode,
    temperature: float = 0.0,
    top_p: Optional[float] = None,
    top_k: Optional[int] = None,
    repetition_penalty: float = 1.0,
    thresholds: HybridThresholds = DEFAULT_THRESHOLDS,
    generator: Optional[torch.Generator] = None,
) -> Sampled:
    """Sample one id per row of logits [R, V]; temperature 0 is argmax.

    `generated` is the committed sequence (prompt included) the repetition penalty looks at; pass a
    device tensor (or its unique ids) to avoid copying a long Python list every step.
    """
    logits = logits.float()
    if repetition_penalty != 1.0:
        logits = apply_repetition_penalty(logits, generated, repetition_penalty)
    if temperature > 0:
        logits = logits / temperature
    if top_p is not None and top_p < 1:
        logits = top_p_logits(logits, top_p)
    if top_k is not None:
        logits = top_k_logits(logits, top_k)
    probs = logits.softmax(-1)
    if temperature > 0:
        # One categorical draw per row: the very call torch.distributions.Categorical.sample makes.
        x0 = torch.multinomial(probs, 1, replacement=True, generator=generator).squeeze(-1)
        confidence = probs.gather(-1, x0[:, None]).squeeze(-1)
    else:
        confidence, x0 = probs.max(dim=-1)
    box_avg = None
    if probs.size(0) > 1 and mode in ("fast", "hybrid"):  # an MTP window, not an AR step
        box_avg = decode_bbox_avg(probs, tokens, thresholds.keep_k, mode, thresholds)
    return Sampled(x0.tolist(), probs, confidence, box_avg)
