"""The whole decode loop on the tiny model against the reference generate().

(d) greedy slow / fast / hybrid at repetition penalty 1.0 and 1.1: every token, every step's inputs
(ids, positions, masks of the first calls) and the logits at every read position.
(d2) scripted switching scenarios: every forward is real, but the logits the loop reads are replaced
by the scenario's script (as the golden run did), exercising each hybrid branch on the real cache.
"""
import numpy as np
import pytest
import torch
from conftest import dense_rows, load_json, load_npz

from locate_ros.backends.torch_backend import TorchBackend
from locate_ros.decoding.loop import DecodeOptions, generate

LOGIT_ATOL = 2e-4  # see test/model/test_parity_language.py


class RecordingBackend(TorchBackend):
    """The real backend, also keeping each forward's inputs and read logits for comparison."""

    def __init__(self, model):
        super().__init__(model)
        self.calls = []

    def forward(self, input_ids, position_ids, attention_mask, num_logits, image_features=None):
        past = self.cache_length
        logits = super().forward(input_ids, position_ids, attention_mask, num_logits, image_features)
        self.calls.append(dict(ids=np.asarray(input_ids), pos=np.asarray(position_ids), mask=attention_mask,
                               past=past, logits=logits.clone(), visual=image_features is not None))
        return logits


CASES = [(m, rp) for m in ("slow", "fast", "hybrid") for rp in ("1.0", "1.1")]


@pytest.mark.parametrize("mode,rp", CASES)
def test_greedy_generation_matches_reference(tiny_model, tiny_features, mode, rp):
    ref = load_json("d_generation.json")[f"{mode}_rp{rp}"]
    z = load_npz(f"d_gen_{mode}_rp{rp}.npz")
    s = ref["settings"]
    prompt = load_json("b_prompt.json")["input_ids"]
    be = RecordingBackend(tiny_model)
    opts = DecodeOptions(mode=mode, max_new_tokens=s["max_new_tokens"], repetition_penalty=s["repetition_penalty"])
    gen = generate(be, prompt, tiny_features, tiny_model.cfg.tokens, opts)

    assert gen.token_ids == ref["response_token_ids"]
    assert [st.appended for st in gen.steps] == [h[2] for h in ref["sampling_history"]]
    assert [st.kind for st in gen.steps] == [h[0] for h in ref["sampling_history"]]
    assert len(be.calls) == ref["n_forward_calls"]
    worst = 0.0
    for k, (call, step) in enumerate(zip(be.calls, ref["steps"])):
        assert (len(call["ids"]), call["past"]) == (step["q_len"], step["past_len"])
        assert call["ids"].tolist() == step["input_ids"]
        assert call["pos"][-len(step["position_ids_tail"]):].tolist() == step["position_ids_tail"]
        assert (call["mask"] is None) == step["mask_is_none"] and call["visual"] == step["has_visual_features"]
        if f"call{k}_mask_visible" in z:
            assert np.array_equal(call["mask"], z[f"call{k}_mask_visible"].astype(bool))
            assert call["pos"].tolist() == z[f"call{k}_position_ids"].tolist()
        top_ids = torch.from_numpy(z[f"call{k}_read_top20_ids"])
        got = call["logits"].gather(1, top_ids)
        worst = max(worst, (got - torch.from_numpy(z[f"call{k}_read_top20_logits"])).abs().max().item())
        assert torch.equal(call["logits"].argmax(-1), top_ids[:, 0])
    print(f"{mode} rp{rp}: {len(be.calls)} forwards, max |logit diff| at read positions {worst:.2e}")
    assert worst < LOGIT_ATOL


def scripted_hook(script, vocab, background):
    def hook(call, kind, logits, n_generated):
        assert len(script[call]) == logits.shape[0]
        return dense_rows(script[call], background, vocab)

    return hook


SCENARIOS = ["A_hybrid", "B_hybrid_ar_exit", "C_fast", "D_slow", "E_hybrid_rp1.1_topp0.9"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_scripted_switching_scenario_matches_reference(tiny_model, tiny_features, name):
    doc = load_json("d_scripted_generation.json")
    sc = doc["scenarios"][name]
    s = sc["settings"]
    be = RecordingBackend(tiny_model)
    opts = DecodeOptions(mode=s["generation_mode"], max_new_tokens=s["max_new_tokens"], top_p=s["top_p"],
                         top_k=s["top_k"], repetition_penalty=s["repetition_penalty"])
    gen = generate(be, doc["prompt_input_ids"], tiny_features, tiny_model.cfg.tokens, opts,
                   logits_hook=scripted_hook(sc["script"], doc["vocab_size"], doc["background_logit"]))
    assert gen.token_ids == sc["generated_token_ids"]
    assert len(gen.steps) == len(sc["calls"])
    for call, st, rec in zip(sc["calls"], gen.steps, be.calls):
        assert st.kind == call["kind"] and st.appended == call["appended_tokens"]
        assert (st.q_len, st.past_len) == (call["q_len"], call["past_len"])
        assert rec["ids"][-len(call["input_ids_tail"]):].tolist() == call["input_ids_tail"]
        assert rec["pos"][-len(call["position_ids_tail"]):].tolist() == call["position_ids_tail"]
    # the ambiguous box of scenario A is the one hybrid fallback; fast mode never falls back
    if name.startswith(("A_", "E_")):
        assert gen.hybrid_fallbacks == 2 and gen.stop_reason == "eos"
    if name == "C_fast":
        assert gen.hybrid_fallbacks == 0
