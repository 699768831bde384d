"""Parallel Box Decoding speed: slow vs fast vs hybrid, ours vs a reference-style baseline.

One run, one model, one image: a decoder of Qwen2.5-0.5B width and depth (random weights, fp32,
2 threads by default), a 224x224 image, one category, and N = 20, 100, 300 boxes. Random weights
never emit boxes, so a logits hook replaces what the loop reads with a forced answer of N boxes; all
model work (vision, prefill, every decoder forward) is still done through the production code path.
The baseline is the reference's way of running the same loop: a KV cache that grows by
concatenation (and is cropped by slicing), full-vocabulary logits for every input position, and
PyTorch's default CPU matmul (MKL sgemm) instead of our oneDNN path.
Prints one JSON object.

  python bench/decode.py [--n 20,100,300] [--threads 2] [--modes slow,fast,hybrid,verify,anchored,readout] [--no-baseline]
                         [--unfused] [--model DIR]

`--unfused` adds our loop with q/k/v and gate/up packed one by one instead of as one matmul each
(`pack_for_onednn(fuse=False)`): `ours/unfused` is what the fusion gains. `--model DIR` runs a
checkpoint (its weights, shapes and processor; e.g. the bundled demo model) instead of the random
Qwen2.5-0.5B-shaped decoder.

`verify` is hybrid mode with `HybridThresholds(verify_ratio=1.0)`: every drafted token checked
against the token-by-token rows (the forced drafts all hold). `anchored` is fast mode with
instance-anchored windows and the drafted x2 y2, `readout` the same with causal readout
(`DecodeOptions.causal_readout`: the causal rows' logits too); `readout/anchored` is its cost.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from locate_ros.backends.torch_backend import TorchBackend  # noqa: E402
from locate_ros.decoding.hybrid import HybridThresholds  # noqa: E402
from locate_ros.decoding.loop import DecodeOptions, generate  # noqa: E402
from locate_ros.model import LocateAnything, LocateAnythingConfig, load_model  # noqa: E402
from locate_ros.model.language import onednn_linear, pack_for_onednn  # noqa: E402
from locate_ros.testing.forcing import (  # noqa: E402
    ForceAnswer,
    box_answer,
    random_boxes,
)
from locate_ros.testing.tiny import golden_dir  # noqa: E402

QWEN25_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2)
SMALL_VISION = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256)


def bench_config(real_3b: bool = False) -> LocateAnythingConfig:
    raw = json.loads((golden_dir() / "tiny" / "config.json").read_text())
    if real_3b:
        raw["text_config"].update(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                                  num_attention_heads=16, num_key_value_heads=2)
        raw["vision_config"].update(hidden_size=1152, num_hidden_layers=27, num_attention_heads=16,
                                    intermediate_size=4304)
    else:
        raw["text_config"].update(QWEN25_05B)
        raw["vision_config"].update(SMALL_VISION)
    return LocateAnythingConfig.from_dict(raw)


def random_model(cfg: LocateAnythingConfig, device: str, dtype: torch.dtype) -> LocateAnything:
    torch.manual_seed(0)
    with torch.device(device):
        model = LocateAnything(cfg).to(dtype)
    with torch.no_grad():  # small weights keep activations finite through 24+ layers
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.02)
    return model.eval().requires_grad_(False)


class ConcatKVCache:
    """The reference's cache: grows by torch.cat every forward, cropped by slicing."""

    def __init__(self, n_layers: int):
        self.k, self.v = [None] * n_layers, [None] * n_layers
        self.length, self.max_len = 0, 1 << 30

    def update(self, layer, k, v):
        if self.length == 0 or self.k[layer] is None:
            self.k[layer], self.v[layer] = k, v
        else:
            self.k[layer] = torch.cat([self.k[layer][:, : self.length], k], dim=1)
            self.v[layer] = torch.cat([self.v[layer][:, : self.length], v], dim=1)
        return self.k[layer], self.v[layer]

    def crop(self, length):
        self.length = length


class ReferenceStyleBackend(TorchBackend):
    """The reference's way: concatenating cache, logits for every row, PyTorch's default matmuls."""

    def reset(self, max_len: int) -> None:
        self._cache = ConcatKVCache(self.model.cfg.text.num_hidden_layers)

    @torch.inference_mode()
    def forward(self, input_ids, position_ids, attention_mask, num_logits, image_features=None):
        ids = torch.as_tensor(input_ids, device=self.device)
        pos = torch.as_tensor(position_ids, device=self.device)
        mask = None if attention_mask is None else torch.as_tensor(attention_mask, device=self.device)
        with onednn_linear(False):
            hidden = self.model.language_model.model(self.model.embed(ids, image_features), pos, mask, self._cache)
            return self.model.language_model.logits(hidden)[-num_logits:]  # full vocabulary for every row


def run_once(backend, prompt, image, tokens, n_boxes, mode, seed=0, sync=lambda: None):
    hook = ForceAnswer(box_answer(random_boxes(n_boxes, seed), tokens))
    # "verify": hybrid mode checking every drafted token against the token-by-token rows (ratio 1;
    # the forced drafts all hold, so this is the cost of the check: full-vocabulary logits for the
    # rows that re-run the last block)
    rule = HybridThresholds(verify_ratio=1.0) if mode == "verify" else HybridThresholds()
    anchored = mode in ("anchored", "readout")
    loop_mode = "hybrid" if mode == "verify" else "fast" if anchored else mode
    opts = DecodeOptions(mode=loop_mode, max_new_tokens=6 * n_boxes + 8, thresholds=rule,
                         instance_anchored=anchored, causal_readout=mode == "readout")
    sync()
    t0 = time.perf_counter()
    feats = backend.encode_image(image.pixel_values, [image.grid_hw])
    gen = generate(backend, prompt, feats, tokens, opts, logits_hook=hook)
    sync()
    dt = time.perf_counter() - t0
    boxes = sum(t == tokens.box_start for t in gen.token_ids)
    assert boxes == n_boxes and gen.stop_reason == "eos", (boxes, n_boxes, gen.stop_reason)
    return {"boxes": boxes, "seconds": round(dt, 4), "boxes_per_s": round(boxes / dt, 3),
            "forward_steps": gen.forward_steps, "steps_per_box": round(gen.forward_steps / boxes, 4),
            "hybrid_fallbacks": gen.hybrid_fallbacks}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="20,100,300")
    ap.add_argument("--modes", default="slow,fast,hybrid,verify")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--real-3b", action="store_true", help="the real 3B shapes (GPU)")
    ap.add_argument("--unfused", action="store_true", help="also time q/k/v and gate/up packed one by one")
    ap.add_argument("--model", default=None, help="a checkpoint folder instead of the random 0.5B-shaped model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    from locate_ros.processing import Processor, build_question, preprocess_image

    if args.model:
        model = load_model(args.model, device=args.device, dtype=dtype).eval().requires_grad_(False)
        cfg = model.cfg
        processor = Processor.from_pretrained(args.model, cfg)
    else:
        cfg = bench_config(args.real_3b)
        model = random_model(cfg, args.device, dtype)
        tiny = golden_dir() / "tiny"
        import tempfile

        from locate_ros.testing.tiny import write_tokenizer
        with tempfile.TemporaryDirectory() as d:  # tokenizer + processor files of the tiny checkpoint
            for f in tiny.iterdir():
                if f.suffix == ".json":
                    (Path(d) / f.name).write_bytes(f.read_bytes())
            write_tokenizer(Path(d))
            processor = Processor.from_pretrained(d, cfg)
    img = np.random.default_rng(1).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
    pre = preprocess_image(img, in_token_limit=processor.in_token_limit)
    prompt = processor.encode_prompt(build_question("detect", "cat"), pre.num_image_tokens)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    backends = {"ours": TorchBackend(model)}
    if args.unfused:
        twin = copy.deepcopy(model)  # packed caches are not copied: pack the twin one Linear at a time
        backends["unfused"] = TorchBackend(twin, pack_weights=False)
        pack_for_onednn(twin.language_model, fuse=False)
    if not args.no_baseline:
        backends["baseline"] = ReferenceStyleBackend(model, pack_weights=False)
    ns = [int(x) for x in args.n.split(",")]
    modes = args.modes.split(",")
    results = {}
    run_once(backends["ours"], prompt, pre, cfg.tokens, 2, "fast", sync=sync)  # warm-up (allocations, kernels)
    for n in ns:  # the variants in turn per (n, mode): a machine's speed drifting over the run slows all alike
        for mode in modes:
            for impl, be in backends.items():
                r = run_once(be, prompt, pre, cfg.tokens, n, mode, sync=sync)
                results.setdefault(impl, {}).setdefault(str(n), {})[mode] = r
                print(f"# {impl} n={n} {mode}: {r}", file=sys.stderr, flush=True)
    summary = {"ratios": {}}
    for n in map(str, ns):
        ours = results["ours"][n]
        rat = {}
        for m in modes:
            if m != "slow" and "slow" in ours:
                rat[f"{m}/slow"] = round(ours[m]["boxes_per_s"] / ours["slow"]["boxes_per_s"], 3)
            if m == "readout" and "anchored" in ours:
                rat["readout/anchored"] = round(ours[m]["boxes_per_s"] / ours["anchored"]["boxes_per_s"], 3)
            if "unfused" in results:
                rat[f"ours/unfused {m}"] = round(ours[m]["boxes_per_s"] / results["unfused"][n][m]["boxes_per_s"], 3)
            if "baseline" in results:
                rat[f"ours/baseline {m}"] = round(ours[m]["boxes_per_s"] / results["baseline"][n][m]["boxes_per_s"], 3)
        summary["ratios"][n] = rat
    if "fast" in modes and "100" in results["ours"] and "300" in results["ours"]:
        summary["fast_bps_300_over_100"] = round(results["ours"]["300"]["fast"]["boxes_per_s"]
                                                 / results["ours"]["100"]["fast"]["boxes_per_s"], 3)
    out = {
        "bench": "decode",
        "setting": {"decoder": args.model or ("Qwen2.5-3B shapes" if args.real_3b else "Qwen2.5-0.5B width/depth"),
                    "vision": args.model or ("MoonViT 3B shapes" if args.real_3b else SMALL_VISION),
                    "weights": "checkpoint" if args.model else "random",
                    "dtype": args.dtype, "device": args.device, "threads": args.threads, "image": "224x224",
                    "image_tokens": pre.num_image_tokens, "prompt_tokens": len(prompt), "torch": torch.__version__,
                    "machine": platform.machine()},
        "results": results,
        **summary,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
