"""Model configuration read from a checkpoint's config.json (the nvidia/LocateAnything-3B schema).

Every token id the code uses comes from here (`TokenIds`), never from literals: the checkpoint's
config is the one source. The raw dict is kept so `save_pretrained` writes the file back unchanged.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """config.json is missing a field or holds a value this implementation cannot run."""


def _need(d: dict, key: str, where: str):
    if key not in d:
        raise ConfigError(f"config.json: missing field {where}{key!r}")
    return d[key]


@dataclass(frozen=True)
class TextConfig:
    """The Qwen2 decoder (`text_config`)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    rope_theta: float = 1e6
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 32768
    tie_word_embeddings: bool = True
    block_size: int = 6

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, d: dict) -> "TextConfig":
        w = "text_config."
        cfg = cls(
            hidden_size=int(_need(d, "hidden_size", w)),
            intermediate_size=int(_need(d, "intermediate_size", w)),
            num_hidden_layers=int(_need(d, "num_hidden_layers", w)),
            num_attention_heads=int(_need(d, "num_attention_heads", w)),
            num_key_value_heads=int(d.get("num_key_value_heads", d.get("num_attention_heads"))),
            vocab_size=int(_need(d, "vocab_size", w)),
            rope_theta=float(d.get("rope_theta", 1e6)),
            rms_norm_eps=float(d.get("rms_norm_eps", 1e-6)),
            max_position_embeddings=int(d.get("max_position_embeddings", 32768)),
            tie_word_embeddings=bool(d.get("tie_word_embeddings", True)),
            block_size=int(d.get("block_size", 6)),
        )
        if cfg.hidden_size % cfg.num_attention_heads or cfg.num_attention_heads % cfg.num_key_value_heads:
            raise ConfigError("text_config: hidden_size/heads/kv heads are not divisible")
        if d.get("use_sliding_window"):
            raise ConfigError("text_config.use_sliding_window=true is not supported (LocateAnything uses none)")
        if d.get("rope_scaling"):
            raise ConfigError("text_config.rope_scaling is not supported (LocateAnything uses none)")
        if d.get("hidden_act", "silu") != "silu":
            raise ConfigError(f"text_config.hidden_act={d.get('hidden_act')!r}: only 'silu' is supported")
        return cfg


@dataclass(frozen=True)
class VisionConfig:
    """MoonViT (`vision_config`)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    patch_size: int = 14
    init_pos_emb_height: int = 64
    init_pos_emb_width: int = 64
    merge_kernel_size: tuple[int, int] = (2, 2)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, d: dict) -> "VisionConfig":
        w = "vision_config."
        return cls(
            hidden_size=int(_need(d, "hidden_size", w)),
            num_hidden_layers=int(_need(d, "num_hidden_layers", w)),
            num_attention_heads=int(_need(d, "num_attention_heads", w)),
            intermediate_size=int(_need(d, "intermediate_size", w)),
            patch_size=int(d.get("patch_size", 14)),
            init_pos_emb_height=int(d.get("init_pos_emb_height", 64)),
            init_pos_emb_width=int(d.get("init_pos_emb_width", 64)),
            merge_kernel_size=tuple(int(x) for x in d.get("merge_kernel_size", (2, 2))),
        )


@dataclass(frozen=True)
class TokenIds:
    """Special token ids, all from config.json (top level and text_config)."""

    image: int
    box_start: int
    box_end: int
    ref_start: int
    ref_end: int
    coord_start: int  # id of <0>
    coord_end: int  # id of <1000>
    none: int  # the ordinary word "None": an empty result is <box>None</box>
    im_end: int  # <|im_end|>, the end of an answer
    text_mask: int
    null: int
    switch: int

    def is_coord(self, token_id: int) -> bool:
        return self.coord_start <= token_id <= self.coord_end

    def coord_value(self, token_id: int) -> int:
        return token_id - self.coord_start

    def coord_token(self, value: int) -> int:
        return self.coord_start + value

    @property
    def num_coords(self) -> int:
        return self.coord_end - self.coord_start + 1

    @classmethod
    def from_dict(cls, top: dict, text: dict) -> "TokenIds":
        return cls(
            image=int(_need(top, "image_token_index", "")),
            box_start=int(_need(top, "box_start_token_id", "")),
            box_end=int(_need(top, "box_end_token_id", "")),
            ref_start=int(_need(top, "ref_start_token_id", "")),
            ref_end=int(_need(top, "ref_end_token_id", "")),
            coord_start=int(_need(top, "coord_start_token_id", "")),
            coord_end=int(_need(top, "coord_end_token_id", "")),
            none=int(_need(top, "none_token_id", "")),
            im_end=int(top.get("eos_token_id", text.get("eos_token_id"))),
            text_mask=int(_need(text, "text_mask_token_id", "text_config.")),
            null=int(_need(text, "null_token_id", "text_config.")),
            switch=int(text.get("switch_token_id", -1)),
        )


@dataclass(frozen=True)
class LocateAnythingConfig:
    text: TextConfig
    vision: VisionConfig
    tokens: TokenIds
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, d: dict) -> "LocateAnythingConfig":
        if d.get("model_type") not in (None, "locateanything"):
            raise ConfigError(f"config.json: model_type {d.get('model_type')!r} is not 'locateanything'")
        text = _need(d, "text_config", "")
        vision = _need(d, "vision_config", "")
        return cls(TextConfig.from_dict(text), VisionConfig.from_dict(vision), TokenIds.from_dict(d, text), raw=d)

    @classmethod
    def from_json(cls, path: str | Path) -> "LocateAnythingConfig":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: not found (a checkpoint directory needs config.json)") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(d)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(self.raw))
