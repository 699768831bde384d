"""LocateAnything = MoonViT -> 2x2 merge -> projector (`mlp1`) -> Qwen2 decoder.

Image features replace the embeddings of the `<IMG_CONTEXT>` tokens, in order.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import LocateAnythingConfig
from .language import Qwen2ForCausalLM
from .vision import Grid, MoonViT, projector


class LocateAnything(nn.Module):
    def __init__(self, cfg: LocateAnythingConfig):
        super().__init__()
        self.cfg = cfg
        merged_dim = cfg.vision.hidden_size * cfg.vision.merge_kernel_size[0] * cfg.vision.merge_kernel_size[1]
        self.vision_model = MoonViT(cfg.vision)
        self.mlp1 = projector(merged_dim, cfg.text.hidden_size)
        self.language_model = Qwen2ForCausalLM(cfg.text)

    @property
    def dtype(self) -> torch.dtype:
        return self.language_model.lm_head.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.language_model.lm_head.weight.device

    def encode_images(self, pixel_values: torch.Tensor, grids: list[Grid]) -> torch.Tensor:
        """Projected image features [num_image_tokens, text hidden], in the LLM's dtype."""
        merged = self.vision_model(pixel_values.to(self.dtype), grids)
        return self.mlp1(merged)

    def embed(self, input_ids: torch.Tensor, image_features: torch.Tensor | None = None) -> torch.Tensor:
        embeds = self.language_model.model.embed_tokens(input_ids)
        if image_features is not None:
            is_image = input_ids == self.cfg.tokens.image
            n = int(is_image.sum())
            if n != image_features.shape[0]:
                raise ValueError(f"prompt has {n} image tokens but the image gives {image_features.shape[0]} features")
            embeds = embeds.masked_scatter(is_image[:, None], image_features.to(embeds.dtype))
        return embeds
