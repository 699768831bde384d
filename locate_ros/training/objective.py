"""The joint objective: next-token prediction on the answer plus the appended masked blocks (MTP).

One training sequence per sample (several are packed into one forward; attention runs per sample):

    rows 0..T-1   the stream: prompt (image tokens included) + the committed answer, causal
    then, per answer block starting at stream index g:
                  [copy of stream token g-1, 5 x <text_mask>] at positions g-1 .. g+4

A block's rows see the stream before its anchor (keys 0..g-2: not the original anchor token, the
same column the inference window hides) and each other (bidirectional); no other row sees them.
Stream row t (t >= prompt_len-1) predicts stream token t+1; block row j predicts the block's j-th
target (the `<null>`-padded 6 tokens of data.serialize). One cross-entropy over both kinds of rows.
This is exactly what `decoding.loop` runs at inference: the same positions, the same visibility.

Each example also lists its grounding rows (every stream or block row that predicts a coordinate
of a box or point) with the image-token rows along that coordinate's edge of the box: what the
optional grounding-attention aid (`grounding_loss`, for models trained from scratch) teaches one
attention head to look at, and per merged image token what the optional vision aid (`VisionAid`)
reads off the image features: the shape and colour of the object there (shape scenes) and where
the token is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.families import Sample, colour_rivals
from ..data.scenes import COLORS, SHAPES
from ..data.serialize import answer_items, serialize_answer
from ..model.config import TokenIds
from ..model.language import apply_rope
from ..model.segments import Segments
from ..processing import Processor, build_question


@dataclass
class Example:
    pixel_values: torch.Tensor
    grid_hw: tuple[int, int]
    ids: list[int]  # stream, then the blocks
    positions: list[int]
    stream_len: int
    block_rows: list[tuple[int, int]]  # (first row of a block, how many stream keys it sees)
    target_rows: list[int]
    target_ids: list[int]
    is_block_target: list[bool]
    ground_rows: list[int]  # rows that predict a coordinate of a box or point ...
    ground_keys: list[list[int]]  # ... and the image-token rows on that coordinate's edge (grounding attention)
    cell_shape: list[int]  # per merged image token: index in SHAPES, len(SHAPES) = background, or IGNORE
    cell_color: list[int]  # ... index in COLORS, len(COLORS) = background, or IGNORE
    cell_xy: list[tuple[float, float]]  # ... its centre, as a fraction of the image's width and height
    # per target row, and per grounding row: whether it picks the instance of a box that only its colour
    # tells from the one taken next (data.families.colour_rivals): the x1 stream row and every
    # coordinate block row of such a box (the rows after x1 in the stream read the instance off x1)
    colour_rival: list[bool]
    ground_colour_rival: list[bool]


IGNORE = -100  # F.cross_entropy's ignore_index: tokens of images that are not shape scenes
JITTER_STREAM = 0x6A  # build_example's jitter draws from its own stream, apart from the data engine's


def cell_attributes(sample: Sample, grid: tuple[int, int]) -> tuple[list[int], list[int], list[tuple[float, float]]]:
    """For each merged image token (row-major over `grid`): the shape and colour of the object whose
    box holds the token's centre (the one painted last, i.e. on top), background where there is none,
    IGNORE for images that are not shape scenes (no `sample.objects`); and the centre itself."""
    gh, gw = grid
    w, h = sample.size
    shapes, colors, xy = [], [], []
    for r in range(gh):
        for c in range(gw):
            fx, fy = (c + 0.5) / gw, (r + 0.5) / gh  # the resize to whole tokens stretches the image evenly
            x, y = fx * w, fy * h
            on = [o for o in sample.objects if o.box[0] <= x < o.box[2] and o.box[1] <= y < o.box[3]]
            if on:
                shapes.append(SHAPES.index(on[-1].shape))
                colors.append(list(COLORS).index(on[-1].color))
            else:
                shapes.append(len(SHAPES) if sample.objects else IGNORE)
                colors.append(len(COLORS) if sample.objects else IGNORE)
            xy.append((fx, fy))
    return shapes, colors, xy


def image_cells(item, grid: tuple[int, int], coordinate: int) -> list[int]:
    """Merged-token indices (row-major over the `grid` of merged tokens) that show where coordinate
    `coordinate` (0-based) of a box or point lies: for a box's x1 the column of cells holding x1
    between y1 and y2, for y1 the row holding y1 between x1 and x2, and so on; for a point its cell."""
    gh, gw = grid
    kind, coords = item

    def col(x: int) -> int:
        return min(gw - 1, x * gw // 1000)

    def row(y: int) -> int:
        return min(gh - 1, y * gh // 1000)

    if kind == "point":
        return [row(coords[1]) * gw + col(coords[0])]
    x1, y1, x2, y2 = coords
    # x2 and y2 are exclusive edges: the last cell holding ink starts before them
    last_col, last_row = col(max(x1, x2 - 1)), row(max(y1, y2 - 1))
    cols = {0: [col(x1)], 2: [last_col]}.get(coordinate, range(col(x1), last_col + 1))
    rows = {1: [row(y1)], 3: [last_row]}.get(coordinate, range(row(y1), last_row + 1))
    return [r * gw + c for r in rows for c in cols]


def build_example(sample: Sample, processor: Processor, block: int = 6, prefix_jitter: float = 0.0,
                  rivals_anywhere: bool = False, x1_blocks: bool = False) -> Example:
    """`prefix_jitter` > 0: each coordinate token of the answer, as an input the later rows read (not
    as a target), moves by a Gaussian of that many bins, drawn from (sample.seed, sample.index).
    Why: Fast mode writes whole boxes and the next block reads them back slightly off, while
    teacher forcing only ever shows it the true ones (run v12: block boxes at IoU >= 0.5 on 85% of
    the true prefixes, 75% recall free-running; `tools/fast_gap.py`).
    `rivals_anywhere`: `Example.colour_rival` marks the boxes of data.families.colour_rivals(sample,
    anywhere=True) instead of those with the other colour in between.
    `x1_blocks`: after the answer's blocks, one more per box, anchored at its x1 (instance-anchored
    windows, decoding.loop): [copy of x1, 5 x <text_mask>] at positions a .. a+5 (a = the x1's stream
    index), seeing the stream before it, with targets y1 x2 y2 `</box>` and then the next box's
    `<box>` and x1 (or `<null> <null>` when no box follows in the same group). Why: a box-aligned
    block's y1/x2/y2 rows each pick the next instance on their own and mix two instances in a fifth
    of the blocks, while the stream's rows, once x1 is written, miss y1/x2/y2 in under 5% of boxes
    (tools/fast_gap.py --teacher-forced); these blocks read the instance off the x1 they follow."""
    tokens: TokenIds = processor.config.tokens
    pre = processor.preprocess(sample.image)
    prompt = processor.encode_prompt(build_question(sample.task, sample.query), pre.num_image_tokens)
    items = answer_items(sample)
    answer = serialize_answer(items, tokens, lambda s: processor.tokenizer.encode(s, add_special_tokens=False).ids, block)
    stream = prompt + answer.ids
    P, T = len(prompt), len(stream)
    ids, positions = list(stream), list(range(T))
    target_rows = list(range(P - 1, T - 1))
    target_ids = stream[P:]
    if prefix_jitter > 0:
        rng = np.random.default_rng([sample.seed, sample.index, JITTER_STREAM])
        for i in range(P, T):
            if tokens.is_coord(ids[i]):
                moved = ids[i] - tokens.coord_start + round(rng.normal(0.0, prefix_jitter))
                ids[i] = tokens.coord_start + min(max(moved, 0), tokens.num_coords - 1)
    is_block = [False] * len(target_rows)
    block_rows = []
    # grounding: the rows predicting coordinate j of located item i, and the image tokens on that edge
    located = iter([it for it in items if it[0] in ("box", "point")])
    image_rows = [i for i, t in enumerate(prompt) if t == tokens.image]
    merge = processor.merge_size
    merged_grid = (pre.grid_hw[0] // merge, pre.grid_hw[1] // merge)
    ground_rows, ground_keys = [], []
    rival = iter(colour_rivals(sample, anywhere=rivals_anywhere))
    colour_rival, ground_colour_rival = [False] * len(target_rows), []
    boxes = []  # (stream index of `<box>`, the box item, its colour-rival flag) per 4-coordinate box
    for start, targets in answer.blocks:
        g = P + start  # stream index of the block's first target token
        row = len(ids)
        ids += [stream[g - 1]] + [tokens.text_mask] * (block - 1)
        positions += range(g - 1, g - 1 + block)
        block_rows.append((row, g - 1))
        target_rows += range(row, row + block)
        target_ids += targets
        is_block += [True] * block
        colour_rival += [False] * block
        if targets[0] == tokens.box_start and tokens.coord_start <= targets[1] <= tokens.coord_end:
            item = next(located)
            hard = next(rival)
            for j in range(1, 1 + len(item[1])):  # stream row g+j-1 and block row `row`+j predict coordinate j
                keys = [image_rows[c] for c in image_cells(item, merged_grid, j - 1)]
                ground_rows += [g + j - 1, row + j]
                ground_keys += [keys, keys]
                ground_colour_rival += [hard and j == 1, hard]
                colour_rival[len(target_rows) - block + j] = hard
            colour_rival[g - P + 1] = hard  # stream row g (it reads `<box>`) predicts x1; target index row - (P - 1)
            if item[0] == "box":
                boxes.append((g, item, hard))
    for k, (g, item, _) in enumerate(boxes if x1_blocks else []):
        a = g + 1  # the anchor: the box's x1
        follower = boxes[k + 1] if k + 1 < len(boxes) and boxes[k + 1][0] == g + block else None
        tail = [tokens.box_start, stream[g + block + 1]] if follower else [tokens.null, tokens.null]
        row = len(ids)
        ids += [stream[a]] + [tokens.text_mask] * (block - 1)
        positions += range(a, a + block)
        block_rows.append((row, a))
        target_rows += range(row, row + block)
        target_ids += stream[a + 1:a + 5] + tail
        is_block += [True] * block
        colour_rival += [False] * (block - 1) + [bool(follower and follower[2])]
        for j in (1, 2, 3):  # block row j-1 predicts coordinate j (0-based: y1, x2, y2) of this box
            ground_rows.append(row + j - 1)
            ground_keys.append([image_rows[c] for c in image_cells(item, merged_grid, j)])
            ground_colour_rival.append(False)
        if follower:  # the last row predicts the next box's x1
            ground_rows.append(row + block - 1)
            ground_keys.append([image_rows[c] for c in image_cells(follower[1], merged_grid, 0)])
            ground_colour_rival.append(follower[2])
    return Example(pre.pixel_values, pre.grid_hw, ids, positions, T, block_rows, target_rows, target_ids, is_block,
                   ground_rows, ground_keys, *cell_attributes(sample, merged_grid), colour_rival=colour_rival,
                   ground_colour_rival=ground_colour_rival)


@dataclass
class Batch:
    ids: torch.Tensor  # [S]: the examples' rows one after another
    positions: torch.Tensor  # [S]
    mask: torch.Tensor  # [examples, T, T] bool, True = attend: each example's own (T = the longest; padding False)
    pixel_values: torch.Tensor
    grids: list[tuple[int, int]]
    target_rows: torch.Tensor
    target_ids: torch.Tensor
    is_block_target: torch.Tensor
    ground_rows: torch.Tensor  # [R] rows (of S) that predict a coordinate
    ground_example: torch.Tensor  # [R] the example each is in
    ground_keys: torch.Tensor  # [R, T] bool: the keys (rows of that example) the grounding aid asks it to attend to
    cell_shape: torch.Tensor  # [image tokens of all examples], as Example
    cell_color: torch.Tensor
    cell_xy: torch.Tensor  # [image tokens, 2]
    lengths: list[int]  # rows of each packed example, in order (attention runs per example: Segments)
    colour_rival: torch.Tensor  # [target rows] bool, as Example
    ground_colour_rival: torch.Tensor  # [R] bool


def pack(examples: list[Example], block: int = 6) -> Batch:
    """Several examples as one sequence; an example's rows never see another's, so each keeps its own
    mask (memory linear in the number of examples, not quadratic)."""
    T = max(len(e.ids) for e in examples)
    mask = torch.zeros(len(examples), T, T, dtype=torch.bool)
    ids, positions, rows, tids, is_block = [], [], [], [], []
    ground_rows, ground_example, ground_cols = [], [], []
    off = 0
    for b, e in enumerate(examples):
        n = e.stream_len
        mask[b, :n, :n] = torch.ones(n, n, dtype=torch.bool).tril()
        for row, visible in e.block_rows:
            mask[b, row:row + block, :visible] = True
            mask[b, row:row + block, row:row + block] = True
        ids += e.ids
        positions += e.positions
        rows += [off + r for r in e.target_rows]
        tids += e.target_ids
        is_block += e.is_block_target
        ground_rows += [off + r for r in e.ground_rows]
        ground_example += [b] * len(e.ground_rows)
        ground_cols += e.ground_keys
        off += len(e.ids)
    ground_keys = torch.zeros(len(ground_rows), T, dtype=torch.bool)
    for i, cols in enumerate(ground_cols):
        ground_keys[i, cols] = True
    return Batch(torch.tensor(ids), torch.tensor(positions), mask, torch.cat([torch.as_tensor(e.pixel_values) for e in examples]),
                 [e.grid_hw for e in examples], torch.tensor(rows), torch.tensor(tids), torch.tensor(is_block),
                 torch.tensor(ground_rows, dtype=torch.long), torch.tensor(ground_example, dtype=torch.long), ground_keys,
                 torch.tensor([v for e in examples for v in e.cell_shape], dtype=torch.long),
                 torch.tensor([v for e in examples for v in e.cell_color], dtype=torch.long),
                 torch.tensor([v for e in examples for v in e.cell_xy], dtype=torch.float32).reshape(-1, 2),
                 [len(e.ids) for e in examples],
                 torch.tensor([v for e in examples for v in e.colour_rival], dtype=torch.bool),
                 torch.tensor([v for e in examples for v in e.ground_colour_rival], dtype=torch.bool))


class NoCache:
    """The decoder's KV-cache interface without storage: a training forward sees all its keys at once."""

    length, max_len = 0, float("inf")

    def update(self, layer, k, v):
        return k, v


def target_logits(model, batch: Batch, blind: bool = False) -> torch.Tensor:
    """The logits of every row with a target (stream and block rows, in `batch.target_ids` order),
    from one teacher-forced forward of the packed batch; `blind` as in `joint_loss`."""
    dev = model.device
    feats = model.encode_images(batch.pixel_values.to(dev), batch.grids)
    if blind:
        kh, kw = model.cfg.vision.merge_kernel_size
        sizes = [h * w // (kh * kw) for h, w in batch.grids]  # merged tokens per image
        feats = torch.cat([f.mean(0, keepdim=True).expand_as(f) for f in feats.split(sizes)])
    hidden = model.language_model.model(model.embed(batch.ids.to(dev), feats), batch.positions.to(dev),
                                        batch.mask.to(dev), NoCache(), segments=Segments.of(batch.lengths, dev))
    return model.language_model.logits(hidden[batch.target_rows.to(dev)])


# Where null_smoothing puts the probability it takes from a `<null>` target: ids that no decision
# reads as a coordinate. Why: Fast mode's box decision (decoding.hybrid.decode_bbox_avg, the
# reference's rule) makes a window a box when each of rows 1-4 has *any* coordinate among its top 4
# ids, whatever the probabilities. Trained on the plain cross-entropy, the end-of-answer block put
# ~0.998 on `<null>` and left its small rest on a bump of neighbouring coordinate bins (its code
# makes them alike), which outranks every other id: run v9 turned 27 of 40 such blocks into a
# box (`tools/fast_gap.py --teacher-forced`), and Fast answers ran on past their last object;
# run v10, trained on from v9 with 0.03, turns 1 of 40.
NULL_RUNNERS_UP = ("im_end", "box_end", "ref_end")


def instance_key_rows(batch: Batch, tokens: TokenIds, block: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """The block rows that predict a coordinate of a box or point (indices into the target rows) and,
    for each, its box's first coordinate (x1, a token id): the key `instance_key_weight` trains them
    to name. Block targets come 6 to a block, in order, in every example (build_example)."""
    targets, is_block = batch.target_ids, batch.is_block_target
    rows = is_block.nonzero()[:, 0]
    blocks = targets[rows].reshape(-1, block)
    located = (blocks[:, 0] == tokens.box_start) & (blocks[:, 1] >= tokens.coord_start) & (blocks[:, 1] <= tokens.coord_end)
    coords = (blocks >= tokens.coord_start) & (blocks <= tokens.coord_end) & located[:, None]
    keys = blocks[:, 1:2].expand_as(blocks)
    return rows.reshape(-1, block)[coords], keys[coords]


def follow_first_coordinate(targets: torch.Tensor, logits: torch.Tensor, batch: Batch, tokens: TokenIds,
                            block: int = 6, same_bins: int = 12) -> tuple[torch.Tensor, int, int]:
    """The targets with each box block's y1, x2 and y2 replaced by those of the box its x1 row names,
    when that row names a later box of the same answer group instead of the next one: its argmax is
    more than `same_bins` from the next box's x1 and within `same_bins` of a later box's (the
    nearest). Returns (targets, blocks followed, box blocks).

    Why: slow mode writes x1 first and reads the other edges of whichever instance that x1 is, so
    when it takes the instances out of order it still writes a true box. A block writes all four at
    once, and on the true prefix, when the bundled model's x1 block row misses the next box (41 of
    395 boxes, `tools/fast_gap.py --teacher-forced --images 120`), only 4 of those blocks are one box
    of the answer: the rest mix instances, and score nothing. Trained on the true next box,
    those rows are taught, in exactly these cases, to disagree with the x1 row; these targets teach
    them to follow it. The x1 row keeps its true target (the order)."""
    rows = batch.is_block_target.nonzero()[:, 0]
    blocks = targets[rows].reshape(-1, block).clone()
    is_coord = (blocks >= tokens.coord_start) & (blocks <= tokens.coord_end)
    is_box = (blocks[:, 0] == tokens.box_start) & is_coord[:, 1:5].all(1)
    # blocks that are no box (a label, the end of an answer) end a group: every example ends with one
    group = torch.cumsum(~is_box, 0)
    named = logits[rows.reshape(-1, block)[:, 1], tokens.coord_start:tokens.coord_end + 1].argmax(-1) + tokens.coord_start
    x1 = blocks[:, 1].clone()
    followed = 0
    for i in (is_box & ((named - x1).abs() > same_bins)).nonzero()[:, 0].tolist():
        later = torch.arange(i + 1, len(blocks), device=blocks.device)
        later = later[is_box[later] & (group[later] == group[i])]
        if not len(later):
            continue
        gap = (x1[later] - named[i]).abs()
        if gap.min() <= same_bins:
            blocks[i, 2:5] = blocks[later[gap.argmin()], 2:5]
            followed += 1
    out = targets.clone()
    out[rows] = blocks.reshape(-1)
    return out, followed, int(is_box.sum())


def joint_loss(model, batch: Batch, coord_sigma: float = 0.0, blind: bool = False, ground_weight: float = 0.0,
               ground_layer: int = -1, aid: "VisionAid | None" = None, aid_weight: float = 0.0,
               mtp_weight: float = 1.0, null_smoothing: float = 0.0, instance_key_weight: float = 0.0,
               instance_key_layer: int = -1, follow_first: bool = False,
               colour_rival_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Mean cross-entropy over the answer's next tokens and the blocks' targets, with per-kind stats.

    mtp_weight weighs each block row against a stream row (1: the plain mean over all rows).
    null_smoothing > 0 moves that much of each `<null>` target's probability onto NULL_RUNNERS_UP
    (see there); the log's `null_coord_top4` is the share of `<null>` rows with a coordinate among
    their 4 most probable ids, either way.

    blind=True replaces every image token's feature by the mean feature of its image: the loss then
    tells how much the model relies on what is where in the picture (`image_gain` in the train log).
    ground_weight > 0 adds the grounding-attention loss (see `grounding_loss`) of decoder layer
    `ground_layer` (-1: the middle one); `ground_mass` in the stats is logged either way, and
    stats["loss"] is the cross-entropy alone. With `aid` (a VisionAid) its read-out accuracies are
    logged too, and aid_weight > 0 adds its loss.

    instance_key_weight > 0 adds the instance-key aid: the output of decoder layer
    `instance_key_layer` (-1: the middle one), read through the final norm and the tied head, is
    trained to name the box's x1 on every coordinate row of a box block (`instance_key_rows`). Why:
    on the true prefix the bundled model's block rows for y1, x2 and y2 miss by more than 50 bins
    1.2-1.6x as often as its block row for x1 (`tools/fast_gap.py --teacher-forced`), and a logit
    lens (`--lens`) shows every block row deciding by layer 4 of 6 with nothing gained after: each row picks the
    next instance on its own. Asking all of them for the same key (the instance's x1, which orders
    the answer) at a middle layer asks them to agree on the instance first and read its other edges
    after, as the stream rows do once x1 is written. stats["instance_key_err_bins"]: how far the
    layer's best coordinate is from the key, in bins (logged with the aid on).

    follow_first=True trains each box block's y1, x2 and y2 rows on the box its x1 row names
    (`follow_first_coordinate`); stats["followed_share"] is the share of box blocks changed. The
    logged accuracies and coordinate errors stay against the true targets.

    colour_rival_weight W != 1 counts each row that picks the instance of a box only its colour tells
    from the one taken next (`Batch.colour_rival`: see data.families.colour_rivals) W times, in the
    cross-entropy's mean and in the grounding aid's. stats["colour_rival_err_bins"]: how far those
    rows' best coordinate is from the target, in bins (logged whenever the batch has such rows).
    """
    dev = model.device
    layers = model.language_model.model.layers
    seen = {}
    hooks = [layers[ground_layer if ground_layer >= 0 else len(layers) // 2].self_attn.register_forward_pre_hook(
        lambda module, args: seen.update(module=module, x=args[0], cos=args[1], sin=args[2]))]
    if aid is not None and not blind:
        hooks.append(model.mlp1.register_forward_hook(lambda module, args, out: seen.update(image_features=out)))
    if instance_key_weight > 0:
        key_layer = layers[instance_key_layer if instance_key_layer >= 0 else len(layers) // 2]
        hooks.append(key_layer.register_forward_hook(lambda module, args, out: seen.update(key_hidden=out)))
    try:
        logits = target_logits(model, batch, blind)
    finally:
        for hook in hooks:
            hook.remove()
    targets = trained_on = batch.target_ids.to(dev)
    tokens = model.cfg.tokens
    follow_stats = {}
    if follow_first:
        with torch.no_grad():
            trained_on, followed, box_blocks = follow_first_coordinate(targets, logits, batch, tokens, model.cfg.text.block_size)
        follow_stats["followed_share"] = followed / max(box_blocks, 1)
    if coord_sigma > 0:
        soft = _soft_targets(trained_on, logits.shape[1], tokens, coord_sigma)
        per_row = torch.sum(-soft * F.log_softmax(logits, dim=-1), dim=-1)
    else:
        per_row = F.cross_entropy(logits, trained_on, reduction="none")
    is_null = targets == tokens.null
    if null_smoothing > 0 and is_null.any():
        logp = F.log_softmax(logits[is_null], dim=-1)
        runners_up = torch.tensor([getattr(tokens, name) for name in NULL_RUNNERS_UP], device=dev)
        smoothed = -(1 - null_smoothing) * logp[:, tokens.null] - null_smoothing * logp[:, runners_up].mean(-1)
        per_row = per_row.index_put((is_null.nonzero()[:, 0],), smoothed)
    is_block = batch.is_block_target.to(dev)
    rival = batch.colour_rival.to(dev)
    if mtp_weight == 1.0 and (colour_rival_weight == 1.0 or not rival.any()):
        loss = lm_loss = per_row.mean()  # the paper's objective, and bit for bit the runs' before the options
    else:
        weights = torch.where(is_block, mtp_weight, 1.0) * torch.where(rival, colour_rival_weight, 1.0)
        loss = lm_loss = (per_row * weights).sum() / weights.sum()
    ground = None
    if len(batch.ground_rows):
        ground_weights = None
        if colour_rival_weight != 1.0:
            ground_weights = torch.where(batch.ground_colour_rival.to(dev), colour_rival_weight, 1.0)
        ground = grounding_loss(seen, batch, ground_weights)
    if ground is not None and ground_weight > 0:
        loss = loss + ground_weight * ground
    key_stats = {}
    if "key_hidden" in seen:
        rows, keys = instance_key_rows(batch, tokens, model.cfg.text.block_size)
        if len(rows):
            lm = model.language_model
            key_logits = lm.logits(lm.model.norm(seen["key_hidden"][batch.target_rows.to(dev)[rows.to(dev)]]))
            keys = keys.to(dev)
            loss = loss + instance_key_weight * F.cross_entropy(key_logits, keys)
            with torch.no_grad():
                best = key_logits[:, tokens.coord_start:tokens.coord_end + 1].argmax(-1) + tokens.coord_start
                key_stats["instance_key_err_bins"] = float((best - keys).abs().float().mean())
    aid_stats = {}
    if "image_features" in seen:
        aid_loss, aid_stats = aid.loss(seen["image_features"], batch)
        if aid_weight > 0:
            loss = loss + aid_weight * aid_loss
    with torch.no_grad():
        correct = logits.argmax(-1) == targets
        stats = {"loss": float(lm_loss), "ntp_loss": float(per_row[~is_block].mean()),
                 "mtp_loss": float(per_row[is_block].mean()), "ntp_acc": float(correct[~is_block].float().mean()),
                 "mtp_acc": float(correct[is_block].float().mean()), "tokens": int(targets.numel())}
        is_coord = (targets >= tokens.coord_start) & (targets <= tokens.coord_end)
        if is_coord.any():  # localisation, which the loss hides: how far the best coordinate bin is off
            best = logits[is_coord, tokens.coord_start:tokens.coord_end + 1].argmax(-1)
            stats["coord_err_bins"] = float((best - (targets[is_coord] - tokens.coord_start)).abs().float().mean())
            if rival.any():
                off = (logits[rival, tokens.coord_start:tokens.coord_end + 1].argmax(-1) + tokens.coord_start - targets[rival])
                stats["colour_rival_err_bins"] = float(off.abs().float().mean())
        if is_null.any():  # what Fast mode's box decision reads on the rows that must not be a box
            top4 = logits[is_null].topk(4, dim=-1).indices
            stats["null_coord_top4"] = float(((top4 >= tokens.coord_start) & (top4 <= tokens.coord_end)).any(-1).float().mean())
        if ground is not None:
            stats["ground_mass"] = float(torch.exp(-ground))
        stats.update(aid_stats)
        stats.update(key_stats)
        stats.update(follow_stats)
    return loss, stats


class VisionAid(nn.Module):
    """Linear read-outs of each image feature the decoder sees (the projector's output): the shape
    and the colour of the object there (or background), and the token's (x, y). A training aid for
    models trained from scratch, saved beside the checkpoint, never in it.

    A random vision tower left frozen keeps where each token is but gives no shape: a linear probe on
    the bundled model's image features read colour at 86% and shape at chance (21%, majority 19%),
    and the model answered "red ring" with every red object. Training the tower on the answers alone
    lost the position code instead (run h1). Dense labels teach the tower shapes in few steps, and
    the (x, y) read-out keeps the position code readable while it changes.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.shape = nn.Linear(dim, len(SHAPES) + 1)
        self.color = nn.Linear(dim, len(COLORS) + 1)
        self.xy = nn.Linear(dim, 2)
        for head in (self.shape, self.color, self.xy):
            # at zero the read-outs pass no gradient into the tower until they have learned something:
            # random ones pushed the image features around and the answer loss rose 2.7 -> 3.2 in 30 steps
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def loss(self, features: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, dict]:
        """Cross-entropy of shape and colour (over tokens of shape scenes, object and background tokens
        each averaged on their own) plus 10 x the mean squared
        error of (x, y) in image fractions (~0.1 away: the same size as a wrong class at ~1.0)."""
        dev = features.device
        x = F.layer_norm(features.float(), features.shape[-1:])  # the projector's output is far from unit scale
        shape, color = batch.cell_shape.to(dev), batch.cell_color.to(dev)
        losses, stats = [], {}
        for name, head, labels in (("shape", self.shape, shape), ("color", self.color, color)):
            background = head.out_features - 1
            for part, rows in (("object", (labels != IGNORE) & (labels != background)), ("background", labels == background)):
                if rows.any():  # each part its own mean: background tokens outnumber object tokens ~4:1
                    logits = head(x[rows])
                    losses.append(F.cross_entropy(logits, labels[rows]))
                    if part == "object":
                        stats[f"aid_{name}_acc"] = float((logits.argmax(-1) == labels[rows]).float().mean())
        xy = batch.cell_xy.to(dev)
        err = F.mse_loss(self.xy(x), xy)
        losses.append(10 * err)
        stats["aid_xy_err"] = float(err.detach().sqrt())
        return torch.stack(losses).sum(), stats


def grounding_loss(seen: dict, batch: Batch, weights: torch.Tensor | None = None) -> torch.Tensor:
    """-log of the attention mass that head 0 of the hooked layer puts on the image tokens along the
    edge (or at the point) whose coordinate each grounding row predicts (mean over rows; with
    `weights` [R], their weighted mean).

    A training aid for models trained from scratch: without it, attention over the image stayed
    uniform and the decoder learned to ignore the picture (tools/train_demo_model.sh). Attention
    and values must both be right before either gets a useful gradient; this hands the attention
    half its answer, so the value path sees the right tokens from the first steps.
    """
    attn, x, cos, sin = seen["module"], seen["x"], seen["cos"], seen["sin"]
    dev, hd = x.device, attn.head_dim
    rows, example = batch.ground_rows.to(dev), batch.ground_example.to(dev)
    segments = Segments.of(batch.lengths, dev)
    q = attn.q_proj(x[rows])[:, :hd][None]  # head 0 reads key/value head 0
    k = attn.k_proj(x)[:, :hd][None]
    q, k = apply_rope(q, cos[rows], sin[rows])[0], apply_rope(k, cos, sin)[0]
    keys = segments.pad(k)[example]  # [R, T, hd]: each row's own example
    scores = torch.einsum("rd,rtd->rt", q, keys) / hd ** 0.5
    starts = segments.index[:, 0]
    visible = batch.mask.to(dev)[example, rows - starts[example]]  # each row's mask within its example
    scores = scores.masked_fill(~visible, float("-inf"))
    logp = torch.log_softmax(scores.float(), dim=-1)
    on_target = torch.logsumexp(logp.masked_fill(~batch.ground_keys.to(dev), float("-inf")), dim=-1)
    if weights is None:
        return -on_target.mean()
    return -(on_target * weights).sum() / weights.sum()


def _soft_targets(targets: torch.Tensor, vocab: int, tokens: TokenIds, sigma: float) -> torch.Tensor:
    """One-hot rows, except coordinate targets: a Gaussian over the coordinate bins around the value."""
    soft = F.one_hot(targets, vocab).float()
    is_coord = (targets >= tokens.coord_start) & (targets <= tokens.coord_end)
    if is_coord.any():
        v = (targets[is_coord] - tokens.coord_start).float()[:, None]
        bins = torch.arange(tokens.num_coords, device=targets.device, dtype=torch.float32)[None]
        g = torch.exp(-0.5 * ((bins - v) / sigma) ** 2)
        rows = torch.zeros(int(is_coord.sum()), vocab, device=targets.device)
        rows[:, tokens.coord_start:tokens.coord_end + 1] = g / g.sum(1, keepdim=True)
        soft[is_coord] = rows
    return soft
