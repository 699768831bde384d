"""Drawing primitives and layout helpers for the synthetic scenes (PIL ImageDraw + numpy).

Every object is drawn on its own RGBA layer and composited onto a `Canvas`, which remembers which
object is on top at each pixel. Boxes are read back from those pixels (the tight bounds of the
object's visible ink), so an annotation always agrees with the image, whatever anti-aliasing,
glyph shapes or partial occlusion did to it.

Boxes are (x1, y1, x2, y2) in continuous pixel coordinates: ink in pixel columns a..b gives
x1 = a and x2 = b + 1, as COCO's [x, y, w, h] where w counts pixels.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Box = tuple[float, float, float, float]
RGB = tuple[int, int, int]

# Saturated, well separated hues: each stays nameable on both the light and the dark backgrounds.
COLORS: dict[str, RGB] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (245, 215, 35),
    "green": (40, 165, 65),
    "cyan": (30, 195, 215),
    "blue": (40, 80, 225),
    "purple": (140, 60, 195),
    "pink": (250, 125, 200),
}

SHAPES = ("circle", "square", "triangle", "star", "hexagon", "diamond", "cross", "ring", "heart")

ICONS = ("close", "minimize", "maximize", "search", "settings", "home", "delete", "add", "menu")

BACKGROUND_STYLES = ("solid", "gradient", "noise", "clutter")

SUPERSAMPLE = 4  # shapes and icons are drawn 4x larger and box-filtered down: anti-aliased edges
TRANSPARENT = (0, 0, 0, 0)


def _unit(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The polygon scaled to fill the unit square exactly, so every shape spans its whole layer."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, y0, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    return [((x - x0) / w, (y - y0) / h) for x, y in points]


def _star(points: int = 5, inner: float = 0.4) -> list[tuple[float, float]]:
    """Vertices alternating between the outer and the inner radius, first tip pointing up."""
    vertices = []
    for k in range(2 * points):
        r, a = (1.0 if k % 2 == 0 else inner), math.pi * k / points
        vertices.append((r * math.sin(a), -r * math.cos(a)))
    return vertices


_POLYGONS = {
    "square": _unit([(0, 0), (1, 0), (1, 1), (0, 1)]),
    "triangle": _unit([(0.5, 0), (1, 1), (0, 1)]),
    "diamond": _unit([(0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5)]),
    "hexagon": _unit([(0.25, 0), (0.75, 0), (1, 0.5), (0.75, 1), (0.25, 1), (0, 0.5)]),
    "star": _unit(_star()),
    "cross": _unit([(1, 0), (2, 0), (2, 1), (3, 1), (3, 2), (2, 2), (2, 3), (1, 3), (1, 2), (0, 2), (0, 1), (1, 1)]),
}


# ---------------------------------------------------------------------------------------------------
# canvas


class Canvas:
    """An RGB image being composed, plus the id of the topmost object at every pixel."""

    INK_ALPHA = 128  # a pixel is an object's ink where its layer covers at least half of it

    def __init__(self, pixels: np.ndarray):
        self.pixels = pixels  # HxWx3 uint8, painted in place
        self.owner = np.full(pixels.shape[:2], -1, np.int32)
        self._regions: list[tuple[int, int, int, int]] = []  # x, y, w, h of each painted layer
        self._ink_px: list[int] = []  # ink pixels each layer had when painted
        self._visible_px: list[int] = []  # ink pixels still on top

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    def _ink(self, layer: Image.Image, x: int, y: int) -> np.ndarray:
        w, h = layer.size
        if x < 0 or y < 0 or x + w > self.size[0] or y + h > self.size[1]:
            raise ValueError(f"layer {w}x{h} at ({x}, {y}) leaves the {self.size[0]}x{self.size[1]} canvas")
        return np.asarray(layer.getchannel("A")) >= self.INK_ALPHA

    def fits(self, layer: Image.Image, x: int, y: int, min_visible: float) -> bool:
        """Whether painting `layer` at (x, y) keeps min_visible of every earlier object's ink on top."""
        ink = self._ink(layer, x, y)
        below = self.owner[y:y + ink.shape[0], x:x + ink.shape[1]][ink]
        ids, covered = np.unique(below[below >= 0], return_counts=True)
        return all(self._visible_px[i] - c >= min_visible * self._ink_px[i] for i, c in zip(ids, covered))

    def paint(self, layer: Image.Image, x: int, y: int) -> int:
        """Alpha-composite `layer` with its top-left corner at (x, y); returns the new object's id."""
        ink = self._ink(layer, x, y)
        h, w = ink.shape
        rgba = np.asarray(layer, dtype=np.float32)
        alpha = rgba[..., 3:] / 255
        region = self.pixels[y:y + h, x:x + w]
        region[...] = np.rint(region * (1 - alpha) + rgba[..., :3] * alpha).astype(np.uint8)
        owner = self.owner[y:y + h, x:x + w]
        ids, covered = np.unique(owner[ink & (owner >= 0)], return_counts=True)
        for i, c in zip(ids, covered):
            self._visible_px[i] -= int(c)
        new_id = len(self._regions)
        owner[ink] = new_id
        self._regions.append((x, y, w, h))
        self._ink_px.append(int(ink.sum()))
        self._visible_px.append(int(ink.sum()))
        return new_id

    def visible_box(self, object_id: int) -> Optional[Box]:
        """Tight bounds of the object's ink that is still on top, or None if none is."""
        x, y, w, h = self._regions[object_id]
        ys, xs = np.nonzero(self.owner[y:y + h, x:x + w] == object_id)
        if xs.size == 0:
            return None
        return float(x + xs.min()), float(y + ys.min()), float(x + xs.max() + 1), float(y + ys.max() + 1)


# ---------------------------------------------------------------------------------------------------
# backgrounds


def tone_color(rng: np.random.Generator, tone: str) -> RGB:
    """A low-saturation colour that every entry of COLORS stands out from: light gray-ish or dark gray-ish."""
    level = rng.integers(165, 246) if tone == "light" else rng.integers(25, 61)
    return tuple(int(v) for v in np.clip(level + rng.integers(-12, 13, size=3), 0, 255))


def contrasting_color(rng: np.random.Generator, tone: str) -> RGB:
    """An ink colour readable on a background of `tone` (text, GUI labels)."""
    lo, hi = (0, 90) if tone == "light" else (190, 256)
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))


def background(rng: np.random.Generator, size: tuple[int, int], style: Optional[str] = None,
               tone: Optional[str] = None) -> np.ndarray:
    """An HxWx3 uint8 background: solid, linear gradient, smooth blotchy noise, or clutter.

    Clutter is thin gray lines and specks: texture the model must learn to ignore, never a shape
    from SHAPES, so it cannot be mistaken for a target.
    """
    w, h = size
    style = style or BACKGROUND_STYLES[rng.integers(len(BACKGROUND_STYLES))]
    tone = tone or ("light" if rng.random() < 0.75 else "dark")
    a, b = np.array(tone_color(rng, tone), np.float32), np.array(tone_color(rng, tone), np.float32)
    if style == "gradient":
        angle = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = xx * math.cos(angle) + yy * math.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
        pixels = a * (1 - t[..., None]) + b * t[..., None]
    elif style == "noise":
        grid = np.stack([tone_color(rng, tone) for _ in range(16)]).astype(np.uint8).reshape(4, 4, 3)
        pixels = np.asarray(Image.fromarray(grid).resize((w, h), Image.BILINEAR), np.float32)
        pixels = pixels + rng.normal(0, rng.uniform(3, 9), size=(h, w, 1))
    else:
        pixels = np.broadcast_to(a, (h, w, 3))
    pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    if style == "clutter":
        pixels = _add_clutter(rng, pixels, tone)
    return np.ascontiguousarray(pixels)


def _add_clutter(rng: np.random.Generator, pixels: np.ndarray, tone: str) -> np.ndarray:
    img = Image.fromarray(pixels)
    draw = ImageDraw.Draw(img)
    w, h = img.size
    for _ in range(int(rng.integers(4, 14))):
        gray = int(rng.integers(90, 150) if tone == "light" else rng.integers(80, 130))
        x, y = rng.integers(0, w), rng.integers(0, h)
        dx, dy = rng.integers(-w // 3, w // 3 + 1), rng.integers(-h // 3, h // 3 + 1)
        draw.line([(int(x), int(y)), (int(x + dx), int(y + dy))], fill=(gray,) * 3, width=1)
    for _ in range(int(rng.integers(10, 40))):
        gray = int(rng.integers(70, 160))
        x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(0, 2))
        draw.rectangle([x, y, x + r, y + r], fill=(gray,) * 3)
    return np.asarray(img).copy()


# ---------------------------------------------------------------------------------------------------
# placement


def find_spot(rng: np.random.Generator, canvas_size: tuple[int, int], item_size: tuple[int, int],
              taken: Sequence[Box], max_overlap: float = 0.0, gap: int = 2, margin: int = 1,
              tries: int = 64) -> Optional[tuple[int, int]]:
    """A random top-left corner for an item inside the canvas, or None if `tries` candidates all fail.

    A candidate fails when its box, against any taken box grown by `gap`, overlaps by more than
    max_overlap of the smaller box's area. The candidates are drawn in one batch, so the rng
    advances the same way whatever the outcome.
    """
    (cw, ch), (w, h) = canvas_size, item_size
    if w + 2 * margin > cw or h + 2 * margin > ch:
        return None
    xs = rng.integers(margin, cw - margin - w + 1, size=tries)
    ys = rng.integers(margin, ch - margin - h + 1, size=tries)
    if not taken:
        return int(xs[0]), int(ys[0])
    t = np.asarray(taken, np.float64)
    ix = np.minimum(xs[:, None] + w, t[:, 2] + gap) - np.maximum(xs[:, None], t[:, 0] - gap)
    iy = np.minimum(ys[:, None] + h, t[:, 3] + gap) - np.maximum(ys[:, None], t[:, 1] - gap)
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    smaller = np.minimum(w * h, (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1]))
    ok = np.flatnonzero((inter <= max_overlap * smaller).all(axis=1))
    return (int(xs[ok[0]]), int(ys[ok[0]])) if ok.size else None


def grid_cells(rng: np.random.Generator, canvas_size: tuple[int, int], cell: int) -> list[tuple[int, int]]:
    """Top-left corners of every cell of a `cell`-pixel grid centred on the canvas, in random order.

    Dense scenes put one object per cell: guaranteed counts with no overlap, where rejection
    sampling slows down and gives up as the canvas fills.
    """
    cw, ch = canvas_size
    cols, rows = cw // cell, ch // cell
    x0, y0 = (cw - cols * cell) // 2, (ch - rows * cell) // 2
    cells = [(x0 + c * cell, y0 + r * cell) for r in range(rows) for c in range(cols)]
    return [cells[i] for i in rng.permutation(len(cells))]


# ---------------------------------------------------------------------------------------------------
# layers: shapes, icons, text


def _new_layer(w: int, h: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    layer = Image.new("RGBA", (w, h), TRANSPARENT)
    return layer, ImageDraw.Draw(layer)


def shape_layer(shape: str, side: int, color: RGB) -> Image.Image:
    """A side x side layer holding `shape` in `color`, touching all four edges."""
    big = side * SUPERSAMPLE
    e = big - 1  # ImageDraw coordinates are inclusive
    layer, draw = _new_layer(big, big)
    ink = (*color, 255)
    if shape in ("circle", "ring"):
        draw.ellipse((0, 0, e, e), fill=ink)
        if shape == "ring":  # ImageDraw writes rather than blends, so a transparent fill cuts the hole
            t = round(big * 0.28)
            draw.ellipse((t, t, e - t, e - t), fill=TRANSPARENT)
    elif shape == "heart":
        r = big * 0.27
        draw.ellipse((0, 0, 2 * r, 2 * r), fill=ink)
        draw.ellipse((e - 2 * r, 0, e, 2 * r), fill=ink)
        draw.polygon([(big * 0.02, r * 1.35), (e - big * 0.02, r * 1.35), (e / 2, e)], fill=ink)
    else:
        draw.polygon([(x * e, y * e) for x, y in _POLYGONS[shape]], fill=ink)
    return layer.resize((side, side), Image.BOX)


def icon_layer(icon: str, side: int, glyph: RGB, tile: RGB) -> Image.Image:
    """A clickable icon: a rounded `tile` square holding a simple glyph; its box is the tile."""
    big = side * SUPERSAMPLE
    e, s = big - 1, big / 16  # glyphs are laid out on a 16-unit grid
    layer, draw = _new_layer(big, big)
    draw.rounded_rectangle((0, 0, e, e), radius=round(3 * s), fill=(*tile, 255))
    ink, lw = (*glyph, 255), max(1, round(1.6 * s))
    if icon == "close":
        draw.line([(4 * s, 4 * s), (12 * s, 12 * s)], fill=ink, width=lw)
        draw.line([(12 * s, 4 * s), (4 * s, 12 * s)], fill=ink, width=lw)
    elif icon == "minimize":
        draw.rectangle((4 * s, 11 * s, 12 * s, 11 * s + lw), fill=ink)
    elif icon == "maximize":
        draw.rectangle((4 * s, 4 * s, 12 * s, 12 * s), outline=ink, width=lw)
    elif icon == "search":
        draw.ellipse((3 * s, 3 * s, 10 * s, 10 * s), outline=ink, width=lw)
        draw.line([(9 * s, 9 * s), (13 * s, 13 * s)], fill=ink, width=lw)
    elif icon == "settings":
        teeth = []  # 8 teeth: the rim alternates between radius 6 and 4.5
        for k in range(16):
            r, a = (6 if k % 2 == 0 else 4.5) * s, math.pi * k / 8
            teeth.append((8 * s + r * math.cos(a), 8 * s + r * math.sin(a)))
        draw.polygon(teeth, fill=ink)
        draw.ellipse((6 * s, 6 * s, 10 * s, 10 * s), fill=(*tile, 255))
    elif icon == "home":
        draw.polygon([(8 * s, 3 * s), (13 * s, 8 * s), (3 * s, 8 * s)], fill=ink)
        draw.rectangle((5 * s, 8 * s, 11 * s, 13 * s), fill=ink)
    elif icon == "delete":
        draw.rectangle((4 * s, 4 * s, 12 * s, 5 * s), fill=ink)
        draw.polygon([(5 * s, 6 * s), (11 * s, 6 * s), (10 * s, 13 * s), (6 * s, 13 * s)], fill=ink)
    elif icon == "add":
        draw.rectangle((7 * s, 3 * s, 9 * s, 13 * s), fill=ink)
        draw.rectangle((3 * s, 7 * s, 13 * s, 9 * s), fill=ink)
    elif icon == "menu":
        for y in (4, 7.5, 11):
            draw.rectangle((3 * s, y * s, 13 * s, (y + 1.5) * s), fill=ink)
    else:
        raise ValueError(f"unknown icon {icon!r}")
    return layer.resize((side, side), Image.BOX)


@lru_cache(maxsize=None)
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled FreeType font (Pillow >= 10.1): the same glyphs on every machine, no files."""
    return ImageFont.load_default(size=size)


def text_layer(text: str, size: int, color: RGB) -> Image.Image:
    """`text` on a layer one font line high (ascender to descender) plus a 1 px border.

    Every layer of one font size puts the baseline at the same height, so words painted at the
    same y share a baseline; the tight ink box is read back from the canvas.
    """
    ascent, descent = font(size).getmetrics()
    left, _, right, _ = font(size).getbbox(text)
    layer, draw = _new_layer(right - left + 2, ascent + descent + 2)
    draw.text((1 - left, 1), text, font=font(size), fill=(*color, 255))
    return layer


def button_layer(label: str, font_size: int, fill: RGB, text_color: RGB) -> Image.Image:
    """A rounded button around `label`; its box is the button outline."""
    left, top, right, bottom = font(font_size).getbbox(label)
    pad_x, pad_y = font_size // 2 + 2, font_size // 4 + 2
    w, h = right - left + 2 * pad_x, bottom - top + 2 * pad_y
    layer, draw = _new_layer(w, h)
    border = tuple(max(0, c - 60) for c in fill)
    draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=min(h // 3, 6), fill=(*fill, 255), outline=(*border, 255))
    draw.text((pad_x - left, pad_y - top), label, font=font(font_size), fill=(*text_color, 255))
    return layer


def panel_layer(w: int, h: int, fill: RGB, border: RGB) -> Image.Image:
    """A filled rectangle with a 1 px border: windows, title bars."""
    layer, draw = _new_layer(w, h)
    draw.rectangle((0, 0, w - 1, h - 1), fill=(*fill, 255), outline=(*border, 255))
    return layer


def field_layer(w: int, h: int, border: RGB) -> Image.Image:
    """An empty text field."""
    return panel_layer(w, h, (255, 255, 255), border)


def checkbox_layer(side: int, checked: bool, color: RGB) -> Image.Image:
    layer, draw = _new_layer(side, side)
    draw.rectangle((0, 0, side - 1, side - 1), fill=(255, 255, 255, 255), outline=(*color, 255))
    if checked:
        m = max(2, side // 4)
        draw.line([(m, side // 2), (side // 2 - 1, side - m - 1), (side - m - 1, m)], fill=(*color, 255), width=2)
    return layer


# ---------------------------------------------------------------------------------------------------
# layers: document blocks


def text_bars_layer(rng: np.random.Generator, w: int, lines: int, pitch: int, thickness: int, color: RGB,
                    indent: int = 0) -> Image.Image:
    """Lines of word-like bars (greeked text); the last line ends early, as a paragraph's does."""
    layer, draw = _new_layer(w, (lines - 1) * pitch + thickness)
    for i in range(lines):
        end = w if i < lines - 1 else int(rng.integers(w // 3, w + 1))
        x = indent
        while x < end - 4:
            word = int(rng.integers(6, 22))
            draw.rectangle((x, i * pitch, min(x + word, end) - 1, i * pitch + thickness - 1), fill=(*color, 255))
            x += word + int(rng.integers(2, 5))
    return layer


def list_layer(rng: np.random.Generator, w: int, items: int, pitch: int, thickness: int, color: RGB) -> Image.Image:
    """Bulleted items, each a bullet and one line of bars of its own length."""
    bullet = thickness + 1
    layer, draw = _new_layer(w, (items - 1) * pitch + bullet)
    for i in range(items):
        y = i * pitch
        draw.rectangle((0, y, bullet - 1, y + bullet - 1), fill=(*color, 255))
        line = text_bars_layer(rng, int(rng.integers(w // 2, w - 2 * bullet + 1)), 1, pitch, thickness, color)
        layer.alpha_composite(line, (2 * bullet, y))
    return layer


def table_layer(rng: np.random.Generator, w: int, rows: int, row_h: int, line: RGB, header: RGB,
                text: RGB) -> Image.Image:
    """A ruled grid with a shaded header row and a short bar in each cell."""
    cols = int(rng.integers(2, 5))
    h = rows * row_h + 1
    layer, draw = _new_layer(w, h)
    draw.rectangle((0, 0, w - 1, h - 1), fill=(255, 255, 255, 255))
    draw.rectangle((0, 0, w - 1, row_h), fill=(*header, 255))
    edges = [round(c * (w - 1) / cols) for c in range(cols + 1)]
    for r in range(rows + 1):
        draw.line([(0, r * row_h), (w - 1, r * row_h)], fill=(*line, 255))
    for x in edges:
        draw.line([(x, 0), (x, h - 1)], fill=(*line, 255))
    for r in range(rows):
        for a, b in zip(edges, edges[1:]):
            if b - a > 8:
                bar = int(rng.integers(3, b - a - 3))
                y = r * row_h + row_h // 2 - 1
                draw.rectangle((a + 3, y, a + 2 + bar, y + 1), fill=(*text, 255))
    return layer


def figure_layer(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A framed picture: a bar chart, a line plot or a landscape 'photo'."""
    layer, draw = _new_layer(w, h)
    panel = tuple(int(v) for v in rng.integers(200, 250, size=3))
    draw.rectangle((0, 0, w - 1, h - 1), fill=(*panel, 255), outline=(120, 120, 120, 255))
    ink = tuple(int(v) for v in rng.integers(30, 170, size=3))
    kind = rng.integers(3)
    if kind == 0:  # bar chart
        n = int(rng.integers(3, 8))
        bw = (w - 6) / n
        for i in range(n):
            top = int(rng.integers(3, h - 4))
            draw.rectangle((3 + i * bw + 1, top, 3 + (i + 1) * bw - 2, h - 4), fill=(*ink, 255))
    elif kind == 1:  # line plot
        xs = np.linspace(3, w - 4, int(rng.integers(4, 10)))
        ys = rng.integers(3, h - 3, size=xs.size)
        draw.line([(float(x), float(y)) for x, y in zip(xs, ys)], fill=(*ink, 255), width=2)
    else:  # landscape
        draw.polygon([(2, h - 2), (w * 0.4, h * 0.3), (w * 0.7, h - 2)], fill=(*ink, 255))
        draw.polygon([(w * 0.45, h - 2), (w * 0.75, h * 0.45), (w - 3, h - 2)], fill=(*ink[::-1], 255))
        r = max(2, min(w, h) // 8)
        draw.ellipse((w - 4 - 2 * r, 3, w - 4, 3 + 2 * r), fill=(240, 190, 40, 255))
    return layer
