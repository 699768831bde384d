"""Answer parsing: the reference text parsers (golden README (e) `parsers`) and our token parser."""
import json

import pytest
from conftest import load_json, pure_function_token_ids

from locate_ros.decoding.parse import (
    parse_detections,
    parse_eval_bbox_with_labels,
    parse_eval_prediction,
    parse_worker_boxes,
    parse_worker_points,
)
from locate_ros.results import Detection
from locate_ros.testing.tiny import golden_dir

E = load_json("e_pure_functions.json")
TOK = pure_function_token_ids()

PARSERS = E["parsers"]


@pytest.mark.parametrize("case", PARSERS, ids=[f"{i}-{c['image_wh']}" for i, c in enumerate(PARSERS)])
def test_reference_parsers_golden(case):
    text, (w, h) = case["text"], case["image_wh"]
    assert parse_worker_boxes(text, w, h) == case["worker_parse_boxes"]
    assert parse_worker_points(text, w, h) == case["worker_parse_points"]
    assert [list(x) for x in parse_eval_bbox_with_labels(text)] == case["eval_parse_bbox_with_labels"]
    assert parse_eval_prediction(text, w, h) == case["eval_parse_prediction"]


def test_eval_parser_tolerates_spaces_and_decimals_and_drops_out_of_range():
    text = "<ref>a</ref><box>< 10.5 > <20><30><40> </box><box><1><2><3><10001></box>junk<ref>b</ref>"
    assert parse_eval_bbox_with_labels(text) == [("a", [10.5, 20.0, 30.0, 40.0], False)]


# --- token-level parser -----------------------------------------------------------------------

C = TOK.coord_token
WORDS = {4616: "cat", 5562: "dog", 220: " ", 4064: "None"}


def decode(ids):
    return "".join(WORDS.get(i, "?") for i in ids)


def box(*v):
    return [TOK.box_start, *(C(x) for x in v), TOK.box_end]


def ref(word_id):
    return [TOK.ref_start, word_id, TOK.ref_end]


def parse(ids, wh=(200, 100), probs=None, **kw):
    return parse_detections(ids, probs, wh, TOK, decode, **kw)


def test_boxes_points_and_labels():
    ids = [*ref(4616), *box(100, 200, 300, 400), *box(500, 500, 1000, 1000), *ref(5562), *box(250, 750),
           TOK.im_end]
    assert parse(ids) == [
        Detection("cat", box=(20.0, 20.0, 60.0, 40.0)),
        Detection("cat", box=(100.0, 50.0, 200.0, 100.0)),
        Detection("dog", point=(50.0, 75.0)),
    ]


def test_score_is_the_mean_coordinate_probability():
    ids = [*ref(4616), *box(1, 2, 3, 4), *box(5, 6)]
    probs = [0.1, 0.1, 0.1, 0.5, 0.9, 0.8, 0.7, 0.6, 0.5, 0.99, 0.2, 0.4, 0.5]
    dets = parse(ids, probs=probs)
    assert dets[0].score == pytest.approx((0.9 + 0.8 + 0.7 + 0.6) / 4)
    assert dets[1].score == pytest.approx((0.2 + 0.4) / 2)
    assert parse(ids)[0].score == 0.0
    with pytest.raises(ValueError):
        parse(ids, probs=probs[:-1])


def test_corners_are_ordered_and_clamped():
    [det] = parse(box(300, 400, 100, 200), wh=(1000, 500))
    assert det.box == (100.0, 100.0, 300.0, 200.0)
    [det] = parse(box(0, 0, 1000, 1000), wh=(84, 56))
    assert det.box == (0.0, 0.0, 84.0, 56.0)


def test_default_label_until_the_first_ref():
    ids = [*box(1, 2, 3, 4), *ref(4616), *box(5, 6, 7, 8)]
    assert [d.label for d in parse(ids, default_label="person")] == ["person", "cat"]
    assert [d.label for d in parse(ids)] == ["", "cat"]


def test_none_box_gives_nothing():
    ids = [*ref(4616), TOK.box_start, TOK.none, TOK.box_end, TOK.im_end]
    assert parse(ids) == []


@pytest.mark.parametrize("ids", [
    [TOK.box_start, C(1), C(2), C(3), TOK.box_end],  # three coordinates
    [TOK.box_start, C(1), C(2), C(3), C(4), C(5), TOK.box_end],  # five
    [TOK.box_start, C(1), TOK.box_end],  # one
    [TOK.box_start, TOK.box_end],
    [TOK.box_start, C(1), C(2), C(3), C(4)],  # truncated: no </box>
    [TOK.box_start, C(1), C(2), 4616, C(3), C(4), TOK.box_end],  # text inside
    [C(1), C(2), C(3), C(4), TOK.box_end],  # no <box>
    [TOK.box_start, C(1), C(2), 0, TOK.box_end],  # the hybrid ambiguity marker
    [TOK.box_end, TOK.ref_end, TOK.null, 12345, TOK.box_start],  # garbage
    [],
])
def test_malformed_fragments_are_skipped(ids):
    assert parse(ids) == []


def test_malformed_box_does_not_hide_the_next_one():
    ids = [*ref(4616), TOK.box_start, C(1), C(2), *box(10, 20, 30, 40), TOK.box_start, C(9)]
    assert parse(ids, wh=(1000, 1000)) == [Detection("cat", box=(10.0, 20.0, 30.0, 40.0))]


def test_ref_labels_multi_token_unclosed_and_empty():
    two_words = [TOK.ref_start, 5562, 220, 4616, TOK.ref_end, *box(1, 2)]
    assert parse(two_words)[0].label == "dog cat"
    unclosed = [TOK.ref_start, 4616, *box(1, 2)]  # a missing </ref> ends the label at <box>
    assert parse(unclosed)[0].label == "cat"
    empty = [TOK.ref_start, TOK.ref_end, *box(1, 2)]
    assert parse(empty, default_label="thing")[0].label == "thing"
    assert parse([TOK.ref_start, 4616]) == []  # truncated label, nothing to label


def test_scripted_hybrid_answer():
    """The golden scripted hybrid run's answer (golden README (d2) scenario A)."""
    d2 = json.loads((golden_dir() / "d_scripted_generation.json").read_text())
    ids = d2["scenarios"]["A_hybrid"]["generated_token_ids"]
    dets = parse(ids, wh=(1000, 1000), default_label="cat")
    assert dets == [
        Detection("cat", box=(100.0, 200.0, 300.0, 400.0)),
        Detection("cat", box=(110.0, 250.0, 310.0, 420.0)),
        Detection("cat", point=(500.0, 600.0)),
        Detection("cat", box=(10.0, 20.0, 30.0, 40.0)),
    ]
