"""Is checkpoint B better than A on `objects`, or is the difference the images? Paired bootstrap.

    python tools/compare_evals.py A.json B.json

A.json and B.json are `python -m locate_ros.evaluation.run ... --out FILE` reports of two checkpoints
on the same held-out set (the same --seed, --n and --image-size). Prints one JSON: per decoding mode
both scores and B - A with its 95% paired bootstrap interval over the images and the share of
resamples in which B is higher (`locate_ros.evaluation.uncertainty`). Why: on the ~80 objects images
of the evaluation command a 2-point lead can be the image set's doing (the v12+v14 mean led v12 by 2
points there and trailed it by 2 on 150 other images); a difference whose interval holds 0 is not one.
Reports of different image sets are refused.
"""
import argparse
import json
import sys

from locate_ros.evaluation.uncertainty import paired_difference


def compare(a: dict, b: dict) -> dict:
    for report, name in ((a, "A"), (b, "B")):
        if "objects_per_image" not in report:
            raise ValueError(f"{name} has no objects_per_image: write it with evaluation.run --out (this version)")
    if a["objects_per_image"]["truth"] != b["objects_per_image"]["truth"]:
        raise ValueError(f"A and B were scored on different images (seeds {a.get('seed')} and {b.get('seed')}, "
                         f"{len(a['objects_per_image']['truth'])} and {len(b['objects_per_image']['truth'])} objects "
                         "images): evaluate both with the same --seed, --n and --image-size")
    truth = a["objects_per_image"]["truth"]
    out = {"a": a.get("model"), "b": b.get("model"), "seed": a.get("seed"), "objects_images": len(truth), "modes": {}}
    for mode in a["objects_per_image"]["answers"]:
        if mode not in b["objects_per_image"]["answers"]:
            continue
        diff = paired_difference(a["objects_per_image"]["answers"][mode], b["objects_per_image"]["answers"][mode], truth)
        out["modes"][mode] = {"a_mean_f1": a["modes"][mode]["families"]["objects"]["mean_f1"],
                              "b_mean_f1": b["modes"][mode]["families"]["objects"]["mean_f1"],
                              "b_minus_a": diff["value"], "interval": diff["interval"], "level": diff["level"],
                              "b_higher_share": diff["b_higher_share"]}
    if not out["modes"]:
        raise ValueError("A and B share no decoding mode")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    args = ap.parse_args(argv)
    try:
        result = compare(*(json.load(open(path)) for path in (args.a, args.b)))
    except ValueError as e:
        print(f"compare_evals: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
