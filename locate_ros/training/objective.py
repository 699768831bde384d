"""The joint objective: next-token prediction on the answer plus the appended masked blocks (MTP).

One training sequence per sample (several are packed into one forward, block-diagonal):

    rows 0..T-1   the stream: prompt (image tokens included) + the committed answer, causal
    then, per answer block starting at stream index g:
                  [copy of stream token g-1, 5 x <text_mask>] at positions g-1 .. g+4

A block's rows see the stream before its anchor (keys 0..g-2: not the original anchor token, the
same column the inference window hides) and each other (bidirectional); no other row sees them.
Stream row t (t >= prompt_len-1) predicts stream token t+1; block row j predicts the block's j-th
target (the `<null>`-padded 6 tokens of data.serialize). One cross-entropy over both kinds of rows.
This is exactly what `decoding.loop` runs at inference: the same positions, the same visibility.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.families import Sample
from ..data.serialize import answer_items, serialize_answer
from ..model.config import TokenIds
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


def build_example(sample: Sample, processor: Processor, block: int = 6) -> Example:
    tokens: TokenIds = processor.config.tokens
    pre = processor.preprocess(sample.image)
    prompt = processor.encode_prompt(build_question(sample.task, sample.query), pre.num_image_tokens)
    answer = serialize_answer(answer_items(sample), tokens,
                              lambda s: processor.tokenizer.encode(s, add_special_tokens=False).ids, block)
    stream = prompt + answer.ids
    P, T = len(prompt), len(stream)
    ids, positions = list(stream), list(range(T))
    target_rows = list(range(P - 1, T - 1))
    target_ids = stream[P:]
    is_block = [False] * len(target_rows)
    block_rows = []
    for start, targets in answer.blocks:
        g = P + start  # stream index of the block's first target token
        row = len(ids)
        ids += [stream[g - 1]] + [tokens.text_mask] * (block - 1)
        positions += range(g - 1, g - 1 + block)
        block_rows.append((row, g - 1))
        target_rows += range(row, row + block)
        target_ids += targets
        is_block += [True] * block
    return Example(pre.pixel_values, pre.grid_hw, ids, positions, T, block_rows, target_rows, target_ids, is_block)


@dataclass
class Batch:
    ids: torch.Tensor  # [S]
    positions: torch.Tensor  # [S]
    mask: torch.Tensor  # [S, S] bool, True = attend
    pixel_values: torch.Tensor
    grids: list[tuple[int, int]]
    target_rows: torch.Tensor
    target_ids: torch.Tensor
    is_block_target: torch.Tensor


def pack(examples: list[Example], block: int = 6) -> Batch:
    """Several examples as one sequence; an example's rows never see another's."""
    S = sum(len(e.ids) for e in examples)
    mask = torch.zeros(S, S, dtype=torch.bool)
    ids, positions, rows, tids, is_block = [], [], [], [], []
    off = 0
    for e in examples:
        T = e.stream_len
        mask[off:off + T, off:off + T] = torch.ones(T, T, dtype=torch.bool).tril()
        for row, visible in e.block_rows:
            r = off + row
            mask[r:r + block, off:off + visible] = True
            mask[r:r + block, r:r + block] = True
        ids += e.ids
        positions += e.positions
        rows += [off + r for r in e.target_rows]
        tids += e.target_ids
        is_block += e.is_block_target
        off += len(e.ids)
    return Batch(torch.tensor(ids), torch.tensor(positions), mask, torch.cat([torch.as_tensor(e.pixel_values) for e in examples]),
                 [e.grid_hw for e in examples], torch.tensor(rows), torch.tensor(tids), torch.tensor(is_block))


class NoCache:
    """The decoder's KV-cache interface without storage: a training forward sees all its keys at once."""

    length, max_len = 0, float("inf")

    def update(self, layer, k, v):
        return k, v


def joint_loss(model, batch: Batch, coord_sigma: float = 0.0, blind: bool = False) -> tuple[torch.Tensor, dict]:
    """Mean cross-entropy over the answer's next tokens and the blocks' targets, with per-kind stats.

    blind=True replaces every image token's feature by the mean feature of its image: the loss then
    tells how much the model relies on what is where in the picture (`image_gain` in the train log).
    """
    dev = model.device
    feats = model.encode_images(batch.pixel_values.to(dev), batch.grids)
    if blind:
        kh, kw = model.cfg.vision.merge_kernel_size
        sizes = [h * w // (kh * kw) for h, w in batch.grids]  # merged tokens per image
        feats = torch.cat([f.mean(0, keepdim=True).expand_as(f) for f in feats.split(sizes)])
    ids = batch.ids.to(dev)
    hidden = model.language_model.model(model.embed(ids, feats), batch.positions.to(dev), batch.mask.to(dev),
                                        NoCache())
    logits = model.language_model.logits(hidden[batch.target_rows.to(dev)])
    targets = batch.target_ids.to(dev)
    tokens = model.cfg.tokens
    if coord_sigma > 0:
        soft = _soft_targets(targets, logits.shape[1], tokens, coord_sigma)
        per_row = torch.sum(-soft * F.log_softmax(logits, dim=-1), dim=-1)
    else:
        per_row = F.cross_entropy(logits, targets, reduction="none")
    loss = per_row.mean()
    with torch.no_grad():
        is_block = batch.is_block_target.to(dev)
        correct = logits.argmax(-1) == targets
        stats = {"loss": float(loss), "ntp_loss": float(per_row[~is_block].mean()),
                 "mtp_loss": float(per_row[is_block].mean()), "ntp_acc": float(correct[~is_block].float().mean()),
                 "mtp_acc": float(correct[is_block].float().mean()), "tokens": int(targets.numel())}
        is_coord = (targets >= tokens.coord_start) & (targets <= tokens.coord_end)
        if is_coord.any():  # localisation, which the loss hides: how far the best coordinate bin is off
            best = logits[is_coord, tokens.coord_start:tokens.coord_end + 1].argmax(-1)
            stats["coord_err_bins"] = float((best - (targets[is_coord] - tokens.coord_start)).abs().float().mean())
    return loss, stats


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
