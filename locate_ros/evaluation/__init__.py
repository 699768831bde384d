"""Accuracy metrics as the LocateAnything paper scores them (pure numpy): see `metrics`."""
from .metrics import (
    IOU_THRESHOLDS,
    F1Result,
    PointResult,
    box_iou,
    coco_f1,
    dense_f1,
    gui_accuracy,
    gui_hit,
    point_hit_rate,
)

__all__ = [
    "IOU_THRESHOLDS",
    "F1Result",
    "PointResult",
    "box_iou",
    "coco_f1",
    "dense_f1",
    "gui_accuracy",
    "gui_hit",
    "point_hit_rate",
]
