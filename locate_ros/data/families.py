"""The query families of the synthetic grounding data: seeded, procedural, nothing downloaded.

Each family draws one kind of scene and asks one kind of question (a task of processing.TASKS):

  objects    detect       shapes x colours x sizes, limited occlusion; 1-3 categories ("circle", "red circle")
  dense      detect       50-120 small instances of one or two categories, no overlap (the speed stress case)
  referring  ground       one shape by attribute, extreme or relation ("the leftmost red square")
  text       text_ground  a few rendered words; the query is one of them, the answer its tight ink box
  ocr        ocr          every rendered word, one group per word
  layout     detect       a document page; categories title, paragraph, figure, table, list, caption
  gui        gui_box      a window: title bar icons, buttons, fields, checkboxes, toolbar icons
  pointing   point        the centre of every instance of a category; or gui_point: a GUI element's centre

and two curriculum families, named only on purpose (not in FAMILIES, never drawn by default):

  single     detect       1-3 large shapes of distinct categories; one is asked for, never absent. The
                          first lesson of a model trained from scratch (tools/train_demo_model.sh)
  same_shape detect       `objects` scenes of one shape (sometimes two) in 2-4 colours, asked by
                          colour + shape, each asked category beside the same shape in another colour:
                          only the colour tells the answer from the rest (why: see _same_shape)

About NEGATIVE_SHARE of the detect, ground, point and text_ground questions ask for something the
image does not hold; the answer is then a negative group, `<ref>label</ref><box>None</box>`.

Answer order, which the model learns and every decoder reproduces:
  * groups (Targets) in query order (detect: the order of the requested categories), or reading
    order for ocr (lines top to bottom, words left to right);
  * inside a group, boxes or points in column order of their quantised top-left corner (x1, then
    y1; points by x, then y): deterministic, and learnable from the image alone. The first token of
    each box is x1, so the model's choice of the next instance ("the leftmost one not yet written")
    is made on the very coordinate it writes; with raster order (y1 first) it had to find the
    topmost instance and write its x, and teacher-forced x1 stayed at chance (run k0 in
    tools/train_demo_model.sh) while y1 given x1 was within ~60 bins.

Every sample is a pure function of (seed, index, family, size): one numpy Generator seeded with
[seed, index] makes every random choice, in a fixed order. Boxes are tight bounds of the visible
ink, in pixels, X-Y corner order (see scenes.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple, Optional, Sequence, Union

import numpy as np
from PIL import Image

from .scenes import (
    COLORS,
    ICONS,
    RGB,
    SHAPES,
    Box,
    Canvas,
    background,
    button_layer,
    checkbox_layer,
    contrasting_color,
    field_layer,
    figure_layer,
    find_spot,
    grid_cells,
    icon_layer,
    list_layer,
    panel_layer,
    shape_layer,
    table_layer,
    text_bars_layer,
    text_layer,
    tone_color,
)
from .serialize import quantize

Query = Union[str, list[str], None]

FAMILIES = ("objects", "dense", "referring", "text", "ocr", "layout", "gui", "pointing")
FAMILY_WEIGHTS = {"objects": 0.22, "dense": 0.06, "referring": 0.16, "text": 0.1, "ocr": 0.08,
                  "layout": 0.1, "gui": 0.12, "pointing": 0.16, "single": 1.0, "same_shape": 0.11}
CURRICULUM_FAMILIES = ("single", "same_shape")
NEGATIVE_SHARE = 0.12
DEFAULT_SIZE = (160, 320)  # (min, max) of each image side, drawn independently for width and height
DENSE_SIZE = (320, 448)  # dense scenes need room for 120 legible instances
MIN_SIDE = 128  # the smallest side every family can lay out
MIN_BOX_SIDE = 6  # no box is thinner than this, in pixels

LAYOUT_CATEGORIES = ("title", "paragraph", "figure", "table", "list", "caption")
SUPERLATIVES = ("leftmost", "rightmost", "topmost", "bottommost", "largest", "smallest")
RELATIONS = ("left of", "right of", "above", "below")

WORDS = (
    "open", "exit", "stop", "cafe", "hotel", "north", "south", "river", "market", "garden", "bank", "taxi",
    "menu", "pizza", "sale", "today", "fresh", "bread", "coffee", "music", "school", "park", "city", "metro",
    "gate", "floor", "room", "office", "push", "pull", "info", "help", "closed", "welcome", "ticket", "museum",
    "library", "station", "bakery", "street", "avenue", "bridge", "tower", "harbor", "beach", "cinema", "zone",
    "parking", "lobby", "kitchen", "studio", "design", "robot", "camera", "vision", "model", "delta", "alpha",
    "omega", "signal", "route", "lane", "depot", "dock", "cargo", "green", "water", "fire", "light", "north",
    "power", "speed", "world", "video", "radio", "space", "night", "sunday", "friday", "lunch", "dinner",
)
WINDOW_TITLES = ("Settings", "Editor", "Login", "Files", "Profile", "Mail", "Browser", "Console", "Player")
BUTTON_LABELS = ("Save", "Cancel", "OK", "Open", "Apply", "Delete", "Next", "Back", "Help", "Send", "Close",
                 "Submit", "Edit", "Print", "Share", "Login", "Reset", "Copy")
FIELD_LABELS = ("Name", "Email", "Search", "Password", "Address", "City", "Phone", "User", "Title", "Date")
CHECKBOX_LABELS = ("Remember me", "Dark mode", "Notifications", "Auto save", "Show hidden", "Subscribe")
WINDOW_ICONS = ("close", "maximize", "minimize")  # title bar, right to left
TOOLBAR_ICONS = tuple(icon for icon in ICONS if icon not in WINDOW_ICONS)


@dataclass(frozen=True)
class Target:
    """One answer group: `<ref>label</ref>` then its boxes, then its points, in answer order.

    With no boxes and no points it is a negative: `<ref>label</ref><box>None</box>`.
    """

    label: str  # never contains '<'
    boxes: tuple[Box, ...] = ()  # pixels, (x1, y1, x2, y2), x1 < x2, y1 < y2
    points: tuple[tuple[float, float], ...] = ()  # pixels, (x, y)
    regions: tuple[Box, ...] = ()  # for points: the box each point marks (pointing is scored by hits in it)

    @property
    def is_negative(self) -> bool:
        return not self.boxes and not self.points


@dataclass(frozen=True)
class Instance:
    """A shape drawn in a scene (target or distractor) with its visible box."""

    shape: str
    color: str
    box: Box

    @property
    def category(self) -> str:
        return f"{self.color} {self.shape}"


@dataclass
class Sample:
    image: np.ndarray  # HxWx3 uint8 RGB
    family: str
    task: str  # a key of processing.TASKS
    query: Query  # what processing.build_question(task, query) takes
    targets: list[Target]
    index: int
    seed: int
    objects: tuple[Instance, ...] = ()  # every shape of a shape scene (objects, dense, referring, pointing)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.image.shape[1], self.image.shape[0]


class _Drawn(NamedTuple):
    """What a family builder returns; make_sample adds the bookkeeping."""

    image: np.ndarray
    task: str
    query: Query
    targets: list[Target]
    objects: tuple[Instance, ...] = ()


# ---------------------------------------------------------------------------------------------------
# public API


def make_sample(seed: int, index: int, family: Optional[str] = None, size: Optional[tuple[int, int]] = None,
                families: Optional[Sequence[str]] = None, negative_share: float = NEGATIVE_SHARE) -> Sample:
    """Sample `index` of the stream `seed`.

    family: the family to draw; None picks one by FAMILY_WEIGHTS among `families` (default all).
    size: (min, max) of each image side; None is the family's default (DEFAULT_SIZE, DENSE_SIZE).
    negative_share: how often a question asks for something absent (0: never; the draws are the same).
    The family pick is the generator's first draw, made even when `family` is given, so a sample
    is the same whether its family was picked or named.
    """
    rng = np.random.default_rng([seed, index])
    pick = rng.random()  # family_of's draw
    if family is None:
        family = _family_at(pick, tuple(families) if families is not None else FAMILIES)
    elif family not in FAMILIES + CURRICULUM_FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES + CURRICULUM_FAMILIES}")
    lo, hi = size if size is not None else (DENSE_SIZE if family == "dense" else DEFAULT_SIZE)
    if not MIN_SIDE <= lo <= hi:
        raise ValueError(f"size {(lo, hi)}: need {MIN_SIDE} <= min <= max")
    wh = (int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1)))
    drawn = _BUILDERS[family](rng, wh, negative_share)
    return Sample(drawn.image, family, drawn.task, drawn.query, drawn.targets, index, seed, drawn.objects)


def family_of(seed: int, index: int, families: Optional[Sequence[str]] = None) -> str:
    """The family make_sample(seed, index, families=families) draws, without drawing the sample."""
    return _family_at(np.random.default_rng([seed, index]).random(), tuple(families) if families is not None else FAMILIES)


def generate_samples(seed: int, n: int, families: Optional[Sequence[str]] = None,
                     size: Optional[tuple[int, int]] = None) -> Iterator[Sample]:
    """Samples 0..n-1 of the stream `seed`: sample i is make_sample(seed, i, families=families, size=size)."""
    for index in range(n):
        yield make_sample(seed, index, size=size, families=families)


def _family_at(u: float, families: tuple[str, ...]) -> str:
    unknown = [f for f in families if f not in FAMILY_WEIGHTS]
    if unknown or not families:
        raise ValueError(f"unknown families {unknown}; choose among {FAMILIES}")
    cdf = np.cumsum([FAMILY_WEIGHTS[f] for f in families])
    return families[min(int(np.searchsorted(cdf / cdf[-1], u, side="right")), len(families) - 1)]


# ---------------------------------------------------------------------------------------------------
# targets and categories


def _box_target(label: str, boxes: Sequence[Box], size: tuple[int, int]) -> Target:
    w, h = size
    ordered = sorted(boxes, key=lambda b: (quantize(b[0], w), quantize(b[1], h)))
    return Target(label, boxes=tuple(tuple(float(v) for v in b) for b in ordered))


def _point_target(label: str, boxes: Sequence[Box], size: tuple[int, int]) -> Target:
    """The centre of each box, in column order (with the boxes, as `regions`)."""
    w, h = size
    pairs = sorted((((b[0] + b[2]) / 2, (b[1] + b[3]) / 2), tuple(float(v) for v in b)) for b in boxes)
    pairs.sort(key=lambda pb: (quantize(pb[0][0], w), quantize(pb[0][1], h)))
    return Target(label, points=tuple(p for p, _ in pairs), regions=tuple(b for _, b in pairs))


def _pick(rng: np.random.Generator, items: Sequence):
    return items[int(rng.integers(len(items)))]


def _pick_categories(rng: np.random.Generator, present: Sequence[str], absent: Sequence[str], count: int,
                     negative_share: float, conflict: Callable[[str, str], bool] = str.__eq__) -> list[str]:
    """Up to `count` categories to ask for, each absent with probability `negative_share`.

    Categories that `conflict` (would claim the same instance) are never asked together, so every
    instance belongs to at most one answer group. When the present ones run dry an absent one is
    asked instead; with `negative_share` 0 the question asks for fewer (an absent one only when
    nothing present can be asked at all).
    """
    chosen: list[str] = []
    for _ in range(count):
        negative = rng.random() < negative_share
        if negative:
            pools = (absent, present)
        else:
            pools = (present, absent) if negative_share > 0 else (present,)
        for pool in pools:  # the other one when it runs dry
            pool = [c for c in pool if not any(conflict(c, other) for other in chosen)]
            if pool:
                chosen.append(_pick(rng, pool))
                break
    if not chosen and absent:
        chosen.append(_pick(rng, absent))
    return chosen


def _is_a(instance: Instance, category: str) -> bool:
    """Whether the instance belongs to a shape category: "circle" or "red circle"."""
    *color, shape = category.split()
    return instance.shape == shape and (not color or instance.color == color[0])


def colour_rivals(sample: Sample, anywhere: bool = False) -> list[bool]:
    """Per box of the answer (then its points, always False), in answer order: whether its label is a
    colour + shape and the scene holds that shape in another colour whose x1 lies between the box
    before it in its group (or the left edge, for the first) and it, in column order: the instance
    that finding the shape and reading the colour weakly takes next. anywhere=True: wherever that
    other colour lies (every box whose colour tells it from an instance of its shape).

    Why: from the true prefix, v12 (the bundled model then) misses the x1 of 32 of the 43 such boxes on
    120 held-out `objects` scenes (by more than 50 bins; 25 of them on the other colour's x1), and
    of 10 of the other 352 (`tools/fast_gap.py --teacher-forced` reports these boxes apart).
    """
    w = sample.size[0]
    out: list[bool] = []
    for target in sample.targets:
        rivals = other_colour_x1s(sample, target.label)
        before = 0
        for box in target.boxes:
            x1 = quantize(box[0], w)
            out.append(bool(rivals) if anywhere else any(before <= r < x1 for r in rivals))
            before = x1
        out += [False] * len(target.points)
    return out


def other_colour_x1s(sample: Sample, label: str) -> list[int]:
    """The quantised x1 of each instance of the label's shape in another colour, when the label is a
    colour + shape ("red circle"); [] for any other label."""
    words = label.split()
    if not (len(words) == 2 and words[0] in COLORS and words[1] in SHAPES):
        return []
    colour, shape = words
    return [quantize(o.box[0], sample.size[0]) for o in sample.objects if o.shape == shape and o.color != colour]


def _categories_conflict(a: str, b: str) -> bool:
    """Whether one instance could belong to both shape categories ("circle" and "red circle" do)."""
    (*ca, sa), (*cb, sb) = a.split(), b.split()
    return sa == sb and (not ca or not cb or ca == cb)


def _shape_categories(rng: np.random.Generator, instances: Sequence[Instance]) -> tuple[list[str], list[str]]:
    """(present, absent) categories at one granularity, picked at random: shapes or colour + shape.

    The absent colour + shape categories include colours of shapes that are there ("blue circle"
    among red circles): the hard negatives.
    """
    if rng.random() < 0.4:
        universe = list(SHAPES)
    else:
        universe = [f"{c} {s}" for s in SHAPES for c in COLORS]
    present = [c for c in universe if any(_is_a(o, c) for o in instances)]
    return present, [c for c in universe if c not in present]


def _jitter(rng: np.random.Generator, rgb: RGB, amount: int = 12) -> RGB:
    """A slightly varied shade, so the model learns colour names rather than exact RGB values."""
    return tuple(int(v) for v in np.clip(np.array(rgb) + rng.integers(-amount, amount + 1, size=3), 0, 255))


# ---------------------------------------------------------------------------------------------------
# shape scenes: objects, dense, referring, pointing


Spec = tuple[str, str, int]  # shape, colour, side in pixels


def _shape_specs(rng: np.random.Generator, size: tuple[int, int], shapes: int, colors: int, count: int,
                 side_range: tuple[float, float]) -> list[Spec]:
    """`count` shapes drawn from a small palette, so categories repeat and queries have several answers."""
    palette_shapes = rng.choice(SHAPES, size=shapes, replace=False)
    palette_colors = rng.choice(list(COLORS), size=colors, replace=False)
    short = min(size)
    lo = max(14, round(side_range[0] * short))
    hi = max(lo, round(side_range[1] * short))
    return [(str(_pick(rng, palette_shapes)), str(_pick(rng, palette_colors)), int(rng.integers(lo, hi + 1)))
            for _ in range(count)]


def _paint_shapes(rng: np.random.Generator, canvas: Canvas, specs: Sequence[Spec], max_overlap: float,
                  gap: int, min_visible: float = 0.8) -> tuple[Instance, ...]:
    """Paint each shape where it fits (skipping those that find no spot); their visible boxes."""
    taken: list[Box] = []
    painted = []
    for shape, color, side in specs:
        layer = shape_layer(shape, side, _jitter(rng, COLORS[color]))
        spot = find_spot(rng, canvas.size, (side, side), taken, max_overlap, gap)
        if spot is None or not canvas.fits(layer, *spot, min_visible):
            continue
        painted.append((canvas.paint(layer, *spot), shape, color))
        taken.append((spot[0], spot[1], spot[0] + side, spot[1] + side))
    return tuple(Instance(shape, color, canvas.visible_box(i)) for i, shape, color in painted)


def _objects(rng: np.random.Generator, size: tuple[int, int], negative_share: float) -> _Drawn:
    canvas = Canvas(background(rng, size))
    specs = _shape_specs(rng, size, shapes=int(rng.integers(1, 5)), colors=int(rng.integers(1, 4)),
                         count=int(rng.integers(2, 13)), side_range=(0.08, 0.28))
    # some overlap, but never more than a fifth of an object hidden, so every target stays recognisable
    instances = _paint_shapes(rng, canvas, specs, max_overlap=0.25, gap=0)
    present, absent = _shape_categories(rng, instances)
    count = int(rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
    categories = _pick_categories(rng, present, absent, count, negative_share, _categories_conflict)
    targets = [_box_target(c, [o.box for o in instances if _is_a(o, c)], size) for c in categories]
    query = categories[0] if len(categories) == 1 else categories
    return _Drawn(canvas.pixels, "detect", query, targets, instances)


def _single(rng: np.random.Generator, size: tuple[int, int], negative_share: float) -> _Drawn:
    canvas = Canvas(background(rng, size))
    count = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
    short = min(size)
    specs = [(str(s), str(c), int(rng.integers(round(0.2 * short), round(0.45 * short) + 1)))
             for s, c in zip(rng.choice(SHAPES, count), rng.choice(list(COLORS), count, replace=False))]
    instances = _paint_shapes(rng, canvas, specs, max_overlap=0.0, gap=4)
    asked = _pick(rng, instances)
    category = f"{asked.color} {asked.shape}"
    return _Drawn(canvas.pixels, "detect", category, [_box_target(category, [asked.box], size)], instances)


def _same_shape(rng: np.random.Generator, size: tuple[int, int], negative_share: float) -> _Drawn:
    """An `objects` scene where every asked category has a same-shape instance of another colour.

    Why: the boxes that only their colour tells from the instance taken next (`colour_rivals`) are
    the ones the bundled model misses most, and in `objects` they are ~11% of the boxes (43 of 395
    on 120 held-out scenes); here the colour decides every question. With `negative_share` > 0 an
    asked category may be absent (another colour of a shape that is there), as in `objects`.
    """
    canvas = Canvas(background(rng, size))
    specs = _shape_specs(rng, size, shapes=int(rng.choice([1, 2], p=[0.7, 0.3])), colors=int(rng.integers(2, 5)),
                         count=int(rng.integers(3, 11)), side_range=(0.08, 0.28))
    instances = _paint_shapes(rng, canvas, specs, max_overlap=0.25, gap=0)
    shapes = {o.shape for o in instances}
    present = sorted({o.category for o in instances
                      if any(p.shape == o.shape and p.color != o.color for p in instances)})
    absent = [f"{c} {s}" for s in sorted(shapes) for c in COLORS
              if f"{c} {s}" not in {o.category for o in instances}]
    if not present:  # one colour only (from 3 shapes, or those that found a spot): ask for what is there
        present = sorted({o.category for o in instances})
    categories = _pick_categories(rng, present, absent, int(rng.choice([1, 2], p=[0.6, 0.4])), negative_share,
                                  _categories_conflict)
    targets = [_box_target(c, [o.box for o in instances if _is_a(o, c)], size) for c in categories]
    return _Drawn(canvas.pixels, "detect", categories[0] if len(categories) == 1 else categories, targets,
                  instances)


def _dense(rng: np.random.Generator, size: tuple[int, int], negative_share: float) -> _Drawn:
    canvas = Canvas(background(rng, size, style=_pick(rng, ("solid", "gradient", "noise"))))
    wanted = int(rng.integers(50, 121))
    # one instance per grid cell, with ~1.3 cells per instance: the free cells break up the lattice
    cell = max(14, math.isqrt(int(size[0] * size[1] / (1.3 * wanted))))
    cells = grid_cells(rng, size, cell)
    wanted = min(wanted, len(cells))
    distractors = min(int(rng.integers(0, 25)), len(cells) - wanted)
    kinds = [(str(s), str(c)) for s, c in zip(rng.choice(SHAPES, 3, replace=False),
                                              rng.choice(list(COLORS), 3, replace=False))]
    asked = kinds[:int(rng.integers(1, 3))]
    split = int(rng.integers(wanted * 3 // 10, wanted * 7 // 10 + 1))
    assigned = [asked[0] if i < split or len(asked) == 1 else asked[1] for i in range(wanted)]
    assigned += [kinds[2]] * distractors  # a third category the query never names
    painted = []
    for (shape, color), (cx, cy) in zip(assigned, cells):
        side = int(rng.integers(max(10, cell // 2), cell - 3))
        x, y = cx + int(rng.integers(1, cell - side)), cy + int(rng.integers(1, cell - side))
        painted.append((canvas.paint(shape_layer(shape, side, _jitter(rng, COLORS[color])), x, y), shape, color))
    instances = tuple(Instance(s, c, canvas.visible_box(i)) for i, s, c in painted)
    # the three kinds have distinct shapes, so asking by shape alone claims the same instances
    by_shape = rng.random() < 0.3
    categories = [s if by_shape else f"{c} {s}" for s, c in asked]
    targets = [_box_target(cat, [o.box for o in instances if _is_a(o, cat)], size) for cat in categories]
    return _Drawn(canvas.pixels, "detect", categories[0] if len(categories) == 1 else categories, targets,
                  instances)


def _superlative_winner(word: str, boxes: Sequence[Box], size: tuple[int, int]) -> Optional[int]:
    """The index of the box that is `word` (e.g. leftmost) by a clear margin over the runner-up, or None.

    Positions compare box centres and need 6% of the shorter side (at least 8 px); sizes compare
    box areas and need a ratio of 1.5.
    """
    def score(b: Box) -> float:
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        area = math.log((b[2] - b[0]) * (b[3] - b[1]))
        return {"leftmost": -cx, "rightmost": cx, "topmost": -cy, "bottommost": cy,
                "largest": area, "smallest": -area}[word]

    margin = math.log(1.5) if word in ("largest", "smallest") else max(8.0, 0.06 * min(size))
    ranked = sorted(range(len(boxes)), key=lambda i: -score(boxes[i]))
    if len(ranked) >= 2 and score(boxes[ranked[0]]) - score(boxes[ranked[1]]) >= margin:
        return ranked[0]
    return None


def _relation(relation: str, a: Box, b: Box) -> Optional[bool]:
    """Whether box a is `relation` box b: True when a lies entirely on that side of b, False when no
    part of a lies beyond b's edge on that side, None in between (ambiguous: never asked)."""
    x1, y1, x2, y2 = a
    bx1, by1, bx2, by2 = b
    holds, fails = {
        "left of": (x2 <= bx1, x1 >= bx1),
        "right of": (x1 >= bx2, x2 <= bx2),
        "above": (y2 <= by1, y1 >= by1),
        "below": (y1 >= by2, y2 <= by2),
    }[relation]
    return True if holds else False if fails else None


def _referring_expressions(instances: Sequence[Instance], size: tuple[int, int]) -> dict[str, list[tuple[str, int]]]:
    """Every unambiguous expression for the scene, by kind: {kind: [(expression, instance index)]}."""
    universe = list(SHAPES) + [f"{c} {s}" for s in SHAPES for c in COLORS]
    members = {c: [i for i, o in enumerate(instances) if _is_a(o, c)] for c in universe}
    members = {c: m for c, m in members.items() if m}
    found: dict[str, list[tuple[str, int]]] = {"unique": [], "superlative": [], "relation": []}
    for cat, idx in members.items():
        if len(idx) == 1:
            found["unique"].append((f"the {cat}", idx[0]))
            continue
        for word in SUPERLATIVES:
            win = _superlative_winner(word, [instances[i].box for i in idx], size)
            if win is not None:
                found["superlative"].append((f"the {word} {cat}", idx[win]))
    anchors = [(cat, idx[0]) for cat, idx in members.items() if len(idx) == 1]
    for cat, idx in members.items():
        for anchor_cat, a in anchors:
            others = [i for i in idx if i != a]
            for rel in RELATIONS:
                verdicts = [_relation(rel, instances[i].box, instances[a].box) for i in others]
                if None not in verdicts and verdicts.count(True) == 1:
                    found["relation"].append((f"the {cat} {rel} the {anchor_cat}", others[verdicts.index(True)]))
    return found


def _referring(rng: np.random.Generator, size: tuple[int, int], negative_share: float) -> _Drawn:
    canvas = Canvas(background(rng, size))
    specs = _shape_specs(rng, size, shapes=int(rng.integers(2, 4)), colors=int(rng.integers(2, 4)),
                         count=int(rng.integers(4, 10)), side_range=(0.07, 0.3))
    instances = _paint_shapes(rng, canvas, specs, max_overlap=0.0, gap=4)  # apart: relations stay clear
    found = _referring_expressions(instances, size)
    kinds = [k for k in found if found[k]]
    if kinds and rng.random() >= negative_share:
        expression, i = _pick(rng, found[_pick(rng, kinds)])
        target = Target(expression, boxes=(instances[i].box,))
    else:  # the expression names a category the scene lacks
        _, absent = _shape_categories(rng, instances)
        cat = _pick(rng, absent)
        form = int(rng.integers(3)) if found["unique"] else int(rng.integers(2))
        if form == 0:
            expression = f"the {cat}"
        elif form == 1:
            expression = f"the {_pick(rng, SUPERLATIVES)} {cat}"
        else:
            anchor = _pick(rng, found["unique"])[0]  # a present, unique "the yellow square"
            expression = f"the {cat} {_pick(rng, RELATIONS)} {anchor}"
        target = Target(expression)
    return _Drawn(canvas.pixels, "ground", target.label, [target], instances)


def _point_at_shapes(rng: np.random.Generator, size: tuple[int, int], negative_share: float) -> _Drawn:
    canvas = Canvas(background(rng, size))
    specs = _shape_specs(rng, size, shapes=int(rng.integers(1, 5)), colors=int(rng.integers(1, 4)),
                         count=int(rng.integers(2, 11)), side_range=(0.08, 0.25))
    instances = _paint_shapes(rng, canvas, specs, max_overlap=0.1, gap=0)
    present, absent = _shape_categories(rng, instances)
    category = _pick_categories(rng, present, absent, 1, negative_share)[0]
    target = _point_target(category, [o.box for o in instances if _is_a(o, category)], size)
    return _Drawn(canvas.pixels, "point", category, [target], instances)


def _pointing(rng: np.random.Generator, size: tuple[int, int], negative_share: float) -> _Drawn:
    if rng.random() < 0.35:
        pixels, elements = _gui_scene(rng, size)
        description, box = _pick(rng, elements)
        return _Drawn(pixels, "gui_point", description, [_point_target(description, [box], size)])
    return _point_at_shapes(rng, size, negative_share)


# ---------------------------------------------------------------------------------------------------
# words: text, ocr


def _pick_words(rng: np.random.Generator, count: int) -> list[str]:
    """Distinct words (case-insensitively), in lower, Title or UPPER case, some of them numbers."""
    words: list[str] = []
    while len(words) < count:
        if rng.random() < 0.12:
            word = str(int(rng.integers(1, 1000)))
        else:
            word = _pick(rng, WORDS)
            word = _pick(rng, (word, word.title(), word.upper()))
        if word.lower() not in {w.lower() for w in words}:
            words.append(word)
    return words


def _word_scene(rng: np.random.Generator, size: tuple[int, int]) -> tuple[Canvas, list[tuple[str, Box]]]:
    """Lines of words (1-3 per line, one font size and colour per line) on a background they contrast
    with, plus a few shapes that are not text; the words' ink boxes in reading order."""
    w, h = size
    tone = "light" if rng.random() < 0.6 else "dark"
    canvas = Canvas(background(rng, size, style=_pick(rng, ("solid", "gradient", "noise")), tone=tone))
    queue = _pick_words(rng, int(rng.integers(2, 7)))
    placed: list[tuple[str, int]] = []
    y = int(rng.integers(2, h // 6))
    while queue:
        font_size = int(rng.integers(12, min(30, h // 5) + 1))  # 12 px keeps even "one" 6 px tall
        color = contrasting_color(rng, tone)
        x = int(rng.integers(2, w // 3))
        line = []
        for _ in range(int(rng.integers(1, 4))):
            if not queue:
                break
            layer = text_layer(queue[0], font_size, color)
            if not line and x + layer.width > w - 2:
                x = 2  # a line's first word may start at the left edge to fit
            if x + layer.width > w - 2:
                break
            line.append((queue.pop(0), layer, x))
            x += layer.width + int(rng.integers(font_size // 2, 2 * font_size))
        if not line:  # the next word is too wide for the image at this size: leave it out
            queue.pop(0)
            continue
        if y + line[0][1].height > h - 2:
            break
        placed += [(word, canvas.paint(layer, lx, y)) for word, layer, lx in line]
        y += line[0][1].height + int(rng.integers(1, font_size))
    words = [(word, canvas.visible_box(i)) for word, i in placed]
    taken = [box for _, box in words]
    for _ in range(int(rng.integers(0, 3))):
        shape, side = _pick(rng, SHAPES), int(rng.integers(14, 30))
        spot = find_spot(rng, size, (side, side), taken, gap=4)
        if spot is not None:
            canvas.paint(shape_layer(shape, side, _jitter(rng, COLORS[_pick(rng, list(COLORS))])), *spot)
            taken.append((spot[0], spot[1], spot[0] + side, spot[1] + side))
    return canvas, words


def _text(rng: np.random.Generator, size: tuple[int, int], negative_share: float) -> _Drawn:
    canvas, words = _word_scene(rng, size)
    if words and rng.random() >= negative_share:
        word, box = _pick(rng, words)
        target = Target(word, boxes=(box,))
    else:
        shown = {w.lower() for w, _ in words}
        target = Target(_pick(rng, [w for w in WORDS if w not in shown]))
    return _Drawn(canvas.pixels, "text_ground", target.label, [target])


def _ocr(rng: np.random.Generator, size: tuple[int, int], negative_share: float) -> _Drawn:
    canvas, words = _word_scene(rng, size)
    return _Drawn(canvas.pixels, "ocr", None, [Target(word, boxes=(box,)) for word, box in words])


# ---------------------------------------------------------------------------------------------------
# documents: layout


def _caption(rng: np.random.Generator, number: int, width: int, color: RGB) -> Optional[Image.Image]:
    """'Figure 3: fresh bread' at a small size, shortened to fit `width`; None if nothing fits."""
    font_size = int(rng.integers(10, 13))
    words = [f"{_pick(rng, ('Figure', 'Table', 'Fig.'))} {number}:"] + _pick_words(rng, 3)
    while words:
        layer = text_layer(" ".join(words), font_size, color)
        if layer.width <= width:
            return layer
        words.pop()
    return None


def _layout_block(rng: np.random.Generator, kind: str, width: int, max_height: int, ink: RGB) -> Optional[Image.Image]:
    """A layer for one block `width` wide and at most `max_height` tall, or None if none fits."""
    if kind in ("paragraph", "list"):
        pitch, thickness = int(rng.integers(5, 8)) + (2 if kind == "list" else 0), int(rng.integers(2, 4))
        lines = min(int(rng.integers(2, 7)), (max_height - thickness - 1) // pitch + 1)  # height <= max_height
        if lines < 2:
            return None
        if kind == "list":
            return list_layer(rng, width, lines, pitch, thickness, ink)
        return text_bars_layer(rng, width, lines, pitch, thickness, ink, indent=int(rng.integers(0, 2)) * 8)
    if kind == "table":
        row_h = int(rng.integers(7, 11))
        rows = min(int(rng.integers(3, 7)), (max_height - 1) // row_h)
        return table_layer(rng, width, rows, row_h, (90, 90, 90), (215, 215, 225), ink) if rows >= 2 else None
    height = min(int(rng.integers(28, 90)), max_height)  # figure
    figure_width = int(rng.integers(width * 6 // 10, width + 1))
    return figure_layer(rng, figure_width, height) if height >= 20 else None


def _layout(rng: np.random.Generator, size: tuple[int, int], negative_share: float) -> _Drawn:
    w, h = size
    canvas = Canvas(background(rng, size, style=_pick(rng, ("solid", "gradient")), tone="light"))
    ink = contrasting_color(rng, "light")
    margin, gap = int(rng.integers(6, 15)), int(rng.integers(4, 9))
    blocks: list[tuple[str, int]] = []  # (category, object id)
    y = margin
    if rng.random() < 0.75:
        words = [word.title() for word in _pick_words(rng, int(rng.integers(1, 4)))]
        font_size = int(rng.integers(14, 21))
        while len(words) > 1 and text_layer(" ".join(words), font_size, ink).width > w - 2 * margin:
            words.pop()
        title = text_layer(" ".join(words), font_size, ink)
        if title.width <= w - 2 * margin:
            x = margin if rng.random() < 0.5 else (w - title.width) // 2
            blocks.append(("title", canvas.paint(title, x, y)))
            y += title.height + gap
    columns = 2 if w >= 220 and rng.random() < 0.5 else 1
    gutter = int(rng.integers(8, 16))
    column_w = (w - 2 * margin - (columns - 1) * gutter) // columns
    figures = 0
    for column in range(columns):
        x, cy = margin + column * (column_w + gutter), y
        while True:
            kind = str(rng.choice(["paragraph", "figure", "table", "list"], p=[0.45, 0.2, 0.15, 0.2]))
            layer = _layout_block(rng, kind, column_w, h - margin - cy, ink)
            if layer is None:
                break
            blocks.append((kind, canvas.paint(layer, x, cy)))
            cy += layer.height + gap
            if kind in ("figure", "table") and rng.random() < 0.6:
                figures += 1
                caption = _caption(rng, figures, column_w, ink)
                if caption is not None and cy + caption.height <= h - margin:
                    blocks.append(("caption", canvas.paint(caption, x, cy)))
                    cy += caption.height + gap
    present = [c for c in LAYOUT_CATEGORIES if any(kind == c for kind, _ in blocks)]
    absent = [c for c in LAYOUT_CATEGORIES if c not in present]
    categories = _pick_categories(rng, present, absent, int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2])),
                                  negative_share)
    targets = [_box_target(c, [canvas.visible_box(i) for kind, i in blocks if kind == c], size) for c in categories]
    return _Drawn(canvas.pixels, "detect", categories[0] if len(categories) == 1 else categories, targets)


# ---------------------------------------------------------------------------------------------------
# GUI: gui (gui_box) and pointing's gui_point


def _luminance(rgb: RGB) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _gui_scene(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, list[tuple[str, Box]]]:
    """A window on a desktop; its elements as (description, box), each description unique."""
    w, h = size
    canvas = Canvas(background(rng, size))
    margin = int(rng.integers(0, 11))
    body = tone_color(rng, "light")
    canvas.paint(panel_layer(w - 2 * margin, h - 2 * margin, body, (120, 120, 120)), margin, margin)
    bar_h = int(np.clip(round(h * 0.09), 14, 22))
    bar = tuple(int(v) for v in rng.integers(25, 95, size=3))
    canvas.paint(panel_layer(w - 2 * margin, bar_h, bar, bar), margin, margin)
    elements: list[tuple[str, Box]] = []

    def add(description: str, layer, x: int, y: int) -> None:
        elements.append((description, canvas.visible_box(canvas.paint(layer, x, y))))

    tile = bar_h - 4
    tile_color = tuple(min(255, c + 35) for c in bar)
    x = w - margin - 2 - tile
    for icon in WINDOW_ICONS[:_pick(rng, (1, 3))]:
        add(f"the {icon} icon", icon_layer(icon, tile, (250, 250, 250), tile_color), x, margin + 2)
        x -= tile + 3
    title = text_layer(_pick(rng, WINDOW_TITLES), (bar_h - 2) * 4 // 5, (245, 245, 245))  # a line is 1.25 em
    if margin + 5 + title.width < x:
        canvas.paint(title, margin + 5, margin + (bar_h - title.height) // 2)

    pools = {"button": list(BUTTON_LABELS), "field": list(FIELD_LABELS), "checkbox": list(CHECKBOX_LABELS),
             "icon": list(TOOLBAR_ICONS)}
    for pool in pools.values():
        rng.shuffle(pool)
    font_size = int(rng.integers(10, 14))
    label_ink = tuple(int(v) for v in rng.integers(20, 80, size=3))
    left, right, pad = margin + 6, w - margin - 6, int(rng.integers(5, 10))
    y = margin + bar_h + pad
    while True:
        kind = str(rng.choice(["field", "checkbox", "button", "icon"], p=[0.3, 0.2, 0.3, 0.2]))
        if not pools[kind]:
            break
        if kind == "field":
            label = text_layer(pools[kind][0], font_size, label_ink)
            row_h = font_size + 8
            box_w = right - left - label.width - 6
            if y + row_h > h - margin - pad or box_w < 30:
                break
            name = pools[kind].pop(0)
            canvas.paint(label, left, y + (row_h - label.height) // 2)
            box_w = int(rng.integers(box_w // 2, box_w + 1))
            add(f"the {name.lower()} field", field_layer(box_w, row_h, (110, 110, 110)), left + label.width + 6, y)
        elif kind == "checkbox":
            side = font_size + 1
            label = text_layer(pools[kind][0], font_size, label_ink)
            row_h = max(side, label.height)
            if y + row_h > h - margin - pad or left + side + 5 + label.width > right:
                break
            name = pools[kind].pop(0)
            add(f"the {name} checkbox", checkbox_layer(side, bool(rng.random() < 0.5), label_ink), left,
                y + (row_h - side) // 2)
            canvas.paint(label, left + side + 5, y + (row_h - label.height) // 2)
        elif kind == "button":
            accent = rng.random() < 0.5
            fill = _jitter(rng, COLORS[_pick(rng, list(COLORS))], 30) if accent else (225, 225, 228)
            ink = (255, 255, 255) if _luminance(fill) < 150 else (25, 25, 25)
            row = []
            x = left
            for name in pools[kind][:int(rng.integers(1, 4))]:
                layer = button_layer(name, font_size, fill, ink)
                if x + layer.width > right:
                    break
                row.append((name, layer, x))
                x += layer.width + int(rng.integers(4, 12))
            if not row:
                break
            row_h = max(layer.height for _, layer, _ in row)
            if y + row_h > h - margin - pad:
                break
            row_end = row[-1][2] + row[-1][1].width
            shift = right - row_end if rng.random() < 0.4 else 0  # right-aligned, as dialog buttons often are
            for name, layer, bx in row:
                pools[kind].remove(name)
                add(f"the {name} button", layer, bx + shift, y)
        else:
            side = font_size + 6
            row_h = side
            if y + row_h > h - margin - pad:
                break
            x = left
            for icon in list(pools[kind][:int(rng.integers(2, 5))]):
                if x + side > right:
                    break
                pools[kind].remove(icon)
                add(f"the {icon} icon", icon_layer(icon, side, label_ink, tuple(min(255, c + 25) for c in body)), x, y)
                x += side + 4
        y += row_h + pad
    return canvas.pixels, elements


def _gui(rng: np.random.Generator, size: tuple[int, int], negative_share: float) -> _Drawn:
    pixels, elements = _gui_scene(rng, size)
    description, box = _pick(rng, elements)
    return _Drawn(pixels, "gui_box", description, [Target(description, boxes=(box,))])


_BUILDERS: dict[str, Callable[[np.random.Generator, tuple[int, int], float], _Drawn]] = {
    "objects": _objects,
    "single": _single,
    "same_shape": _same_shape,
    "dense": _dense,
    "referring": _referring,
    "text": _text,
    "ocr": _ocr,
    "layout": _layout,
    "gui": _gui,
    "pointing": _pointing,
}
