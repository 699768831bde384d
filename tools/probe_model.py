"""Quick look at a checkpoint in training (the figures in tools/train_demo_model.sh):

    python tools/probe_model.py runs/h2 [--n 20]

1. the demo scene (locate_ros.cli.DEMO_SCENE) in slow, fast and hybrid mode: boxes and F1;
2. greedy hybrid F1@0.5 and mean F1 on `n` held-out `single` and `objects` samples (EVAL_SEED);
3. teacher-forced coordinate predictions on `single` and `objects` samples: the median distance in
   bins of each of x1 y1 x2 y2 (stream rows) from the truth, i.e. which coordinate the model reads
   off the picture and which it still guesses.
"""
import argparse

import numpy as np
import torch

from locate_ros.cli import demo_scene
from locate_ros.data.families import make_sample
from locate_ros.evaluation import dense_f1
from locate_ros.evaluation.run import EVAL_SEED
from locate_ros.locator import Locator
from locate_ros.training.objective import build_example, pack, target_logits


def boxes_of(detections) -> np.ndarray:
    return np.array([d.box for d in detections if d.box is not None]).reshape(-1, 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=20)
    args = ap.parse_args()
    loc = Locator.from_pretrained(args.model)
    scene = demo_scene()
    truth = np.array([b for t in scene.targets for b in t.boxes])
    for mode in ("slow", "fast", "hybrid"):
        pred = boxes_of(loc.locate(scene.image, scene.query, task=scene.task, mode=mode, max_new_tokens=200).detections)
        f1 = dense_f1([pred], [truth])
        print(f"demo scene {mode}: F1@0.5 {f1.f1_50:.2f} mean F1 {f1.mean_f1:.2f} boxes {pred.round().astype(int).tolist()}")
    print(f"demo scene truth: {truth.astype(int).tolist()}")
    for family in ("single", "objects"):
        scores = []
        for i in range(args.n):
            s = make_sample(EVAL_SEED, i, family=family, size=(128, 224))
            pred = boxes_of(loc.locate(s.image, s.query, task=s.task, mode="hybrid", max_new_tokens=200).detections)
            f1 = dense_f1([pred], [np.array([b for t in s.targets for b in t.boxes]).reshape(-1, 4)])
            scores.append((f1.f1_50, f1.mean_f1))
        print(f"{family} hybrid ({args.n} images): F1@0.5 %.2f mean F1 %.2f" % tuple(np.mean(scores, axis=0)))
    for family in ("single", "objects"):
        err = teacher_forced_coordinate_errors(loc, family, 2 * args.n)
        print(f"{family} teacher-forced |error| in bins (median), x1 y1 x2 y2: "
              + " ".join(f"{np.median(err[:, j]):.0f}" for j in range(4)))


def teacher_forced_coordinate_errors(loc: Locator, family: str, n: int) -> np.ndarray:
    """|argmax - truth| of every box coordinate of `n` held-out samples, given the true answer so far
    (stream rows): (boxes, 4). Shows which coordinate the model cannot yet read off the picture."""
    model, tokens = loc.model, loc.tokens
    out = []
    for i in range(n):
        batch = pack([build_example(make_sample(EVAL_SEED, i, family=family, size=(128, 224)), loc.processor)])
        with torch.no_grad():
            logits = target_logits(model, batch)
        t = batch.target_ids
        rows = (t >= tokens.coord_start) & (t <= tokens.coord_end) & ~batch.is_block_target
        pred = logits[rows, tokens.coord_start:tokens.coord_end + 1].argmax(-1)
        err = (pred - (t[rows] - tokens.coord_start)).abs().numpy()
        out.append(err[: len(err) // 4 * 4].reshape(-1, 4))  # points (2 tokens) only in other families
    return np.concatenate(out)


if __name__ == "__main__":
    main()
