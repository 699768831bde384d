"""Answers in the reference format: items, text, and the token stream with its decoding blocks.

    <ref>red circle</ref><box><12><40><300><500></box><box>...</box><ref>star</ref><box>None</box><|im_end|>

Coordinates are tokens <0>..<1000>: round(pixel / side * 1000), clamped, decoded as v / 1000 * side.
A box is <box><x1><y1><x2><y2></box>, a point <box><x><y></box>, an absent object <box>None</box>.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence, Union

from locate_ros.model.config import TokenIds

if TYPE_CHECKING:
    from .families import Sample

# ("ref", label) | ("box", (x1, y1, x2, y2)) | ("point", (x, y)) | ("none",), coordinates in 0..1000
Item = Union[tuple[str, str], tuple[str, tuple[int, ...]], tuple[str]]


def quantize(value_px: float, side: int) -> int:
    """A pixel coordinate as a coordinate token value: round(value / side * 1000), clamped to 0..1000."""
    return min(1000, max(0, round(value_px / side * 1000)))


def answer_items(sample: Sample) -> list[Item]:
    """Per Target: its label, then its boxes, then its points, or ("none",) for a negative."""
    w, h = sample.size
    items: list[Item] = []
    for target in sample.targets:
        items.append(("ref", target.label))
        items += [("box", (quantize(x1, w), quantize(y1, h), quantize(x2, w), quantize(y2, h)))
                  for x1, y1, x2, y2 in target.boxes]
        items += [("point", (quantize(x, w), quantize(y, h))) for x, y in target.points]
        if target.is_negative:
            items.append(("none",))
    return items


def answer_text(items: Sequence[Item]) -> str:
    """The answer as the model writes it, ending with <|im_end|>."""
    parts = []
    for kind, *payload in items:
        if kind == "ref":
            parts.append(f"<ref>{payload[0]}</ref>")
        elif kind in ("box", "point"):
            parts.append("<box>" + "".join(f"<{v}>" for v in payload[0]) + "</box>")
        elif kind == "none":
            parts.append("<box>None</box>")
        else:
            raise ValueError(f"unknown answer item {kind!r}")
    return "".join(parts) + "<|im_end|>"


@dataclass(frozen=True)
class SerializedAnswer:
    ids: list[int]  # the committed answer stream: what every decoding mode commits (no <null>), ends with <|im_end|>
    blocks: list[tuple[int, list[int]]]  # (index into ids of the block's first token, its block_size target ids)


def _runs(items: Sequence[Item], tokens: TokenIds, encode_text: Callable[[str], list[int]]) -> list[list[int]]:
    """The token run of each item, plus the final <|im_end|> run."""
    runs = []
    for kind, *payload in items:
        if kind == "ref":
            runs.append([tokens.ref_start, *encode_text(payload[0]), tokens.ref_end])
        elif kind in ("box", "point"):
            runs.append([tokens.box_start, *(tokens.coord_token(v) for v in payload[0]), tokens.box_end])
        elif kind == "none":
            runs.append([tokens.box_start, tokens.none, tokens.box_end])
        else:
            raise ValueError(f"unknown answer item {kind!r}")
    runs.append([tokens.im_end])
    return runs


def serialize_answer(items: Sequence[Item], tokens: TokenIds, encode_text: Callable[[str], list[int]],
                     block_size: int = 6) -> SerializedAnswer:
    """The answer's token ids and its Parallel Box Decoding blocks.

    Each run (a label, a box, a point, a negative, the end) is cut into chunks of block_size
    tokens and the last chunk is padded with <null>: a box is one block, a point is
    <box> x y </box> <null> <null>, the end is <|im_end|> and five <null>. The reference decoder
    drops the nulls when it commits a block (handle_pattern), so `ids` - the runs without padding -
    is the prefix that slow, fast and hybrid decoding all build on, and training sees the same.
    """
    ids: list[int] = []
    blocks: list[tuple[int, list[int]]] = []
    for run in _runs(items, tokens, encode_text):
        for start in range(0, len(run), block_size):
            chunk = run[start:start + block_size]
            blocks.append((len(ids) + start, chunk + [tokens.null] * (block_size - len(chunk))))
        ids += run
    return SerializedAnswer(ids, blocks)
