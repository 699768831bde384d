"""LoRA fine-tuning of the decoder: only low-rank updates of the targeted weights, saved merged in the
release layout (a plain load runs the adapted model), and runs that resume bit-exactly."""
import pytest
import torch
from safetensors.torch import load_file

from locate_ros.data import make_sample
from locate_ros.model import load_model
from locate_ros.model.checkpoint import save_pretrained
from locate_ros.processing import Processor
from locate_ros.training.config import TrainConfig
from locate_ros.training.lora import TARGETS, LoRA
from locate_ros.training.objective import build_example, joint_loss, pack
from locate_ros.training.train import train

from .base_run import CFG, fixed_batch_loss

RANK = 4
LORA_CFG = TrainConfig(**{**CFG.__dict__, "steps": 20, "lora_rank": RANK, "freeze_vision": True, "lr": 3e-3})


def is_target(key: str) -> bool:
    parts = key.split(".")
    return key.startswith("language_model.model.layers.") and parts[-2] in TARGETS and parts[-1] == "weight"


def test_lora_changes_only_the_decoder_projections_by_low_rank_updates_and_lowers_the_loss(trained, tmp_path):
    base, _ = trained
    train(tmp_path / "lora", LORA_CFG, init=base, progress=False)
    before, after = load_file(str(base / "model.safetensors")), load_file(str(tmp_path / "lora" / "model.safetensors"))
    assert before.keys() == after.keys()  # the release layout: merged weights, no adapter tensors
    targets = {k for k in before if is_target(k)}
    assert len(targets) == 7 * sum(k.endswith("q_proj.weight") for k in before)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # the decoder moves only through its adapters; the projector (outside the decoder) trains as usual
    assert targets <= changed and changed - targets <= {k for k in before if k.startswith("mlp1.")}, changed - targets
    for k in targets:
        assert torch.linalg.matrix_rank(after[k] - before[k]).item() <= RANK, k
    assert fixed_batch_loss(tmp_path / "lora") < fixed_batch_loss(base)


def test_an_interrupted_lora_run_resumes_bit_exactly(trained, tmp_path):
    base, _ = trained
    cfg = TrainConfig(**{**LORA_CFG.__dict__, "steps": 5})
    train(tmp_path / "straight", cfg, init=base, progress=False)
    train(tmp_path / "resumed", cfg, init=base, progress=False, stop_after=3)
    train(tmp_path / "resumed", cfg, progress=False)  # resumes from trainer_state.json: the base comes from there
    for name in ("model.safetensors", "lora.safetensors", "optimizer.safetensors"):
        a, b = (load_file(str(tmp_path / r / name)) for r in ("straight", "resumed"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_the_merged_checkpoint_computes_what_the_adapted_model_computes(trained, tmp_path):
    base, _ = trained
    model = load_model(base)
    lora = LoRA(model.language_model.model.layers, RANK, seed=0)
    with torch.no_grad():
        for p in lora.up.values():  # B starts at zero (no change): give it something to merge
            p.normal_(0, 0.05)
    proc = Processor.from_pretrained(base, model.cfg)
    batch = pack([build_example(make_sample(11, i, family="objects", size=(128, 160)), proc) for i in range(2)])
    with torch.no_grad():
        adapted = joint_loss(model, batch)[0].item()
        with lora.merged():
            save_pretrained(model, tmp_path / "merged")
        lora.remove()
        plain = joint_loss(model, batch)[0].item()
        merged = joint_loss(load_model(tmp_path / "merged"), batch)[0].item()
    assert adapted != pytest.approx(plain, abs=1e-3)  # the adapters matter ...
    assert merged == pytest.approx(adapted, rel=1e-5)  # ... and the merged weights carry them
    # the block restored the original tensors, not W + delta - delta
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), load_model(base).state_dict().values()))


def test_lora_needs_a_checkpoint_to_adapt(tmp_path):
    with pytest.raises(ValueError, match="--init"):
        train(tmp_path / "x", LORA_CFG, progress=False)
