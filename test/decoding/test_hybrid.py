"""Hybrid/PBD decisions against the reference's golden outputs (golden README (e), (d2))."""
import dataclasses
import json

import pytest
import torch
from conftest import dense_rows, load_json, pure_function_token_ids

from locate_ros.decoding.hybrid import (
    AMBIGUOUS_MARKER,
    HybridThresholds,
    Pattern,
    anchored_decision,
    ar_decision,
    decode_bbox_avg,
    decode_ref,
    handle_pattern,
    is_valid_box_frame,
    mtp_decision,
)
from locate_ros.decoding.sampling import sample_tokens
from locate_ros.model.config import LocateAnythingConfig, TokenIds
from locate_ros.testing.tiny import golden_dir

E = load_json("e_pure_functions.json")
V = E["vocab_size"]
TOK = pure_function_token_ids()


def dense(rows, fill=0.0, vocab=V):
    return dense_rows(rows, fill, vocab)


def names(cases):
    return [c["name"] for c in cases]


def test_golden_token_ids_match_the_tiny_config():
    cfg = LocateAnythingConfig.from_json(golden_dir() / "tiny" / "config.json")
    assert dataclasses.replace(cfg.tokens, image=-1) == TOK
    assert TOK.im_end == 151645


# --- golden parity --------------------------------------------------------------------------


@pytest.mark.parametrize("case", E["is_valid_box_frame"], ids=names(E["is_valid_box_frame"]))
def test_is_valid_box_frame_golden(case):
    assert is_valid_box_frame(dense(case["probs_rows"]), TOK, **case["kwargs"]) == case["output"]


@pytest.mark.parametrize("case", E["decode_bbox_avg"], ids=names(E["decode_bbox_avg"]))
@pytest.mark.parametrize("keep_k", [4, 5])
@pytest.mark.parametrize("mode", ["hybrid", "fast"])
def test_decode_bbox_avg_golden(case, keep_k, mode):
    expected = case["outputs"][f"keep_k={keep_k},mode={mode}"]
    assert decode_bbox_avg(dense(case["probs_rows"]), TOK, keep_k, mode) == expected


@pytest.mark.parametrize("case", E["decode_ref"], ids=names(E["decode_ref"]))
def test_decode_ref_golden(case):
    assert decode_ref(dense(case["probs_rows"]), TOK) == case["output"]


@pytest.mark.parametrize("case", E["handle_pattern"], ids=names(E["handle_pattern"]))
@pytest.mark.parametrize("mode", ["hybrid", "fast"])
def test_handle_pattern_golden(case, mode):
    assert dataclasses.asdict(handle_pattern(case["x0"], mode, TOK)) == case["outputs"][mode]


# --- scripted generation: the whole decision loop on the reference's scripted logits --------

D2 = json.loads((golden_dir() / "d_scripted_generation.json").read_text())


@pytest.mark.parametrize("name", sorted(D2["scenarios"]))
def test_scripted_generation_decisions(name):
    """Replay d2: each call's logits are given; our sampling + decisions must append the same ids."""
    sc = D2["scenarios"][name]
    s = sc["settings"]
    mode = s["generation_mode"]
    generated = list(D2["prompt_input_ids"])
    in_ar = mode == "slow"
    for rows, call in zip(sc["script"], sc["calls"], strict=True):
        assert call["kind"] == ("ar" if in_ar else "mtp")
        sampled = sample_tokens(
            dense(rows, D2["background_logit"], D2["vocab_size"]), torch.tensor(generated), tokens=TOK, mode=mode,
            temperature=s["temperature"], top_p=s["top_p"], top_k=s["top_k"],
            repetition_penalty=s["repetition_penalty"],
        )
        if mode == "slow":
            x0 = sampled.x0[0]
            pattern = Pattern("ar", [x0], True, x0 == TOK.im_end)
        elif in_ar:
            pattern = ar_decision(sampled.x0[0], TOK)
        else:
            pattern = mtp_decision(sampled, mode, TOK)
        assert pattern.tokens == call["appended_tokens"], call
        generated += pattern.tokens
        in_ar = pattern.need_switch_to_ar
        if pattern.is_terminal:
            break
    assert pattern.is_terminal
    assert generated[len(D2["prompt_input_ids"]):] == sc["generated_token_ids"]


# --- every branch, by hand --------------------------------------------------------------------

C = TOK.coord_token


def one_hot_window(ids, p=0.98):
    """A window whose row j puts `p` on ids[j] (None: an ordinary text token)."""
    return dense([{i if i is not None else 1004: p} for i in ids])


def test_is_valid_box_frame_branches():
    t = TOK
    empty = one_hot_window([t.box_start, t.none, t.box_end, t.null, t.null, t.null], 0.65)
    assert is_valid_box_frame(empty, t) == "empty_box"  # own default start threshold 0.6
    assert is_valid_box_frame(empty, t, start_thresh=0.7) == "legal_box"  # ends with <null>
    box = one_hot_window([t.box_start, C(1), C(2), C(3), C(4), t.box_end])
    assert is_valid_box_frame(box, t) == "legal_box"
    assert is_valid_box_frame(one_hot_window([t.box_start, C(1), C(2), C(3), C(4), None]), t) == "illegal_box"
    # thresholds are configurable
    assert is_valid_box_frame(box, t, thresholds=HybridThresholds(box_end=0.99)) == "illegal_box"


def test_decode_bbox_avg_branches():
    t = TOK
    box = [t.box_start, C(100), C(200), C(300), C(400), t.box_end]
    assert decode_bbox_avg(one_hot_window(box), t) == box
    # <box>/</box> are forced: position 0 holds text here
    assert decode_bbox_avg(one_hot_window([None, *box[1:]]), t) == box
    assert decode_bbox_avg(one_hot_window([*box[:5], None]), t) is None  # illegal frame
    assert decode_bbox_avg(one_hot_window([t.box_start, C(1), None, C(3), C(4), t.box_end]), t) is None
    # ambiguous slot: hybrid marks it, fast keeps the top coordinate
    probs = one_hot_window(box)
    probs[2, C(200)], probs[2, C(300)] = 0.5, 0.45
    assert decode_bbox_avg(probs, t, mode="hybrid") == [*box[:2], AMBIGUOUS_MARKER, *box[3:]]
    assert decode_bbox_avg(probs, t, mode="fast") == box
    assert decode_bbox_avg(probs, t, thresholds=HybridThresholds(ambiguous_spread=100)) == box
    empty = one_hot_window([t.box_start, t.none, t.box_end, t.null, t.null, t.null], 0.9)
    assert decode_bbox_avg(empty, t) == [t.box_start, t.none, t.box_end, t.null, t.null, t.null]


def test_ambiguous_top_k_reads_a_second_candidate_below_a_broad_top_4():
    """A broad bump fills the top 4 with neighbouring bins (spread 3): the reference's rule, which reads
    the top keep_k, sees one candidate; ambiguous_top_k = 8 also reads a second bump 100 bins away."""
    t = TOK
    box = [t.box_start, C(100), C(200), C(300), C(400), t.box_end]
    probs = one_hot_window(box)
    bump = {C(v): p for v, p in ((199, 0.12), (200, 0.13), (201, 0.12), (202, 0.11), (300, 0.1), (301, 0.09))}
    probs[2] = dense([bump])[0]
    assert decode_bbox_avg(probs, t, mode="hybrid") == box  # keep_k 4: C(199..202) span 3 bins
    wide = HybridThresholds(ambiguous_top_k=8, ambiguous_prob=0.2, ambiguous_spread=40)
    assert decode_bbox_avg(probs, t, mode="hybrid", thresholds=wide) == [*box[:2], AMBIGUOUS_MARKER, *box[3:]]
    assert decode_bbox_avg(probs, t, mode="fast", thresholds=wide) == box  # fast mode never marks
    # each condition of the rule still counts: a confident top, a narrow spread
    assert decode_bbox_avg(probs, t, thresholds=dataclasses.replace(wide, ambiguous_prob=0.1)) == box
    assert decode_bbox_avg(probs, t, thresholds=dataclasses.replace(wide, ambiguous_spread=110)) == box
    # the pick still comes from the top keep_k: a coordinate only at rank 5-8 does not make a text row a box
    text_row = one_hot_window(box)
    text_row[3] = dense([{1004: 0.5, 1005: 0.2, 1006: 0.1, 1007: 0.05, C(300): 0.04}])[0]
    assert decode_bbox_avg(text_row, t, thresholds=wide) is None
    # a top-k past the vocabulary reads all of it instead of failing
    assert decode_bbox_avg(probs, t, thresholds=dataclasses.replace(wide, ambiguous_top_k=V + 10)) == \
        [*box[:2], AMBIGUOUS_MARKER, *box[3:]]


@pytest.mark.parametrize("bad", [dict(keep_k=0), dict(ambiguous_top_k=-1), dict(ambiguous_prob=1.5),
                                 dict(keep_k=2.5), dict(box_end=True), dict(ambiguous_spread="60")])
def test_thresholds_refuse_values_the_rule_cannot_use(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        HybridThresholds(**bad)


def test_thresholds_from_a_dict_name_unknown_keys():
    assert HybridThresholds.from_dict({"ambiguous_top_k": 32}) == HybridThresholds(ambiguous_top_k=32)
    with pytest.raises(ValueError, match="ambiguous_topk"):
        HybridThresholds.from_dict({"ambiguous_topk": 32})


def test_decode_ref_branches():
    t = TOK
    ref = [t.ref_start, 1004, t.ref_end, t.null, t.null, t.null]
    assert decode_ref(dense([{i: 0.9} for i in ref]), t) == ref
    assert decode_ref(dense([{i: 0.9} for i in ref]), t, HybridThresholds(ref_start=0.95)) is None
    coords_only = dense([{t.ref_start: 0.9}] + [{C(k): 0.1 * (k + 1) for k in range(5)}] * 5)
    assert decode_ref(coords_only, t) is None


def test_handle_pattern_uses_token_ids_not_literals():
    """A made-up id layout: every decision must follow the TokenIds it is given."""
    t = TokenIds(image=1, box_start=2, box_end=3, ref_start=4, ref_end=5, coord_start=10, coord_end=30,
                 none=6, im_end=7, text_mask=8, null=9, switch=31)
    box = [2, 10, 11, 12, 13, 3]
    assert handle_pattern(box, "hybrid", t) == Pattern("coord_box", box, False, False)
    assert handle_pattern([2, 10, 11, 3, 9, 9], "hybrid", t).type == "point_box"
    assert handle_pattern([2, 6, 3, 9, 9, 9], "hybrid", t).tokens == [2, 6, 3]
    assert handle_pattern([2, 10, 40, 12, 13, 3], "hybrid", t) == Pattern("error_box", [2, 10], True, False)
    assert handle_pattern([9, 0, 0, 0, 0, 0], "fast", t) == Pattern("im_end", [7], False, True)
    assert handle_pattern([4, 40, 5, 5, 9, 9], "fast", t) == Pattern("ref_object", [4, 40, 5], False, False)
    probs = dense([{i: 0.98} for i in (2, 10, 11, 12, 13, 3)], vocab=64)
    assert decode_bbox_avg(probs, t) == [2, 10, 11, 12, 13, 3]


def _sampled_window(rows, mode="hybrid"):
    return sample_tokens(dense(rows, -20.0), [1, 2, 3], tokens=TOK, mode=mode)


def test_mtp_decision_prefers_the_averaged_box():
    t = TOK
    rows = [{t.box_start: 12.0}, {C(1): 12.0}, {1004: 12.0, C(2): 11.0}, {C(3): 12.0}, {C(4): 12.0},
            {t.box_end: 12.0}]
    s = _sampled_window(rows)
    assert s.x0[2] == 1004  # the argmax is text, but the box takes the best coordinate
    box = [t.box_start, C(1), C(2), C(3), C(4), t.box_end]
    assert mtp_decision(s, "hybrid", TOK) == Pattern("coord_box", box, False, False)


def test_mtp_decision_ambiguous_box_switches_to_ar_in_hybrid_only():
    t = TOK
    rows = [{t.box_start: 12.0}, {C(100): 12.0}, {C(200): 6.0, C(280): 5.8}, {C(3): 12.0}, {C(4): 12.0},
            {t.box_end: 12.0}]  # p .55/.45, 80 bins apart
    hybrid = mtp_decision(_sampled_window(rows), "hybrid", TOK)
    assert hybrid == Pattern("error_box", [t.box_start, C(100)], True, False)
    fast = mtp_decision(_sampled_window(rows, "fast"), "fast", TOK)
    assert fast.type == "coord_box" and fast.tokens[2] == C(200)


def test_mtp_decision_ref_then_fallback_to_x0():
    t = TOK
    ref = [{t.ref_start: 12.0}, {4616: 12.0}, {t.ref_end: 12.0}, {t.null: 12.0}, {t.null: 12.0}, {t.null: 12.0}]
    s = _sampled_window(ref)
    assert s.box_avg is None
    assert mtp_decision(s, "hybrid", TOK) == Pattern("ref_object", [t.ref_start, 4616, t.ref_end], False, False)
    text = [{1000 + j: 12.0} for j in range(6)]
    fallback = mtp_decision(_sampled_window(text), "hybrid", TOK)
    assert fallback == Pattern("ref_object", list(range(1000, 1006)), False, False)
    stop = [{t.null: 12.0}] * 6
    assert mtp_decision(_sampled_window(stop), "hybrid", TOK) == Pattern("im_end", [t.im_end], False, True)


def test_anchored_decision_closes_the_box_and_drafts_the_next_box_s_x1():
    """A window anchored at a box's x1: rows y1 x2 y2 `</box>` then the next box's `<box>` x1."""
    t = TOK
    edges = [{C(200): 12.0}, {C(300): 12.0}, {C(400): 12.0}, {t.box_end: 12.0}]
    box = [C(200), C(300), C(400), t.box_end]
    for mode in ("fast", "hybrid"):
        s = _sampled_window(edges + [{t.box_start: 12.0}, {C(500): 12.0}], mode)
        assert anchored_decision(s, mode, t) == Pattern("anchored_box", box + [t.box_start, C(500)], False, False)
        for tail in ([{t.im_end: 12.0}, {t.null: 12.0}], [{t.ref_start: 12.0}, {4616: 12.0}],
                     [{t.box_start: 12.0}, {t.null: 12.0}]):  # no next box, or no coordinate for it
            assert anchored_decision(_sampled_window(edges + tail, mode), mode, t) == Pattern("anchored_end", box, False, False)
    # a slot takes its best coordinate among its top 4 ids, below a text token, as decode_bbox_avg does
    s = _sampled_window([{1004: 12.0, C(200): 11.0}] + edges[1:] + [{t.null: 12.0}] * 2)
    assert s.x0[0] == 1004 and anchored_decision(s, "hybrid", t).tokens == box


def test_anchored_decision_on_a_window_that_is_no_box():
    """Fast mode appends the picks up to the box's end as they are (it never leaves parallel decoding);
    hybrid mode keeps the valid coordinates and finishes the box token by token."""
    t = TOK
    tail = [{t.box_start: 12.0}, {C(500): 12.0}]
    text = [{C(200): 12.0}, {1004: 12.0}, {C(400): 12.0}, {t.box_end: 12.0}] + tail
    assert anchored_decision(_sampled_window(text, "fast"), "fast", t) == Pattern(
        "anchored_error", [C(200), 1004, C(400), t.box_end], False, False)
    assert anchored_decision(_sampled_window(text), "hybrid", t) == Pattern("anchored_error", [C(200)], True, False)
    no_end = [{C(200): 12.0}, {C(300): 12.0}, {C(400): 12.0}, {1004: 12.0}] + tail
    assert anchored_decision(_sampled_window(no_end), "hybrid", t) == Pattern(
        "anchored_error", [C(200), C(300), C(400)], True, False)
    point = [{C(200): 12.0}, {t.box_end: 12.0}, {t.im_end: 12.0}, {t.null: 12.0}] + tail  # a point's y, then its end
    assert anchored_decision(_sampled_window(point, "fast"), "fast", t).tokens == [C(200), t.box_end]
    split = [{C(200): 6.0, C(280): 5.8}, {C(300): 12.0}, {C(400): 12.0}, {t.box_end: 12.0}] + tail  # y1 .55/.45
    assert anchored_decision(_sampled_window(split), "hybrid", t) == Pattern("anchored_error", [], True, False)
    assert anchored_decision(_sampled_window(split, "fast"), "fast", t).type == "anchored_box"


def test_ar_decision():
    t = TOK
    assert ar_decision(t.box_end, t) == Pattern("box_end_ar", [t.box_end], False, False)
    assert ar_decision(C(0), t) == Pattern("coord_ar", [C(0)], True, False)
    assert ar_decision(C(1000), t) == Pattern("coord_ar", [C(1000)], True, False)
    assert ar_decision(t.none, t) == Pattern("coord_ar", [t.none], True, False)
    for x in (t.im_end, t.box_start, t.ref_start, 4616, t.null):
        assert ar_decision(x, t) == Pattern("im_end", [x], False, True)  # appended as is, then stop
