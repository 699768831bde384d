"""tools/average_checkpoints.py: the weighted mean of two checkpoints of one model, in the release layout;
checkpoints of different models or tokenizers are refused before anything is written."""
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from locate_ros.cli import BUNDLED_MODEL
from locate_ros.model import load_model

TOOL = Path(__file__).resolve().parents[1] / "tools" / "average_checkpoints.py"


def shifted_copy(dst: Path, drop: str = "") -> dict:
    """The bundled checkpoint with every float tensor moved by seeded noise (and `drop` left out)."""
    shutil.copytree(BUNDLED_MODEL, dst)
    g = torch.Generator().manual_seed(0)
    tensors = {k: (v + 0.01 * torch.randn(v.shape, generator=g, dtype=v.dtype) if v.is_floating_point() else v)
               for k, v in load_file(str(BUNDLED_MODEL / "model.safetensors")).items() if k != drop}
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return tensors


def run(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_the_average_is_the_weighted_mean_of_every_tensor_and_loads(tmp_path):
    a = load_file(str(BUNDLED_MODEL / "model.safetensors"))
    b = shifted_copy(tmp_path / "b")
    out = run(tmp_path / "avg", BUNDLED_MODEL, tmp_path / "b", "--weights", "3", "1")
    assert out.returncode == 0, out.stderr
    avg = load_file(str(tmp_path / "avg" / "model.safetensors"))
    assert avg.keys() == a.keys()
    for k in a:
        expected = ((3 * a[k].double() + b[k].double()) / 4).to(a[k].dtype)
        assert avg[k].dtype == a[k].dtype and torch.equal(avg[k], expected), k
    moved = [k for k in a if a[k].is_floating_point() and not torch.equal(avg[k], a[k])]
    assert len(moved) > len(a) // 2  # the mean is not the first checkpoint
    assert (tmp_path / "avg" / "tokenizer.json").read_bytes() == (BUNDLED_MODEL / "tokenizer.json").read_bytes()
    model = load_model(tmp_path / "avg")
    assert torch.equal(model.state_dict()[moved[0]].cpu(), avg[moved[0]])


def test_checkpoints_of_different_models_are_refused(tmp_path):
    name = next(iter(load_file(str(BUNDLED_MODEL / "model.safetensors"))))
    shifted_copy(tmp_path / "b", drop=name)
    out = run(tmp_path / "avg", BUNDLED_MODEL, tmp_path / "b")
    assert out.returncode == 1 and "differ" in out.stderr and not (tmp_path / "avg").exists()
    shifted_copy(tmp_path / "c")
    tokenizer = tmp_path / "c" / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace('"<box>"', '"<b0x>"', 1))
    out = run(tmp_path / "avg", BUNDLED_MODEL, tmp_path / "c")
    assert out.returncode == 1 and "tokenizer.json differ" in out.stderr and not (tmp_path / "avg").exists()
    out = run(tmp_path / "avg", BUNDLED_MODEL)  # one checkpoint is no average
    assert out.returncode == 1 and "two or more" in out.stderr
