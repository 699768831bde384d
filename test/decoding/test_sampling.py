"""Sampling against the reference's golden `sample_tokens` steps and small helpers (golden README (e))."""

import pytest
import torch
from conftest import dense_rows, load_json, pure_function_token_ids

from locate_ros.decoding import sampling
from locate_ros.decoding.hybrid import decode_ref
from locate_ros.decoding.sampling import (
    apply_repetition_penalty,
    sample_tokens,
    top_k_logits,
    top_p_logits,
)

E = load_json("e_pure_functions.json")
V = E["vocab_size"]
TOK = pure_function_token_ids()


def dense(rows, fill):
    return dense_rows(rows, fill, V)


CASES = E["sample_tokens"]
# A softmax over the 152,681-id vocabulary is a float32 sum whose rounding depends on the order the
# CPU's vector width gives it: PyTorch's AVX2 kernels reproduce the golden probabilities bit for bit,
# its AVX-512 kernels differ by up to 4e-5 relative (a row of 152,676 equal background logits). The
# decisions (x0, box_avg) are compared exactly.
PROB_RTOL = 1e-4


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_sample_tokens_golden(case):
    kw = case["kwargs"]  # kw["keep_k"] (5) is never read by the reference: the effective keep_k is 4
    s = sample_tokens(
        dense(case["logits_rows"], case["background_logit"]), case["generated"], tokens=TOK,
        mode=kw["generation_mode"], temperature=kw["temperature"], top_p=kw["top_p"], top_k=kw["top_k"],
        repetition_penalty=kw["repetition_penalty"],
    )
    assert s.x0 == case["x0"]
    torch.testing.assert_close(s.confidence, torch.tensor(case["confidence"]), rtol=PROB_RTOL, atol=1e-6)
    for row, expected in zip(s.probs, case["probs_at_listed_ids"], strict=True):
        ids = [int(k) for k in expected]
        torch.testing.assert_close(row[ids], torch.tensor(list(expected.values())), rtol=PROB_RTOL, atol=1e-6)
    # The reference's box_avg chains decode_bbox_avg -> decode_ref -> [0] ("use x0"); ours stops
    # after decode_bbox_avg and mtp_decision does the rest.
    if case["box_avg"] is None:
        assert s.box_avg is None
    else:
        window = s.box_avg if s.box_avg is not None else decode_ref(s.probs, TOK)
        assert (window if window is not None else [0]) == case["box_avg"]


HELPERS = E["small_helpers"]


@pytest.mark.parametrize("case", HELPERS, ids=[f"{c['fn']}-{i}" for i, c in enumerate(HELPERS)])
def test_small_helpers_golden(case):
    logits = torch.tensor(case["logits"], dtype=torch.float32)
    if case["fn"] == "apply_repetition_penalty":  # per-row histories with -1 padding and ids >= V
        out = apply_repetition_penalty(logits, torch.tensor(case["input_ids"]), case["repetition_penalty"])
    elif case["fn"] == "top_p_logits":
        out = top_p_logits(logits, case["top_p"])
    else:
        out = top_k_logits(logits, case["top_k"])
    torch.testing.assert_close(out, torch.tensor(case["output"], dtype=torch.float32), rtol=0, atol=1e-6)


def _naive_penalty(logits, generated, penalty):
    out = logits.clone()
    for i in set(generated):
        col = out[:, i]
        out[:, i] = torch.where(col > 0, col / penalty, col * penalty)
    return out


def test_repetition_penalty_matches_naive_and_accepts_unique_ids():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, V, generator=g) * 5
    generated = torch.randint(0, V, (500,), generator=g)
    generated = torch.cat([generated, generated[:100]])  # repeats count once
    before = logits.clone()
    out = apply_repetition_penalty(logits, generated, 1.3)
    assert torch.equal(logits, before)  # pure: the input is untouched
    assert torch.equal(out, _naive_penalty(logits, generated.tolist(), 1.3))
    assert torch.equal(apply_repetition_penalty(logits, generated.unique(), 1.3), out)
    assert torch.equal(apply_repetition_penalty(logits, generated.tolist(), 1.3), out)
    assert apply_repetition_penalty(logits, generated, 1.0) is logits


def test_penalty_zero_logit_is_multiplied():
    logits = torch.tensor([[0.0, 2.0, -2.0]])
    out = apply_repetition_penalty(logits, [0, 1, 2], 2.0)
    assert out.tolist() == [[0.0, 1.0, -4.0]]


def test_top_p_keeps_the_first_token_and_top_k_keeps_ties():
    logits = torch.tensor([[5.0, 1.0, 0.0, 0.0]])
    fill = torch.finfo(torch.float32).min
    assert top_p_logits(logits, 0.01).tolist() == [[5.0, fill, fill, fill]]
    assert top_k_logits(torch.tensor([[3.0, 1.0, 1.0, 0.0]]), 2).tolist() == [[3.0, 1.0, 1.0, fill]]
    assert torch.equal(top_k_logits(logits, 100), logits)


def test_no_vocab_sort_without_top_p_or_top_k(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("filter called without being asked for")

    monkeypatch.setattr(sampling, "top_p_logits", boom)
    monkeypatch.setattr(sampling, "top_k_logits", boom)
    monkeypatch.setattr(torch, "sort", boom)
    s = sample_tokens(torch.randn(6, V), [1], tokens=TOK, mode="hybrid", top_p=1.0)
    assert len(s.x0) == 6


def test_ar_step_and_slow_window_have_no_box_avg():
    logits = dense([{TOK.box_start: 9.0}] * 6, -20.0)
    assert sample_tokens(logits[:1], [1], tokens=TOK, mode="hybrid").box_avg is None
    assert sample_tokens(logits, [1], tokens=TOK, mode="slow").box_avg is None


def test_temperature_sampling_is_reproducible_and_matches_categorical():
    logits = torch.randn(6, V, generator=torch.Generator().manual_seed(1)) * 3
    kw = dict(tokens=TOK, mode="fast", temperature=0.7, top_p=0.9, repetition_penalty=1.1)
    a = sample_tokens(logits, [5, 6], generator=torch.Generator().manual_seed(7), **kw)
    b = sample_tokens(logits, [5, 6], generator=torch.Generator().manual_seed(7), **kw)
    assert a.x0 == b.x0
    torch.testing.assert_close(a.confidence, a.probs[torch.arange(6), a.x0])
    # Same draw as the reference's torch.distributions.Categorical(probs).sample() on the global RNG.
    torch.manual_seed(3)
    ref = torch.distributions.Categorical(probs=a.probs).sample().tolist()
    torch.manual_seed(3)
    assert sample_tokens(logits, [5, 6], **kw).x0 == ref


def test_temperature_sampling_follows_a_peaked_distribution():
    logits = dense([{TOK.box_start: 30.0}] + [{TOK.coord_token(7): 30.0}] * 4 + [{TOK.box_end: 30.0}], 0.0)
    s = sample_tokens(logits, [1], tokens=TOK, mode="hybrid", temperature=1.0, top_k=3,
                      generator=torch.Generator().manual_seed(0))
    assert s.x0 == [TOK.box_start, *[TOK.coord_token(7)] * 4, TOK.box_end]
    assert s.box_avg == s.x0


def test_bf16_logits_are_sampled_in_float32():
    s = sample_tokens(torch.randn(1, V).bfloat16(), [1], tokens=TOK, mode="slow")
    assert s.probs.dtype == torch.float32
