"""The golden tiny checkpoint, rebuilt from its documented seed recipe.

NVIDIA's golden vectors (test/golden/, compacted from ../shared/golden) were computed on a 76 MB tiny
random checkpoint. Its weights are a pure function of a seed, the parameter names and shapes, so we
rebuild them instead of carrying the file, and check every tensor's sha256 against the original.
"""
from __future__ import annotations

import hashlib
import json
import lzma
import math
import shutil
from pathlib import Path

import numpy as np

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "test" / "golden"
TINY_SEED = 20260527


def golden_dir() -> Path:
    if not GOLDEN_DIR.is_dir():
        raise FileNotFoundError(f"{GOLDEN_DIR} not found: run from a source checkout")
    return GOLDEN_DIR


def _read_keys(path: Path) -> list[tuple[str, list[int]]]:
    keys = []
    for line in path.read_text().splitlines():
        name, shape, _dtype = line.split("\t")
        keys.append((name, json.loads(shape)))
    return keys


def tiny_state_dict(keys: list[tuple[str, list[int]]] | None = None, seed: int = TINY_SEED) -> dict:
    """The recipe of golden/README.md: one randn draw per parameter in sorted-name order."""
    import torch

    keys = keys if keys is not None else _read_keys(golden_dir() / "tiny" / "keys.txt")
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, shape in sorted(keys):
        if name == "language_model.lm_head.weight":
            continue
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        if name.endswith("embed_tokens.weight"):
            t = 0.25 * r
        elif name.endswith("pos_emb.weight"):
            t = 0.5 * r
        elif name.endswith("patch_embed.proj.weight"):
            t = r / math.sqrt(3 * 14 * 14)
        elif r.dim() == 2:
            a = 3.0 if name.endswith(("o_proj.weight", "down_proj.weight")) else 1.0
            t = r * a / math.sqrt(shape[1])
        elif name == "language_model.model.norm.weight":
            t = 3 * (1 + 0.1 * r)
        elif r.dim() == 1 and ("norm" in name or name.startswith("mlp1.0")) and name.endswith("weight"):
            t = 1 + 0.1 * r
        else:
            t = 0.1 * r
        sd[name] = t
    if any(n == "language_model.lm_head.weight" for n, _ in keys):
        sd["language_model.lm_head.weight"] = sd["language_model.model.embed_tokens.weight"]
    return sd


def tensor_sha256(sd: dict) -> dict[str, str]:
    return {k: hashlib.sha256(np.ascontiguousarray(v.detach().cpu().numpy()).tobytes()).hexdigest() for k, v in sorted(sd.items())}


def write_tokenizer(dst: Path) -> None:
    with lzma.open(golden_dir() / "tiny" / "tokenizer.json.xz", "rb") as f:
        (dst / "tokenizer.json").write_bytes(f.read())


def build_tiny_checkpoint(dst: str | Path, verify: bool = True) -> Path:
    """Write the golden tiny checkpoint (release layout, float32) to `dst`; idempotent."""
    from safetensors.torch import save_file

    dst = Path(dst)
    if (dst / ".complete").exists():
        return dst
    dst.mkdir(parents=True, exist_ok=True)
    src = golden_dir() / "tiny"
    sd = tiny_state_dict()
    if verify:
        want = json.loads((golden_dir() / "tiny_tensor_sha256.json").read_text())
        got = tensor_sha256(sd)
        bad = [k for k in want if got.get(k) != want[k]]
        if bad or set(got) != set(want):
            raise RuntimeError(f"rebuilt tiny checkpoint differs from the golden one: {bad[:5]}")
    # the golden file stores the tied head explicitly; save_file refuses shared storage, so clone it
    sd = {k: v.clone().contiguous() for k, v in sd.items()}
    save_file(sd, str(dst / "model.safetensors"), metadata={"format": "pt"})
    for f in src.iterdir():
        if f.name not in ("tokenizer.json.xz", "keys.txt"):
            shutil.copy(f, dst / f.name)
    write_tokenizer(dst)
    (dst / ".complete").write_text("ok\n")
    return dst
