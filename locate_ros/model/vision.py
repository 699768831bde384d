"""MoonViT: the LocateAnything vision encoder at native resolution, plus the 2x2 patch merge.

Parameter names match the checkpoint (`vision_model.*`). Several images are packed along the
sequence and attend block-diagonally (each image only to itself), computed per image (`Segments`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import VisionConfig
from .segments import Segments

Grid = tuple[int, int]  # (rows, cols) of 14-px patches


class PosEmb(nn.Module):
    """Learned 64x64 position grid, bicubic-resized to each image's patch grid."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cfg.init_pos_emb_height, cfg.init_pos_emb_width, cfg.hidden_size))

    def forward(self, grid: Grid) -> torch.Tensor:
        h, w = grid
        if (h, w) == tuple(self.weight.shape[:2]):
            return self.weight.flatten(0, 1)
        # reference: F.interpolate(..., mode="bicubic") with align_corners False, no antialias
        pos = F.interpolate(self.weight.permute(2, 0, 1)[None], size=(h, w), mode="bicubic")
        return pos[0].permute(1, 2, 0).flatten(0, 1)


class PatchEmbed(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        p = cfg.patch_size
        self.proj = nn.Conv2d(3, cfg.hidden_size, kernel_size=p, stride=p)
        self.pos_emb = PosEmb(cfg)

    def forward(self, pixel_values: torch.Tensor, grids: list[Grid]) -> torch.Tensor:
        # a 14x14 conv over one 14x14 patch is a matmul over the flattened patch
        w = self.proj.weight.flatten(1)
        x = F.linear(pixel_values.flatten(1).to(w.dtype), w, self.proj.bias)
        return x + torch.cat([self.pos_emb(g) for g in grids]).to(x.dtype)


def rope_2d(grid: Grid, head_dim: int, theta: float = 10000.0, device=None) -> torch.Tensor:
    """Complex rotation factors [rows*cols, head_dim/2] in row-major patch order.

    Complex pair 2i rotates by col*f_i and pair 2i+1 by row*f_i, with f_i = theta^(-4i/head_dim)
    (what the reference code does; its docstring swaps x and y).
    """
    h, w = grid
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 4, device=device)[: head_dim // 4].float() / head_dim))
    flat = torch.arange(h * w, device=device).float()
    x_cis = torch.polar(torch.ones(h * w, freqs.numel(), device=device), torch.outer(flat % w, freqs))
    y_cis = torch.polar(torch.ones(h * w, freqs.numel(), device=device), torch.outer(torch.div(flat, w, rounding_mode="floor"), freqs))
    return torch.stack([x_cis, y_cis], dim=-1).flatten(1)


def apply_rope_2d(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    """x [L, heads, head_dim]; rotation in float32 as the reference, then back to x's dtype."""
    xc = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(xc * freqs_cis[:, None, :]).flatten(-2).type_as(x)


class MLP(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.fc0 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc1 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc1(F.gelu(self.fc0(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-norm transformer block; wqkv/wo sit directly under the block, as in the checkpoint."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.heads, self.head_dim = cfg.num_attention_heads, cfg.head_dim
        self.norm0 = nn.LayerNorm(cfg.hidden_size, eps=1e-5)
        self.wqkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)
        self.wo = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.norm1 = nn.LayerNorm(cfg.hidden_size, eps=1e-5)
        self.mlp = MLP(cfg)

    def attention(self, x: torch.Tensor, freqs_cis: torch.Tensor, segments: Segments | None,
                  mask: torch.Tensor | None) -> torch.Tensor:
        # wqkv's output is (3, heads, head_dim): q, k, v as consecutive head-major blocks
        q, k, v = self.wqkv(x).unflatten(-1, (3, self.heads, self.head_dim)).unbind(1)  # each [L, heads, hd]
        q, k = apply_rope_2d(q, freqs_cis), apply_rope_2d(k, freqs_cis)
        if segments is not None:  # several images: [images, heads, T, hd], each attending to itself
            q, k, v = (segments.pad(t).transpose(1, 2) for t in (q, k, v))
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            return self.wo(segments.unpad(out.transpose(1, 2)).flatten(1))
        # 4-D [1, heads, L, hd]: with 3-D inputs CPU SDPA takes the math path and builds the full L x L
        # score matrix (2 GB at 1080p); 4-D gets the flash kernel
        q, k, v = (t.transpose(0, 1)[None] for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.wo(out[0].transpose(0, 1).flatten(1))

    def forward(self, x, freqs_cis, segments, mask):
        x = x + self.attention(self.norm0(x), freqs_cis, segments, mask)
        return x + self.mlp(self.norm1(x))


class Encoder(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_hidden_layers))
        self.final_layernorm = nn.LayerNorm(cfg.hidden_size, eps=1e-5)


class MoonViT(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_embed = PatchEmbed(cfg)
        self.encoder = Encoder(cfg)

    def forward(self, pixel_values: torch.Tensor, grids: list[Grid], return_intermediates: bool = False):
        """pixel_values [L, 3, 14, 14] of all images; returns merged tokens [sum(L_i/4), 4*D]."""
        dev = pixel_values.device
        x = self.patch_embed(pixel_values, grids)
        freqs_cis = torch.cat([rope_2d(g, self.cfg.head_dim, device=dev) for g in grids])
        segments, mask = None, None
        if len(grids) > 1:  # each image attends to itself only; padding is never a key
            segments = Segments.of([h * w for h, w in grids], dev)
            mask = segments.key_mask()[:, None]
        inter = {"patch_embed_out": x}
        for i, blk in enumerate(self.encoder.blocks):
            x = blk(x, freqs_cis, segments, mask)
            inter[f"vit_block{i}_out"] = x
        x = self.encoder.final_layernorm(x)
        merged = patch_merge(x, grids, self.cfg.merge_kernel_size)
        if return_intermediates:
            inter.update(vit_encoder_out=x, vit_merged=merged, rope_freqs_cis=freqs_cis)
            return merged, inter
        return merged


def patch_merge(x: torch.Tensor, grids: list[Grid], kernel: tuple[int, int] = (2, 2)) -> torch.Tensor:
    """Concatenate each 2x2 patch neighbourhood: [(r,c), (r,c+1), (r+1,c), (r+1,c+1)], row-major."""
    kh, kw = kernel
    out, start = [], 0
    for h, w in grids:
        t = x[start : start + h * w].view(h // kh, kh, w // kw, kw, -1).permute(0, 2, 1, 3, 4)
        out.append(t.reshape((h // kh) * (w // kw), -1))
        start += h * w
    return torch.cat(out)


def projector(in_dim: int, out_dim: int) -> nn.Sequential:
    """`mlp1`: LayerNorm -> Linear -> GELU (erf) -> Linear, indices 0, 1, 3 as in the checkpoint."""
    return nn.Sequential(nn.LayerNorm(in_dim, eps=1e-5), nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
