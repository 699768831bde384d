"""Qwen2 decoder against the reference: prefill (b_prefill) and both PBD window steps (c_pbd_window).

Full-vocabulary logits are compared on each row's reference top-64 entries and on a fixed sample of
1024 columns (test/golden keeps that compact form; tools/compact_golden.py made it).
"""
import numpy as np
import torch
from conftest import load_json, load_npz

from locate_ros.backends.torch_backend import TorchBackend
from locate_ros.decoding.blocks import mtp_inputs
from locate_ros.model.language import KVCache

# smallest top1-top2 gap on any read position of the golden greedy runs is 0.0067 (fast, rp 1.1);
# we reach ~2.5e-5 (logits of magnitude ~25), so 2e-4 keeps a 30x margin under that gap
LOGIT_ATOL = 2e-4


def logit_error(logits: torch.Tensor, z: dict, name: str) -> float:
    top = torch.from_numpy(z[f"{name}__top_ids"])
    cols = torch.from_numpy(z[f"{name}__sample_cols"])
    e_top = (logits.gather(1, top) - torch.from_numpy(z[f"{name}__top_logits"])).abs().max().item()
    e_cols = (logits[:, cols] - torch.from_numpy(z[f"{name}__sample_logits"])).abs().max().item()
    assert torch.equal(logits.argmax(-1), top[:, 0]), f"{name}: argmax differs from the reference"
    return max(e_top, e_cols)


def test_prefill_matches_reference(tiny_model, tiny_features):
    z = load_npz("b_prefill_compact.npz")
    ids = torch.from_numpy(z["input_ids"])
    assert ids.tolist() == load_json("b_prompt.json")["input_ids"]
    with torch.inference_mode():
        embeds = tiny_model.embed(ids, tiny_features)
        cache = KVCache(tiny_model.cfg.text, 64, torch.float32, "cpu")
        mask = torch.ones(len(ids), len(ids), dtype=torch.bool).tril()
        hidden, layers = tiny_model.language_model.model(embeds, torch.arange(len(ids)), mask, cache, return_layer_outputs=True)
        logits = tiny_model.language_model.logits(hidden)
    errs = {
        "inputs_embeds": (embeds - torch.from_numpy(z["inputs_embeds"])).abs().max().item(),
        "hidden_after_layer0": (layers[0] - torch.from_numpy(z["hidden_after_layer0"])).abs().max().item(),
        "final_hidden_normed": (hidden - torch.from_numpy(z["final_hidden_normed"])).abs().max().item(),
        "logits_all": logit_error(logits, z, "logits_all"),
    }
    print("prefill max |diff|:", errs)
    assert errs["inputs_embeds"] < 1e-5 and errs["hidden_after_layer0"] < 1e-4 and errs["final_hidden_normed"] < 1e-4
    assert errs["logits_all"] < LOGIT_ATOL


def test_both_pbd_window_steps_match_reference(tiny_model, tiny_features):
    z = load_npz("c_pbd_window_compact.npz")
    meta = load_json("c_pbd_window.json")
    mask_id = tiny_model.cfg.tokens.text_mask
    be = TorchBackend(tiny_model)
    be.reset(128)
    prompt = load_json("b_prompt.json")["input_ids"]

    # step 0: prompt + window, nothing cached
    ids, pos, mask = mtp_inputs(prompt, 0, mask_id)
    assert ids.tolist() == z["prefill_window_input_ids"].tolist()
    assert pos.tolist() == z["prefill_window_position_ids"].tolist()
    assert np.array_equal(mask, z["prefill_window_mask_visible"].astype(bool))
    logits0 = be.forward(ids, pos, mask, 6, tiny_features)
    be.crop(len(prompt))
    err0 = logit_error(logits0, z, "prefill_window_window_logits")
    assert logits0.argmax(-1).tolist() == meta["prefill_window"]["argmax"]

    # step 1: the 6 committed tokens + a new window over the cached prompt
    committed = z["cached_window_committed_sequence"].tolist()
    ids, pos, mask = mtp_inputs(committed, be.cache_length, mask_id)
    assert ids.tolist() == z["cached_window_input_ids"].tolist()
    assert pos.tolist() == z["cached_window_position_ids"].tolist()
    assert np.array_equal(mask, z["cached_window_mask_visible"].astype(bool))
    # the only -inf column of the reference mask is the hidden original of the last committed token
    hidden_cols = np.nonzero(z["cached_window_mask_is_neg_inf"].any(0))[0].tolist()
    assert hidden_cols == [len(committed) + 6 - 7] and not mask[-6:, hidden_cols[0]].any()
    logits1 = be.forward(ids, pos, mask, 6)
    err1 = logit_error(logits1, z, "cached_window_window_logits")
    err1_nocache = logit_error(logits1, z, "cached_window_logits_recomputed_without_cache")
    print(f"PBD window max |diff|: step0 {err0:.2e} step1 {err1:.2e} (vs no-cache recompute {err1_nocache:.2e})")
    assert max(err0, err1, err1_nocache) < LOGIT_ATOL


def test_onednn_packed_weights_match_dense_and_never_go_stale(tiny_checkpoint):
    from locate_ros.model.language import Linear, onednn_linear, pack_for_onednn

    lin = Linear(64, 96)
    torch.nn.init.normal_(lin.weight)
    x = torch.randn(12, 64)
    assert pack_for_onednn(lin) == 96 * 64 * 4 and lin._packed is not None
    with torch.no_grad():
        want = torch.nn.functional.linear(x, lin.weight, lin.bias)
        torch.testing.assert_close(lin(x), want, atol=1e-5, rtol=1e-5)
        with onednn_linear(False):
            assert torch.equal(lin(x), want)  # the switch really takes PyTorch's default path
        lin.weight.mul_(2)  # e.g. an optimizer step: the packed copy is now stale and must not be used
        torch.testing.assert_close(lin(x), torch.nn.functional.linear(x, lin.weight, lin.bias), atol=1e-5, rtol=1e-5)
    assert pack_for_onednn(lin) > 0  # repacks the new version
    y = lin(x)  # grad mode: the ordinary autograd path
    assert y.requires_grad
    import copy

    twin = copy.deepcopy(lin)  # a packed layer copies (without its packed cache) and computes the same
    assert twin._packed is None and lin._packed is not None
    with torch.no_grad():
        torch.testing.assert_close(twin(x), lin(x), atol=1e-5, rtol=1e-5)


def test_fused_projections_compute_what_the_separate_ones_do_and_never_go_stale():
    """pack_for_onednn packs q/k/v (and gate/up) as one matmul over their concatenated weights: the
    same outputs as the separate Linears, no second packed copy of those Linears, a weight changed
    after packing (an optimizer step) is used, a hook on a part (LoRA's) is not bypassed, and a
    packed layer deep-copies."""
    import copy

    from locate_ros.model.config import LocateAnythingConfig
    from locate_ros.model.language import DecoderLayer, KVCache, onednn_linear, pack_for_onednn, rope_cos_sin
    from locate_ros.testing.tiny import golden_dir

    cfg = LocateAnythingConfig.from_json(golden_dir() / "tiny" / "config.json").text
    torch.manual_seed(0)
    layer = DecoderLayer(cfg)
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.2)
    attn, mlp = layer.self_attn, layer.mlp
    S = 12
    h = torch.randn(S, cfg.hidden_size)
    cos, sin = rope_cos_sin(torch.arange(S), cfg.head_dim, cfg.rope_theta, torch.float32)

    @torch.no_grad()
    def outputs(module=layer):
        a = module.self_attn(h, cos, sin, None, KVCache(cfg, S, torch.float32, "cpu"), 0)
        return a, module.mlp(h)

    def unpacked():
        with onednn_linear(False):
            return outputs()

    def close(got, want):
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)

    want = unpacked()
    assert pack_for_onednn(layer) > 0
    assert attn._packed is not None and mlp._packed is not None
    assert all(m._packed is None for m in (attn.q_proj, attn.k_proj, attn.v_proj, mlp.gate_proj, mlp.up_proj))
    assert attn.o_proj._packed is not None and mlp.down_proj._packed is not None
    with torch.no_grad():
        q, k, v = attn.fused(h)
        gate, up = mlp.fused(h)
    for out, part in ((q, attn.q_proj), (k, attn.k_proj), (v, attn.v_proj), (gate, mlp.gate_proj), (up, mlp.up_proj)):
        torch.testing.assert_close(out, torch.nn.functional.linear(h, part.weight, part.bias), atol=1e-5, rtol=1e-5)
    close(outputs(), want)

    with torch.no_grad():
        mlp.up_proj.weight.mul_(2)  # the fused copy is stale now and must not be used
        attn.v_proj.bias.add_(1)
    changed = unpacked()
    close(outputs(), changed)
    assert not any(torch.allclose(c, w, atol=1e-2) for c, w in zip(changed, want))

    pack_for_onednn(layer)  # repacks with the new weights
    calls = []
    handle = attn.k_proj.register_forward_hook(lambda m, i, o: calls.append(1) or o * 0)
    hooked = unpacked()
    close(outputs(), hooked)
    assert len(calls) == 2 and not torch.allclose(hooked[0], changed[0], atol=1e-2)  # it ran, and mattered
    handle.remove()

    twin = copy.deepcopy(layer)  # without the packed caches, computing the same
    assert twin.self_attn._packed is None and twin.mlp._packed is None
    close(outputs(twin), outputs())
