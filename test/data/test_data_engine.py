"""The synthetic data engine: determinism, valid samples per family, unambiguous referring
expressions, answer serialisation against the reference parsers and a real tokenizer, COCO export."""
import json
import re

import numpy as np
import pytest
from PIL import Image

from locate_ros.data import (
    CURRICULUM_FAMILIES,
    FAMILIES,
    Sample,
    Target,
    answer_items,
    answer_text,
    export_coco,
    generate_samples,
    make_sample,
    quantize,
    serialize_answer,
)
from locate_ros.data.families import NEGATIVE_SHARE, Instance, colour_rivals, family_of
from locate_ros.decoding.parse import parse_detections, parse_eval_prediction
from locate_ros.model.config import LocateAnythingConfig
from locate_ros.processing import TASKS, build_question
from locate_ros.testing.tiny import golden_dir, write_tokenizer

SEEDS = range(5)


def one_per_family(seed: int) -> list[Sample]:
    return [make_sample(seed, i, family) for i, family in enumerate(FAMILIES)]


def assert_same(a: Sample, b: Sample) -> None:
    assert a.image.tobytes() == b.image.tobytes()
    assert (a.family, a.task, a.query, a.targets, a.objects) == (b.family, b.task, b.query, b.targets, b.objects)


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_and_index_give_the_same_sample():
    for a, b in zip(one_per_family(11), one_per_family(11)):
        assert_same(a, b)


def test_picked_family_equals_named_family_and_seeds_differ():
    picked = list(generate_samples(3, 6))
    for s in picked:
        assert_same(s, make_sample(3, s.index, s.family))
    other = list(generate_samples(4, 6))
    assert all(a.image.tobytes() != b.image.tobytes() for a, b in zip(picked, other))


def test_family_of_names_the_family_the_sample_draws():
    for families in (None, ("objects", "dense")):
        for i in range(40):
            assert family_of(5, i, families) == make_sample(5, i, families=families).family


def test_generate_samples_respects_the_family_subset():
    assert {s.family for s in generate_samples(0, 12, families=["text", "gui"])} <= {"text", "gui"}
    with pytest.raises(ValueError):
        make_sample(0, 0, "no such family")


@pytest.mark.parametrize("family", ["objects", "referring", "text", "layout", "pointing"])
def test_negative_share_sets_how_often_the_answer_is_none(family):
    def negative_groups(share: float) -> float:
        samples = [make_sample(21, i, family, size=(128, 192), negative_share=share) for i in range(60)]
        groups = [t for s in samples for t in s.targets]
        return sum(t.is_negative for t in groups) / len(groups)

    assert negative_groups(0.0) == 0.0
    assert 0.0 < negative_groups(NEGATIVE_SHARE) < negative_groups(0.5) < 1.0
    # the same scene whatever the share: only the question changes
    a, b = (make_sample(21, 0, family, size=(128, 192), negative_share=share) for share in (0.0, 1.0))
    assert np.array_equal(a.image, b.image)


# --- validity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES + CURRICULUM_FAMILIES)
def test_every_family_makes_valid_samples(family):
    for seed in SEEDS:
        s = make_sample(seed, 100 + seed, family)
        h, w = s.image.shape[:2]
        assert s.image.dtype == np.uint8 and s.image.shape == (h, w, 3)
        assert s.family == family and s.task in TASKS
        build_question(s.task, s.query)  # raises on a query the task does not take
        assert s.targets and all("<" not in t.label for t in s.targets)
        for t in s.targets:
            for x1, y1, x2, y2 in t.boxes:
                assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
                assert x2 - x1 >= 6 and y2 - y1 >= 6
            for x, y in t.points:
                assert 0 <= x <= w and 0 <= y <= h
            corners = [quantize(b[0], w) * 2000 + quantize(b[1], h) for b in t.boxes]
            corners += [quantize(p[0], w) * 2000 + quantize(p[1], h) for p in t.points]
            assert corners == sorted(corners), "boxes and points go in column order (x, then y)"
        if s.task == "detect":
            asked = [s.query] if isinstance(s.query, str) else s.query
            assert [t.label for t in s.targets] == asked, "one group per requested category, in query order"


def test_the_curriculum_family_asks_for_one_large_shape_that_is_there_and_is_never_drawn_by_default():
    for i in range(20):
        s = make_sample(7, i, "single", size=(128, 160))
        (target,) = s.targets
        (box,) = target.boxes
        assert [o.box for o in s.objects if f"{o.color} {o.shape}" == s.query] == [box]
        assert min(box[2] - box[0], box[3] - box[1]) >= 0.15 * min(s.size)
        assert_same(s, make_sample(7, i, "single", size=(128, 160)))
    assert "single" not in {make_sample(7, i).family for i in range(200)}


def test_the_same_shape_family_asks_for_what_only_its_colour_tells_apart():
    rivals_asked = 0
    for i in range(40):
        s = make_sample(7, i, "same_shape", size=(144, 256), negative_share=0)
        assert s.targets and all(t.boxes for t in s.targets)  # negative_share 0: only what is there
        for t in s.targets:
            colour, shape = t.label.split()  # always colour + shape
            assert sorted(o.box for o in s.objects if o.category == t.label) == sorted(t.boxes)
            rivals_asked += any(o.shape == shape and o.color != colour for o in s.objects)
        assert len({o.shape for o in s.objects}) <= 2
        assert_same(s, make_sample(7, i, "same_shape", size=(144, 256), negative_share=0))
    n = sum(len(make_sample(7, i, "same_shape", size=(144, 256), negative_share=0).targets) for i in range(40))
    assert rivals_asked >= 0.8 * n  # a scene that came out in one colour (~1 in 10) asks for what is there
    assert "same_shape" not in {make_sample(7, i).family for i in range(200)}


def test_colour_rivals_marks_the_boxes_whose_shape_in_another_colour_would_come_next():
    def inst(shape, colour, x1):
        return Instance(shape, colour, (x1, 10.0, x1 + 20.0, 30.0))

    red = [inst("circle", "red", x) for x in (10.0, 100.0, 150.0)]
    blue = [inst("circle", "blue", x) for x in (5.0, 50.0, 180.0)]
    square = inst("square", "blue", 60.0)

    def scene(*targets):
        return Sample(np.zeros((40, 200, 3), np.uint8), "objects", "detect", [t.label for t in targets], list(targets),
                      0, 0, (*red, *blue, square))

    reds = Target("red circle", boxes=tuple(o.box for o in red))
    # a blue circle before the first red one (x 5 < 10); one between the first and the second (50); none
    # between the second and the third (blue at 180 is after)
    assert colour_rivals(scene(reds)) == [True, True, False]
    assert colour_rivals(scene(reds), anywhere=True) == [True, True, True]  # blue circles are there
    squares = Target("blue square", boxes=(square.box,))  # no other square
    circles = Target("circle", boxes=tuple(sorted(o.box for o in red + blue)))  # by shape alone: colour never decides
    assert colour_rivals(scene(squares, circles)) == colour_rivals(scene(squares, circles), anywhere=True) == [False] * 7
    assert colour_rivals(scene(Target("red circle"))) == []  # a negative has no box


def test_dense_scenes_are_crowded_without_overlap():
    for seed in SEEDS:
        s = make_sample(seed, 0, "dense")
        boxes = np.array([b for t in s.targets for b in t.boxes])
        assert len(boxes) >= 50
        ix = np.minimum(boxes[:, None, 2], boxes[None, :, 2]) - np.maximum(boxes[:, None, 0], boxes[None, :, 0])
        iy = np.minimum(boxes[:, None, 3], boxes[None, :, 3]) - np.maximum(boxes[:, None, 1], boxes[None, :, 1])
        overlap = (ix > 0) & (iy > 0)
        assert not overlap[~np.eye(len(boxes), dtype=bool)].any()


_EXPRESSION = re.compile(
    r"the (?:(?P<extreme>leftmost|rightmost|topmost|bottommost|largest|smallest) )?(?P<category>(?:\w+ )?\w+)"
    r"(?: (?P<relation>left of|right of|above|below) the (?P<anchor>(?:\w+ )?\w+))?")


def _members(objects, category):
    *color, shape = category.split()
    return [o for o in objects if o.shape == shape and (not color or o.color == color[0])]


def _extreme_score(word, b):
    cx, cy, area = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, (b[2] - b[0]) * (b[3] - b[1])
    return {"leftmost": -cx, "rightmost": cx, "topmost": -cy, "bottommost": cy, "largest": area, "smallest": -area}[word]


def _entirely(relation, a, b):
    return {"left of": a[2] <= b[0], "right of": a[0] >= b[2], "above": a[3] <= b[1], "below": a[1] >= b[3]}[relation]


def test_referring_expressions_pick_exactly_their_target():
    """Re-evaluate each expression on the scene's shapes, independently of the generator's code."""
    seen = set()
    for index in range(60):
        s = make_sample(5, index, "referring")
        (target,) = s.targets
        m = _EXPRESSION.fullmatch(s.query)
        assert m and target.label == s.query, s.query
        members = _members(s.objects, m["category"])
        if target.is_negative:
            assert not members, f"{s.query}: the category is in the scene"
            seen.add("negative")
            continue
        (box,) = target.boxes
        if m["relation"]:
            (anchor,) = _members(s.objects, m["anchor"])
            chosen = [o.box for o in members if o is not anchor and _entirely(m["relation"], o.box, anchor.box)]
            seen.add("relation")
        elif m["extreme"]:
            scores = sorted((_extreme_score(m["extreme"], o.box), o.box) for o in members)
            chosen = [scores[-1][1]]
            # and visibly so: 4 px apart, or 20% larger by area
            best, runner_up = scores[-1][0], scores[-2][0]
            if m["extreme"] in ("largest", "smallest"):  # scores are +-area
                small, large = sorted((abs(best), abs(runner_up)))
                assert large >= 1.2 * small, s.query
            else:
                assert best - runner_up >= 4, s.query
            seen.add("extreme")
        else:
            chosen = [o.box for o in members]
            seen.add("unique")
        assert chosen == [box], s.query
    assert seen == {"negative", "relation", "extreme", "unique"}


# --- serialisation ----------------------------------------------------------------------------


def test_quantize_rounds_and_clamps():
    assert [quantize(v, 200) for v in (-3, 0, 0.1, 0.11, 99.9, 200, 250)] == [0, 0, 0, 1, 500, 1000, 1000]


def _expected_by_label(s: Sample) -> dict[str, list[list[float]]]:
    out: dict[str, list[list[float]]] = {}
    for t in s.targets:
        for item in list(t.boxes) + list(t.points):
            out.setdefault(t.label, []).append(list(item))
    return out


def _close(got, want, size, clamp_to):
    """Within quantisation error: one part in 2000 of the side, after the parser's clamping."""
    sides = size * (len(want) // 2)
    return all(abs(g - min(max(v, 0), c)) <= s / 2000 + 1e-6
               for g, v, s, c in zip(got, want, sides, clamp_to * (len(want) // 2)))


def test_answer_text_round_trips_through_the_reference_eval_parser():
    samples = [s for seed in SEEDS for s in one_per_family(seed)]
    for s in samples:
        w, h = s.size
        text = answer_text(answer_items(s))
        assert text.endswith("<|im_end|>")
        for t in s.targets:
            if t.is_negative:
                assert f"<ref>{t.label}</ref><box>None</box>" in text
        parsed = parse_eval_prediction(text, w, h)
        want = _expected_by_label(s)
        assert parsed.keys() == want.keys()
        for label, items in want.items():
            assert len(parsed[label]) == len(items)
            assert all(_close(g, v, (w, h), (w - 1, h - 1)) for g, v in zip(parsed[label], items)), label


@pytest.fixture(scope="module")
def tokenizer_and_ids(tmp_path_factory):
    from tokenizers import Tokenizer

    d = tmp_path_factory.mktemp("tok")
    write_tokenizer(d)  # the golden tiny checkpoint's tokenizer; no weights needed
    tokens = LocateAnythingConfig.from_json(golden_dir() / "tiny" / "config.json").tokens
    return Tokenizer.from_file(str(d / "tokenizer.json")), tokens


def test_serialized_answer_blocks_and_token_parser(tokenizer_and_ids):
    tok, t = tokenizer_and_ids

    def encode(text):
        return tok.encode(text, add_special_tokens=False).ids

    for s in [s for seed in SEEDS for s in one_per_family(seed)]:
        items = answer_items(s)
        ser = serialize_answer(items, t, encode)
        assert ser.ids == encode(answer_text(items)), "the stream is the tokenized answer text"
        assert t.null not in ser.ids and ser.ids[-1] == t.im_end
        assert all(len(block) == 6 for _, block in ser.blocks)
        # stripping the padding, the blocks tile the stream exactly, each at its start index
        rebuilt = []
        for start, block in ser.blocks:
            assert start == len(rebuilt)
            rebuilt += [i for i in block if i != t.null]
        assert rebuilt == ser.ids
        assert ser.blocks[-1][1] == [t.im_end] + [t.null] * 5
        w, h = s.size
        got = {}
        for d in parse_detections(ser.ids, None, (w, h), t, tok.decode):
            got.setdefault(d.label, []).append(list(d.box or d.point))
        want = _expected_by_label(s)
        assert got.keys() == want.keys()
        for label, expected in want.items():
            assert len(got[label]) == len(expected)
            assert all(_close(g, v, (w, h), (w, h)) for g, v in zip(got[label], expected)), label


def test_block_shapes_of_each_item_kind(tokenizer_and_ids):
    tok, t = tokenizer_and_ids
    label = "the leftmost red square left of the blue circle"
    items = [("ref", label), ("box", (1, 2, 3, 4)), ("point", (5, 6)), ("ref", "star"), ("none",)]
    ser = serialize_answer(items, t, lambda x: tok.encode(x, add_special_tokens=False).ids)
    n = len(tok.encode(label, add_special_tokens=False).ids) + 2
    blocks = [b for _, b in ser.blocks]
    label_blocks = -(-n // 6)
    assert label_blocks > 1
    C = t.coord_token
    assert blocks[label_blocks:] == [
        [t.box_start, C(1), C(2), C(3), C(4), t.box_end],
        [t.box_start, C(5), C(6), t.box_end, t.null, t.null],
        [t.ref_start, *tok.encode("star", add_special_tokens=False).ids, t.ref_end]
        + [t.null] * (4 - len(tok.encode("star", add_special_tokens=False).ids)),
        [t.box_start, t.none, t.box_end, t.null, t.null, t.null],
        [t.im_end] + [t.null] * 5,
    ]
    assert answer_text(items).startswith(f"<ref>{label}</ref><box><1><2><3><4></box><box><5><6></box>")


# --- COCO -------------------------------------------------------------------------------------


def test_coco_export_round_trip(tmp_path):
    samples = one_per_family(2) + [Sample(np.zeros((8, 8, 3), np.uint8), "objects", "detect", "star",
                                          [Target("star")], 99, 2)]
    path = export_coco(samples, tmp_path / "a")
    data = json.loads(path.read_text())
    assert len(data["images"]) == len(samples)
    assert len(data["annotations"]) == sum(len(t.boxes) + len(t.points) for s in samples for t in s.targets)
    names = {c["id"]: c["name"] for c in data["categories"]}
    anns = iter(data["annotations"])
    for s, img in zip(samples, data["images"]):
        assert (img["id"], img["width"], img["height"], img["task"], img["query"]) == (s.index, *s.size, s.task,
                                                                                        s.query)
        assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / "images" / img["file_name"])), s.image)
        assert sorted(names[i] for i in img["neg_category_ids"]) == sorted(t.label for t in s.targets if t.is_negative)
        for t in s.targets:
            for x1, y1, x2, y2 in t.boxes:
                a = next(anns)
                assert (a["image_id"], names[a["category_id"]]) == (s.index, t.label)
                assert a["bbox"] == [x1, y1, x2 - x1, y2 - y1] and a["iscrowd"] == 0
            for x, y in t.points:
                a = next(anns)
                assert a["point"] == [x, y] and "bbox" not in a
    assert export_coco(samples, tmp_path / "b").read_bytes() == path.read_bytes()
