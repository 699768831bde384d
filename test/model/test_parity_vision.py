"""MoonViT + merge + projector against NVIDIA's reference intermediates (a_vision.npz)."""
import numpy as np
import pytest
import torch
from conftest import load_npz

from locate_ros.model import load_model
from locate_ros.model.vision import rope_2d

# float32 re-implementation: the reference's conv vs our matmul differ in summation order only
VISION_ATOL = 1e-5


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return load_model(tiny_checkpoint)


@pytest.fixture(scope="module")
def golden_vision():
    return load_npz("a_vision.npz")


def test_every_vision_intermediate_matches_reference(model, golden_vision):
    z = golden_vision
    grid = tuple(int(v) for v in z["image_grid_hws"][0])
    pv = torch.from_numpy(z["pixel_values"])
    merged, inter = model.vision_model(pv, [grid], return_intermediates=True)
    pos = model.vision_model.patch_embed.pos_emb(grid)
    errs = {
        "pos_emb_interp": (pos - torch.from_numpy(z["pos_emb_interp"])).abs().max().item(),
        "patch_conv_out": (inter["patch_embed_out"] - pos - torch.from_numpy(z["patch_conv_out"])).abs().max().item(),
        "rope_freqs_cos": (inter["rope_freqs_cis"].real - torch.from_numpy(z["rope_freqs_cos"])).abs().max().item(),
        "rope_freqs_sin": (inter["rope_freqs_cis"].imag - torch.from_numpy(z["rope_freqs_sin"])).abs().max().item(),
    }
    for key in ("patch_embed_out", "vit_block0_out", "vit_block1_out", "vit_encoder_out", "vit_merged"):
        errs[key] = (inter[key] - torch.from_numpy(z[key])).abs().max().item()
    errs["projector_out"] = (model.mlp1(merged) - torch.from_numpy(z["projector_out"])).abs().max().item()
    print("max |diff| per vision intermediate:", errs)
    assert max(errs.values()) < VISION_ATOL, errs
    assert errs["pos_emb_interp"] == 0.0 and errs["rope_freqs_cos"] == 0.0


def test_packed_images_attend_block_diagonally(model, golden_vision):
    """Two images packed in one call give exactly what each gives alone."""
    pv = torch.from_numpy(golden_vision["pixel_values"])
    rng = np.random.default_rng(0)
    other = torch.from_numpy(rng.standard_normal((8 * 4, 3, 14, 14)).astype(np.float32))  # an 8x4 grid
    alone_a = model.encode_images(pv, [(4, 6)])
    alone_b = model.encode_images(other, [(8, 4)])
    packed = model.encode_images(torch.cat([pv, other]), [(4, 6), (8, 4)])
    assert packed.shape == (6 + 8, 64)
    torch.testing.assert_close(packed[:6], alone_a, atol=2e-5, rtol=0)
    torch.testing.assert_close(packed[6:], alone_b, atol=2e-5, rtol=0)


def test_rope_2d_uses_column_for_even_pairs_and_row_for_odd():
    f = rope_2d((3, 5), head_dim=16)
    ang = torch.angle(f)
    # patch (row 2, col 3) is index 13; pair 0 rotates by col*f0 = 3, pair 1 by row*f0 = 2
    assert ang[13, 0].item() == pytest.approx(3.0, abs=1e-6)
    assert ang[13, 1].item() == pytest.approx(2.0, abs=1e-6)
