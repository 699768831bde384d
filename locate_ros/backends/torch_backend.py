"""PyTorch backend: eager model, static preallocated KV cache, SDPA attention."""
from __future__ import annotations

import numpy as np
import torch

from ..model import LocateAnything
from ..model.language import KVCache


class TorchBackend:
    def __init__(self, model: LocateAnything):
        self.model = model
        self.vocab_size = model.cfg.text.vocab_size
        self.device, self.dtype = model.device, model.dtype
        self._cache: KVCache | None = None

    @torch.inference_mode()
    def encode_image(self, pixel_values: np.ndarray, grids: list[tuple[int, int]]) -> torch.Tensor:
        pv = torch.as_tensor(pixel_values, device=self.device)
        return self.model.encode_images(pv, [tuple(g) for g in grids])

    def reset(self, max_len: int) -> None:
        # reuse the buffers when they are big enough: no allocation per request
        if self._cache is None or self._cache.max_len < max_len:
            self._cache = KVCache(self.model.cfg.text, max_len, self.dtype, self.device)
        self._cache.length = 0

    @property
    def cache_length(self) -> int:
        return self._cache.length

    def crop(self, length: int) -> None:
        self._cache.crop(length)

    @torch.inference_mode()
    def forward(self, input_ids, position_ids, attention_mask, num_logits: int, image_features=None) -> torch.Tensor:
        ids = torch.as_tensor(input_ids, device=self.device)
        pos = torch.as_tensor(position_ids, device=self.device)
        mask = None if attention_mask is None else torch.as_tensor(attention_mask, device=self.device)
        embeds = self.model.embed(ids, image_features)
        hidden = self.model.language_model.model(embeds, pos, mask, self._cache)
        return self.model.language_model.logits(hidden[hidden.shape[0] - num_logits:])
