"""Per-sequence attention over packed sequences (Segments) equals the block-diagonal mask it replaces."""
import pytest
import torch

from locate_ros.model import load_model
from locate_ros.model.language import KVCache
from locate_ros.model.segments import Segments
from locate_ros.training.objective import NoCache


def test_layout_pads_each_sequence_and_unpads_in_packed_order():
    seg = Segments.of([2, 4, 1])
    assert seg.index.tolist() == [[0, 1, 0, 0], [2, 3, 4, 5], [6, 6, 6, 6]]
    assert seg.valid.tolist() == [[True, True, False, False], [True] * 4, [True, False, False, False]]
    rows = torch.arange(7 * 3, dtype=torch.float32).view(7, 3)
    assert torch.equal(seg.unpad(seg.pad(rows)), rows)
    with pytest.raises(ValueError, match="at least one row"):
        Segments.of([3, 0])


def blocks(dense: torch.Tensor, lengths) -> torch.Tensor:
    """A block-diagonal S x S mask as each sequence's own [T, T] block (padding False), as pack makes it."""
    T = max(lengths)
    out = torch.zeros(len(lengths), T, T, dtype=torch.bool)
    off = 0
    for b, n in enumerate(lengths):
        out[b, :n, :n] = dense[off:off + n, off:off + n]
        off += n
    return out


def test_key_mask_keeps_each_block_and_never_shows_padding():
    own = torch.rand(3, 4, 4) > 0.5  # garbage in the padding too: it must not show
    seg = Segments.of([2, 4, 1])
    m = seg.key_mask(own)
    assert torch.equal(m[1], own[1])
    assert torch.equal(m[0, :2, :2], own[0, :2, :2]) and not m[0, :2, 2:].any()
    assert m[0, 2:].tolist() == [[True, False, False, False]] * 2  # padded queries: their first row only
    assert m[2].tolist() == [[own[2, 0, 0].item(), False, False, False]] + [[True, False, False, False]] * 3
    assert seg.key_mask().tolist()[1] == [[True] * 4] * 4


def _packed_mask(lengths, seed=0):
    """A block-diagonal mask like `pack`'s: causal in each sequence plus a bidirectional 3-row block."""
    g = torch.Generator().manual_seed(seed)
    S = sum(lengths)
    mask = torch.zeros(S, S, dtype=torch.bool)
    off = 0
    for n in lengths:
        mask[off:off + n, off:off + n] = torch.ones(n, n, dtype=torch.bool).tril()
        if n >= 4:
            r = off + int(torch.randint(0, n - 3, (1,), generator=g))
            mask[r:r + 3, r:r + 3] = True
        off += n
    return mask


def test_decoder_forward_and_gradients_equal_the_block_diagonal_mask(tiny_checkpoint):
    """Logits and gradients (inputs and weights) of the packed forward with Segments equal those with
    the S x S block-diagonal mask, for sequences of different lengths (padding in play)."""
    decoder = load_model(tiny_checkpoint).language_model.model.requires_grad_(True)
    lengths = [5, 11, 3, 8]
    S = sum(lengths)
    mask = _packed_mask(lengths)
    positions = torch.cat([torch.arange(n) for n in lengths])
    embeds = torch.randn(S, decoder.cfg.hidden_size, generator=torch.Generator().manual_seed(1))
    weight = decoder.layers[0].self_attn.q_proj.weight
    results = []
    for segments, m in ((None, mask), (Segments.of(lengths), blocks(mask, lengths))):
        x = embeds.clone().requires_grad_(True)
        out = decoder(x, positions, m, NoCache(), segments=segments)
        gx, gw = torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), [x, weight])
        results.append((out.detach(), gx, gw))
    (out_d, gx_d, gw_d), (out_s, gx_s, gw_s) = results
    assert out_s.abs().max() > 0.1  # a real signal, not zeros on both sides
    torch.testing.assert_close(out_s, out_d, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gx_s, gx_d, atol=1e-5, rtol=1e-5)
    # a weight's gradient sums over every row: float32 summation order shows a little more
    torch.testing.assert_close(gw_s, gw_d, atol=5e-5, rtol=1e-4)
    # and a sequence's rows depend on nothing outside it: changing sequence 0 leaves the others as they were
    moved = embeds.clone()
    moved[:5] += 1.0
    with torch.no_grad():
        out_m = decoder(moved, positions, blocks(mask, lengths), NoCache(), segments=Segments.of(lengths))
    assert not torch.allclose(out_m[:5], out_s[:5])
    torch.testing.assert_close(out_m[5:], out_s[5:], atol=1e-6, rtol=0)


def test_segments_refuse_a_filled_cache_or_a_wrong_row_count(tiny_model):
    decoder = tiny_model.language_model.model
    cache = KVCache(decoder.cfg, 32, torch.float32, "cpu")
    x = torch.randn(4, decoder.cfg.hidden_size)
    decoder(x, torch.arange(4), None, cache)
    with pytest.raises(ValueError, match="segments cover"):
        decoder(x, torch.arange(4, 8), None, cache, segments=Segments.of([4]))
    with pytest.raises(ValueError, match="segments cover"):
        decoder(x, torch.arange(4), None, NoCache(), segments=Segments.of([2, 3]))


def test_packed_attention_takes_attention_output_in_any_memory_layout(tiny_checkpoint, monkeypatch):
    """On CUDA, scaled_dot_product_attention's efficient kernels return [B, H, T, D] as a view of
    [B, T, H, D] storage (not contiguous); the packed path once called .view on it, and the first
    training step on an H100 failed. Hand both attention paths that layout on the CPU: same output."""
    import torch.nn.functional as F

    decoder = load_model(tiny_checkpoint).language_model.model
    lengths = [5, 11, 3]
    mask = _packed_mask(lengths)
    positions = torch.cat([torch.arange(n) for n in lengths])
    embeds = torch.randn(sum(lengths), decoder.cfg.hidden_size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        plain = decoder(embeds, positions, blocks(mask, lengths), NoCache(), segments=Segments.of(lengths))
        sdpa = F.scaled_dot_product_attention

        def cuda_layout(*args, **kwargs):
            out = sdpa(*args, **kwargs)
            return out.transpose(1, 2).contiguous().transpose(1, 2)  # the same values, strided as CUDA's

        monkeypatch.setattr(F, "scaled_dot_product_attention", cuda_layout)
        strided = decoder(embeds, positions, blocks(mask, lengths), NoCache(), segments=Segments.of(lengths))
        monkeypatch.setattr(F, "scaled_dot_product_attention", sdpa)
        cached = decoder(embeds[:5], positions[:5], None, KVCache(decoder.cfg, 8, torch.float32, "cpu"))
        monkeypatch.setattr(F, "scaled_dot_product_attention", cuda_layout)
        cached_strided = decoder(embeds[:5], positions[:5], None, KVCache(decoder.cfg, 8, torch.float32, "cpu"))
    assert plain.abs().max() > 0.1 and cached.abs().max() > 0.1
    assert torch.equal(strided, plain)
    assert torch.equal(cached_strided, cached)  # the decoding path (one sequence, a KV cache) too
