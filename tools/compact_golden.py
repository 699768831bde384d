"""Copy NVIDIA's golden vectors (../shared/golden) into test/golden/ in a compact form.

Why: the tests must run on a fresh clone where ../shared is absent, and the full vectors are ~120 MB
(mostly full-vocabulary logits and the 76 MB tiny checkpoint). We keep every small array and JSON
verbatim, and for each full-vocabulary logits row keep the top-64 entries plus a fixed random sample
of 1024 columns; the checkpoint is rebuilt from its seed recipe (locate_ros.testing.tiny) and checked
against the per-tensor sha256 recorded here. Run once: python tools/compact_golden.py [SRC]
"""
import hashlib
import json
import lzma
import shutil
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / ".." / "shared" / "golden")
DST = Path(__file__).resolve().parents[1] / "test" / "golden"
TOPK, NSAMPLE = 64, 1024


def compact_logits(name, rows, out):
    rows = np.asarray(rows, dtype=np.float32).reshape(-1, rows.shape[-1])
    top = np.argsort(-rows, axis=-1, kind="stable")[:, :TOPK]
    cols = np.random.default_rng(0).choice(rows.shape[-1], NSAMPLE, replace=False)
    cols.sort()
    out[f"{name}__top_ids"] = top.astype(np.int64)
    out[f"{name}__top_logits"] = np.take_along_axis(rows, top, -1)
    out[f"{name}__sample_cols"] = cols.astype(np.int64)
    out[f"{name}__sample_logits"] = rows[:, cols]


def main():
    DST.mkdir(parents=True, exist_ok=True)
    vec = SRC / "vectors"
    for f in sorted(vec.glob("*.json")) + sorted(vec.glob("a_pre_*.npy")) + sorted(vec.glob("d_gen_*.npz")):
        shutil.copy(f, DST / f.name)
    for f in ["a_vision.npz"]:
        shutil.copy(vec / f, DST / f)
    shutil.copy(vec / "image_84x56.png", DST / "image_84x56.png")

    pre = dict(np.load(vec / "b_prefill.npz"))
    out = {k: v for k, v in pre.items() if k not in ("logits_all", "logits_last")}
    compact_logits("logits_all", pre["logits_all"], out)
    np.savez_compressed(DST / "b_prefill_compact.npz", **out)

    win = dict(np.load(vec / "c_pbd_window.npz"))
    out = {}
    for k, v in win.items():
        if k.endswith("logits") or k.endswith("without_cache"):
            compact_logits(k, v, out)
        else:
            out[k] = v
    np.savez_compressed(DST / "c_pbd_window_compact.npz", **out)

    # tiny checkpoint: per-tensor sha256 (the weights themselves are rebuilt from the seed recipe)
    sd = load_file(str(SRC / "tiny" / "model.safetensors"))
    hashes = {k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest() for k, v in sorted(sd.items())}
    (DST / "tiny_tensor_sha256.json").write_text(json.dumps(hashes, indent=1) + "\n")
    tiny_dst = DST / "tiny"
    tiny_dst.mkdir(exist_ok=True)
    for f in (SRC / "tiny").iterdir():
        if f.name in ("model.safetensors", "tokenizer.json"):
            continue
        shutil.copy(f, tiny_dst / f.name)
    with open(SRC / "tiny" / "tokenizer.json", "rb") as fi, lzma.open(tiny_dst / "tokenizer.json.xz", "wb", preset=9) as fo:
        fo.write(fi.read())
    print("wrote", DST)


if __name__ == "__main__":
    main()
