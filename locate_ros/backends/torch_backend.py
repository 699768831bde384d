"""PyTorch backend: eager model, static preallocated KV cache, SDPA attention."""
from __future__ import annotations

import logging

import numpy as np
import torch

from ..model import LocateAnything
from ..model.language import KVCache, Linear, pack_for_onednn

log = logging.getLogger(__name__)


def _available_memory_bytes() -> int | None:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class TorchBackend:
    """`pack_weights`: on CPU in fp32, keep a oneDNN-blocked copy of the decoder's matmul weights
    (~1.6x faster PBD steps; costs one extra copy of those weights). "auto" packs when the copy fits
    in half of the available memory."""

    def __init__(self, model: LocateAnything, pack_weights: bool | str = "auto"):
        self.model = model
        self.vocab_size = model.cfg.text.vocab_size
        self.device, self.dtype = model.device, model.dtype
        self._cache: KVCache | None = None
        if self.device.type == "cpu" and self.dtype == torch.float32 and pack_weights:
            lm = model.language_model
            need = sum(m.weight.numel() * m.weight.element_size() for m in lm.modules() if isinstance(m, Linear))
            avail = _available_memory_bytes()
            if pack_weights is True or (avail is not None and need < avail // 2):
                added = pack_for_onednn(lm)
                log.info("packed decoder weights for oneDNN (+%.0f MB)", added / 2**20)
            else:
                log.info("not packing decoder weights: %.0f MB extra would not fit in half of the %s MB available",
                         need / 2**20, "?" if avail is None else f"{avail / 2**20:.0f}")

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
