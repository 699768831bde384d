"""`locate-ros` command line: locate (one image, JSON out) and demo (the bundled CPU default)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BUNDLED_MODEL = Path(__file__).resolve().parent / "demo_model"
DEMO_SCENE = {"seed": 2026, "index": 0, "family": "objects", "size": (192, 256)}  # the demo picture


def default_model_path() -> Path:
    """The checkpoint used when none is given (node, CLI demo): the demo model bundled with the package
    (trained on the data engine, tools/train_demo_model.sh)."""
    if not (BUNDLED_MODEL / "config.json").is_file():
        raise FileNotFoundError(f"the bundled demo checkpoint is missing from {BUNDLED_MODEL} (an install without "
                                "the package data?): reinstall locate_ros, or give a checkpoint with --model / model_path")
    return BUNDLED_MODEL


def demo_scene():
    """The data-engine sample the demos show: an image, its question and its ground truth."""
    from .data import make_sample

    return make_sample(**DEMO_SCENE)


def load_image(path: str):
    """Any image file PIL reads, as an HxWx3 RGB array (HxWx4 when it has transparency: the processor
    composites that on white, as the reference does)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            transparent = im.mode in ("RGBA", "LA") or "transparency" in im.info
            return np.asarray(im.convert("RGBA" if transparent else "RGB"))
    except (FileNotFoundError, UnidentifiedImageError, OSError) as e:
        raise SystemExit(f"locate-ros: cannot read image {path}: {e}")


def _locate(args, image) -> dict:
    from .locator import Locator

    loc = Locator.from_pretrained(args.model, device=args.device, dtype=args.dtype, mode=args.mode, template=args.template)
    query = args.query[0] if len(args.query) == 1 else args.query
    res = loc.locate(image, query, task=args.task, max_new_tokens=args.max_new_tokens,
                     repetition_penalty=args.repetition_penalty, temperature=args.temperature, max_boxes=args.max_boxes,
                     max_time_s=args.max_time)
    return res.to_dict()


def main(argv=None) -> int:
    from .processing import TASKS

    p = argparse.ArgumentParser(prog="locate-ros", description="LocateAnything grounding (ROS-free core)")
    sub = p.add_subparsers(dest="cmd", required=True)
    lp = sub.add_parser("locate", help="ground a query in one image and print JSON")
    lp.add_argument("--model", required=True, help="checkpoint directory (Hugging Face layout, safetensors)")
    lp.add_argument("--image", required=True)
    lp.add_argument("--query", action="append", default=[], help="text; repeat for several categories")
    lp.add_argument("--task", default="detect", choices=sorted(TASKS))
    lp.add_argument("--mode", default="hybrid", choices=["slow", "fast", "hybrid"])
    lp.add_argument("--template", default="worker", choices=["worker", "eval"])
    lp.add_argument("--device", default="cpu")
    lp.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 (default: fp32 on CPU, bf16 on GPU)")
    lp.add_argument("--max-new-tokens", type=int, default=2048)
    lp.add_argument("--max-boxes", type=int, default=None)
    lp.add_argument("--max-time", type=float, default=None, help="seconds of decoding at most")
    lp.add_argument("--repetition-penalty", type=float, default=1.0)
    lp.add_argument("--temperature", type=float, default=0.0)
    dp = sub.add_parser("demo", help="run the bundled CPU default (demo checkpoint, a data-engine scene)")
    dp.add_argument("--mode", default="hybrid", choices=["slow", "fast", "hybrid"])
    args = p.parse_args(argv)

    if args.cmd == "demo":  # `locate` on the demo scene's picture and question, with the default model
        scene = demo_scene()
        queries = [scene.query] if isinstance(scene.query, str) else list(scene.query)
        args = p.parse_args(["locate", "--model", str(default_model_path()), "--image", "(demo scene)", "--task",
                             scene.task, "--mode", args.mode, "--max-new-tokens", "256"]
                            + [a for q in queries for a in ("--query", q)])
        image = scene.image
    else:
        image = load_image(args.image)
    if args.task not in ("ocr",) and not args.query:
        p.error("--query is required for this task")
    try:
        out = _locate(args, image)
    except (ValueError, RuntimeError) as e:  # bad input or checkpoint: one clear line, no traceback
        print(f"locate-ros: {e}", file=sys.stderr)
        return 2
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
