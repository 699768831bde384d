"""tools/bundle_demo_model.py: a run becomes a bfloat16 checkpoint in the release layout with its side
files; a run that does not fit the size bound, or is no checkpoint, leaves the old bundle untouched."""
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from locate_ros.cli import BUNDLED_MODEL
from locate_ros.model import load_model
from locate_ros.model.checkpoint import SIDE_FILES, save_pretrained

TOOL = Path(__file__).resolve().parents[1] / "tools" / "bundle_demo_model.py"


def run(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=120)


def float32_run(dst: Path) -> Path:
    """A run as the trainer leaves it: float32 weights (the bundled model's, moved by seeded noise so
    that they are not already bfloat16 values) and the bundled model's side files."""
    model = load_model(BUNDLED_MODEL, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1e-3 * torch.randn(p.shape, generator=g))
    return save_pretrained(model, dst, side_files_from=BUNDLED_MODEL)


def test_a_run_is_bundled_in_bfloat16_with_its_side_files(tmp_path):
    source = float32_run(tmp_path / "run")
    out = tmp_path / "demo_model"
    res = run(source, "--out", out)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    src = load_file(str(source / "model.safetensors"))
    assert all(t.dtype == torch.float32 for t in src.values())
    got = load_file(str(out / "model.safetensors"))
    assert got.keys() == src.keys()
    for name, tensor in src.items():  # every weight is the source's, rounded to bfloat16
        assert got[name].dtype == torch.bfloat16 and torch.equal(got[name], tensor.to(torch.bfloat16)), name
    config = json.loads((out / "config.json").read_text())
    assert config["torch_dtype"] == "bfloat16" and report["dtype"] == "bfloat16"
    for name in SIDE_FILES:
        if (source / name).exists():
            assert (out / name).read_bytes() == (source / name).read_bytes(), name
    assert report["bytes"] == sum(p.stat().st_size for p in out.iterdir())
    assert report["bytes"] < 0.6 * sum(p.stat().st_size for p in source.iterdir() if p.name in report["files"])
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in [out, *out.iterdir()])  # readable once installed
    model = load_model(out)  # computed in float32 on the CPU, from the rounded weights
    name = next(iter(src))
    assert torch.equal(model.state_dict()[name], src[name].to(torch.bfloat16).float())
    assert not list(tmp_path.glob(".demo_model.*"))  # no staging folder left behind
    assert (out / "model.safetensors").stat().st_size <= tool_module().MAX_BYTES


def tool_module():
    spec = importlib.util.spec_from_file_location("bundle_demo_model", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_a_bundle_over_the_size_bound_or_of_no_checkpoint_is_refused_and_the_old_one_stays(tiny_checkpoint, tmp_path):
    out = tmp_path / "demo_model"
    shutil.copytree(BUNDLED_MODEL, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ValueError, match="over the demo model's 25 MiB"):  # the golden tiny model: 151k-token vocabulary
        tool_module().bundle(tiny_checkpoint, out, torch.bfloat16)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".demo_model.*"))
    (tmp_path / "empty").mkdir()
    res = run(tmp_path / "empty", "--out", out)
    assert res.returncode == 1 and "not a checkpoint in the release layout" in res.stderr, res.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
