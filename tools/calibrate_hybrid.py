"""Choose a checkpoint's hybrid rule: hybrid mode under a grid of rules, against slow and fast.

    python tools/calibrate_hybrid.py MODEL [--seed 9000501] [--n 150] [--dense 8] \
        [--top-k 24 32 48] [--spread 30 40 60] [--prob 0.03 0.05 0.08] [--verify 1 0.5 0.2] [--out FILE]

Two kinds of rule (`locate_ros.decoding.hybrid.HybridThresholds`):
- ambiguity (the reference's kind): a coordinate slot is ambiguous (hybrid mode finishes that box
  token by token) when its most probable coordinate has probability < `ambiguous_prob` and the
  coordinates among its `ambiguous_top_k` most probable ids span more than `ambiguous_spread` bins.
  The reference's rule (prob 0.9, spread 60, top 4) is calibrated for the released model's sharp
  rows; a model whose rows are broad bumps fills its top 4 with one bump's neighbours and never
  falls back.
- verification (`--verify`, ours): each drafted token is checked against the token-by-token choice
  at its place and stands if it has at least `verify_ratio` of that choice's probability; 1 gives
  slow mode's answers exactly (`locate_ros.decoding.loop.generate_verified`).

Every rule, slow and fast answer one image before the next image is asked (as the evaluation does,
so the machine's speed drifting slows all alike). Prints one JSON: per rule (`slow`, `fast`,
`reference`, `k{top_k}_s{spread}_p{prob}`, then `verify{ratio}`) the `objects` mean F1 (COCO
protocol), its paired 95% bootstrap difference from slow, the hybrid fallback rate, boxes/s, and
with --dense the boxes/s on that many dense scenes over slow's and the fallback rate there. Draw the
scenes from a validation stream (the default seed), not from the evaluation command's, and write the
chosen rule into the checkpoint's generation_config.json under `hybrid_thresholds`; then report it
with the evaluation command.
"""
import argparse
import itertools
import json
import sys

from locate_ros.decoding.hybrid import HybridThresholds
from locate_ros.decoding.loop import DecodeOptions
from locate_ros.evaluation.metrics import coco_f1
from locate_ros.evaluation.run import held_out_set, objects_boxes
from locate_ros.evaluation.uncertainty import paired_difference
from locate_ros.locator import Locator

VALIDATION_SEED = 9_000_501  # the validation stream of tools/train_demo_model.sh
RULE_FIELDS = ("ambiguous_top_k", "ambiguous_spread", "ambiguous_prob", "verify_ratio")


def rule_name(rule: HybridThresholds) -> str:
    if rule.verify_ratio > 0:
        return f"verify{rule.verify_ratio:g}"
    return f"k{rule.ambiguous_top_k}_s{rule.ambiguous_spread}_p{rule.ambiguous_prob:g}"


def calibrate(model: str, rules: dict, seed: int, n: int, dense: int, max_new_tokens: int = 300) -> dict:
    """`rules`: name -> HybridThresholds. Returns name -> figures (see the module docstring)."""
    base = Locator.from_pretrained(model)
    runs = {"slow": ("slow", HybridThresholds()), "fast": ("fast", HybridThresholds())}
    runs.update({name: ("hybrid", rule) for name, rule in rules.items()})
    anchored = base.options.instance_anchored  # the checkpoint's windows, in every run
    locators = {name: Locator(base.model, base.processor, mode=mode,
                              options=DecodeOptions(mode=mode, thresholds=rule, instance_anchored=anchored))
                for name, (mode, rule) in runs.items()}
    samples = held_out_set(seed, n, dense, (128, 224), ["objects"])
    results = {name: [] for name in runs}
    for s in samples:
        for name, loc in locators.items():
            results[name].append(loc.locate(s.image, s.query, task=s.task, max_new_tokens=max_new_tokens))
    objects = [i for i, s in enumerate(samples) if s.family == "objects"]
    dense_idx = [i for i, s in enumerate(samples) if s.family == "dense"]
    truth = objects_boxes([samples[i] for i in objects], [[] for _ in objects])[1]
    answers = {name: objects_boxes([samples[i] for i in objects], [res[i].detections for i in objects])[0]
               for name, res in results.items()}

    def total(res, idx, key):
        return sum(res[i].stats[key] for i in idx)

    def bps(res, idx):
        return total(res, idx, "boxes") / max(total(res, idx, "total_s"), 1e-9)

    def fallback_rate(res, idx):
        return total(res, idx, "hybrid_fallbacks") / max(total(res, idx, "boxes"), 1)

    out = {}
    for name, res in results.items():
        row = {"rule": {f: getattr(runs[name][1], f) for f in RULE_FIELDS}
               if runs[name][0] == "hybrid" else None,
               "objects_mean_f1": coco_f1(answers[name], truth, max_dets=None).mean_f1 if objects else None,
               "fallback_rate": fallback_rate(res, range(len(res))),
               "boxes_per_s": bps(res, range(len(res)))}
        if name != "slow" and objects:
            d = paired_difference(answers["slow"], answers[name], truth)
            row["minus_slow"], row["minus_slow_interval"] = d["value"], d["interval"]
        if dense_idx:
            row["dense_bps_over_slow"] = bps(res, dense_idx) / max(bps(results["slow"], dense_idx), 1e-9)
            row["dense_fallback_rate"] = fallback_rate(res, dense_idx)
        out[name] = row
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--seed", type=int, default=VALIDATION_SEED)
    ap.add_argument("--n", type=int, default=150, help="objects scenes")
    ap.add_argument("--dense", type=int, default=0, help="dense scenes, for the speed-up over slow")
    ap.add_argument("--top-k", type=int, nargs="+", default=[24, 32, 48])
    ap.add_argument("--spread", type=int, nargs="+", default=[30, 40, 60])
    ap.add_argument("--prob", type=float, nargs="+", default=[0.03, 0.05, 0.08])
    ap.add_argument("--verify", type=float, nargs="*", default=[],
                    help="also these verify_ratio rules (drafts checked against token-by-token choices)")
    ap.add_argument("--max-new-tokens", type=int, default=300)
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    rules = {"reference": HybridThresholds()}
    for k, s, p in itertools.product(args.top_k, args.spread, args.prob):
        rule = HybridThresholds(ambiguous_top_k=k, ambiguous_spread=s, ambiguous_prob=p)
        rules[rule_name(rule)] = rule
    for ratio in args.verify:
        rule = HybridThresholds(verify_ratio=ratio)
        rules[rule_name(rule)] = rule
    report = {"model": args.model, "seed": args.seed, "objects_scenes": args.n, "dense_scenes": args.dense,
              "rules": calibrate(args.model, rules, args.seed, args.n, args.dense, args.max_new_tokens)}
    text = json.dumps(report, indent=1)
    if args.out:
        open(args.out, "w").write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
