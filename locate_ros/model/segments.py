"""Attention over independent sequences packed into one, computed per sequence.

Training packs several examples into one sequence, and the vision encoder packs several images;
neither may attend across them. A block-diagonal S x S mask says so, but the attention kernel still
scores every pair: with 8 examples of ~180 tokens that is 8x the work that counts, and attention was
62% of a CPU training step. `Segments` lays the packed rows out as a padded batch [B, T] (B
sequences, T the longest), so one attention call scores only pairs inside a sequence, and puts the
result back in packed order. Same arithmetic up to float summation order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass(frozen=True)
class Segments:
    index: torch.Tensor  # [B, T] long: row of the packed sequence at each padded slot (padding: the sequence's first row)
    valid: torch.Tensor  # [B, T] bool: False on padding

    @classmethod
    def of(cls, lengths: Sequence[int], device: torch.device | str = "cpu") -> "Segments":
        if not lengths or min(lengths) < 1:
            raise ValueError(f"every packed sequence needs at least one row, got lengths {list(lengths)}")
        T = max(lengths)
        lengths_t = torch.tensor(list(lengths), device=device)
        starts = torch.cumsum(lengths_t, 0) - lengths_t
        slot = torch.arange(T, device=device)
        valid = slot[None, :] < lengths_t[:, None]
        index = torch.where(valid, starts[:, None] + slot[None, :], starts[:, None])
        return cls(index, valid)

    @property
    def total(self) -> int:
        return int(self.valid.sum())

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Rows [S, ...] -> [B, T, ...]."""
        return x[self.index]

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, ...] -> rows [S, ...] in packed order (sequences are contiguous and in order)."""
        return x[self.valid]

    def key_mask(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The bool mask [B, T, T] (True = attend) each sequence uses: `mask` [B, T, T] (each
        sequence's own, as `training.objective.pack` makes it) or everything when None; never a
        padded key. A padded query row attends to its sequence's first row, so no softmax row is
        empty (an all -inf row gives NaN, which backward spreads)."""
        keys = self.valid[:, None, :]
        m = keys.expand(-1, self.valid.shape[1], -1) if mask is None else mask & keys
        first = torch.zeros_like(m)
        first[:, :, 0] = True
        return torch.where(self.valid[:, :, None], m, first)
