"""Load and save LocateAnything checkpoints in the Hugging Face release layout.

config.json + model.safetensors or model-0000x-of-0000N.safetensors with model.safetensors.index.json,
bf16 or fp32, lm_head stored or left out (tied). Tensors are views of a private memory map of
each file, assigned to a model built on the meta device: a 7.6 GB checkpoint never exists twice in
memory (on the CPU in its own dtype it is not even copied once; otherwise each tensor is converted
or moved to the device straight from the map). Only safetensors: pickle-based files are refused, never loaded.
"""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import torch

from .config import LocateAnythingConfig
from .locate_anything import LocateAnything

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
TIED_HEAD = "language_model.lm_head.weight"
# files that travel with the weights (tokenizer and processor), copied by save_pretrained
SIDE_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.json",
              "preprocessor_config.json", "processor_config.json", "generation_config.json")


class CheckpointError(RuntimeError):
    """The checkpoint directory is missing, incomplete, corrupt or in an unsupported format."""


def _weight_files(ckpt: Path) -> list[Path]:
    if (ckpt / INDEX_FILE).exists():
        try:
            weight_map = json.loads((ckpt / INDEX_FILE).read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as e:
            raise CheckpointError(f"{ckpt / INDEX_FILE}: not a valid safetensors index ({e})") from None
        files = [ckpt / f for f in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise CheckpointError(f"{ckpt}: shards listed in {INDEX_FILE} are missing: {missing}")
        return files
    if (ckpt / SINGLE_FILE).exists():
        return [ckpt / SINGLE_FILE]
    pickles = sorted(p.name for p in ckpt.glob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(f"{ckpt}: only pickle-based weights found ({pickles}); locate_ros loads safetensors only "
                              "(convert them with safetensors' tools in a trusted environment)")
    raise CheckpointError(f"{ckpt}: no {SINGLE_FILE} or {INDEX_FILE}")


_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}


def _mapped_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a (validated) safetensors file as a view of one private memory map of it.

    No bytes are copied: pages are read from the page cache when a tensor is used, and a tensor that
    keeps its dtype on the CPU stays backed by the file (copy-on-write, the file is never modified).
    """
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    storage = torch.UntypedStorage.from_file(str(path), shared=False, nbytes=path.stat().st_size)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _ST_DTYPES[info["dtype"]]
        begin = 8 + n + info["data_offsets"][0]
        itemsize = torch.empty((), dtype=dtype).element_size()
        if begin % itemsize:  # unaligned (not written by safetensors' own writer): copy this one tensor
            raw = storage[begin: 8 + n + info["data_offsets"][1]]
            out[name] = torch.frombuffer(bytearray(bytes(raw)), dtype=dtype).reshape(info["shape"])
        else:
            out[name] = torch.empty(0, dtype=dtype).set_(storage, begin // itemsize, info["shape"])
    return out


def default_dtype(device: torch.device) -> torch.dtype:
    # bf16 matmuls are slow on most CPUs and the golden parity is defined in fp32
    return torch.float32 if device.type == "cpu" else torch.bfloat16


def load_model(ckpt_dir: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> LocateAnything:
    ckpt = Path(ckpt_dir)
    if not ckpt.is_dir():
        raise CheckpointError(f"{ckpt}: not a directory")
    cfg = LocateAnythingConfig.from_json(ckpt / "config.json")
    device = torch.device(device)
    dtype = dtype or default_dtype(device)
    with torch.device("meta"):
        model = LocateAnything(cfg)
    expected = {n: p.shape for n, p in model.named_parameters(remove_duplicate=False)}
    tied = cfg.text.tie_word_embeddings
    from safetensors import SafetensorError, safe_open

    state, unexpected, misshaped = {}, [], []
    for f in _weight_files(ckpt):
        try:
            with safe_open(str(f), framework="pt", device="cpu") as st:  # validates header and sizes
                names = list(st.keys())
                shapes = {name: tuple(st.get_slice(name).get_shape()) for name in names}
            mapped = _mapped_tensors(f)
            for name in names:
                if name not in expected:
                    unexpected.append(name)
                    continue
                if shapes[name] != tuple(expected[name]):
                    misshaped.append(f"{name}: file {list(shapes[name])} vs config {list(expected[name])}")
                    continue
                if tied and name == TIED_HEAD:
                    continue  # tied to embed_tokens: one tensor in memory, as the reference does
                state[name] = mapped[name].to(device=device, dtype=dtype)
        except (SafetensorError, KeyError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{f}: corrupt or not a safetensors file ({e})") from None
        except OSError as e:
            raise CheckpointError(f"{f}: cannot read ({e})") from None
    missing = sorted(set(expected) - set(state) - ({TIED_HEAD} if tied else set()))
    if missing or unexpected or misshaped:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {sorted(unexpected)[:3]})")
        if misshaped:
            parts.append(f"{len(misshaped)} with wrong shapes (e.g. {misshaped[:3]})")
        raise CheckpointError(f"{ckpt}: tensors do not match config.json: " + "; ".join(parts))
    model.load_state_dict(state, strict=False, assign=True)
    if tied:  # assign=True replaced the embedding's Parameter object: tie the head to the new one
        model.language_model.lm_head.weight = model.language_model.model.embed_tokens.weight
    return model.eval().requires_grad_(False)


def save_pretrained(model: LocateAnything, out_dir: str | Path, *, dtype: torch.dtype | None = None,
                    max_shard_bytes: int = 5 * 1024**3, side_files_from: str | Path | None = None,
                    save_tied_head: bool = False) -> Path:
    """Write the release layout; shards above `max_shard_bytes` with an index (as HF does)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tied = model.cfg.text.tie_word_embeddings
    tensors = {}
    for name, p in model.state_dict().items():
        if tied and name == TIED_HEAD and not save_tied_head:
            continue
        tensors[name] = p.detach().to(device="cpu", dtype=dtype or p.dtype).contiguous().clone()
    shards, cur, size = [], {}, 0
    for name in sorted(tensors):
        nbytes = tensors[name].numel() * tensors[name].element_size()
        if cur and size + nbytes > max_shard_bytes:
            shards.append(cur)
            cur, size = {}, 0
        cur[name] = tensors[name]
        size += nbytes
    shards.append(cur)
    for old in list(out.glob("model*.safetensors")) + [out / INDEX_FILE]:
        old.unlink(missing_ok=True)
    if len(shards) == 1:
        save_file(shards[0], str(out / SINGLE_FILE), metadata={"format": "pt"})
    else:
        weight_map = {}
        for i, shard in enumerate(shards, 1):
            fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            save_file(shard, str(out / fname), metadata={"format": "pt"})
            weight_map.update({k: fname for k in shard})
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        (out / INDEX_FILE).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    cfg = model.cfg.to_dict()
    dt = str(dtype or model.dtype).removeprefix("torch.")
    cfg["torch_dtype"] = dt
    if "dtype" in cfg:
        cfg["dtype"] = dt
    (out / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    if side_files_from is not None:
        for name in SIDE_FILES:
            src = Path(side_files_from) / name
            if src.exists() and src.resolve() != (out / name).resolve():
                shutil.copy(src, out / name)
    return out
