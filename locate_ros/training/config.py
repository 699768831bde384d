"""Model sizes and training hyper-parameters as dataclasses; a from-scratch model in the release layout.

`model_config` starts from the golden tiny checkpoint's config.json (the release schema) and
changes only sizes and token ids, so what we train loads like any LocateAnything checkpoint.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..data.families import NEGATIVE_SHARE
from ..model.config import LocateAnythingConfig
from ..model.locate_anything import LocateAnything
from ..testing.tiny import golden_dir
from .tokenizer import token_ids_config


@dataclass(frozen=True)
class ModelSize:
    text_hidden: int = 256
    text_layers: int = 4
    text_heads: int = 8
    text_kv_heads: int = 2
    text_intermediate: int = 768
    vision_hidden: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    vision_intermediate: int = 384
    pos_emb_grid: int = 32  # the learned position grid (64 in the release), resized per image

    @classmethod
    def tiny(cls) -> "ModelSize":
        """For tests: seconds per step on a CPU."""
        return cls(64, 2, 4, 2, 128, 32, 2, 2, 64, 16)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    examples_per_step: int = 8  # packed into one sequence (attention per example: model.segments)
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decay to lr * this
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    coord_sigma: float = 0.0  # >0: coordinate targets spread as a Gaussian over neighbouring bins (in bins)
    # each block row's weight in the one cross-entropy, relative to a stream row (1: the paper's plain
    # mean). >1 weighs Fast mode's rows (a whole box off one forward step) more; run v8's 2 did not
    # narrow the fast-slow gap (tools/train_demo_model.sh)
    mtp_weight: float = 1.0
    # >0: this much of each `<null>` target goes to ids no decision reads as a coordinate, so that
    # Fast mode's box rule (any coordinate among a row's top 4) leaves the end of an answer alone
    # (objective.NULL_RUNNERS_UP)
    null_smoothing: float = 0.0
    # >0: the answer's coordinates, as inputs (targets stay true), move by a Gaussian of this many
    # bins (objective.build_example), so that block rows learn to read back slightly-off boxes
    prefix_jitter: float = 0.0
    # >0: the instance-key aid (objective.joint_loss), this weight: decoder layer instance_key_layer
    # (-1: the middle one) is trained to name the box's x1 on every coordinate row of a box block, so
    # that Fast mode's rows agree on the next instance before they read its edges (run ik1's 0.2 cost
    # fast mode 4.6 points; tools/train_demo_model.sh)
    instance_key_weight: float = 0.0
    instance_key_layer: int = -1
    # train each box block's y1, x2, y2 rows on the box its x1 row names when that is a later box of
    # the answer (objective.follow_first_coordinate), so that a block out of order is still one box
    # (run fo1: the rows did not learn to follow, and no mode moved beyond its interval)
    follow_first: bool = False
    # each row that picks the instance of a box only its colour tells from the one taken next counts this
    # many times in the loss (objective.joint_loss; data.families.colour_rivals): 1 = the paper's mean
    colour_rival_weight: float = 1.0
    # ... the rows of every colour + shape box whose shape is there in another colour, wherever it lies
    # (run cw1, with the other colour in between only, learned a shortcut: see tools/train_demo_model.sh)
    colour_rival_anywhere: bool = False
    # add a block anchored at each box's x1 (objective.build_example): what instance-anchored decoding
    # (DecodeOptions.instance_anchored) runs after the x1 that picks the box's instance
    x1_blocks: bool = False
    seed: int = 0  # data stream and initialisation
    image_size: tuple[int, int] = (128, 224)  # (min, max) image side of the generated samples
    # (min, max) image side of the `dense` family's samples (None: image_size, as for the others).
    # Why: the evaluation draws dense scenes at the family's own size (data.families.DENSE_SIZE,
    # 320-448 px: room for 120 instances); at the other families' 144-256 px the same 50-120
    # instances would be a different, smaller task than the one the dense goal measures
    dense_size: Optional[tuple[int, int]] = None
    families: Optional[tuple[str, ...]] = None  # None = every data-engine family
    # how often a question asks for something absent (answer None). 0 while the model cannot yet
    # tell presence: then None, at its base rate, outweighs every one of the spread coordinate bins
    # after `<box>`, and greedy token-by-token decoding answers None for everything
    negative_share: float = NEGATIVE_SHARE
    ground_weight: float = 0.0  # >0: the grounding-attention aid (objective.grounding_loss), this weight
    ground_layer: int = -1  # the decoder layer whose head 0 the aid teaches (-1: the middle one)
    ground_steps: int = 0  # ... for the first this many steps (0: all of them)
    # >0: the vision aid (objective.VisionAid: each image token's shape, colour and place read off
    # the features the decoder sees), this weight; its read-outs go to vision_aid.safetensors
    vision_aid_weight: float = 0.0
    freeze_vision: bool = False
    freeze_coord_embeddings: bool = False  # keep the <0>..<1000> rows of the tied embedding as they start
    lora_rank: int = 0  # >0: train LoRA adapters on the decoder's linear layers instead of its weights
    # with --init: append this many decoder layers (grow_decoder), e.g. to give Fast mode's block rows
    # more depth to agree on one instance; keep --ground-layer where the checkpoint learned it
    grow_layers: int = 0
    # with --grow-layers: train the appended layers only (everything the checkpoint had stays as it
    # was). Why: CPU-sized batches moved a well-trained checkpoint's own weights for the worse (v14,
    # v15), and with nothing below them trained, the backward pass stops at the new layers
    train_only_new_layers: bool = False
    # >0: also keep an exponential moving average of the trained weights (each step ema += (1 - d) *
    # (w - ema)), saved as a release checkpoint in OUT/ema. It starts at the first weights, so a
    # fine-tune's average keeps part of the checkpoint it began from: the equal mean of v12 and v14
    # (v14's schedule began at v12) beat both in every mode (tools/train_demo_model.sh, `avg`)
    ema_decay: float = 0.0
    tokenizer_samples: int = 3000  # data-engine samples whose text the tokenizer is learned from
    save_every: int = 500
    log_every: int = 10


def model_config(tok, size: ModelSize) -> dict:
    """config.json for a from-scratch model: the release schema with `size` and the tokenizer's ids."""
    cfg = json.loads((golden_dir() / "tiny" / "config.json").read_text())
    ids = token_ids_config(tok)
    cfg.update(ids["top"])
    cfg["text_config"].update(ids["text"])
    cfg["text_config"].update(hidden_size=size.text_hidden, num_hidden_layers=size.text_layers,
                              num_attention_heads=size.text_heads, num_key_value_heads=size.text_kv_heads,
                              intermediate_size=size.text_intermediate,
                              layer_types=["full_attention"] * size.text_layers)
    cfg["vision_config"].update(hidden_size=size.vision_hidden, num_hidden_layers=size.vision_layers,
                                num_attention_heads=size.vision_heads, intermediate_size=size.vision_intermediate,
                                init_pos_emb_height=size.pos_emb_grid, init_pos_emb_width=size.pos_emb_grid)
    cfg["dtype"] = cfg["torch_dtype"] = "float32"
    return cfg


def init_model(cfg: dict, seed: int) -> LocateAnything:
    """A freshly initialised model: N(0, 0.02) matrices, zero biases, unit norms, and

    - every residual branch's output projection at zero (vision `wo`, `mlp.fc1`; decoder `o_proj`,
      `mlp.down_proj`): both towers start as identities, so image tokens begin as the normalised patch
      embedding + position embedding, different for every patch and position. With ordinary init the
      vision tower collapsed to one vector for all patches within ~1k steps and the decoder learned to
      ignore the image (a loss identical with the wrong image after 4k steps);
    - the vision position grid as bump codes and 2-D sinusoids as strong as the patch embedding
      (POS_EMB_STD): at N(0, 0.02) the image tokens carried almost no absolute position (the ViT's
      2-D RoPE moves only its attention), so no image token could say where it is;
    - the coordinate embeddings as a bump code of their value, so neighbouring bins start out
      similar (the head is tied, so nearby coordinates also get similar logits), not 1001 unrelated
      classes; train with --freeze-coord-embeddings to keep it."""
    torch.manual_seed(seed)
    model = LocateAnything(LocateAnythingConfig.from_dict(cfg))
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    pos = model.vision_model.patch_embed.pos_emb.weight
    with torch.no_grad():
        pos.copy_(position_grid_embeddings(pos.shape[0], pos.shape[1], pos.shape[2], std=POS_EMB_STD))
    for name, p in model.named_parameters():
        if name.endswith(("attn.o_proj.weight", "mlp.down_proj.weight", ".wo.weight", "mlp.fc1.weight")):
            nn.init.zeros_(p)
    t = model.cfg.tokens
    emb = model.language_model.model.embed_tokens.weight
    with torch.no_grad():
        emb[t.coord_start:t.coord_end + 1] = coordinate_embeddings(t.num_coords, emb.shape[1], std=COORD_EMB_STD)
    return model


def grow_decoder(model: LocateAnything, layers: int, seed: int) -> LocateAnything:
    """`model` with `layers` more decoder layers after its last one, initialised as `init_model` does:
    their residual branches end in zero projections, so the grown model computes exactly what `model`
    did (bit for bit) and training goes on from there. config.json says the new depth, so the result
    is an ordinary checkpoint of the release layout."""
    cfg = model.cfg.to_dict()
    text = cfg["text_config"]
    text["num_hidden_layers"] += layers
    if "layer_types" in text:
        text["layer_types"] = text["layer_types"] + ["full_attention"] * layers
    grown = init_model(cfg, seed).to(device=model.device, dtype=model.dtype)
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    old = model.cfg.text.num_hidden_layers
    new_layers = tuple(f"language_model.model.layers.{i}." for i in range(old, old + layers))
    assert not unexpected and all(k.startswith(new_layers) for k in missing), (missing, unexpected)
    return grown


COORD_EMB_STD = 0.05  # rows of norm ~0.8: room for sharp logits from a unit-RMS hidden state
POS_EMB_STD = 0.3  # about the patch embedding's standard deviation at initialisation on data-engine images


def bump_code(values: torch.Tensor, bumps: int) -> torch.Tensor:
    """[N, bumps] Gaussian bumps centred evenly on 0..1, one spacing wide, evaluated at `values` in 0..1:
    a population code. Any position is a weighted pair of neighbouring bumps, and a sum of bumps
    peaks where its weight is, so a linear readout can put a sharp maximum anywhere."""
    centres = torch.linspace(0, 1, bumps)
    return torch.exp(-0.5 * ((values[:, None].float() - centres[None]) * (bumps - 1)) ** 2)


def position_grid_embeddings(rows: int, cols: int, dim: int, std: float) -> torch.Tensor:
    """[rows, cols, dim]: the column and the row of each grid cell as bump codes (one bump per cell,
    a quarter of the channels each), then as 2-D sinusoids (wavelengths from a quarter of the grid
    to four grids, so they survive the bicubic resize to a ~10-patch image); scaled to `std`."""
    def sinusoids(n: int, d: int) -> torch.Tensor:
        t = (torch.arange(n, dtype=torch.float32)[:, None] + 0.5) / n
        wavelengths = torch.exp(torch.linspace(math.log(0.25), math.log(4.0), d // 2))
        ang = 2 * math.pi * t / wavelengths[None]
        return torch.cat([ang.sin(), ang.cos()], dim=1)

    def axis(n: int, d: int) -> torch.Tensor:
        b = min(n, d // 2)
        centre = (torch.arange(n, dtype=torch.float32) + 0.5) / n
        return torch.cat([bump_code((centre - 0.5 / n) * n / max(n - 1, 1), b), sinusoids(n, d - b)], dim=1)

    x = axis(cols, dim // 2)[None].expand(rows, cols, dim // 2)
    y = axis(rows, dim - dim // 2)[:, None].expand(rows, cols, dim - dim // 2)
    e = torch.cat([x, y], dim=2)
    return e * (std / e.std())


COORD_BUMPS = 64  # coordinate code resolution: one bump per ~16 of the 1001 bins


def coordinate_embeddings(n: int, dim: int, std: float) -> torch.Tensor:
    """[n, dim]: value v as the bump code of v / (n - 1) in the first COORD_BUMPS channels (zeros in
    the rest), scaled to standard deviation `std`. Sinusoids of the value (wavelengths 4 to 4n bins)
    came first: the model could not compute their high frequencies from an object's position, and
    its argmax jumped between a few bins (x1 in {15, 99, 129, ...} for every image)."""
    e = torch.zeros(n, dim)
    b = min(COORD_BUMPS, dim)
    e[:, :b] = bump_code(torch.arange(n) / (n - 1), b)
    return e * (std / e.std())
