"""Average the weights of checkpoints of one model (same config, same tensors) into a new checkpoint.

    python tools/average_checkpoints.py OUT CKPT CKPT [CKPT ...] [--weights W W ...]

Why: a fine-tuning schedule that starts from a checkpoint ends at a point of the same basin, and the
mean of the two can score better than either (weight averaging, as in model soups / WiSE-FT). For
the demo model it has not yet: the mean of v12 and v14 led v12 by 2 points of slow `objects` mean F1
on the evaluation command's 82 images but trailed it by 2 on 150 other images, and the mean of v11
and v12 did not beat v12 (tools/train_demo_model.sh). So measure a mean on held-out images that did
not choose it, and compare with tools/compare_evals.py, before using it.
OUT gets the weighted mean of every floating-point tensor (computed in float64, stored in the
config's torch_dtype) and the first checkpoint's side files (tokenizer, processor), read and
written by the package's own load_model / save_pretrained, so sharded release checkpoints work
too. The checkpoints must agree on config.json, their tokenizer files and every tensor's name and
shape, or nothing is written.
"""
import argparse
import json
import sys
from pathlib import Path

import torch

from locate_ros.model.checkpoint import SIDE_FILES, CheckpointError, load_model, save_pretrained

TOKENIZER_FILES = tuple(f for f in SIDE_FILES if f.startswith(("tokenizer", "special_tokens")))


def average(out: Path, checkpoints: list[Path], weights: list[float]) -> None:
    if len(checkpoints) < 2 or len(weights) != len(checkpoints) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError("give two or more checkpoints and as many non-negative weights (not all zero)")
    configs = [json.loads((c / "config.json").read_text()) for c in checkpoints]
    if any(c != configs[0] for c in configs[1:]):
        raise ValueError("the checkpoints' config.json differ: they are not the same model")
    for name in TOKENIZER_FILES:  # the same ids must mean the same tokens
        contents = [(c / name).read_bytes() if (c / name).exists() else None for c in checkpoints]
        if any(x != contents[0] for x in contents[1:]):
            raise ValueError(f"the checkpoints' {name} differ: their token ids do not mean the same")
    dtype = getattr(torch, configs[0].get("torch_dtype", "float32"))  # the files' own: no copy, no rounding
    models = []
    for c in checkpoints:
        try:
            models.append(load_model(c, dtype=dtype))
        except CheckpointError as e:  # with one config.json, a missing or misshaped tensor is this
            raise ValueError(f"{c}: its tensors differ from the model's config ({e})") from None
    states = [m.state_dict() for m in models]
    total = sum(weights)
    # all means first, then load: a tied head is the embedding's own tensor, so writing in place would
    # average it twice
    averaged = {k: (sum(w * s[k].double() for w, s in zip(weights, states)) / total).to(v.dtype)
                if v.is_floating_point() else v for k, v in states[0].items()}
    models[0].load_state_dict(averaged)
    save_pretrained(models[0], out, dtype=dtype, side_files_from=checkpoints[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--weights", type=float, nargs="+", default=None, help="one per checkpoint (default: equal)")
    args = ap.parse_args(argv)
    try:
        average(args.out, args.checkpoints, args.weights or [1.0] * len(args.checkpoints))
    except (ValueError, OSError, CheckpointError) as e:
        print(f"average_checkpoints: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} (mean of {len(args.checkpoints)} checkpoints)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
