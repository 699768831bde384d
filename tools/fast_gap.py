"""Where Fast mode loses the boxes Slow mode finds: per decoding mode, on held-out `objects` scenes,
each answer group's boxes matched against the asked category's ground truth.

    python tools/fast_gap.py MODEL [--images 40] [--modes slow fast hybrid]

Prints one JSON line per mode: boxes, recall@0.5, unique-match precision@0.5 (ground-truth boxes
found / boxes answered), `duplicates` (further boxes at IoU >= 0.5 on a ground-truth box already
found), `mixed` (best IoU 0.1-0.5: coordinates of neighbouring instances combined) and `far` (best
IoU < 0.1, or a box for a category with no ground truth). The scenes are data-engine stream
EVAL_SEED + 7, so they are held out from training and are not the evaluation's images.

With --teacher-forced it first prints one more line, which separates the block's own weakness from
Fast mode running on its own earlier boxes: one training-style forward per scene with the true
answer as prefix, then per box how far the coordinates that the stream rows (each coordinate seen
after the true ones before it, as in Slow mode) and the block rows (all four from one forward, as in
Fast mode) rank first are off. `iou50` = boxes whose four argmax coordinates reach IoU 0.5 with the
truth; `gross` = per coordinate (x1 y1 x2 y2) the share more than 50 bins off; `other_instance` =
block coordinates more than 50 bins off that are within 12 bins of the same coordinate of another
box in the answer (the block rows did not agree on which instance comes next); `x1_missed` = block
boxes whose x1 is more than 50 bins off, and `x1_missed_one_box` = those whose four coordinates are
all within 12 bins of one box of the answer (the block took another instance whole, as slow mode
does when it takes them out of order, instead of mixing two); `colour_rival` = the same per kind of
box: `boxes`, stream rows' x1 more than 50 bins off (`stream_x1_missed`) and block rows with any
coordinate that far off (`block_missed`), for the boxes that only their colour tells from the instance
taken next (`locate_ros.data.families.colour_rivals`; `x1_on_other_colour`: missed x1s within 12 bins
of the x1 of the shape in another colour) and for the rest (`other`);
`end_as_box` =
blocks whose target ends the answer (`<|im_end|>` + `<null>`s) that Fast mode's decision (the
reference's rule) turns into a box instead, of `end_blocks`; `anchored` = the x1 blocks that
instance-anchored decoding runs (DecodeOptions.instance_anchored; trained with --x1-blocks): per box,
the block anchored at its true x1, `iou50` of that x1 with the block's y1 x2 y2, `gross` for y1 x2 y2,
and, where another box of the group follows, how often its x1 row misses (`next_x1_missed` of
`next_boxes`; Fast mode's block x1 row is the `x1_missed` above). With --lens also `lens`: per decoder
layer, the share of coordinates more than 50 bins off when that layer's output is read through the
final norm and the head (a logit lens), x1 y1 x2 y2, for stream and block rows: at which depth each
kind of row decides (the last layer's are `stream_gross` and `block_gross`).
"""
import argparse
import json

import numpy as np
import torch

from locate_ros.data.families import colour_rivals, make_sample, other_colour_x1s
from locate_ros.decoding.hybrid import mtp_decision
from locate_ros.decoding.sampling import sample_tokens
from locate_ros.evaluation.metrics import box_iou
from locate_ros.evaluation.run import EVAL_SEED
from locate_ros.locator import Locator
from locate_ros.model.segments import Segments
from locate_ros.training.objective import NoCache, build_example, pack, target_logits

GROSS_BINS = 50  # a coordinate this far off is on another object, not a loose edge
SAME_BINS = 12  # ... and one this close to another box's coordinate is that box's


def coordinate_rows(ex, t) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per target row of `ex`: which row kind (stream / block) predicts each coordinate, and the true
    boxes [boxes, 4] in bins (`objects` answers hold boxes only, no points)."""
    target = np.array(ex.target_ids) - t.coord_start
    is_coord = (target >= 0) & (target < t.num_coords)
    is_block = np.array(ex.is_block_target)
    return is_coord & ~is_block, is_coord & is_block, target[is_coord & ~is_block].reshape(-1, 4)


def lens(loc: Locator, samples) -> dict:
    """Per decoder layer, stream and block rows' shares of coordinates > GROSS_BINS off the truth."""
    t, model = loc.tokens, loc.model
    errors = {"stream": [], "block": []}  # per kind, per scene, [layers, boxes, 4]
    for s in samples:
        ex = build_example(s, loc.processor)
        batch = pack([ex])
        with torch.no_grad():
            feats = model.encode_images(batch.pixel_values, batch.grids)
            _, outs = model.language_model.model(model.embed(batch.ids, feats), batch.positions, batch.mask, NoCache(),
                                                 return_layer_outputs=True, segments=Segments.of(batch.lengths))
            lm = model.language_model
            best = torch.stack([lm.logits(lm.model.norm(h[batch.target_rows]))[:, t.coord_start:t.coord_end + 1].argmax(-1)
                                for h in outs]).numpy()
        stream, block, truth = coordinate_rows(ex, t)
        for kind, rows in (("stream", stream), ("block", block)):
            errors[kind].append(np.abs(best[:, rows].reshape(len(outs), -1, 4) - truth))
    return {kind: np.round((np.concatenate(e, axis=1) > GROSS_BINS).mean(1), 3).tolist() for kind, e in errors.items()}


def teacher_forced(loc: Locator, samples, with_lens: bool = False) -> dict:
    """Stream rows against block rows on the true answer (see the module docstring)."""
    t = loc.tokens
    picked = {"stream": [], "block": []}  # per scene, [boxes, 4] argmax coordinates of each kind of row
    truth, other, end_blocks, end_as_box, x1_missed, x1_missed_one_box = [], 0, 0, 0, 0, 0
    by_kind = {kind: dict(boxes=0, stream_x1_missed=0, block_missed=0) for kind in ("colour_rival", "other")}
    by_kind["colour_rival"]["x1_on_other_colour"] = 0
    for s in samples:
        ex = build_example(s, loc.processor)
        with torch.no_grad():
            full = target_logits(loc.model, pack([ex]))
        for window_rows in np.flatnonzero(ex.is_block_target).reshape(-1, 6):
            if ex.target_ids[window_rows[0]] == t.im_end:
                window = sample_tokens(full[torch.as_tensor(window_rows)], [], tokens=t, mode="fast")
                end_blocks += 1
                end_as_box += mtp_decision(window, "fast", t).type == "coord_box"
        best = full[:, t.coord_start:t.coord_end + 1].argmax(-1).numpy()
        stream, block, boxes = coordinate_rows(ex, t)
        boxes = boxes.astype(float)
        for kind, rows in (("stream", stream), ("block", block)):
            picked[kind].append(best[rows].reshape(-1, 4).astype(float))
        block = picked["block"][-1]
        for k in range(len(boxes)):
            if abs(block[k, 0] - boxes[k, 0]) > GROSS_BINS:
                x1_missed += 1
                x1_missed_one_box += int((np.abs(boxes - block[k]) <= SAME_BINS).all(1).any())
            others = np.delete(boxes, k, 0)
            for j in range(1, 4):
                if abs(block[k, j] - boxes[k, j]) > GROSS_BINS and len(others):
                    other += int(np.abs(others[:, j] - block[k, j]).min() <= SAME_BINS)
        stream_picked = picked["stream"][-1]
        labels = [target.label for target in s.targets for _ in target.boxes]
        for k, rival in enumerate(colour_rivals(s)):
            n = by_kind["colour_rival" if rival else "other"]
            n["boxes"] += 1
            missed = abs(stream_picked[k, 0] - boxes[k, 0]) > GROSS_BINS
            n["stream_x1_missed"] += int(missed)
            n["block_missed"] += int((np.abs(block[k] - boxes[k]) > GROSS_BINS).any())
            if rival and missed:  # on the other colour's instance of the shape?
                x1s = other_colour_x1s(s, labels[k])
                n["x1_on_other_colour"] += int(min(abs(stream_picked[k, 0] - x) for x in x1s) <= SAME_BINS)
        truth.append(boxes)
    truth = np.concatenate(truth)
    out = {"mode": "teacher_forced", "boxes": len(truth)}
    for kind in ("stream", "block"):
        pred = np.concatenate(picked[kind])
        iou = np.array([box_iou(p[None], g[None])[0, 0] for p, g in zip(pred, truth)])
        out[f"{kind}_iou50"] = round(float((iou >= 0.5).mean()), 3)
        out[f"{kind}_gross"] = np.round((np.abs(pred - truth) > GROSS_BINS).mean(0), 3).tolist()
    out.update(other_instance=other, x1_missed=x1_missed, x1_missed_one_box=x1_missed_one_box, **by_kind,
               end_blocks=end_blocks, end_as_box=end_as_box)
    out["anchored"] = anchored_blocks(loc, samples)
    if with_lens:
        out["lens"] = lens(loc, samples)
    return out


def anchored_blocks(loc: Locator, samples) -> dict:
    """The x1 blocks (objective.build_example(x1_blocks=True); what instance-anchored decoding runs)
    on the true prefix: per box, the block anchored at its true x1 (`iou50` of that x1 with the
    block's y1 x2 y2; `gross` per coordinate y1 x2 y2) and, where another box follows, its last row's
    x1 (`next_x1_missed` of `next_boxes`). For a model trained without x1 blocks these rows are
    untrained."""
    t = loc.tokens
    picked, truth, next_missed, next_boxes = [], [], 0, 0
    for s in samples:
        ex = build_example(s, loc.processor, x1_blocks=True)
        n_boxes = sum(len(target.boxes) for target in s.targets)
        with torch.no_grad():
            full = target_logits(loc.model, pack([ex]))
        best = full[:, t.coord_start:t.coord_end + 1].argmax(-1).numpy()
        target = np.array(ex.target_ids) - t.coord_start
        rows = np.flatnonzero(ex.is_block_target)[-6 * n_boxes:].reshape(-1, 6) if n_boxes else np.zeros((0, 6), int)
        for r in rows:  # targets y1 x2 y2 </box> and then <box> x1 of the next box, or <null> <null>
            x1 = ex.ids[ex.target_rows[r[0]]] - t.coord_start  # the anchor: the box's true x1
            truth.append([x1, *target[r[:3]]])
            picked.append([x1, *best[r[:3]]])
            if 0 <= target[r[5]] < t.num_coords:
                next_boxes += 1
                next_missed += int(abs(best[r[5]] - target[r[5]]) > GROSS_BINS)
    pred, truth = np.array(picked, float).reshape(-1, 4), np.array(truth, float).reshape(-1, 4)
    iou = np.array([box_iou(p[None], g[None])[0, 0] for p, g in zip(pred, truth)])
    return {"boxes": len(truth), "iou50": round(float((iou >= 0.5).mean()), 3) if len(truth) else None,
            "gross": np.round((np.abs(pred - truth) > GROSS_BINS).mean(0)[1:], 3).tolist(),
            "next_boxes": next_boxes, "next_x1_missed": next_missed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--modes", nargs="*", default=["slow", "fast", "hybrid"], choices=["slow", "fast", "hybrid"])
    ap.add_argument("--teacher-forced", action="store_true", help="first compare block and stream rows on the true answer")
    ap.add_argument("--lens", action="store_true", help="with --teacher-forced: the same per decoder layer (logit lens)")
    args = ap.parse_args()
    loc = Locator.from_pretrained(args.model)
    samples = [make_sample(EVAL_SEED + 7, i, size=(144, 256), families=["objects"]) for i in range(args.images)]
    if args.teacher_forced:
        print(json.dumps(teacher_forced(loc, samples, args.lens)))
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
