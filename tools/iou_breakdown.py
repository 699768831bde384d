"""Where a checkpoint's `objects` points go: per object, how close the nearest answer with its label came.

    python tools/iou_breakdown.py REPORT.json [--small-px 24]

REPORT.json is an evaluation report written with `python -m locate_ros.evaluation.run ... --out`.
Prints one JSON line per decoding mode: the share of ground-truth objects whose best IoU with an
answer of the same label is < 0.1 (missed), 0.1-0.5 (a box that mixes two instances, or a neighbour),
0.5-0.75, 0.75-0.9 and >= 0.9 (mean F1 over IoU 0.5:0.95 counts the last ones fully, the ones before
in part); the answers per object; and, for objects under and over --small-px on their short side,
their count and the share reaching IoU 0.75. A best IoU is per object (two objects may share an
answer), so this says where boxes land, not the COCO matching.
"""
import argparse
import json
import sys

import numpy as np

from locate_ros.evaluation.metrics import box_iou

EDGES = (0.1, 0.5, 0.75, 0.9)
NAMES = ("below_0.1", "0.1_to_0.5", "0.5_to_0.75", "0.75_to_0.9", "from_0.9")


def breakdown(answers: list[dict], truth: list[dict], small_px: float) -> dict:
    best, short_side, n_answers = [], [], 0
    for a, t in zip(answers, truth):
        n_answers += sum(len(boxes) for label, boxes in a.items() if label in t)
        for label, gts in t.items():
            gts = np.asarray(gts, dtype=np.float64).reshape(-1, 4)
            dets = np.asarray(a.get(label, []), dtype=np.float64).reshape(-1, 4)
            best += (box_iou(gts, dets).max(axis=1) if len(dets) else np.zeros(len(gts))).tolist()
            short_side += np.minimum(gts[:, 2] - gts[:, 0], gts[:, 3] - gts[:, 1]).tolist()
    best, short_side = np.array(best), np.array(short_side)
    if best.size == 0:
        raise ValueError("the report has no ground-truth objects")
    shares = np.bincount(np.searchsorted(EDGES, best, side="right"), minlength=len(NAMES)) / best.size
    out = {"objects": int(best.size), "answers_per_object": n_answers / best.size,
           "best_iou": dict(zip(NAMES, shares.round(4).tolist()))}
    for name, pick in (("small", short_side < small_px), ("large", short_side >= small_px)):
        out[name] = {"objects": int(pick.sum()), "iou_0.75_share": round(float((best[pick] >= 0.75).mean()), 4) if pick.any() else None}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("report")
    ap.add_argument("--small-px", type=float, default=24.0)
    args = ap.parse_args(argv)
    report = json.load(open(args.report))
    if "objects_per_image" not in report:
        print("iou_breakdown: the report has no objects_per_image: write it with evaluation.run --out", file=sys.stderr)
        return 2
    per_image = report["objects_per_image"]
    for mode, answers in per_image["answers"].items():
        print(json.dumps({"mode": mode, **breakdown(answers, per_image["truth"], args.small_px)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
