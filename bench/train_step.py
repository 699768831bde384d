"""Training step speed: attention per packed example (Segments) vs one block-diagonal S x S mask.

The trainer packs `examples_per_step` data-engine examples into one sequence (and their images into
one vision call). Attention over the whole packed sequence with a block-diagonal mask scores every
pair of rows, ~examples_per_step x the pairs that count; `Segments` scores each example on its own.
This times one step (forward + backward of `joint_loss`, as the trainer runs it, vision aid and
grounding aid on) both ways on the same batches and the same model, alternating the two so drift
hits both, and checks they compute the same loss. The baseline is the old code path written out
here: the vision blocks and the decoder with the packed mask. Prints one JSON object.

  python bench/train_step.py [--model locate_ros/demo_model] [--examples 8,32] [--steps 6] [--threads 2]
"""
from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from locate_ros.model import load_model  # noqa: E402
from locate_ros.model.vision import apply_rope_2d, patch_merge, rope_2d  # noqa: E402
from locate_ros.processing import Processor  # noqa: E402
from locate_ros.training import objective  # noqa: E402
from locate_ros.training.config import TrainConfig  # noqa: E402
from locate_ros.training.objective import NoCache, VisionAid, build_example, joint_loss, pack  # noqa: E402
from locate_ros.training.train import batch_samples  # noqa: E402


def block_diagonal_target_logits(model, batch, blind: bool = False, dense_mask=None):
    """`objective.target_logits` as it was before Segments: one S x S mask (`dense_mask`, made with
    the batch, as pack made it) for the packed decoder input and one L x L mask for the packed images."""
    vm = model.vision_model
    x = vm.patch_embed(batch.pixel_values, batch.grids)
    freqs = torch.cat([rope_2d(g, vm.cfg.head_dim) for g in batch.grids])
    image = torch.cat([torch.full((h * w,), i) for i, (h, w) in enumerate(batch.grids)])
    mask = image[:, None] == image[None, :]
    for blk in vm.encoder.blocks:
        q, k, v = blk.wqkv(blk.norm0(x)).unflatten(-1, (3, blk.heads, blk.head_dim)).unbind(1)
        q, k = apply_rope_2d(q, freqs), apply_rope_2d(k, freqs)
        q, k, v = (t.transpose(0, 1)[None] for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + blk.wo(out[0].transpose(0, 1).flatten(1))
        x = x + blk.mlp(blk.norm1(x))
    feats = model.mlp1(patch_merge(vm.encoder.final_layernorm(x), batch.grids, vm.cfg.merge_kernel_size))
    hidden = model.language_model.model(model.embed(batch.ids, feats), batch.positions, dense_mask, NoCache())
    return model.language_model.logits(hidden[batch.target_rows])


@contextmanager
def target_logits_as(fn):
    original = objective.target_logits
    objective.target_logits = fn
    try:
        yield
    finally:
        objective.target_logits = original


def step(model, aid, batch) -> float:
    loss, _ = joint_loss(model, batch, ground_weight=1.0, aid=aid, aid_weight=1.0)
    model.zero_grad(set_to_none=True)
    aid.zero_grad(set_to_none=True)
    loss.backward()
    return float(loss.detach())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "locate_ros" / "demo_model"))
    ap.add_argument("--examples", default="8,32", help="examples per step, comma-separated")
    ap.add_argument("--steps", type=int, default=6, help="timed steps per variant and size")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model, dtype=torch.float32)
    for p in model.parameters():
        p.data = p.data.clone()
    model.train().requires_grad_(True)
    torch.manual_seed(0)
    aid = VisionAid(model.cfg.text.hidden_size)
    for p in aid.parameters():  # nonzero read-outs, so the aid's gradient reaches the tower as in training
        torch.nn.init.normal_(p, std=0.02)
    processor = Processor.from_pretrained(args.model, model.cfg)
    results = []
    for n in (int(v) for v in args.examples.split(",")):
        cfg = TrainConfig(examples_per_step=n, image_size=(144, 256), families=("objects",), negative_share=0.0, seed=7)
        batches = [pack([build_example(s, processor) for s in batch_samples(cfg, k)]) for k in range(args.steps + 1)]
        times = {"segments": [], "block_diagonal_mask": []}
        losses = {"segments": [], "block_diagonal_mask": []}
        for i, batch in enumerate(batches):
            dense = torch.block_diag(*(m[:n, :n] for m, n in zip(batch.mask, batch.lengths)))  # the old pack's mask
            variants = {"segments": objective.target_logits,
                        "block_diagonal_mask": functools.partial(block_diagonal_target_logits, dense_mask=dense)}
            for name, fn in variants.items():
                with target_logits_as(fn):
                    t = time.perf_counter()
                    loss = step(model, aid, batch)
                    if i:  # the first batch warms up both
                        times[name].append(time.perf_counter() - t)
                        losses[name].append(loss)
        seg, dense = statistics.median(times["segments"]), statistics.median(times["block_diagonal_mask"])
        results.append({
            "examples_per_step": n,
            "packed_rows_mean": statistics.mean(len(b.ids) for b in batches),
            "step_s_segments": seg,
            "step_s_block_diagonal_mask": dense,
            "speedup": dense / seg,
            "max_loss_diff": max(abs(a - b) for a, b in zip(losses["segments"], losses["block_diagonal_mask"])),
        })
    print(json.dumps({"benchmark": "train_step", "model": args.model, "threads": args.threads,
                      "steps_per_variant": args.steps, "torch": torch.__version__, "machine": platform.machine(),
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
