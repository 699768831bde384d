"""Parallel Box Decoding decisions: what a 6-token MTP window (or one AR token) appends.

A reimplementation of the reference `generate_utils` helpers (spec §9 steps 4-5, §10). The window
probabilities are the post-penalty/temperature/top-p/top-k softmax that `sample_tokens` returns.
Every threshold is compared in float32, exactly as the reference compares a float32 tensor with a
Python float: probabilities land on such thresholds (0.2, 0.6, 0.9), and a float64 comparison would
flip them. Each helper moves only a few numbers off the device (one or two `.tolist()` calls).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Literal, Optional, Sequence

import torch

from locate_ros.model.config import TokenIds

if TYPE_CHECKING:
    from locate_ros.decoding.sampling import Sampled

Mode = Literal["fast", "hybrid", "slow"]
FrameType = Literal["empty_box", "legal_box", "illegal_box"]

# The reference marks an ambiguous coordinate with token id 0 ("!", an ordinary token, not a config
# id); handle_pattern then cuts the hybrid window just before it and falls back to AR.
AMBIGUOUS_MARKER = 0


@dataclass(frozen=True)
class HybridThresholds:
    """The reference's decision constants (defaults = the released generate())."""

    box_start: float = 0.7  # p0[<box>] for an empty box, as decode_bbox_avg passes it
    empty_none: float = 0.2  # p1[None] >
    empty_box_end: float = 0.2  # p2[</box>] >
    empty_null: float = 0.1  # p3[<null>] > and p4[<null>] >
    box_end: float = 0.2  # p5[</box>] + p5[<null>] + p5[<|im_end|>] >= : a legal box frame
    keep_k: int = 4  # top-k per coordinate slot (generate passes keep_k=5, which is never read)
    ambiguous_prob: float = 0.9  # a coordinate is ambiguous if its prob < this ...
    ambiguous_spread: int = 60  # ... and the top-k coordinate ids span more than this many bins
    # How many of a slot's most probable ids the ambiguity test reads; 0 = keep_k, as the reference
    # does. Not the reference's: a model whose coordinate rows are broad bumps (the bundled demo
    # model) fills its top 4 with one bump's neighbouring bins, so a second candidate instance shows
    # only further down. keep_k still decides whether the slot holds a coordinate at all.
    ambiguous_top_k: int = 0
    # Not the reference's either: > 0 replaces the ambiguity test with verification. The window
    # step already re-runs the tokens the last step committed causally, so their next-token rows
    # cost no extra forward; a drafted token stands if those rows give it at least this fraction of
    # the probability of their own choice; the first that does not is replaced by that choice
    # (decoding.loop.generate_verified). 1 = exactly slow mode's answer at temperature 0; lower
    # keeps more drafts. 0 = off.
    verify_ratio: float = 0.0
    ref_start: float = 0.6  # p0[<ref>] >= : decode the window as a <ref> label
    ref_top_k: int = 5

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            kind = int if f.type in (int, "int") else float
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)):
                raise ValueError(f"hybrid threshold {f.name} must be a number ({kind.__name__}), got {v!r}")
            if kind is float and not 0.0 <= v <= 1.0:
                raise ValueError(f"hybrid threshold {f.name} is a probability: 0..1, got {v!r}")
            low = 0 if f.name in ("ambiguous_top_k", "ambiguous_spread") else 1
            if kind is int and v < low:
                raise ValueError(f"hybrid threshold {f.name} must be >= {low}, got {v!r}")

    @classmethod
    def from_dict(cls, values: dict) -> "HybridThresholds":
        """The reference's constants with `values` (field name -> value) in their place."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown hybrid thresholds {unknown}; known: {sorted(names)}")
        return cls(**values)


DEFAULT_THRESHOLDS = HybridThresholds()


@dataclass(frozen=True)
class Pattern:
    """What one decision appends, and where the loop goes next."""

    type: str  # im_end | empty_box | coord_box | point_box | error_box | ref_object | box_end_ar | coord_ar
    tokens: list[int]
    need_switch_to_ar: bool  # the next step is an AR step
    is_terminal: bool  # stop after appending


def _f32(x: float) -> float:
    """x rounded to float32, so a Python comparison with a float32 value is the float32 comparison."""
    return struct.unpack("f", struct.pack("f", x))[0]


def is_valid_box_frame(
    probs: torch.Tensor, tokens: TokenIds, start_thresh: float = 0.6, thresholds: HybridThresholds = DEFAULT_THRESHOLDS
) -> FrameType:
    """Classify a 6-position window: `<box>None</box><null><null>`, a box that ends, or neither."""
    t = tokens
    rows = torch.arange(5, device=probs.device)
    cols = torch.tensor([t.box_start, t.none, t.box_end, t.null, t.null], device=probs.device)
    # The end score is summed on the device in float32, like the reference.
    end = probs[5, torch.tensor([t.box_end, t.null, t.im_end], device=probs.device)].sum()
    p_start, p_none, p_end, p_null3, p_null4, end_score = torch.cat([probs[rows, cols], end[None]]).tolist()
    th = thresholds
    if (
        p_start >= _f32(start_thresh)
        and p_none > _f32(th.empty_none)
        and p_end > _f32(th.empty_box_end)
        and p_null3 > _f32(th.empty_null)
        and p_null4 > _f32(th.empty_null)
    ):
        return "empty_box"
    return "legal_box" if end_score >= _f32(th.box_end) else "illegal_box"


def decode_bbox_avg(
    probs: torch.Tensor,
    tokens: TokenIds,
    keep_k: int = 4,
    mode: Mode = "hybrid",
    thresholds: HybridThresholds = DEFAULT_THRESHOLDS,
) -> Optional[list[int]]:
    """The window as `<box> c1 c2 c3 c4 </box>` (or the empty box), or None if it is not a box.

    Each slot takes its most probable coordinate among its top-k ids, even below a text token.
    <box> and </box> are forced whatever positions 0 and 5 hold. In hybrid mode an ambiguous slot
    becomes AMBIGUOUS_MARKER.
    """
    t, th = tokens, thresholds
    frame = is_valid_box_frame(probs, t, th.box_start, th)
    if frame == "empty_box":
        return [t.box_start, t.none, t.box_end, t.null, t.null, t.null]
    if frame == "illegal_box":
        return None
    coords = _slot_coordinates(probs[1:5], t, keep_k, mode, th)
    return None if coords is None else [t.box_start, *coords, t.box_end]


def _slot_coordinates(probs: torch.Tensor, tokens: TokenIds, keep_k: int, mode: Mode,
                      thresholds: HybridThresholds) -> Optional[list[int]]:
    """Per row of probs [R, V]: its most probable coordinate among its top-k ids (AMBIGUOUS_MARKER in
    hybrid mode when the ambiguity test fires), or None if some row has no coordinate there."""
    t, th = tokens, thresholds
    ambiguous_k = th.ambiguous_top_k or keep_k
    k = min(max(keep_k, ambiguous_k), probs.size(-1))  # a k past the vocabulary reads all of it
    top_p, top_ids = (x.tolist() for x in probs.topk(k, dim=-1))
    coords = []
    for ps, ids in zip(top_p, top_ids):
        cands = [(p, i) for p, i in zip(ps[:keep_k], ids[:keep_k]) if t.is_coord(i)]
        if not cands:
            return None
        p, best = cands[0]
        rivals = [i for i in ids[:ambiguous_k] if t.is_coord(i)]
        spread = max(rivals) - min(rivals)
        ambiguous = p < _f32(th.ambiguous_prob) and len(rivals) > 1 and spread > th.ambiguous_spread
        coords.append(AMBIGUOUS_MARKER if mode == "hybrid" and ambiguous else best)
    return coords


def anchored_decision(sampled: "Sampled", mode: Mode, tokens: TokenIds,
                      thresholds: HybridThresholds = DEFAULT_THRESHOLDS) -> Pattern:
    """What a window anchored at a box's x1 appends (instance-anchored decoding; not the reference's).

    Its rows predict y1 x2 y2 `</box>` and then the next box's `<box>` and x1 (training:
    objective.build_example's x1 blocks). The three coordinates are read as decode_bbox_avg reads a
    box's (each row's most probable coordinate among its top keep_k ids; the ambiguity test in
    hybrid mode), `</box>` is forced when row 3's end score passes `box_end`, and the next box is
    drafted too when row 4's pick is `<box>` and row 5 holds a coordinate: then the window after
    this one is anchored at that x1 again (`Pattern.need_switch_to_ar` False, type "anchored_box").
    Otherwise the box is closed alone ("anchored_end") and the next window is the reference's.
    A window that is no box (a slot without a coordinate, or no end) is an "anchored_error": fast
    mode appends its picks up to the end of the box as they are, hybrid mode keeps the valid prefix
    and finishes the box token by token, as handle_pattern does for a box-aligned window.
    """
    t, th, probs = tokens, thresholds, sampled.probs
    end = float(probs[3, torch.tensor([t.box_end, t.null, t.im_end], device=probs.device)].sum())
    coords = _slot_coordinates(probs[0:3], t, th.keep_k, mode, th)
    if coords is None or end < _f32(th.box_end) or AMBIGUOUS_MARKER in coords:
        if mode == "fast":
            picks = sampled.x0[:3]
            cut = picks.index(t.box_end) if t.box_end in picks else 3
            return Pattern("anchored_error", picks[:cut] + [t.box_end], False, False)
        valid = coords if coords is not None else sampled.x0[:3]  # then: its picks that are coordinates
        n = next((j for j, c in enumerate(valid) if c == AMBIGUOUS_MARKER or not t.is_coord(c)), 3)
        return Pattern("anchored_error", valid[:n], True, False)  # may append nothing: AR goes on from x1
    box = [*coords, t.box_end]
    follower = _slot_coordinates(probs[5:6], t, th.keep_k, "fast", th)
    if sampled.x0[4] == t.box_start and follower is not None:
        return Pattern("anchored_box", box + [t.box_start, follower[0]], False, False)
    return Pattern("anchored_end", box, False, False)


def window_decision(sampled: "Sampled", mode: Mode, tokens: TokenIds, thresholds: HybridThresholds,
                    anchored: bool, at_x1: bool) -> Pattern:
    """What a window appends, with instance-anchored windows (`anchored`) or the reference's: a window
    after a box's x1 (`at_x1`) is an anchored one; with anchoring on, a box-aligned window commits
    `<box>` x1 alone ("box_x1"), so that the next window anchors at that x1."""
    if at_x1:
        return anchored_decision(sampled, mode, tokens, thresholds)
    pat = mtp_decision(sampled, mode, tokens, thresholds)
    if anchored and pat.type == "coord_box":
        return Pattern("box_x1", pat.tokens[:2], False, False)
    return pat


def decode_ref(
    probs: torch.Tensor, tokens: TokenIds, thresholds: HybridThresholds = DEFAULT_THRESHOLDS
) -> Optional[list[int]]:
    """The window as `<ref>` + the most probable non-coordinate id of each later slot, or None."""
    t, th = tokens, thresholds
    if probs[0, t.ref_start].item() < _f32(th.ref_start):
        return None
    out = [t.ref_start]
    for ids in probs[1:].topk(th.ref_top_k, dim=-1).indices.tolist():
        text = [i for i in ids if not t.is_coord(i)]
        if not text:
            return None
        out.append(text[0])
    return out


def handle_pattern(x0: Sequence[int], mode: Mode, tokens: TokenIds) -> Pattern:
    """Decide what a 6-token window appends (spec §10 handle_pattern)."""
    t = tokens
    x0 = list(x0)
    if x0[0] in (t.null, t.im_end):  # <null> first means nothing more to say
        return Pattern("im_end", [t.im_end], False, True)
    if x0[:2] == [t.box_start, t.none]:
        return Pattern("empty_box", [t.box_start, t.none, t.box_end], False, False)
    if x0[0] == t.box_start:
        n = 0  # consecutive coordinates after <box>
        while n < 4 and t.is_coord(x0[1 + n]):
            n += 1
        if n == 4 and x0[5] == t.box_end:
            return Pattern("coord_box", x0, False, False)
        if n == 2 and x0[3] == t.box_end:
            return Pattern("point_box", x0[:4], False, False)
        if mode == "fast":  # fast mode never leaves MTP: keep the malformed window as is
            return Pattern("coord_box", x0, False, False)
        return Pattern("error_box", x0[: 1 + n], True, False)  # keep the valid prefix, finish it in AR
    if t.null in x0:
        x0 = x0[: x0.index(t.null)]
    if len(x0) >= 2 and x0[-1] == x0[-2] == t.ref_end:
        x0 = x0[:-1]
    return Pattern("ref_object", x0, False, False)


def mtp_decision(
    sampled: "Sampled", mode: Mode, tokens: TokenIds, thresholds: HybridThresholds = DEFAULT_THRESHOLDS
) -> Pattern:
    """Spec §9 step 4: the averaged box, else a <ref> label, else the sampled tokens themselves."""
    window = sampled.box_avg
    if window is None:
        window = decode_ref(sampled.probs, tokens, thresholds)
    if window is None:
        window = sampled.x0
    return handle_pattern(window, mode, tokens)


def ar_decision(x0: int, tokens: TokenIds) -> Pattern:
    """Spec §9 step 5, hybrid mode: the AR fallback only finishes a box.

    `</box>` goes back to MTP, a coordinate or `None` stays in AR, and anything else (even `<box>`
    or text) is appended and ends the generation, as in the reference.
    """
    if x0 == tokens.box_end:
        return Pattern("box_end_ar", [x0], False, False)
    if tokens.is_coord(x0) or x0 == tokens.none:
        return Pattern("coord_ar", [x0], True, False)
    return Pattern("im_end", [x0], False, True)
