"""Quick look at a checkpoint in training (the figures in tools/train_demo_model.sh):

    python tools/probe_model.py runs/h2 [--n 20]

1. the demo scene (locate_ros.cli.DEMO_SCENE) in slow, fast and hybrid mode: boxes and F1;
2. greedy hybrid F1@0.5 and mean F1 on `n` held-out `single` and `objects` samples (EVAL_SEED);
3. teacher-forced coordinate predictions on `single` and `objects` samples: the median distance in
   bins of each of x1 y1 x2 y2 (stream rows) from the truth, i.e. which coordinate the model reads
   off the picture and which it still guesses;
4. a linear probe of the image features the decoder sees (the projector's output): how well the
   colour and the shape of the object under each image token can be read off them (held-out
   `objects` images, ridge regression fitted on three quarters, accuracy on the rest), beside the
   majority class's share;
5. what slow mode's `objects` boxes land on: an object of the asked category, one of the wrong
   colour, the wrong shape or both, or none (IoU < 0.3 with every object in the scene).
"""
import argparse
import json
from collections import Counter

import numpy as np
import torch

from locate_ros.cli import demo_scene
from locate_ros.data.families import make_sample
from locate_ros.data.scenes import SHAPES
from locate_ros.evaluation import dense_f1
from locate_ros.evaluation.run import EVAL_SEED
from locate_ros.locator import Locator
from locate_ros.training.objective import build_example, cell_attributes, pack, target_logits


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
    for name, (accuracy, majority) in attribute_probe(loc, 10 * args.n).items():
        print(f"image features, linear probe of the {name} under each token: {accuracy:.2f} (majority {majority:.2f})")
    print("slow-mode objects boxes land on:", json.dumps(what_boxes_land_on(loc, 3 * args.n)))


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


def attribute_probe(loc: Locator, n: int) -> dict:
    """{"colour"|"shape": (held-out accuracy, majority share)} of a ridge-regression probe of the
    projector's output, over the image tokens that lie on an object in `n` held-out `objects` images."""
    feats, labels, image = [], {"colour": [], "shape": []}, []
    for i in range(n):
        s = make_sample(EVAL_SEED + 1, i, family="objects", size=(144, 256))
        pre = loc.processor.preprocess(s.image)
        with torch.no_grad():
            f = loc.model.encode_images(torch.as_tensor(pre.pixel_values), [pre.grid_hw]).float().numpy()
        shapes, colours, _ = cell_attributes(s, (pre.grid_hw[0] // 2, pre.grid_hw[1] // 2))
        for k, (shape, colour) in enumerate(zip(shapes, colours)):
            if shape < len(SHAPES):  # on an object
                feats.append(f[k])
                labels["shape"].append(shape)
                labels["colour"].append(colour)
                image.append(i)
    x = np.asarray(feats)
    train = np.asarray(image) < 0.75 * n
    x = (x - x[train].mean(0)) / (x[train].std(0) + 1e-6)
    x = np.c_[x, np.ones(len(x))]
    out = {}
    for name, y in labels.items():
        y = np.asarray(y)
        onehot = np.eye(y.max() + 1)[y]
        w = np.linalg.solve(x[train].T @ x[train] + np.eye(x.shape[1]), x[train].T @ onehot[train])
        out[name] = (float((np.argmax(x[~train] @ w, 1) == y[~train]).mean()),
                     float(np.bincount(y[train]).max() / train.sum()))
    return out


def what_boxes_land_on(loc: Locator, n: int) -> dict:
    """Counts of slow-mode boxes on `n` held-out `objects` images by the object they overlap most
    (IoU >= 0.3): "right", "wrong colour", "wrong shape", "wrong both", or "no object"."""
    from locate_ros.evaluation.metrics import box_iou

    out = Counter()
    for i in range(n):
        s = make_sample(EVAL_SEED, i, family="objects", size=(144, 256))
        for d in loc.locate(s.image, s.query, task=s.task, mode="slow", max_new_tokens=300).detections:
            if d.box is None:
                continue
            *colour, shape = d.label.split()
            ious = box_iou(np.array([d.box]), np.array([o.box for o in s.objects]).reshape(-1, 4))[0]
            if not len(ious) or ious.max() < 0.3:
                out["no object"] += 1
                continue
            o = s.objects[int(ious.argmax())]
            right_shape, right_colour = o.shape == shape, not colour or o.color == colour[0]
            out[{(True, True): "right", (True, False): "wrong colour", (False, True): "wrong shape",
                 (False, False): "wrong both"}[right_shape, right_colour]] += 1
    return dict(out)


if __name__ == "__main__":
    main()
