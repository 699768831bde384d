"""Qwen2 decoder over inputs_embeds with explicit position ids, an explicit boolean mask and a
preallocated static KV cache (batch 1). Parameter names match the checkpoint (`language_model.*`).

The decoding loop, not this module, decides positions and masks: that is what Parallel Box
Decoding needs (shifted window positions, a bidirectional window, one hidden prefix column).
"""
from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from .config import TextConfig
from .segments import Segments

# oneDNN's inner product is 1.3-2.7x faster than the default MKL sgemm for the few-row fp32 matmuls of
# decoding on x86 CPUs (lm_head with 6 rows: 38 ms vs 101 ms at Qwen2.5-0.5B width, 2 threads), and
# another 1.6x faster with the weight reordered once into its blocked layout (`pack_for_onednn`). It
# has no autograd: training, other devices and other dtypes take the ordinary path.
_ONEDNN = {"enabled": torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")}
PACK_ROWS = 12  # the row count oneDNN's packed layout is tuned for: one PBD step (6 committed + 6 window)


@contextmanager
def onednn_linear(enabled: bool):
    """Switch the oneDNN matmul path on or off (benchmarks compare it with PyTorch's default)."""
    old = _ONEDNN["enabled"]
    _ONEDNN["enabled"] = enabled and old
    try:
        yield
    finally:
        _ONEDNN["enabled"] = old


def _onednn_applies(x: torch.Tensor) -> bool:
    return (_ONEDNN["enabled"] and x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 2
            and not torch.is_grad_enabled())


class _BlockedCache:
    """Modules that keep an opaque oneDNN-blocked weight (`_packed`). It cannot be deep-copied and is
    only a cache, so a copy starts without it (pack_for_onednn rebuilds it)."""

    _packed = None

    def __deepcopy__(self, memo):
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        new.__dict__.update({k: copy.deepcopy(v, memo) for k, v in self.__dict__.items() if k != "_packed"})
        return new


class Linear(_BlockedCache, nn.Linear):
    _packed: tuple[torch.Tensor, int] | None = None  # (blocked weight, weight._version it was made from)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _onednn_applies(x):
            w = self.weight
            if self._packed is not None and self._packed[1] == w._version:  # a stale copy is never used
                w = self._packed[0]
            return torch.ops.mkldnn._linear_pointwise(x, w, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)


class FusedInput(_BlockedCache, nn.Module):
    """A module whose `FUSED` Linears all read the same input (q/k/v; gate/up). Packed, they run as one
    oneDNN matmul over their concatenated weights: one call instead of three (or two), ~2x faster for
    the demo model's few-row steps and ~10% at Qwen2.5-0.5B width (2-core CPU), with the same
    per-output dot products (bit-equal in our checks). The Linears and their weights stay as they
    are (state_dict, training); the fused copy is used only while no weight changed since packing."""

    FUSED: tuple[str, ...] = ()
    _packed: tuple[torch.Tensor, torch.Tensor | None, tuple[int, ...]] | None = None  # (weight, bias, versions)

    def _parts(self) -> list[Linear]:
        return [getattr(self, name) for name in self.FUSED]

    def _versions(self, parts: list[Linear] | None = None) -> tuple[int, ...]:
        return tuple(t._version for m in (parts or self._parts()) for t in (m.weight, m.bias) if t is not None)

    def pack_fused(self) -> int:
        parts = self._parts()
        with torch.no_grad():
            w = torch.cat([m.weight.detach() for m in parts])
            b = None if parts[0].bias is None else torch.cat([m.bias.detach() for m in parts])
            self._packed = (torch.ops.mkldnn._reorder_linear_weight(w, PACK_ROWS), b, self._versions())
        return w.numel() * w.element_size()

    def fused(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each FUSED Linear applied to x, in one matmul when the packed copy holds."""
        parts = self._parts()
        # (not past a hook on a part, e.g. LoRA's adapters: the fused call does not run the parts' hooks)
        if (self._packed is not None and _onednn_applies(x) and self._packed[2] == self._versions(parts)
                and not any(m._forward_hooks or m._forward_pre_hooks for m in parts)):
            out = torch.ops.mkldnn._linear_pointwise(x, self._packed[0], self._packed[1], "none", [], "")
            return list(out.split([m.out_features for m in parts], dim=-1))
        return [m(x) for m in parts]


def pack_for_onednn(module: nn.Module, fuse: bool = True) -> int:
    """Keep a oneDNN-blocked copy of every fp32 CPU `Linear` weight under `module`; returns bytes added.

    The dense weights stay (state_dict, training and the tied embedding use them), so this costs one
    extra copy of the decoder's matmul weights. `fuse`: Linears that read one input (`FusedInput`)
    are packed together, as one matmul; False packs each alone (bench/decode.py --unfused).
    """
    added, fused = 0, set()
    if not _ONEDNN["enabled"]:
        return 0
    for m in module.modules():
        parts = m._parts() if isinstance(m, FusedInput) and fuse else []
        if parts and all(p.weight.device.type == "cpu" and p.weight.dtype == torch.float32 for p in parts):
            if m._packed is None or m._packed[2] != m._versions():
                added += m.pack_fused()
            fused.update(id(p) for p in parts)  # packed once, together: not also one by one
    for m in module.modules():
        w = m.weight if isinstance(m, Linear) and id(m) not in fused else None
        if w is None or w.device.type != "cpu" or w.dtype != torch.float32:
            continue
        if m._packed is None or m._packed[1] != w._version:
            with torch.no_grad():
                m._packed = (torch.ops.mkldnn._reorder_linear_weight(w.detach(), PACK_ROWS), w._version)
            added += w.numel() * w.element_size()
    return added


class KVCache:
    """K/V of every layer in two preallocated buffers [layers, kv_heads, max_len, head_dim].

    `length` is the number of valid positions; a forward writes at [length, length+S) and cropping
    only moves `length` back, so nothing is reallocated while decoding.
    """

    def __init__(self, cfg: TextConfig, max_len: int, dtype: torch.dtype, device: torch.device | str):
        shape = (cfg.num_hidden_layers, cfg.num_key_value_heads, max_len, cfg.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0

    @property
    def max_len(self) -> int:
        return self.k.shape[2]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new K/V [kv_heads, S, head_dim] after the valid ones; return all keys and values."""
        end = self.length + k.shape[1]
        self.k[layer, :, self.length:end] = k
        self.v[layer, :, self.length:end] = v
        return self.k[layer, :, :end], self.v[layer, :, :end]

    def crop(self, length: int) -> None:
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot crop a cache of length {self.length} to {length}")
        self.length = length


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float32 statistics, cast back before the gain: what Qwen2RMSNorm does (matters in bf16)
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float() / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """rotate_half (non-interleaved) RoPE; x [heads, S, head_dim], cos/sin [S, head_dim]."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class Attention(FusedInput):
    FUSED = ("q_proj", "k_proj", "v_proj")

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.q_proj = Linear(cfg.hidden_size, self.heads * self.head_dim)
        self.k_proj = Linear(cfg.hidden_size, self.kv_heads * self.head_dim)
        self.v_proj = Linear(cfg.hidden_size, self.kv_heads * self.head_dim)
        self.o_proj = Linear(self.heads * self.head_dim, cfg.hidden_size, bias=False)

    def forward(self, x, cos, sin, mask, cache: KVCache, layer: int, segments: Segments | None = None):
        S = x.shape[0]
        q, k, v = self.fused(x)
        q = q.reshape(S, self.heads, self.head_dim).transpose(0, 1)
        k = k.reshape(S, self.kv_heads, self.head_dim).transpose(0, 1)
        v = v.reshape(S, self.kv_heads, self.head_dim).transpose(0, 1)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        keys, values = cache.update(layer, k, v)
        # GQA without repeating K/V: the `rep` query heads that share a KV head become rep*S query rows
        # of that head (2x faster on CPU than enable_gqa at long contexts; exact same arithmetic)
        # (`mask` arrives already repeated `rep` times along its rows, see Qwen2Model.forward)
        rep = self.heads // self.kv_heads
        if segments is not None:  # packed training sequences: [sequences, heads, T, hd], each on its own
            q, k, v = (segments.pad(t.transpose(0, 1)).transpose(1, 2) for t in (q, keys, values))
            B, _, T, _ = q.shape
            out = F.scaled_dot_product_attention(q.reshape(B, self.kv_heads, rep * T, self.head_dim), k, v, attn_mask=mask)
            out = segments.unpad(out.reshape(B, self.heads, T, self.head_dim).transpose(1, 2))
            return self.o_proj(out.reshape(S, -1))
        q = q.reshape(self.kv_heads, rep * S, self.head_dim)
        out = F.scaled_dot_product_attention(q[None], keys[None], values[None], attn_mask=mask)
        return self.o_proj(out[0].reshape(self.heads, S, self.head_dim).transpose(0, 1).reshape(S, -1))


class MLP(FusedInput):
    FUSED = ("gate_proj", "up_proj")

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.gate_proj = Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        gate, up = self.fused(x)
        return self.down_proj(F.silu(gate) * up)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask, cache, layer, segments=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, layer, segments)
        return x + self.mlp(self.post_attention_layernorm(x))


class Qwen2Model(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, embeds: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None, cache: KVCache,
                return_layer_outputs: bool = False, segments: Segments | None = None):
        """embeds [S, H], positions [S], mask bool [S, cache.length + S] (True = attend) or None
        (every query sees every key). Writes K/V at [length, length+S) and advances the cache.
        `segments`: the rows are independent sequences packed one after another (training, empty
        cache), attention runs per sequence (`Segments`), and `mask` is [sequences, T, T], each
        sequence's own (or None: each sees all of itself)."""
        S = embeds.shape[0]
        if cache.length + S > cache.max_len:
            raise RuntimeError(f"KV cache full: {cache.length} + {S} > {cache.max_len}")
        if segments is not None and (cache.length or segments.total != S):
            raise ValueError(f"segments cover {segments.total} rows of an input of {S} with {cache.length} cached")
        cos, sin = rope_cos_sin(positions, self.cfg.head_dim, self.cfg.rope_theta, embeds.dtype)
        rep = self.cfg.num_attention_heads // self.cfg.num_key_value_heads
        if segments is not None:
            mask = segments.key_mask(mask)  # [sequences, T, T], padding never a key
        if mask is not None:  # once per forward, not per layer: the GQA row folding and the additive form
            mask = torch.zeros(mask.shape, dtype=embeds.dtype, device=embeds.device).masked_fill_(~mask, float("-inf"))
            if rep > 1:
                mask = mask.repeat(rep, 1) if segments is None else mask.repeat(1, rep, 1)
            if segments is not None:
                mask = mask[:, None]  # [sequences, 1, rep*T, T]
        x, outs = embeds, []
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, cache, i, segments)
            if return_layer_outputs:
                outs.append(x)
        cache.length += S
        x = self.norm(x)
        return (x, outs) if return_layer_outputs else x


class Qwen2ForCausalLM(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.model = Qwen2Model(cfg)
        self.lm_head = Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Full-vocabulary logits in float32 for the given hidden rows only."""
        return self.lm_head(hidden).float()
