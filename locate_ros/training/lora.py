"""LoRA on the decoder: low-rank adapters trained in place of its weights, merged when saved.

Every attention and MLP projection of the decoder's layers (TARGETS) gets an adapter
W x  ->  W x + (alpha / r) B A x, with A (r x in) random and B (out x r) zero, so training starts
exactly at the base model. The adapters live beside the model, not in its module tree, and act
through forward hooks: the model's state_dict keeps the release layout's names and shapes, and a
checkpoint holds the merged weights W + (alpha / r) B A, which any loader of the release layout runs
unchanged. The adapters themselves are saved too (lora.safetensors) so that a run can resume.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ALPHA_PER_RANK = 2.0  # alpha = 2 r, the usual choice: the update's scale does not change with the rank


class LoRA(nn.Module):
    """Adapters of rank `rank` for the TARGETS linear layers under `decoder` (seeded, deterministic)."""

    def __init__(self, decoder: nn.Module, rank: int, seed: int):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        gen = torch.Generator().manual_seed(seed)
        self.scale = ALPHA_PER_RANK
        self.down, self.up = nn.ParameterDict(), nn.ParameterDict()
        self.targets: dict[str, nn.Linear] = {}
        for name, module in decoder.named_modules():
            if name.rsplit(".", 1)[-1] not in TARGETS:
                continue
            key = name.replace(".", "__")  # ParameterDict keys cannot hold dots
            w = module.weight
            a = torch.randn(rank, module.in_features, generator=gen) / math.sqrt(module.in_features)
            self.down[key] = nn.Parameter(a.to(w.device, w.dtype))
            self.up[key] = nn.Parameter(torch.zeros(module.out_features, rank, device=w.device, dtype=w.dtype))
            self.targets[key] = module
        if not self.targets:
            raise ValueError("no decoder layer to adapt (expected q/k/v/o and gate/up/down projections)")
        self._hooks = [m.register_forward_hook(self._hook(key)) for key, m in self.targets.items()]

    def _hook(self, key: str):
        def add_update(module, inputs, output):
            return output + self.scale * (inputs[0] @ self.down[key].T) @ self.up[key].T
        return add_update

    def restore_base(self, base_decoder: nn.Module) -> None:
        """Copy the targets' weights from `base_decoder` (the same decoder before adaptation): a saved
        run holds W + delta, so resuming puts W back before loading the adapters."""
        with torch.no_grad():
            for key, module in self.targets.items():
                module.weight.copy_(base_decoder.get_submodule(key.replace("__", ".")).weight)

    def delta(self, key: str) -> torch.Tensor:
        """The adapter's weight update (alpha / r) B A for target `key`."""
        return self.scale * self.up[key] @ self.down[key]

    @contextmanager
    def merged(self):
        """The targets hold W + delta inside the block (to save the release layout), and their very
        original tensors again after it (not W + delta - delta, which would round differently)."""
        originals = {key: m.weight.data for key, m in self.targets.items()}
        with torch.no_grad():
            for key, m in self.targets.items():
                m.weight.data = originals[key] + self.delta(key)
        try:
            yield
        finally:
            for key, m in self.targets.items():
                m.weight.data = originals[key]

    def remove(self) -> None:
        """Detach the hooks: the model computes with its own weights again."""
        for h in self._hooks:
            h.remove()
        self._hooks = []
