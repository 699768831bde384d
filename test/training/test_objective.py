"""The training objective computes exactly what inference runs: same rows, positions and visibility."""
import numpy as np
import pytest
import torch

from locate_ros.backends.torch_backend import TorchBackend
from locate_ros.data import make_sample
from locate_ros.decoding.blocks import ar_inputs, mtp_inputs
from locate_ros.model.segments import Segments
from locate_ros.processing import Processor
from locate_ros.training.objective import build_example, joint_loss, pack


@pytest.fixture(scope="module")
def processor(tiny_checkpoint, tiny_model):
    return Processor.from_pretrained(tiny_checkpoint, tiny_model.cfg)


def training_logits(model, examples):
    """Every row's logits from the training forward (target_logits' path: examples attend per segment)."""
    batch = pack(examples)
    from locate_ros.training.objective import NoCache

    with torch.no_grad():
        feats = model.encode_images(batch.pixel_values, batch.grids)
        hidden = model.language_model.model(model.embed(batch.ids, feats), batch.positions, batch.mask, NoCache(),
                                            segments=Segments.of(batch.lengths))
        return batch, model.language_model.logits(hidden)


@pytest.mark.parametrize("x1_blocks", [False, True])
def test_block_and_stream_rows_equal_the_inference_forwards(tiny_model, processor, x1_blocks):
    """Every block row of the packed training forward equals the PBD window of decoding.loop at that
    point of the answer (with x1 blocks: also the window anchored at each box's x1), and every stream
    row equals token-by-token decoding; packing a second example beside it changes nothing. (Equal
    up to float32 rounding of differently shaped matmuls: a wrong position or visibility changes
    logits by O(1).)"""
    sample = make_sample(5, 0, family="objects", size=(128, 160))
    other = make_sample(5, 1, family="ocr", size=(128, 160))
    ex = build_example(sample, processor, x1_blocks=x1_blocks)
    assert len(ex.block_rows) == len(build_example(sample, processor).block_rows) + x1_blocks * len(sample.targets[0].boxes)
    batch, logits = training_logits(tiny_model, [build_example(other, processor), ex])
    off = len(build_example(other, processor).ids)
    tokens = tiny_model.cfg.tokens
    stream = ex.ids[:ex.stream_len]
    prompt_len = ex.stream_len - (len(ex.target_ids) - sum(ex.is_block_target))

    backend = TorchBackend(tiny_model, pack_weights=False)
    feats = backend.encode_image(ex.pixel_values, [ex.grid_hw])
    for row, visible in ex.block_rows:
        g = visible + 1  # committed length when this block is decoded
        backend.reset(g + 6)
        ids, pos, mask = mtp_inputs(stream[:g], 0, tokens.text_mask)
        want = backend.forward(ids, pos, mask, 6, feats)
        got = logits[off + row:off + row + 6]
        assert torch.allclose(got, want, atol=1e-4, rtol=1e-5), (row, (got - want).abs().max())
    backend.reset(ex.stream_len)
    ids, pos, mask = ar_inputs(stream, 0)
    want = backend.forward(ids, pos, mask, ex.stream_len, feats)
    got = logits[off:off + ex.stream_len]
    assert torch.allclose(got[prompt_len - 1:], want[prompt_len - 1:], atol=1e-4, rtol=1e-5)


def test_targets_are_the_answer_and_its_null_padded_blocks(processor):
    sample = make_sample(2, 3, family="pointing", size=(128, 160))
    ex = build_example(sample, processor)
    t = processor.config.tokens
    stream_targets = [i for i, b in zip(ex.target_ids, ex.is_block_target) if not b]
    block_targets = np.array([i for i, b in zip(ex.target_ids, ex.is_block_target) if b]).reshape(-1, 6)
    assert stream_targets[-1] == t.im_end and t.null not in stream_targets
    assert (block_targets[:, 0] != t.null).all()  # a block never starts with padding
    # points are <box> x y </box> <null> <null>; the end block is <|im_end|> + 5 <null>
    assert list(block_targets[-1]) == [t.im_end] + [t.null] * 5
    point_blocks = [b for b in block_targets if b[0] == t.box_start]
    assert point_blocks and all(list(b[3:]) == [t.box_end, t.null, t.null] for b in point_blocks)
    # the block anchors are the stream tokens just before each block
    for (row, visible), block in zip(ex.block_rows, block_targets):
        assert ex.ids[row] == ex.ids[visible] and ex.ids[row + 1:row + 6] == [t.text_mask] * 5
        assert ex.ids[visible + 1] == block[0]


def test_loss_is_finite_and_gradients_reach_every_part(tiny_checkpoint, processor):
    from locate_ros.model import load_model

    model = load_model(tiny_checkpoint).train().requires_grad_(True)  # its own copy: the fixture's is shared
    batch = pack([build_example(make_sample(1, i, size=(128, 160)), processor) for i in range(2)])
    loss, stats = joint_loss(model, batch, coord_sigma=2.0)
    loss.backward()
    assert torch.isfinite(loss) and stats["tokens"] == len(batch.target_ids)
    for part in (model.vision_model, model.mlp1, model.language_model):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_mtp_weight_weighs_each_block_row_against_a_stream_row(tiny_checkpoint, processor):
    from locate_ros.model import load_model

    model = load_model(tiny_checkpoint)
    batch = pack([build_example(make_sample(1, i, size=(128, 160)), processor) for i in range(2)])
    n_block = int(batch.is_block_target.sum())
    n_stream = len(batch.target_ids) - n_block
    with torch.no_grad():
        plain, stats = joint_loss(model, batch)
        leaning, _ = joint_loss(model, batch, mtp_weight=3.0)
    mean = (n_stream * stats["ntp_loss"] + n_block * stats["mtp_loss"]) / (n_stream + n_block)
    weighted = (n_stream * stats["ntp_loss"] + 3.0 * n_block * stats["mtp_loss"]) / (n_stream + 3.0 * n_block)
    assert plain.item() == pytest.approx(mean, rel=1e-5)
    assert leaning.item() == pytest.approx(weighted, rel=1e-5)
    assert stats["mtp_loss"] != pytest.approx(stats["ntp_loss"], rel=1e-3)  # else the weight would not show


def test_x1_blocks_follow_each_box_s_x1_and_name_the_rest_of_it_then_the_next_box(processor):
    """One more block per box, after the reference's: anchored at the box's x1 (a copy of it, then 5
    masks, seeing the stream before it), with targets y1 x2 y2 `</box>` and the next box's `<box>`
    x1 when a box of the same group follows, else `<null> <null>`. Its coordinate rows are grounding
    rows, and its last row is a colour-rival row exactly when the next box is one."""
    from locate_ros.data.families import colour_rivals

    t = processor.config.tokens
    sample = make_sample(7, 29, family="objects", size=(128, 160))  # groups of 3 and 3; 4 colour rivals
    plain, ex = build_example(sample, processor), build_example(sample, processor, x1_blocks=True)
    n_plain = len(plain.target_ids)
    assert ex.ids[:len(plain.ids)] == plain.ids and ex.target_ids[:n_plain] == plain.target_ids
    stream = ex.ids[:ex.stream_len]
    box_starts = [i for i in range(ex.stream_len - 5) if stream[i] == t.box_start and t.is_coord(stream[i + 1])]
    groups = [len(target.boxes) for target in sample.targets]
    assert len(box_starts) == sum(groups) >= 3 and max(groups) >= 2
    extra = ex.block_rows[len(plain.block_rows):]
    assert len(extra) == len(box_starts)
    targets = np.array(ex.target_ids[n_plain:]).reshape(-1, 6)
    rivals = colour_rivals(sample)
    followed = 0
    for k, ((row, visible), g, want) in enumerate(zip(extra, box_starts, targets)):
        assert visible == g + 1 and ex.ids[row] == stream[g + 1] and ex.ids[row + 1:row + 6] == [t.text_mask] * 5
        assert ex.positions[row:row + 6] == list(range(g + 1, g + 7))
        assert list(want[:4]) == stream[g + 2:g + 6] and want[3] == t.box_end
        follows = g + 6 in box_starts
        followed += follows
        assert list(want[4:]) == ([t.box_start, stream[g + 7]] if follows else [t.null, t.null])
        last = n_plain + 6 * k + 5
        assert ex.colour_rival[last] == (follows and rivals[k + 1]) and not any(ex.colour_rival[last - 5:last])
        ground = [r for r in ex.ground_rows if row <= r < row + 6]
        assert ground == [row, row + 1, row + 2] + ([row + 5] if follows else [])
    assert followed == sum(groups) - len(groups)  # every box but the last of its group has a follower
    assert sum(ex.colour_rival[n_plain:]) == 3  # rivals 2, 3 and 5 follow a box; rival 4 starts a group
    assert pack([ex]).mask[0, extra[0][0]:extra[0][0] + 6, :extra[0][1]].all()


def test_grounding_rows_predict_coordinates_and_point_at_their_edge_of_the_box(processor):
    """Every grounding row predicts a coordinate (stream or block row) and its keys are the image
    tokens along that coordinate's edge of the box (x1: the column of 28-px cells holding x1,
    between y1 and y2); the packed batch offsets them with their example."""
    from locate_ros.data.serialize import answer_items
    from locate_ros.training.objective import image_cells

    sample = make_sample(4, 0, family="single", size=(128, 160))
    ex = build_example(sample, processor)
    t = processor.config.tokens
    targets = dict(zip(ex.target_rows, ex.target_ids))
    assert len(ex.ground_rows) == 8  # one box: x1 y1 x2 y2, each from the stream and from its block
    assert all(t.coord_start <= targets[r] <= t.coord_end for r in ex.ground_rows)
    gh, gw = ex.grid_hw[0] // 2, ex.grid_hw[1] // 2
    image_rows = [i for i, tok in enumerate(ex.ids) if tok == t.image]
    (_, (x1, y1, x2, y2)), = [it for it in answer_items(sample) if it[0] == "box"]
    cols = range(x1 * gw // 1000, (x2 - 1) * gw // 1000 + 1)
    rows = range(y1 * gh // 1000, (y2 - 1) * gh // 1000 + 1)
    edges = [{(r, cols[0]) for r in rows}, {(rows[0], c) for c in cols}, {(r, cols[-1]) for r in rows},
             {(rows[-1], c) for c in cols}]
    for i, keys in enumerate(ex.ground_keys):
        cells = {divmod(image_rows.index(k), gw) for k in keys}
        assert cells == edges[i // 2], (i, cells)
    assert image_cells(("point", (999, 0)), (3, 4), 0) == [3]  # the top-right cell
    other = build_example(make_sample(4, 1, family="ocr", size=(128, 160)), processor)
    batch = pack([other, ex])
    off = len(other.ids)
    mine = batch.ground_rows >= off
    assert (batch.ground_example == mine.long()).all()  # rows of the second example point into it ...
    assert (batch.ground_rows[mine] - off).tolist() == ex.ground_rows
    for keys, want in zip(batch.ground_keys[mine], ex.ground_keys):  # ... and so do their keys
        assert keys.nonzero().flatten().tolist() == want


def test_vision_aid_labels_each_image_token_with_the_object_under_it(processor):
    """A token whose centre lies in an object's box is labelled with that object's shape and colour,
    the other tokens of a shape scene are background, and images that are not shape scenes are
    ignored; the packed batch concatenates the labels in image-token order, with each token's centre."""
    from locate_ros.data.scenes import COLORS, SHAPES
    from locate_ros.training.objective import IGNORE

    sample = make_sample(4, 0, family="single", size=(128, 160))
    ex = build_example(sample, processor)
    gh, gw = ex.grid_hw[0] // 2, ex.grid_hw[1] // 2
    w, h = sample.size
    assert len(ex.cell_shape) == len(ex.cell_color) == len(ex.cell_xy) == gh * gw
    labelled = 0
    for o in sample.objects:  # `single` shapes never overlap
        cx, cy = (o.box[0] + o.box[2]) / 2, (o.box[1] + o.box[3]) / 2
        cell = min(gh - 1, int(cy / h * gh)) * gw + min(gw - 1, int(cx / w * gw))
        fx, fy = ex.cell_xy[cell]
        if o.box[0] <= fx * w < o.box[2] and o.box[1] <= fy * h < o.box[3]:
            assert (ex.cell_shape[cell], ex.cell_color[cell]) == (SHAPES.index(o.shape), list(COLORS).index(o.color))
            labelled += 1
    assert labelled >= 1
    for k, (fx, fy) in enumerate(ex.cell_xy):
        inside = any(o.box[0] <= fx * w < o.box[2] and o.box[1] <= fy * h < o.box[3] for o in sample.objects)
        assert inside or (ex.cell_shape[k], ex.cell_color[k]) == (len(SHAPES), len(COLORS))
    other = build_example(make_sample(4, 1, family="ocr", size=(128, 160)), processor)
    assert set(other.cell_shape) == set(other.cell_color) == {IGNORE}
    batch = pack([other, ex])
    assert batch.cell_shape.tolist() == other.cell_shape + ex.cell_shape
    assert batch.cell_xy.shape == (len(other.cell_xy) + len(ex.cell_xy), 2)
    assert torch.allclose(batch.cell_xy[-1], torch.tensor([(gw - 0.5) / gw, (gh - 0.5) / gh]))


def test_vision_aid_loss_reaches_the_vision_tower_once_its_read_outs_have_learned(tiny_checkpoint, processor):
    """At zero the read-outs send no gradient into the image features; after one nudge they do, and
    the loss and stats come from shape scenes only where labels exist."""
    from locate_ros.model import load_model
    from locate_ros.training.objective import VisionAid

    model = load_model(tiny_checkpoint).train().requires_grad_(True)
    aid = VisionAid(model.cfg.text.hidden_size)
    batch = pack([build_example(make_sample(1, i, family="objects", size=(128, 160)), processor) for i in range(2)])
    loss, stats = joint_loss(model, batch, aid=aid, aid_weight=1.0)
    plain, _ = joint_loss(model, batch)
    assert loss > plain and {"aid_shape_acc", "aid_color_acc", "aid_xy_err"} <= set(stats)

    def aid_gradient_reaches_the_tower() -> bool:
        model.zero_grad()
        aid.loss(model.encode_images(batch.pixel_values, batch.grids), batch)[0].backward()
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.vision_model.parameters())

    assert not aid_gradient_reaches_the_tower()
    assert aid.shape.weight.grad.abs().sum() > 0
    with torch.no_grad():
        for p in aid.parameters():
            p.add_(0.01 * torch.randn_like(p))
    assert aid_gradient_reaches_the_tower()


def test_null_smoothing_moves_part_of_each_null_target_onto_ids_that_are_no_coordinate(tiny_checkpoint, processor):
    from locate_ros.model import load_model
    from locate_ros.training.objective import NULL_RUNNERS_UP, target_logits

    model = load_model(tiny_checkpoint)
    batch = pack([build_example(make_sample(1, i, size=(128, 160)), processor) for i in range(2)])
    t = model.cfg.tokens
    with torch.no_grad():
        plain, stats = joint_loss(model, batch)
        smoothed, _ = joint_loss(model, batch, null_smoothing=0.1)
        logp = torch.log_softmax(target_logits(model, batch), dim=-1)
    targets = batch.target_ids
    is_null = targets == t.null
    assert is_null.any() and not is_null[~batch.is_block_target].any()  # only block rows end in <null>
    ce = -logp[torch.arange(len(targets)), targets]
    runners_up = torch.tensor([getattr(t, name) for name in NULL_RUNNERS_UP])
    assert all(not t.is_coord(int(i)) for i in runners_up)
    by_hand = torch.where(is_null, 0.9 * ce - 0.1 * logp[:, runners_up].mean(-1), ce).mean()
    assert plain.item() == pytest.approx(ce.mean().item(), rel=1e-5)
    assert smoothed.item() == pytest.approx(by_hand.item(), rel=1e-5)
    top4 = logp[is_null].topk(4, dim=-1).indices
    assert stats["null_coord_top4"] == pytest.approx(
        float(((top4 >= t.coord_start) & (top4 <= t.coord_end)).any(-1).float().mean()))


def test_prefix_jitter_moves_only_answer_coordinates_read_as_inputs(processor):
    """--prefix-jitter: the answer's coordinate tokens, as inputs, move by a few bins, the same way for
    the same sample; targets, prompt and block rows stay as they were; the trainer's batches carry it."""
    from locate_ros.training.config import TrainConfig
    from locate_ros.training.train import StepBatches

    t = processor.config.tokens
    sample = make_sample(3, 5, family="objects", size=(128, 160))
    plain = build_example(sample, processor)
    jittered = build_example(sample, processor, prefix_jitter=4.0)
    assert build_example(sample, processor, prefix_jitter=4.0).ids == jittered.ids  # a function of the sample
    assert (jittered.target_rows, jittered.target_ids) == (plain.target_rows, plain.target_ids)  # targets stay true
    answer_start = plain.target_rows[0] + 1
    coords = [i for i in range(answer_start, plain.stream_len) if t.is_coord(plain.ids[i])]
    changed = [i for i, (a, b) in enumerate(zip(plain.ids, jittered.ids)) if a != b]
    assert len(coords) >= 4 and len(changed) >= len(coords) // 2  # most coordinates move (P(0 bins) ~ 0.1 at 4)
    assert set(changed) <= set(coords)  # nothing else: prompt, tags, block anchors and masks
    moves = [jittered.ids[i] - plain.ids[i] for i in changed]
    assert max(abs(m) for m in moves) <= 24 and all(t.is_coord(jittered.ids[i]) for i in changed)
    # centred on the truth: round(N(0, 0.3)) is 0 for ~9 in 10 coordinates (pooled over a few samples)
    moved = total = 0
    for index in range(6, 14):
        other = make_sample(3, index, family="objects", size=(128, 160))
        a, b = build_example(other, processor), build_example(other, processor, prefix_jitter=0.3)
        total += sum(t.is_coord(tok) for tok in a.ids[a.target_rows[0] + 1:a.stream_len])
        moved += sum(x != y for x, y in zip(a.ids, b.ids))
    assert total >= 20 and moved < total / 4, (moved, total)

    cfg = TrainConfig(examples_per_step=2, image_size=(128, 160), families=("objects",))
    batches = [StepBatches(c, processor, 0, 1)[0] for c in (cfg, TrainConfig(**{**cfg.__dict__, "prefix_jitter": 4.0}))]
    assert torch.equal(batches[0].target_ids, batches[1].target_ids)
    assert not torch.equal(batches[0].ids, batches[1].ids)


def test_the_instance_key_aid_asks_each_coordinate_row_of_a_box_block_for_its_x1(tiny_checkpoint, processor):
    """instance_key_rows picks exactly the block rows that predict a coordinate of a box or point, each
    with its item's first coordinate; joint_loss adds `weight` x the cross-entropy of that key, read off
    the asked layer's output through the final norm and the tied head (by hand here)."""
    from locate_ros.model import load_model
    from locate_ros.training.objective import NoCache, instance_key_rows

    model = load_model(tiny_checkpoint)
    t = model.cfg.tokens
    samples = [make_sample(3, 0, family="objects", size=(128, 160)), make_sample(2, 3, family="pointing", size=(128, 160)),
               make_sample(3, 2, family="ocr", size=(128, 160))]
    batch = pack([build_example(s, processor) for s in samples])
    rows, keys = instance_key_rows(batch, t)
    want_rows, want_keys, per_item = [], [], []
    block_rows = batch.is_block_target.nonzero()[:, 0].tolist()
    for i in range(0, len(block_rows), 6):
        block = [int(batch.target_ids[r]) for r in block_rows[i:i + 6]]
        if block[0] == t.box_start and t.is_coord(block[1]):
            coords = [j for j in range(1, 6) if t.is_coord(block[j])]
            want_rows += [block_rows[i + j] for j in coords]
            want_keys += [block[1]] * len(coords)
            per_item.append(len(coords))
    assert rows.tolist() == want_rows and keys.tolist() == want_keys
    assert {2, 4} <= set(per_item) and len(set(want_keys)) > 1  # boxes and points, at several places

    with torch.no_grad():
        plain, _ = joint_loss(model, batch)
        aided, stats = joint_loss(model, batch, instance_key_weight=0.3, instance_key_layer=0)
        feats = model.encode_images(batch.pixel_values, batch.grids)
        _, outs = model.language_model.model(model.embed(batch.ids, feats), batch.positions, batch.mask, NoCache(),
                                             return_layer_outputs=True, segments=Segments.of(batch.lengths))
        lm = model.language_model
        key_logits = lm.logits(lm.model.norm(outs[0][batch.target_rows[rows]]))
        by_hand = torch.nn.functional.cross_entropy(key_logits, keys)
    assert aided.item() == pytest.approx(plain.item() + 0.3 * by_hand.item(), rel=1e-5)
    best = key_logits[:, t.coord_start:t.coord_end + 1].argmax(-1) + t.coord_start
    assert stats["instance_key_err_bins"] == pytest.approx(float((best - keys).abs().float().mean()))


def test_following_the_first_coordinate_retargets_a_block_onto_the_later_box_its_x1_row_names(tiny_checkpoint, processor):
    """A box block whose x1 row names a later box of its group trains its y1, x2, y2 rows on that box;
    a block whose x1 row names its own box, an earlier box or no box keeps its targets, and so does
    every other row (x1 rows included)."""
    from locate_ros.training.objective import follow_first_coordinate

    t = processor.config.tokens
    sample = next(s for s in (make_sample(4, i, family="objects", size=(128, 160)) for i in range(50))
                  if max(len(g.boxes) for g in s.targets) >= 3)
    batch = pack([build_example(sample, processor)])
    rows = batch.is_block_target.nonzero()[:, 0]
    blocks = batch.target_ids[rows].reshape(-1, 6)
    boxes = [i for i, b in enumerate(blocks.tolist()) if b[0] == t.box_start and all(t.is_coord(v) for v in b[1:5])]
    # a run of three boxes of one group, with x1s far enough apart to tell them apart
    first = next(i for i in boxes if i + 1 in boxes and i + 2 in boxes
                 and min(abs(int(blocks[i, 1] - blocks[j, 1])) for j in (i + 1, i + 2)) > 30
                 and abs(int(blocks[i + 1, 1] - blocks[i + 2, 1])) > 30)
    logits = torch.zeros(len(batch.target_ids), processor.config.tokens.coord_end + 10)
    x1_rows = rows.reshape(-1, 6)[:, 1]
    logits[x1_rows, blocks[:, 1]] = 5.0  # every x1 row names its own box ...
    logits[x1_rows[first], blocks[first + 2, 1] + 3] = 9.0  # ... but this one the box after next (3 bins off)
    logits[x1_rows[first + 2], blocks[first, 1]] = 9.0  # and this one an earlier box: not followed
    out, followed, n_boxes = follow_first_coordinate(batch.target_ids, logits, batch, t)
    assert followed == 1 and n_boxes == len(boxes)
    changed = (out != batch.target_ids).nonzero()[:, 0].tolist()
    block_rows = rows.reshape(-1, 6)
    want = blocks.clone()
    want[first, 2:5] = blocks[first + 2, 2:5]
    assert out[block_rows].tolist() == want.tolist()
    assert set(changed) <= set(block_rows[first, 2:5].tolist()) and changed


def test_colour_rival_rows_are_the_rows_that_pick_those_boxes_and_weigh_w_times(tiny_checkpoint, processor):
    """The x1 stream row and the four coordinate block rows of each box that only its colour tells from
    the instance taken next (data.families.colour_rivals) are marked, as target rows and as grounding
    rows; colour_rival_weight W counts them W times in the cross-entropy's mean."""
    import torch.nn.functional as F

    from locate_ros.data import quantize
    from locate_ros.data.families import colour_rivals
    from locate_ros.model import load_model

    t = processor.config.tokens
    sample = next(s for s in (make_sample(7, i, "same_shape", size=(128, 160), negative_share=0) for i in range(40))
                  if any(colour_rivals(s)) and not all(colour_rivals(s)))
    flags = colour_rivals(sample)
    boxes = [[quantize(v, sample.size[i % 2]) for i, v in enumerate(b)] for target in sample.targets for b in target.boxes]
    ex = build_example(sample, processor)
    targets, marked = np.array(ex.target_ids) - t.coord_start, np.array(ex.colour_rival)
    is_block = np.array(ex.is_block_target)
    want = [b for b, hard in zip(boxes, flags) if hard]
    assert targets[marked & ~is_block].tolist() == [b[0] for b in want]  # x1 alone in the stream ...
    assert targets[marked & is_block].reshape(-1, 4).tolist() == want  # ... all four in the blocks
    prev = np.flatnonzero(marked & ~is_block) - 1
    assert (targets[prev] == t.box_start - t.coord_start).all()  # each right after its `<box>`
    rows = np.array(ex.target_rows)
    assert sorted(np.array(ex.ground_rows)[np.array(ex.ground_colour_rival)]) == sorted(rows[marked])
    anywhere = np.array(build_example(sample, processor, rivals_anywhere=True).colour_rival)
    wider = [b[0] for b, hard in zip(boxes, colour_rivals(sample, anywhere=True)) if hard]
    assert targets[anywhere & ~is_block].tolist() == wider and (anywhere | ~marked).all()

    model = load_model(tiny_checkpoint)
    batch, logits = training_logits(model, [ex, build_example(make_sample(1, 0, "objects", size=(128, 160)), processor)])
    per_row = F.cross_entropy(logits[batch.target_rows], batch.target_ids, reduction="none")
    weights = torch.where(batch.colour_rival, 3.0, 1.0)
    with torch.no_grad():
        plain, stats = joint_loss(model, batch)
        weighted, _ = joint_loss(model, batch, colour_rival_weight=3.0)
        grounded = [joint_loss(model, batch, ground_weight=1.0, colour_rival_weight=w) for w in (1.0, 3.0)]
    assert plain.item() == pytest.approx(per_row.mean().item(), rel=1e-5)
    assert weighted.item() == pytest.approx(((per_row * weights).sum() / weights.sum()).item(), rel=1e-5)
    assert weighted.item() != pytest.approx(plain.item(), rel=1e-4)
    coords = logits[batch.target_rows][batch.colour_rival, t.coord_start:t.coord_end + 1].argmax(-1)
    err = (coords + t.coord_start - batch.target_ids[batch.colour_rival]).abs().float().mean()
    assert stats["colour_rival_err_bins"] == pytest.approx(err.item())
    # the grounding aid is weighted the same way: its mass (on those rows and the rest) moves with W
    (loss1, stats1), (loss3, stats3) = grounded
    assert loss1.item() - plain.item() == pytest.approx(-np.log(stats1["ground_mass"]), rel=1e-4)
    assert loss3.item() - weighted.item() == pytest.approx(-np.log(stats3["ground_mass"]), rel=1e-4)
    assert stats3["ground_mass"] != pytest.approx(stats1["ground_mass"], rel=1e-4)
