"""The one interface between the decoding loop and an inference engine.

A backend owns the weights and the KV cache; it knows nothing about boxes. The loop passes token ids,
explicit position ids and an explicit boolean attention mask (True = attend) over
[cache length + S] keys, and asks for the logits of the last `num_logits` rows only.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch


class Backend(Protocol):
    vocab_size: int

    def encode_image(self, pixel_values: np.ndarray, grids: list[tuple[int, int]]) -> torch.Tensor:
        """Vision encoder + projector: features that replace the image-context embeddings."""

    def reset(self, max_len: int) -> None:
        """Start a new sequence with room for `max_len` tokens in the cache."""

    def forward(self, input_ids: np.ndarray, position_ids: np.ndarray, attention_mask: np.ndarray | None,
                num_logits: int, image_features: torch.Tensor | None = None) -> torch.Tensor:
        """Run S new tokens after the cached ones; returns float32 logits [num_logits, vocab]."""

    @property
    def cache_length(self) -> int: ...

    def crop(self, length: int) -> None:
        """Forget cached positions at and after `length` (discards a PBD window's K/V)."""
