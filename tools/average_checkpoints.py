"""Average the weights of checkpoints of one model (same config, same tensors) into a new checkpoint.

    python tools/average_checkpoints.py OUT CKPT CKPT [CKPT ...] [--weights W W ...]

Why: a fine-tuning schedule that starts from a checkpoint ends at a point of the same basin, and the
mean of the two can score better than either (weight averaging, as in model soups / WiSE-FT):
v12 and v14 averaged scored 0.567 slow `objects` mean F1 against 0.545 and 0.542; v11 and v12
averaged did not beat v12 (tools/train_demo_model.sh). So measure the mean before using it. OUT gets the weighted mean of every floating-point tensor (computed in
float64, stored in the first checkpoint's dtypes) and the first checkpoint's other release files
(config, tokenizer, processor). Safetensors only; the checkpoints must agree on config.json,
their tokenizer files and every tensor's name, shape and dtype, or nothing is written.
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
RELEASE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "chat_template.json", "preprocessor_config.json", "processor_config.json", "generation_config.json")


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
    tensors = [load_file(str(c / "model.safetensors")) for c in checkpoints]
    first = tensors[0]
    for path, t in zip(checkpoints[1:], tensors[1:]):
        if t.keys() != first.keys() or any(t[k].shape != first[k].shape or t[k].dtype != first[k].dtype for k in first):
            raise ValueError(f"{path}: tensor names, shapes or dtypes differ from {checkpoints[0]}")
    total = sum(weights)
    averaged = {}
    for k, v in first.items():
        if v.is_floating_point():
            averaged[k] = (sum(w * t[k].double() for w, t in zip(weights, tensors)) / total).to(v.dtype)
        else:
            averaged[k] = v
    out.mkdir(parents=True, exist_ok=True)
    save_file(averaged, str(out / "model.safetensors"), metadata={"format": "pt"})
    for name in RELEASE_FILES:
        if (checkpoints[0] / name).exists():
            shutil.copyfile(checkpoints[0] / name, out / name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--weights", type=float, nargs="+", default=None, help="one per checkpoint (default: equal)")
    args = ap.parse_args(argv)
    try:
        average(args.out, args.checkpoints, args.weights or [1.0] * len(args.checkpoints))
    except (ValueError, OSError) as e:
        print(f"average_checkpoints: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} (mean of {len(args.checkpoints)} checkpoints)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
