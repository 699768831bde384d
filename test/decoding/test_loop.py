"""The decode loop's bounds, termination and branches, on the real tiny model (forced or random logits)."""
import dataclasses

import numpy as np
import pytest
import torch
from conftest import load_json, load_npz

from locate_ros.backends.torch_backend import TorchBackend
from locate_ros.decoding.hybrid import HybridThresholds
from locate_ros.decoding.loop import DecodeOptions, generate
from locate_ros.model import load_model
from locate_ros.testing.forcing import ForceAnswer, box_answer, random_boxes


@pytest.fixture(scope="module")
def setup(tiny_checkpoint):
    model = load_model(tiny_checkpoint)
    be = TorchBackend(model)
    feats = be.encode_image(load_npz("a_vision.npz")["pixel_values"], [(4, 6)])
    return be, feats, load_json("b_prompt.json")["input_ids"], model.cfg.tokens


@pytest.mark.parametrize("mode,steps_per_box", [("slow", 6), ("fast", 1), ("hybrid", 1)])
def test_forced_boxes_come_out_whole_with_one_forward_per_box_in_parallel_modes(setup, mode, steps_per_box):
    be, feats, prompt, tok = setup
    boxes = random_boxes(7, seed=3)
    answer = box_answer(boxes, tok)
    gen = generate(be, prompt, feats, tok, DecodeOptions(mode=mode, max_new_tokens=200), logits_hook=ForceAnswer(answer))
    assert gen.token_ids == answer and gen.stop_reason == "eos"
    assert gen.forward_steps == 7 * steps_per_box + 1  # + the step that reads <|im_end|>
    assert gen.hybrid_fallbacks == 0
    assert len(gen.token_probs) == len(gen.token_ids) and min(gen.token_probs) > 0.99


@pytest.mark.parametrize("mode", ["fast", "hybrid", "hybrid-verify"])
def test_instance_anchored_windows_write_each_box_after_its_x1(setup, mode):
    """A box-aligned window commits `<box>` x1; each window after it is anchored at an x1 and writes
    the rest of that box and the next box's `<box>` x1: one forward per box, and one more for the
    answer's last box (closed alone) before the window that reads the end."""
    be, feats, prompt, tok = setup
    answer = box_answer(random_boxes(7, seed=3), tok)
    rule = HybridThresholds(verify_ratio=1.0 if mode == "hybrid-verify" else 0.0)
    opts = DecodeOptions(mode=mode.split("-")[0], max_new_tokens=200, thresholds=rule, instance_anchored=True)
    gen = generate(be, prompt, feats, tok, opts, logits_hook=ForceAnswer(answer))
    assert gen.token_ids == answer and gen.stop_reason == "eos" and gen.hybrid_fallbacks == 0
    if mode == "hybrid-verify":
        assert [s.pattern for s in gen.steps] == ["draft"] * 9  # each checked by the next, `<|im_end|>` by its own row
    else:
        assert [s.pattern for s in gen.steps] == ["box_x1"] + ["anchored_box"] * 6 + ["anchored_end", "im_end"]
    assert [len(s.appended) for s in gen.steps][:8] == [2] + [6] * 6 + [4]
    assert len(gen.token_probs) == len(answer) and min(gen.token_probs) > 0.99


def test_max_new_tokens_bounds_every_mode_even_without_an_end(setup):
    be, feats, prompt, tok = setup
    endless = box_answer(random_boxes(50), tok)[:-1]  # no <|im_end|>
    for mode in ("slow", "fast", "hybrid"):
        gen = generate(be, prompt, feats, tok, DecodeOptions(mode=mode, max_new_tokens=20), logits_hook=ForceAnswer(endless))
        assert gen.stop_reason == "max_new_tokens"
        # the reference's bound: the loop runs while fewer than max_new tokens exist, so a window overshoots by < 6
        assert 20 <= len(gen.token_ids) < 20 + 6


def test_max_boxes_and_max_time_stop_the_loop(setup):
    be, feats, prompt, tok = setup
    hook = ForceAnswer(box_answer(random_boxes(30), tok))
    gen = generate(be, prompt, feats, tok, DecodeOptions(mode="fast", max_new_tokens=500, max_boxes=4), logits_hook=hook)
    assert gen.stop_reason == "max_boxes" and gen.token_ids.count(tok.box_end) == 4 and gen.forward_steps == 4
    gen = generate(be, prompt, feats, tok, DecodeOptions(mode="slow", max_new_tokens=500, max_time_s=0.0), logits_hook=hook)
    assert gen.stop_reason == "max_time" and gen.forward_steps == 1


def test_hybrid_falls_back_for_an_ambiguous_coordinate_and_returns_to_parallel(setup):
    """A window whose y1 is split between two far-apart bins is finished token by token."""
    be, feats, prompt, tok = setup
    box = (100, 200, 300, 400)
    answer = box_answer([box, (10, 20, 30, 40)], tok)

    def hook(call, kind, logits, n):
        out = ForceAnswer(answer)(call, kind, logits, n)
        if call == 0:  # row 2 (y1): 0.55 on <200>, 0.45 on <280>: ambiguous (p < 0.9, spread 80 > 60)
            out[2].fill_(-1e4)
            out[2, tok.coord_token(200)] = 0.2
            out[2, tok.coord_token(280)] = 0.0
        return out

    gen = generate(be, prompt, feats, tok, DecodeOptions(mode="hybrid", max_new_tokens=100), logits_hook=hook)
    assert gen.token_ids == answer
    assert [s.kind for s in gen.steps] == ["mtp", "ar", "ar", "ar", "ar", "mtp", "mtp"]
    assert [s.pattern for s in gen.steps][:2] == ["error_box", "coord_ar"] and gen.hybrid_fallbacks == 1
    fast = generate(be, prompt, feats, tok, DecodeOptions(mode="fast", max_new_tokens=100), logits_hook=hook)
    assert fast.hybrid_fallbacks == 0 and fast.forward_steps == 3  # fast keeps the top coordinate


@pytest.mark.parametrize("mode", ["slow", "fast", "hybrid", "hybrid-verify", "fast-anchored", "hybrid-anchored"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_logits_always_terminate_within_bounds(setup, mode, seed):
    """Garbage (random logits, boosted on the special tokens the decisions look at) still ends in bounds."""
    be, feats, prompt, tok = setup
    g = torch.Generator().manual_seed(seed)
    special = torch.tensor([tok.box_start, tok.box_end, tok.ref_start, tok.ref_end, tok.none, tok.null, tok.im_end,
                            tok.text_mask, *range(tok.coord_start, tok.coord_start + 40)])

    def hook(call, kind, logits, n):
        out = torch.randn(logits.shape, generator=g)
        out[:, special] += 6 * torch.rand((logits.shape[0], len(special)), generator=g)
        return out

    rule = HybridThresholds(verify_ratio=0.5 if mode == "hybrid-verify" else 0.0)
    opts = DecodeOptions(mode=mode.split("-")[0], max_new_tokens=60, temperature=0.7 if seed == 2 else 0.0, seed=seed,
                         top_p=0.9, thresholds=rule, instance_anchored=mode.endswith("anchored"))
    gen = generate(be, prompt, feats, tok, opts, logits_hook=hook)
    assert gen.stop_reason in ("eos", "max_new_tokens")
    assert len(gen.token_ids) < 60 + 6 and gen.forward_steps <= (2 * 60 if mode == "hybrid-anchored" else 60)
    # every step commits a token, but a hybrid anchored window that keeps nothing: the AR step after it does
    for s, after in zip(gen.steps, gen.steps[1:] + [None]):
        assert len(s.appended) >= 1 or (s.pattern == "anchored_error" and after is not None and after.kind == "ar")


VERIFY_ALL = DecodeOptions(mode="hybrid", max_new_tokens=100, thresholds=HybridThresholds(verify_ratio=1.0))


def split_hook(causal, window):
    """Causal rows (the token-by-token choices) from one hook, window rows (the drafts) from another."""
    return lambda call, kind, logits, n: (causal if kind == "ar" else window)(call, kind, logits, n)


def test_verifying_hybrid_answers_what_token_by_token_decoding_picks_in_fewer_forwards(setup):
    """Drafts are checked against the causal rows: a coordinate drafted 7 bins off is replaced and the
    rest of its box kept (it holds); a window that drafts the end where a box follows is overruled
    and that box finished token by token."""
    be, feats, prompt, tok = setup
    answer = box_answer([(100, 200, 300, 400), (110, 210, 310, 410), (120, 220, 320, 420)], tok)
    drafted = answer[:12] + [tok.im_end]
    drafted[7] = tok.coord_token(117)  # box 2's x1
    hook = split_hook(ForceAnswer(answer), ForceAnswer(drafted))
    gen = generate(be, prompt, feats, tok, VERIFY_ALL, logits_hook=hook)
    slow = generate(be, prompt, feats, tok, DecodeOptions(mode="slow", max_new_tokens=100), logits_hook=hook)
    assert gen.token_ids == slow.token_ids == answer and gen.stop_reason == "eos"
    assert [s.kind for s in gen.steps] == ["mtp"] * 4 + ["ar"] * 5 + ["mtp"]
    assert [s.pattern for s in gen.steps][:5] == ["draft", "draft", "rejected", "rejected", "token"]
    assert gen.steps[2].appended == answer[7:12]  # the choice, then the draft's kept rest
    assert gen.hybrid_fallbacks == 2 and slow.forward_steps == len(answer)
    assert len(gen.token_probs) == len(answer) and min(gen.token_probs) > 0.99


def test_an_anchored_draft_with_a_wrong_x1_is_redrafted_from_the_corrected_x1(setup):
    """Instance-anchored verification: when a check replaces a box's x1, the rest of the old draft
    (another instance's edges) is dropped and the next window, anchored at the new x1, drafts them."""
    be, feats, prompt, tok = setup
    answer = box_answer([(100, 200, 300, 400), (110, 210, 310, 410), (120, 220, 320, 420)], tok)
    drafted = list(answer)
    drafted[7] = tok.coord_token(117)  # box 2's x1, drafted by the window anchored at box 1's x1
    hook = split_hook(ForceAnswer(answer), ForceAnswer(drafted))
    gen = generate(be, prompt, feats, tok, dataclasses.replace(VERIFY_ALL, instance_anchored=True), logits_hook=hook)
    assert gen.token_ids == answer and gen.stop_reason == "eos"
    assert [(s.pattern, s.appended) for s in gen.steps[1:4]] == [
        ("draft", drafted[2:8]), ("rejected", [answer[7]]), ("draft", answer[8:14])]
    assert gen.hybrid_fallbacks == 1 and all(s.kind == "mtp" for s in gen.steps)


def test_verify_ratio_keeps_a_draft_the_causal_row_finds_likely_enough(setup):
    """Box 2's x1: the causal row gives <110> 0.6 and the drafted <117> 0.4. A ratio of 0.5 keeps the
    draft (0.4 >= 0.5 * 0.6), a ratio of 1 takes the row's choice."""
    be, feats, prompt, tok = setup
    answer = box_answer([(100, 200, 300, 400), (110, 210, 310, 410)], tok)
    drafted = list(answer)
    drafted[7] = tok.coord_token(117)
    force = ForceAnswer(answer)

    def causal(call, kind, logits, n):
        out = force(call, kind, logits, n)
        if 0 <= 7 - n < out.shape[0]:
            out[7 - n] = -1e4
            out[7 - n, tok.coord_token(110)], out[7 - n, tok.coord_token(117)] = 0.0, float(np.log(0.4 / 0.6))
        return out

    hook = split_hook(causal, ForceAnswer(drafted))
    for ratio, expect in ((0.5, drafted), (1.0, answer)):
        opts = dataclasses.replace(VERIFY_ALL, thresholds=HybridThresholds(verify_ratio=ratio))
        assert generate(be, prompt, feats, tok, opts, logits_hook=hook).token_ids == expect, ratio
    assert generate(be, prompt, feats, tok, DecodeOptions(mode="slow", max_new_tokens=100),
                    logits_hook=hook).token_ids == answer


def test_verifying_hybrid_stops_where_slow_mode_stops(setup):
    """max_new_tokens and max_boxes are judged on verified tokens: the answer is cut exactly where slow
    mode's ends (fast and reference hybrid overshoot by up to a window); max_time keeps the draft."""
    be, feats, prompt, tok = setup
    endless = box_answer(random_boxes(50), tok)[:-1]
    hook = ForceAnswer(endless)
    for bound in (dict(max_new_tokens=20), dict(max_new_tokens=500, max_boxes=4)):
        gen = generate(be, prompt, feats, tok, dataclasses.replace(VERIFY_ALL, **bound), logits_hook=hook)
        slow = generate(be, prompt, feats, tok, DecodeOptions(mode="slow", **bound), logits_hook=hook)
        assert gen.token_ids == slow.token_ids and gen.stop_reason == slow.stop_reason, bound
        assert len(gen.token_probs) == len(gen.token_ids) and gen.forward_steps < slow.forward_steps / 3
    gen = generate(be, prompt, feats, tok, dataclasses.replace(VERIFY_ALL, max_time_s=0.0), logits_hook=hook)
    assert gen.stop_reason == "max_time" and gen.forward_steps == 1 and gen.token_ids == endless[:6]  # unchecked


def test_verifying_hybrid_and_causal_readout_judge_each_row_with_its_own_history(setup):
    """Repetition penalty: the row that predicts x2 = <300> must not be penalised for the <300> the
    draft holds at that very place (slow mode has not written it yet), or <301> would win there;
    neither when it checks the draft (verification) nor when it rereads it (causal readout)."""
    be, feats, prompt, tok = setup
    answer = box_answer([(100, 200, 300, 400)], tok)
    force = ForceAnswer(answer)

    def causal(call, kind, logits, n):
        out = force(call, kind, logits, n)
        if 0 <= 3 - n < out.shape[0]:
            out[3 - n] = -1e4
            out[3 - n, tok.coord_token(300)], out[3 - n, tok.coord_token(301)] = 1.0, 0.9
        return out

    hook = split_hook(causal, force)
    for opts in (DecodeOptions(mode="slow", max_new_tokens=100, repetition_penalty=1.3),
                 dataclasses.replace(VERIFY_ALL, repetition_penalty=1.3),
                 DecodeOptions(mode="fast", max_new_tokens=100, repetition_penalty=1.3, instance_anchored=True)):
        gen = generate(be, prompt, feats, tok, opts, logits_hook=hook)
        assert gen.token_ids == answer, opts.mode


@pytest.mark.parametrize("penalty,anchored", [(1.0, False), (1.3, False), (1.0, True)])
def test_verifying_hybrid_at_ratio_1_is_slow_mode_on_the_real_decoder(setup, penalty, anchored):
    """No hook: the tiny checkpoint's own logits, whose windows draft nothing like its causal rows, so
    almost every check fails somewhere; the answer is still slow mode's, token for token (with a
    repetition penalty each row is judged on its own history; with instance-anchored windows too)."""
    be, feats, prompt, tok = setup
    slow = generate(be, prompt, feats, tok, DecodeOptions(mode="slow", max_new_tokens=40, repetition_penalty=penalty))
    gen = generate(be, prompt, feats, tok, dataclasses.replace(VERIFY_ALL, max_new_tokens=40, repetition_penalty=penalty,
                                                               instance_anchored=anchored))
    assert len(set(slow.token_ids)) > 5  # a real sequence, not one token repeated
    assert gen.token_ids == slow.token_ids and gen.stop_reason == slow.stop_reason
    assert any(s.pattern == "rejected" for s in gen.steps) and gen.forward_steps <= slow.forward_steps


@pytest.mark.parametrize("mode", ["fast", "hybrid"])
def test_causal_readout_answers_each_box_s_x2_y2_as_the_next_step_s_causal_rows_pick_them(setup, mode):
    """Instance-anchored windows draft y1 x2 y2 side by side; the next step re-runs the drafted box
    causally (to cache it), and its rows at y1 and x2 pick x2 and y2 knowing the edges before them.
    The answer takes those picks (the last box's too: the step that reads the end re-runs it), the
    cache keeps the drafts (Step.appended), and it costs no forward. Off, the drafts stand."""
    be, feats, prompt, tok = setup
    answer = box_answer([(100, 200, 300, 400), (110, 210, 310, 410), (120, 220, 320, 420)], tok)
    drafted = list(answer)
    for i in (3, 4, 9, 10, 15, 16):  # every box's x2 and y2, drafted 5 bins off
        drafted[i] += 5
    hook = split_hook(ForceAnswer(answer), ForceAnswer(drafted))
    opts = DecodeOptions(mode=mode, max_new_tokens=100, instance_anchored=True)
    gen = generate(be, prompt, feats, tok, opts, logits_hook=hook)
    assert gen.token_ids == answer and gen.stop_reason == "eos" and gen.hybrid_fallbacks == 0
    assert [t for s in gen.steps for t in s.appended] == drafted  # what the cache holds
    assert len(gen.token_probs) == len(answer) and min(gen.token_probs) > 0.99  # the picks' own probabilities
    off = generate(be, prompt, feats, tok, dataclasses.replace(opts, causal_readout=False), logits_hook=hook)
    assert off.token_ids == drafted and off.forward_steps == gen.forward_steps == 5


def test_a_hybrid_anchored_window_with_no_coordinate_after_x1_finishes_the_box_token_by_token(setup):
    """The window anchored at box 1's x1 holds no coordinate where y1 goes: the reference's rule keeps
    the window's valid prefix (nothing here) and goes on token by token from the x1, whose row the
    next step re-runs (the cache already held it)."""
    be, feats, prompt, tok = setup
    answer = box_answer([(100, 200, 300, 400), (110, 210, 310, 410)], tok)
    force = ForceAnswer(answer)
    text = [i for i in range(tok.coord_start) if i not in (tok.box_start, tok.box_end, tok.none, tok.null)][:4]

    def hook(call, kind, logits, n):
        out = force(call, kind, logits, n)
        if call == 1 and kind == "mtp":  # the first anchored window: its y1 row names no coordinate
            out[0] = -1e4
            out[0, text] = torch.tensor([4.0, 3.0, 2.0, 1.0])
        return out

    opts = DecodeOptions(mode="hybrid", max_new_tokens=100, instance_anchored=True)
    gen = generate(be, prompt, feats, tok, opts, logits_hook=hook)
    assert gen.token_ids == answer and gen.stop_reason == "eos" and gen.hybrid_fallbacks == 1
    assert [(s.kind, s.pattern, len(s.appended)) for s in gen.steps][:6] == [
        ("mtp", "box_x1", 2), ("mtp", "anchored_error", 0), ("ar", "coord_ar", 1), ("ar", "coord_ar", 1),
        ("ar", "coord_ar", 1), ("ar", "box_end_ar", 1)]


def test_options_are_validated():
    with pytest.raises(ValueError, match="mode"):
        DecodeOptions(mode="turbo")
    with pytest.raises(ValueError):
        DecodeOptions(max_new_tokens=0)
    with pytest.raises(ValueError):
        DecodeOptions(temperature=-1)
