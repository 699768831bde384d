"""Checkpoint loading and saving in the release layout, and clear errors for bad checkpoints."""
import json
import re
import shutil

import pytest
import torch
from conftest import GOLDEN
from safetensors.torch import load_file, save_file

from locate_ros.model import (
    CheckpointError,
    ConfigError,
    LocateAnything,
    LocateAnythingConfig,
    load_model,
    save_pretrained,
)


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return load_model(tiny_checkpoint)


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_3b_config_gives_the_770_release_tensors_with_their_shapes():
    lines = (GOLDEN / "spec_3b_state_dict_keys.txt").read_text().splitlines()
    want = {}
    for line in lines:
        name, shape = line.split("\t")[:2]
        want[name] = tuple(json.loads(shape))
    raw = json.loads((GOLDEN / "tiny" / "config.json").read_text())
    raw["text_config"].update(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                              num_key_value_heads=2)
    raw["vision_config"].update(hidden_size=1152, num_hidden_layers=27, num_attention_heads=16, intermediate_size=4304)
    with torch.device("meta"):
        m = LocateAnything(LocateAnythingConfig.from_dict(raw))
    got = {n: tuple(p.shape) for n, p in m.named_parameters(remove_duplicate=False)}
    assert len(want) == 770 and got == want
    unique = sum(p.numel() for p in m.parameters())
    assert unique == 3_517_975_280  # lm_head tied: counted once


def test_tied_model_holds_one_embedding(model):
    lm = model.language_model
    assert lm.lm_head.weight is lm.model.embed_tokens.weight


def test_save_and_reload_is_bit_exact_with_and_without_head(model, tiny_checkpoint, tmp_path):
    for save_head in (False, True):
        out = save_pretrained(model, tmp_path / f"head{save_head}", side_files_from=tiny_checkpoint, save_tied_head=save_head)
        keys = load_file(str(out / "model.safetensors")).keys()
        assert ("language_model.lm_head.weight" in keys) == save_head
        assert (out / "tokenizer.json").exists() and (out / "preprocessor_config.json").exists()
        assert_same_weights(model, load_model(out))


def test_sharded_bf16_checkpoint_loads(model, tmp_path):
    out = save_pretrained(model, tmp_path / "sharded", dtype=torch.bfloat16, max_shard_bytes=8 * 1024 * 1024)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and all(re.fullmatch(r"model-\d{5}-of-\d{5}\.safetensors", s) for s in shards)
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"
    bf = load_model(out, dtype=torch.bfloat16)
    assert bf.dtype == torch.bfloat16
    fp = load_model(out)  # CPU default: upcast to float32
    assert fp.dtype == torch.float32
    ref = model.state_dict()
    for k, v in fp.state_dict().items():
        assert torch.equal(v, ref[k].to(torch.bfloat16).float()), k


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_clear_errors_for_bad_checkpoints(tiny_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="not a directory"):
        load_model(tmp_path / "nope")

    d = _copy(tiny_checkpoint, tmp_path / "missing")
    sd = load_file(str(d / "model.safetensors"))
    del sd["mlp1.1.weight"]
    save_file(sd, str(d / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"1 missing .*mlp1\.1\.weight"):
        load_model(d)

    d = _copy(tiny_checkpoint, tmp_path / "extra")
    sd = load_file(str(d / "model.safetensors"))
    sd["vision_model.extra.weight"] = torch.zeros(2)
    sd["mlp1.1.bias"] = torch.zeros(3)
    save_file(sd, str(d / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"1 unexpected.*1 with wrong shapes .*mlp1\.1\.bias: file \[3\] vs config \[64\]"):
        load_model(d)

    d = _copy(tiny_checkpoint, tmp_path / "corrupt")
    (d / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}....")
    with pytest.raises(CheckpointError, match="corrupt or not a safetensors file"):
        load_model(d)

    d = _copy(tiny_checkpoint, tmp_path / "truncated")
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_model(d)

    d = _copy(tiny_checkpoint, tmp_path / "pickle")
    (d / "model.safetensors").rename(d / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="safetensors only"):
        load_model(d)

    d = _copy(tiny_checkpoint, tmp_path / "badcfg")
    (d / "config.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_model(d)
    cfg = json.loads((tiny_checkpoint / "config.json").read_text())
    del cfg["text_config"]["text_mask_token_id"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="text_mask_token_id"):
        load_model(d)

    d = _copy(tiny_checkpoint, tmp_path / "shardgone")
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors"}}))
    with pytest.raises(CheckpointError, match="missing"):
        load_model(d)


def test_token_ids_come_from_config(tiny_checkpoint, tmp_path):
    cfg = json.loads((tiny_checkpoint / "config.json").read_text())
    cfg["box_start_token_id"] = 151000
    t = LocateAnythingConfig.from_dict(cfg).tokens
    assert t.box_start == 151000 and t.coord_token(5) == cfg["coord_start_token_id"] + 5 and t.num_coords == 1001
