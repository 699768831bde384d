"""Where Fast mode loses the boxes Slow mode finds: per decoding mode, on held-out `objects` scenes,
each answer group's boxes matched against the asked category's ground truth.

    python tools/fast_gap.py MODEL [--images 40] [--modes slow fast hybrid]

Prints one JSON line per mode: boxes, recall@0.5, unique-match precision@0.5 (ground-truth boxes
found / boxes answered), `duplicates` (further boxes at IoU >= 0.5 on a ground-truth box already
found), `mixed` (best IoU 0.1-0.5: coordinates of neighbouring instances combined) and `far` (best
IoU < 0.1, or a box for a category with no ground truth). The scenes are data-engine stream
EVAL_SEED + 7, so they are held out from training and are not the evaluation's images.
"""
import argparse
import json

import numpy as np

from locate_ros.data.families import make_sample
from locate_ros.evaluation.metrics import box_iou
from locate_ros.evaluation.run import EVAL_SEED
from locate_ros.locator import Locator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--modes", nargs="+", default=["slow", "fast", "hybrid"], choices=["slow", "fast", "hybrid"])
    args = ap.parse_args()
    loc = Locator.from_pretrained(args.model)
    samples = [make_sample(EVAL_SEED + 7, i, size=(144, 256), families=["objects"]) for i in range(args.images)]
    for mode in args.modes:
        n = dict(boxes=0, truth=0, found=0, duplicates=0, mixed=0, far=0)
        for s in samples:
            res = loc.locate(s.image, s.query, task=s.task, mode=mode, max_new_tokens=300)
            answered = {}
            for d in res.detections:
                if d.box is not None:
                    answered.setdefault(d.label, []).append(d.box)
            asked = {t.label for t in s.targets}
            n["far"] += sum(len(b) for label, b in answered.items() if label not in asked)
            n["boxes"] += sum(len(b) for b in answered.values())
            for t in s.targets:
                truth = np.array(t.boxes, dtype=float).reshape(-1, 4)
                pred = np.array(answered.get(t.label, []), dtype=float).reshape(-1, 4)
                n["truth"] += len(truth)
                if not (len(pred) and len(truth)):
                    n["far"] += len(pred)
                    continue
                iou = box_iou(pred, truth)
                best = iou.max(1)
                n["found"] += int((iou.max(0) >= 0.5).sum())
                n["mixed"] += int(((best >= 0.1) & (best < 0.5)).sum())
                n["far"] += int((best < 0.1).sum())
                _, hits = np.unique(iou.argmax(1)[best >= 0.5], return_counts=True)
                n["duplicates"] += int((hits - 1).sum())
        print(json.dumps({"mode": mode, **n, "recall_50": round(n["found"] / max(n["truth"], 1), 3),
                          "precision_50": round(n["found"] / max(n["boxes"], 1), 3)}))


if __name__ == "__main__":
    main()
