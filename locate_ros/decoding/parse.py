"""Turning an answer into detections.

Two reference text parsers are reproduced for parity (spec §11): the worker's (no clamping, no
label) and the evaluation scripts' (labelled, clamped to [0, W-1] x [0, H-1]). The product uses
`parse_detections`, which reads the generated token ids directly, so it needs no regex over text
and can score each item with the probabilities its coordinates were decoded with.
"""
from __future__ import annotations

import re
from typing import Callable, Optional, Sequence

from locate_ros.model.config import TokenIds
from locate_ros.results import Detection

# --- reference parsers (text) ---------------------------------------------------------------

_WORKER_BOX = re.compile(r"<box><(\d+)><(\d+)><(\d+)><(\d+)></box>")
_WORKER_POINT = re.compile(r"<box><(\d+)><(\d+)></box>")

_NUM = r"\s*<\s*([0-9]+(?:\.[0-9]+)?)\s*>"  # the eval scripts tolerate spaces and decimals
_EVAL_GROUP = re.compile(r"<ref>([^<]+)</ref>((?:<box>.*?</box>)+)")
_EVAL_POINT = re.compile(r"<box>" + _NUM * 2 + r"\s*</box>")
_EVAL_BOX = re.compile(r"<box>" + _NUM * 4 + r"\s*</box>")
_EVAL_MAX = 10000  # values outside [0, 10000] are dropped


def parse_worker_boxes(text: str, w: float, h: float) -> list[dict[str, float]]:
    """The worker's `parse_boxes`: v/1000*W, v/1000*H, no clamping, no reordering."""
    return [
        {"x1": int(a) / 1000 * w, "y1": int(b) / 1000 * h, "x2": int(c) / 1000 * w, "y2": int(d) / 1000 * h}
        for a, b, c, d in _WORKER_BOX.findall(text)
    ]


def parse_worker_points(text: str, w: float, h: float) -> list[dict[str, float]]:
    """The worker's `parse_points`."""
    return [{"x": int(a) / 1000 * w, "y": int(b) / 1000 * h} for a, b in _WORKER_POINT.findall(text)]


def parse_eval_bbox_with_labels(text: str) -> list[tuple[str, list[float], bool]]:
    """The eval scripts' `parse_bbox_with_labels`: (label, values in 0..1000, is_point).

    Only boxes right after a `<ref>label</ref>` count; within a group all points come before all
    boxes, as in the reference.
    """
    out = []
    for label, boxes in _EVAL_GROUP.findall(text):
        for pattern, is_point in ((_EVAL_POINT, True), (_EVAL_BOX, False)):
            for match in pattern.findall(boxes):
                values = [float(v) for v in match]
                if all(0 <= v <= _EVAL_MAX for v in values):
                    out.append((label, values, is_point))
    return out


def parse_eval_prediction(text: str, w: int, h: int) -> dict[str, list[list[float]]]:
    """The eval scripts' `parse_prediction`: {label: [[x, y] | [x1, y1, x2, y2], ...]} in pixels."""

    def px(v: float, size: int) -> float:
        return max(0, min(v * size / 1000, size - 1))

    out: dict[str, list[list[float]]] = {}
    for label, values, is_point in parse_eval_bbox_with_labels(text):
        if is_point:
            item = [px(values[0], w), px(values[1], h)]
        else:
            x1, y1, x2, y2 = px(values[0], w), px(values[1], h), px(values[2], w), px(values[3], h)
            item = [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]
        out.setdefault(label, []).append(item)
    return out


# --- product parser (token ids) -------------------------------------------------------------


def parse_detections(
    token_ids: Sequence[int],
    token_probs: Optional[Sequence[float]],
    image_wh: tuple[int, int],
    tokens: TokenIds,
    decode: Callable[[list[int]], str],
    default_label: str = "",
) -> list[Detection]:
    """Detections of a generated answer, in pixels of an image of size image_wh.

    `<box><x1><y1><x2><y2></box>` is a box and `<box><x><y></box>` a point (value v -> v/1000 of the
    side, clamped to the image, box corners ordered). `<box>None</box>` and any malformed or
    truncated box are skipped. Each item takes the label of the latest `<ref>...</ref>` (decoded
    with `decode`; a missing `</ref>` ends the label at the next `<box>`/`<ref>`), or
    `default_label` before any. The score is the mean of `token_probs` (aligned with token_ids)
    over the item's coordinate tokens; 0.0 when token_probs is None.
    """
    ids = list(token_ids)
    if token_probs is not None and len(token_probs) != len(ids):
        raise ValueError(f"token_probs has {len(token_probs)} entries for {len(ids)} token ids")
    t = tokens
    W, H = image_wh
    out: list[Detection] = []
    label = default_label
    i = 0
    while i < len(ids):
        if ids[i] == t.ref_start:
            j = i + 1
            while j < len(ids) and ids[j] not in (t.ref_end, t.ref_start, t.box_start):
                j += 1
            label = decode(ids[i + 1 : j]).strip() or default_label
            i = j + 1 if j < len(ids) and ids[j] == t.ref_end else j
        elif ids[i] == t.box_start:
            j = i + 1
            while j < len(ids) and t.is_coord(ids[j]):
                j += 1
            n = j - i - 1
            if n in (2, 4) and j < len(ids) and ids[j] == t.box_end:
                v = [t.coord_value(x) / 1000 for x in ids[i + 1 : j]]
                xs = [min(max(x * W, 0.0), W) for x in v[0::2]]
                ys = [min(max(y * H, 0.0), H) for y in v[1::2]]
                score = sum(token_probs[i + 1 : j]) / n if token_probs is not None else 0.0
                if n == 4:
                    box = (min(xs), min(ys), max(xs), max(ys))
                    out.append(Detection(label, box=box, score=float(score)))
                else:
                    out.append(Detection(label, point=(xs[0], ys[0]), score=float(score)))
            i = j  # resume at whatever ended the run (</box> is skipped as an ordinary token)
        else:
            i += 1
    return out
