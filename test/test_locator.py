"""The public API and the CLI on the tiny checkpoint (real files, real model, subprocess for the CLI)."""
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import GOLDEN, load_npz

from locate_ros import Locator
from locate_ros.processing import ImageError, PromptError
from locate_ros.testing.forcing import ForceAnswer, box_answer


@pytest.fixture(scope="module")
def loc(tiny_checkpoint):
    return Locator.from_pretrained(tiny_checkpoint, device="cpu", dtype=None, mode="hybrid")


@pytest.fixture(scope="module")
def image():
    return load_npz("a_vision.npz")["image_rgb_uint8"]  # 84 x 56


def test_locate_reproduces_the_reference_greedy_answer(loc, image):
    """Same ids as NVIDIA's generate() for this prompt (d_generation hybrid rp1.0; its question is ground_multi)."""
    ref = json.loads((GOLDEN / "d_generation.json").read_text())["hybrid_rp1.0"]
    res = loc.locate(image, "red square", task="ground_multi", max_new_tokens=20)
    assert res.token_ids == ref["response_token_ids"]
    assert res.detections == [] and res.stats["boxes"] == 0 and res.stats["forward_steps"] == 4
    assert res.stats["stop_reason"] == "max_new_tokens" and res.text == loc.processor.decode(ref["response_token_ids"])
    for key in ("vision_s", "prefill_s", "decode_s", "total_s", "hybrid_fallbacks", "tokens", "image_grid"):
        assert key in res.stats


def test_forced_boxes_come_back_in_image_pixels_with_scores(loc, image):
    tok = loc.tokens
    label = "the small red square"  # 4 tokens: with <ref> and </ref> the label fills one 6-token block
    label_ids = loc.processor.tokenizer.encode(label, add_special_tokens=False).ids
    assert len(label_ids) == 4
    answer = [tok.ref_start, *label_ids, tok.ref_end]
    answer += box_answer([(100, 250, 500, 750)], tok)[:-1] + [tok.box_start, tok.coord_token(500), tok.coord_token(500),
                                                             tok.box_end, tok.im_end]
    for mode in ("slow", "fast", "hybrid"):
        res = loc.locate(image, "red square", mode=mode, logits_hook=ForceAnswer(answer), max_new_tokens=64)
        assert res.token_ids == answer, mode
        box, point = res.detections
        assert box.label == label and point.label == label and box.box == pytest.approx((8.4, 14.0, 42.0, 42.0))
        assert point.point == pytest.approx((42.0, 28.0)) and point.box is None
        assert 0.99 < box.score <= 1.0 and 0.99 < point.score <= 1.0
        assert res.stats["boxes"] == 2 and res.stats["detections"] == 2


def test_tasks_without_a_query_answer_with_the_labels_the_model_writes(loc, image):
    """ocr takes no query (None): its groups are labelled by what the model writes in <ref>."""
    tok = loc.tokens
    word = loc.processor.tokenizer.encode("exit", add_special_tokens=False).ids
    answer = [tok.ref_start, *word, tok.ref_end] + box_answer([(100, 250, 500, 750)], tok)
    # slow: ForceAnswer scripts the committed stream, which has no <null> padding for a 1-token label
    res = loc.locate(image, None, task="ocr", mode="slow", logits_hook=ForceAnswer(answer), max_new_tokens=32)
    (det,) = res.detections
    assert det.label == "exit" and det.box == pytest.approx((8.4, 14.0, 42.0, 42.0))


def test_prompt_is_encoded_once_per_query(loc, image):
    loc._prompt_ids.cache_clear()
    for _ in range(3):
        loc.locate(image, ["cup", "red square"], max_new_tokens=6)
    info = loc._prompt_ids.cache_info()
    assert info.misses == 1 and info.hits == 2


def test_bad_inputs_raise_clear_errors_and_the_locator_keeps_working(loc, image):
    with pytest.raises(ImageError):
        loc.locate(np.zeros((10, 10), dtype=np.uint8), "cup")
    with pytest.raises(ImageError):
        loc.locate(image.astype(np.float32), "cup")
    with pytest.raises(PromptError):
        loc.locate(image, "   ")
    with pytest.raises(PromptError):
        loc.locate(image, "x" * 5000)
    with pytest.raises(PromptError):
        loc.locate(image, "cup", task="segment")
    with pytest.raises(ValueError, match="mode"):
        loc.locate(image, "cup", mode="turbo")
    assert loc.locate(image, "cup", max_new_tokens=6).stats["tokens"] >= 6


def test_cli_prints_json_and_fails_cleanly(tiny_checkpoint, tmp_path):
    img = GOLDEN / "image_84x56.png"
    out = subprocess.run([sys.executable, "-m", "locate_ros.cli", "locate", "--model", str(tiny_checkpoint), "--image",
                          str(img), "--query", "red square", "--mode", "fast", "--max-new-tokens", "12"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["stats"]["mode"] == "fast" and len(doc["token_ids"]) == 12 and doc["detections"] == []
    (tmp_path / "config.json").write_text("{}")
    bad = subprocess.run([sys.executable, "-m", "locate_ros.cli", "locate", "--model", str(tmp_path), "--image", str(img),
                          "--query", "cup"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "locate-ros:" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "broken.png").write_bytes(b"not a png")
    bad = subprocess.run([sys.executable, "-m", "locate_ros.cli", "locate", "--model", str(tiny_checkpoint), "--image",
                          str(tmp_path / "broken.png"), "--query", "cup"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "cannot read image" in bad.stderr


def test_a_checkpoint_may_declare_its_hybrid_rule(tiny_checkpoint, tmp_path):
    """generation_config.json's `hybrid_thresholds` replaces the reference's constants it names;
    an explicit `thresholds=` wins; a bad declaration is a clear CheckpointError naming the file."""
    import shutil

    from locate_ros.decoding.hybrid import HybridThresholds
    from locate_ros.locator import checkpoint_thresholds
    from locate_ros.model import CheckpointError

    assert checkpoint_thresholds(tiny_checkpoint) == HybridThresholds()  # release layout: the reference's
    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "ckpt")
    gen = ckpt / "generation_config.json"
    config = json.loads(gen.read_text()) if gen.exists() else {}
    gen.write_text(json.dumps({**config, "hybrid_thresholds": {"ambiguous_top_k": 16, "ambiguous_prob": 0.25}}))
    declared = HybridThresholds(ambiguous_top_k=16, ambiguous_prob=0.25)
    assert Locator.from_pretrained(ckpt).options.thresholds == declared
    assert Locator.from_pretrained(ckpt, thresholds=HybridThresholds()).options.thresholds == HybridThresholds()
    for bad, why in (({"ambiguous_topk": 16}, "unknown"), ({"ambiguous_prob": 2.0}, "probability"),
                     ([16], "object")):
        gen.write_text(json.dumps({**config, "hybrid_thresholds": bad}))
        with pytest.raises(CheckpointError, match=why) as e:
            Locator.from_pretrained(ckpt)
        assert "generation_config.json" in str(e.value)
    gen.write_text("{not json")
    with pytest.raises(CheckpointError, match="generation_config.json"):
        checkpoint_thresholds(ckpt)


def test_a_checkpoint_may_declare_instance_anchored_windows(tiny_checkpoint, tmp_path):
    """`"instance_anchored_blocks": true` in generation_config.json turns DecodeOptions.instance_anchored
    on for every call of the Locator (release layout: off); an explicit option wins; anything but a
    boolean is a CheckpointError naming the file."""
    import shutil

    from locate_ros.locator import checkpoint_instance_anchored
    from locate_ros.model import CheckpointError

    assert checkpoint_instance_anchored(tiny_checkpoint) is False
    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "ckpt")
    gen = ckpt / "generation_config.json"
    config = json.loads(gen.read_text()) if gen.exists() else {}
    gen.write_text(json.dumps({**config, "instance_anchored_blocks": True}))
    loc = Locator.from_pretrained(ckpt, mode="fast")
    assert loc.options.instance_anchored is True
    plain = Locator.from_pretrained(ckpt, mode="fast", instance_anchored=False)
    assert plain.options.instance_anchored is False
    answer = box_answer([(100, 200, 300, 400), (500, 600, 700, 800), (50, 60, 70, 80)], loc.tokens)
    image = np.zeros((56, 84, 3), np.uint8)
    steps = {name: locator.locate(image, "cup", logits_hook=ForceAnswer(answer)).stats["forward_steps"]
             for name, locator in (("anchored", loc), ("plain", plain))}
    assert steps == {"anchored": 3 + 2, "plain": 3 + 1}  # one window more: the first box's `<box>` x1
    gen.write_text(json.dumps({**config, "instance_anchored_blocks": "yes"}))
    with pytest.raises(CheckpointError, match="instance_anchored_blocks") as e:
        Locator.from_pretrained(ckpt)
    assert "generation_config.json" in str(e.value)
