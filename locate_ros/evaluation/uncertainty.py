"""How far an `objects` score could move on other images: bootstrap intervals over images.

Why: the evaluation command's `objects` family is ~80 images, and on so few a model's mean F1 moves by
a few points from one image set to another. A checkpoint that led by 2 points there (the v12+v14
mean) trailed by 2 on 150 other images. These intervals say which differences the set can tell.

Images are resampled with replacement, and each resample scored by the metric's own code: coco_f1's
per-image counts (`metrics.coco_image_counts`) summed with the resample's multiplicities
(`metrics.coco_f1_from_totals`), which is `coco_f1` on that multiset of images. Comparisons on one
image set (two modes of one report, or two checkpoints evaluated on the same seed) are *paired*:
both sides use the same resampled images, so what the images share cancels. Percentile intervals;
a fixed seed makes every interval reproducible.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .metrics import IOU_THRESHOLDS, coco_f1_from_totals, coco_image_counts

RESAMPLES = 1000
LEVEL = 0.95

Boxes = Mapping[str, Sequence[Sequence[float]]]  # one image: category -> [[x1, y1, x2, y2], ...]


def _counts(answers: Sequence[Boxes], truth: Sequence[Boxes], categories: list) -> tuple[np.ndarray, ...]:
    """Per image and category: [I, C, T] true positives, [I, C] detections, [I, C] ground truths
    (coco_f1's per-image counts, so that a resample's score is a weighted sum of them)."""
    tps = np.zeros((len(truth), len(categories), len(IOU_THRESHOLDS)))
    dets, gts = np.zeros((2, len(truth), len(categories)))
    col = {c: j for j, c in enumerate(categories)}
    for i, (a, t) in enumerate(zip(answers, truth)):
        for category, (tp, n_det, n_gt) in coco_image_counts(a, t, None, IOU_THRESHOLDS).items():
            tps[i, col[category]], dets[i, col[category]], gts[i, col[category]] = tp, n_det, n_gt
    return tps, dets, gts


def _scorer(answers: Sequence[Boxes], truth: Sequence[Boxes]):
    """weights [I] (how often each image is drawn) -> coco_f1(...).mean_f1 of that multiset of images."""
    if len(answers) != len(truth):
        raise ValueError(f"one answer per image: {len(answers)} answers, {len(truth)} images")
    categories = sorted({c for t in truth for c, b in t.items() if len(b)}, key=str)
    if not categories:
        raise ValueError("no image has a ground-truth box")
    tps, dets, gts = _counts(answers, truth, categories)
    return lambda w: coco_f1_from_totals(np.tensordot(w, tps, 1), w @ dets, w @ gts).mean_f1


def _draws(truth: Sequence[Boxes], resamples: int, seed: int) -> list[np.ndarray]:
    """[I] per resample: how often each image is drawn (I draws with replacement). A resample without
    an image that has a ground-truth box has no score, so it is left out."""
    rng = np.random.default_rng(seed)
    has_truth = np.array([any(len(b) for b in t.values()) for t in truth])
    n = len(truth)
    draws = (np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(resamples))
    return [w for w in draws if w[has_truth].any()]


def _interval(values: np.ndarray, level: float) -> list[float]:
    tail = (1 - level) / 2
    return [float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))]


def mean_f1_interval(answers: Sequence[Boxes], truth: Sequence[Boxes], resamples: int = RESAMPLES,
                     level: float = LEVEL, seed: int = 0) -> list[float]:
    """[low, high]: the `level` bootstrap interval of coco_f1(answers, truth, max_dets=None).mean_f1."""
    score = _scorer(answers, truth)
    values = np.array([score(w) for w in _draws(truth, resamples, seed)])
    return _interval(values, level)


def paired_difference(answers_a: Sequence[Boxes], answers_b: Sequence[Boxes], truth: Sequence[Boxes],
                      resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> dict:
    """mean F1 of B minus A on the same images: the value, its paired interval, and the share of
    resamples in which B scores higher (0.5 = the images cannot tell them apart)."""
    score_a, score_b = _scorer(answers_a, truth), _scorer(answers_b, truth)
    diffs = np.array([score_b(w) - score_a(w) for w in _draws(truth, resamples, seed)])
    ones = np.ones(len(truth))
    return {"value": score_b(ones) - score_a(ones), "interval": _interval(diffs, level), "level": level,
            "b_higher_share": float((diffs > 0).mean())}

