"""Accuracy metrics exactly as the LocateAnything paper scores (spec: "Accuracy: how the paper scores").

The paper reuses Rex-Omni's evaluation code unchanged. Two box protocols, both reporting F1 over the
ten IoU thresholds 0.50:0.05:0.95 (`IOU_THRESHOLDS`):

* `coco_f1` (protocol 1, COCO / LVIS): pycocotools-style greedy matching per category, every
  detection with the same score, precision and recall at the final operating point, pooled over images.
* `dense_f1` (protocol 2, dense / referring / layout / OCR sets): category-agnostic matching per image,
  precision and recall averaged over images.

Plus pointing (`point_hit_rate`) and GUI grounding (`gui_hit`, `gui_accuracy`).

Boxes are (x1, y1, x2, y2) in pixels with continuous coordinates: area = (x2 - x1) * (y2 - y1), no +1
(as pycocotools). Pure numpy; no model needed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Mapping, Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)

# pycocotools caps each threshold at 1 - 1e-10 so that a threshold of 1.0 still admits a perfect box
_COCO_MAX_IOU = 1 - 1e-10


# --------------------------------------------------------------------------------------------- boxes
def _as_boxes(boxes: ArrayLike) -> np.ndarray:
    """[N, 4] float64 (an empty list or array gives [0, 4])."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"expected boxes of shape [N, 4], got {arr.shape}")
    return arr


def _as_points(points: ArrayLike) -> np.ndarray:
    """[N, 2] float64 points; boxes ([N, 4]) are replaced by their centres."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2))
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] not in (2, 4):
        raise ValueError(f"expected points [N, 2] or boxes [N, 4], got {arr.shape}")
    if arr.shape[1] == 4:
        arr = (arr[:, :2] + arr[:, 2:]) / 2
    return arr


def box_area(boxes: ArrayLike) -> np.ndarray:
    """(x2 - x1) * (y2 - y1), continuous coordinates (no +1); inverted sides count as 0."""
    b = _as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def box_iou(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Pairwise IoU, [N, 4] x [M, 4] -> [N, M]. A pair whose union is 0 (two empty boxes) has IoU 0."""
    a, b = _as_boxes(a), _as_boxes(b)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(bottom_right - top_left, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


# -------------------------------------------------------------------------------------------- result
def _f1(precision, recall):
    """2PR / (P + R), elementwise; 0 where P + R = 0."""
    p, r = np.asarray(precision, dtype=np.float64), np.asarray(recall, dtype=np.float64)
    s = p + r
    return np.divide(2 * p * r, s, out=np.zeros_like(s), where=s > 0)


@dataclass(frozen=True)
class F1Result:
    """F1 over IoU thresholds.

    `precision`, `recall`, `f1`: one value per entry of `thresholds`. `mean_f1` is the paper's
    headline number: for `dense_f1` the mean of `f1`; for `coco_f1` the F1 of the threshold-averaged
    precision and recall (`mean_precision`, `mean_recall`), which in general differs from `f1.mean()`.
    """

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    mean_f1: float
    mean_precision: float
    mean_recall: float

    def f1_at(self, threshold: float) -> float:
        """F1 at one of `thresholds` (matched with np.isclose)."""
        hit = np.flatnonzero(np.isclose(self.thresholds, threshold))
        if hit.size == 0:
            raise KeyError(f"threshold {threshold} not among {self.thresholds.tolist()}")
        return float(self.f1[hit[0]])

    @property
    def f1_50(self) -> float:
        return self.f1_at(0.5)

    @property
    def f1_95(self) -> float:
        return self.f1_at(0.95)


def _check_pairs(predictions: Sequence, ground_truths: Sequence) -> None:
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} prediction entries for {len(ground_truths)} images")
    if len(ground_truths) == 0:
        raise ValueError("no images to score")


# ------------------------------------------------------------------ protocol 2: dense, per image
def match_per_ground_truth(iou: np.ndarray, thresholds: ArrayLike = IOU_THRESHOLDS) -> np.ndarray:
    """Rex-Omni's dense matching: the number of matches at each threshold, [T].

    `iou` is [N predictions, M ground truths]. Ground-truth boxes are visited in order; each takes the
    still-unused prediction with the highest IoU >= threshold (ties: the lowest prediction index).
    Greedy, not an optimal assignment. All thresholds are run at once.
    """
    thr = np.asarray(thresholds, dtype=np.float64)
    n_pred, n_gt = iou.shape
    used = np.zeros((thr.size, n_pred), dtype=bool)
    if n_pred == 0:
        return np.zeros(thr.size, dtype=np.int64)
    rows = np.arange(thr.size)
    for j in range(n_gt):
        allowed = (iou[None, :, j] >= thr[:, None]) & ~used  # [T, N]
        best = np.argmax(np.where(allowed, iou[None, :, j], -np.inf), axis=1)  # first max = lowest index
        used[rows, best] |= allowed[rows, best]
    return used.sum(axis=1)


def _image_precision_recall(n_match: np.ndarray, n_pred: int, n_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image P and R at each threshold, with Rex-Omni's conventions for empty sides:
    no predictions and no ground truth: P = R = 1; predictions but no ground truth: P = 0, R = 1;
    ground truth but no predictions: P = 0, R = 0."""
    if n_pred == 0 and n_gt == 0:
        return np.ones(n_match.shape), np.ones(n_match.shape)
    precision = n_match / n_pred if n_pred else np.zeros(n_match.shape)
    recall = n_match / n_gt if n_gt else np.ones(n_match.shape)
    return precision, recall


def dense_f1(
    predictions: Sequence[ArrayLike],
    ground_truths: Sequence[ArrayLike],
    thresholds: ArrayLike = IOU_THRESHOLDS,
) -> F1Result:
    """Protocol 2 (dense / referring / layout / OCR sets), category-agnostic, per image.

    Per image and threshold: matches by `match_per_ground_truth`; precision = matches / predictions,
    recall = matches / ground truths (empty-side conventions in `_image_precision_recall`). P and R are
    averaged over images per threshold; F1 per threshold = 2PR / (P + R); `mean_f1` = mean of the F1s.
    """
    _check_pairs(predictions, ground_truths)
    thr = np.asarray(thresholds, dtype=np.float64)
    precisions, recalls = [], []
    for pred, gt in zip(predictions, ground_truths):
        pred, gt = _as_boxes(pred), _as_boxes(gt)
        n_match = match_per_ground_truth(box_iou(pred, gt), thr)
        p, r = _image_precision_recall(n_match, len(pred), len(gt))
        precisions.append(p)
        recalls.append(r)
    precision, recall = np.mean(precisions, axis=0), np.mean(recalls, axis=0)
    f1 = _f1(precision, recall)
    return F1Result(thr, precision, recall, f1, float(f1.mean()), float(precision.mean()), float(recall.mean()))


# ---------------------------------------------------------------- protocol 1: COCO / LVIS
def match_per_detection(iou: np.ndarray, thresholds: ArrayLike = IOU_THRESHOLDS) -> np.ndarray:
    """pycocotools' greedy matching for one image and category: true positives at each threshold, [T].

    `iou` is [D detections, G ground truths], detections already in score order (here: as given).
    Each detection in order takes the still-unmatched ground truth with the highest IoU >= threshold
    (threshold capped at 1 - 1e-10). Ties go to the LAST such ground truth, as in pycocotools (its
    `if iou < best: continue` lets an equal later candidate replace the earlier one).
    """
    thr = np.minimum(np.asarray(thresholds, dtype=np.float64), _COCO_MAX_IOU)
    n_det, n_gt = iou.shape
    if n_gt == 0:
        return np.zeros(thr.size, dtype=np.int64)
    matched = np.zeros((thr.size, n_gt), dtype=bool)
    tp = np.zeros(thr.size, dtype=np.int64)
    rows = np.arange(thr.size)
    for d in range(n_det):
        allowed = (iou[None, d, :] >= thr[:, None]) & ~matched  # [T, G]
        scores = np.where(allowed, iou[None, d, :], -np.inf)
        best = n_gt - 1 - np.argmax(scores[:, ::-1], axis=1)  # last max
        hit = allowed[rows, best]
        matched[rows, best] |= hit
        tp += hit
    return tp


def coco_f1(
    predictions: Sequence[Mapping[Hashable, ArrayLike]],
    ground_truths: Sequence[Mapping[Hashable, ArrayLike]],
    max_dets: Optional[int] = 100,
    thresholds: ArrayLike = IOU_THRESHOLDS,
) -> F1Result:
    """Protocol 1 (COCO: max_dets=100; LVIS: max_dets=None, unlimited), per category.

    One dict per image, category -> boxes. Every detection has the same score, so detection order is
    the order given. Per image, predictions of a category without ground truth in that image (key
    missing or an empty array) are dropped. At most `max_dets` detections are kept per image AND
    category, the first ones: pycocotools truncates `dt[:maxDet]` per (image, category) evaluation.
    Matching: `match_per_detection`. Per category and threshold, pooled over images (the final
    operating point of COCO's accumulation): precision = TP / detections (0 with no detections),
    recall = TP / ground truths. Each is averaged over the thresholds per category, then over the
    categories with ground truth; `mean_f1` = 2PR / (P + R) of those averages. The per-threshold
    `precision`, `recall` and `f1` are averaged over categories at that single threshold.
    """
    _check_pairs(predictions, ground_truths)
    thr = np.asarray(thresholds, dtype=np.float64)
    tp, n_det, n_gt = {}, {}, {}  # per category: [T] true positives, detection count, gt count
    for pred, gt in zip(predictions, ground_truths):
        for category, (c_tp, c_det, c_gt) in coco_image_counts(pred, gt, max_dets, thr).items():
            tp[category] = tp.get(category, 0) + c_tp
            n_det[category] = n_det.get(category, 0) + c_det
            n_gt[category] = n_gt.get(category, 0) + c_gt
    if not n_gt:
        raise ValueError("no ground-truth boxes in any category")
    categories = list(n_gt)
    return coco_f1_from_totals(np.array([tp[c] for c in categories]), np.array([n_det[c] for c in categories]),
                               np.array([n_gt[c] for c in categories]), thr)


def coco_image_counts(pred: Mapping[Hashable, ArrayLike], gt: Mapping[Hashable, ArrayLike], max_dets: Optional[int],
                      thresholds: np.ndarray) -> dict:
    """One image of `coco_f1`: category -> ([T] true positives, detections, ground truths), for the
    categories with ground truth in the image."""
    counts = {}
    for category, gt_boxes in gt.items():
        gt_boxes = _as_boxes(gt_boxes)
        if len(gt_boxes) == 0:
            continue
        det = _as_boxes(pred.get(category, ()))
        if max_dets is not None:
            det = det[:max_dets]
        counts[category] = (match_per_detection(box_iou(det, gt_boxes), thresholds), len(det), len(gt_boxes))
    return counts


def coco_f1_from_totals(tps: ArrayLike, dets: ArrayLike, gts: ArrayLike, thresholds: ArrayLike = IOU_THRESHOLDS) -> F1Result:
    """`coco_f1` from per-category totals over the images: [C, T] true positives, [C] detections and
    [C] ground truths. Categories without ground truth are left out (as `coco_f1` never sees them)."""
    tps, dets, gts = (np.asarray(x, dtype=np.float64) for x in (tps, dets, gts))
    keep = gts > 0
    if not keep.any():
        raise ValueError("no ground-truth boxes in any category")
    tps, dets, gts = tps[keep], dets[keep, None], gts[keep, None]
    precision_ct = np.divide(tps, dets, out=np.zeros_like(tps), where=dets > 0)
    recall_ct = tps / gts
    precision, recall = precision_ct.mean(axis=0), recall_ct.mean(axis=0)
    mean_p, mean_r = float(precision.mean()), float(recall.mean())
    return F1Result(np.asarray(thresholds, dtype=np.float64), precision, recall, _f1(precision, recall),
                    float(_f1(mean_p, mean_r)), mean_p, mean_r)


# --------------------------------------------------------------------------------------- points
def points_in_boxes(points: ArrayLike, boxes: ArrayLike) -> np.ndarray:
    """[N, M] bool: point n lies inside box m, bounds inclusive."""
    p, b = _as_points(points), _as_boxes(boxes)
    x, y = p[:, 0, None], p[:, 1, None]
    return (x >= b[None, :, 0]) & (x <= b[None, :, 2]) & (y >= b[None, :, 1]) & (y <= b[None, :, 3])


def match_points(inside: np.ndarray) -> int:
    """One-to-one greedy point matching for one image: the number of hits.

    `inside` is [N points, M boxes]. As protocol 2, ground-truth boxes are visited in order; each takes
    the lowest-index unused point that lies inside it. Greedy, not an optimal assignment.
    """
    used = np.zeros(inside.shape[0], dtype=bool)
    hits = 0
    for j in range(inside.shape[1]):
        free = np.flatnonzero(inside[:, j] & ~used)
        if free.size:
            used[free[0]] = True
            hits += 1
    return hits


@dataclass(frozen=True)
class PointResult:
    """Pointing accuracy averaged over images.

    `hit_rate`: per image hits / max(#points, #boxes) (1 when both are empty), averaged.
    `precision` / `recall`: per image hits / #points and hits / #boxes, with protocol 2's conventions
    for empty sides, averaged.
    """

    hit_rate: float
    precision: float
    recall: float


def point_hit_rate(points: Sequence[ArrayLike], boxes: Sequence[ArrayLike]) -> PointResult:
    """Pointing: a predicted point is a hit when it lies inside its ground-truth box (inclusive).

    Per image, `points` is [N, 2] (or [N, 4] boxes, scored by their centres) and `boxes` the
    ground-truth boxes [M, 4]; points and boxes are paired one-to-one by `match_points`.
    """
    _check_pairs(points, boxes)
    rates, precisions, recalls = [], [], []
    for pts, gt in zip(points, boxes):
        pts, gt = _as_points(pts), _as_boxes(gt)
        hits = match_points(points_in_boxes(pts, gt))
        denominator = max(len(pts), len(gt))
        rates.append(hits / denominator if denominator else 1.0)
        p, r = _image_precision_recall(np.array([hits]), len(pts), len(gt))
        precisions.append(p[0])
        recalls.append(r[0])
    return PointResult(float(np.mean(rates)), float(np.mean(precisions)), float(np.mean(recalls)))


# ------------------------------------------------------------------------------------------ GUI
def gui_hit(pred_boxes_or_points: ArrayLike, gt_box: ArrayLike) -> bool:
    """GUI grounding: a hit when the predicted point, or the predicted box's centre, lies inside the
    ground-truth box (inclusive). For several predictions ([N, 2] or [N, 4]) only the first (the
    model's answer) counts; no prediction is a miss."""
    pts = _as_points(pred_boxes_or_points)
    if len(pts) == 0:
        return False
    return bool(points_in_boxes(pts[:1], _as_boxes(gt_box)[:1])[0, 0])


def gui_accuracy(predictions: Sequence[ArrayLike], gt_boxes: Sequence[ArrayLike]) -> float:
    """Fraction of samples where `gui_hit` holds."""
    _check_pairs(predictions, gt_boxes)
    return float(np.mean([gui_hit(p, g) for p, g in zip(predictions, gt_boxes)]))
