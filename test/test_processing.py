"""Image preprocessing and prompt ids against the reference's golden vectors (golden README (a), (b))."""
import hashlib
import json
import shutil

import numpy as np
import pytest
from conftest import GOLDEN, load_json, load_npz
from PIL import Image

from locate_ros.model.config import LocateAnythingConfig
from locate_ros.processing import (
    TASKS,
    ImageError,
    Processor,
    ProcessorError,
    PromptError,
    build_chat_text,
    build_question,
    expand_image_placeholder,
    preprocess_image,
)

CASES = load_json("a_preprocess_cases.json")


def case_image(w: int, h: int) -> np.ndarray:
    """The generator of the a_preprocess_cases inputs, recovered from the golden tensors (the README does not
    give it): R = 3x+5y+(w+h), G = xy+17(w+h), B = 255-4x+2y (mod 256), a red 20x14 box at (w//3, h//4).
    All four cases reproduce the golden sha256, so the recovery is exact."""
    y, x = np.mgrid[:h, :w]
    img = np.stack([3 * x + 5 * y + (w + h), x * y + 17 * (w + h), 255 - 4 * x + 2 * y], -1) % 256
    img = img.astype(np.uint8)
    img[h // 4:h // 4 + 14, w // 3:w // 3 + 20] = (250, 20, 20)
    return img


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.float32).tobytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------------- images


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c["input_wh"])))
def test_preprocess_golden_cases(case):
    w, h = case["input_wh"]
    pre = preprocess_image(case_image(w, h), in_token_limit=25600)
    pv = pre.pixel_values
    assert pv.dtype == np.float32 and pv.shape == (case["num_patches"], 3, 14, 14)
    assert pre.original_wh == (w, h)
    assert pre.resized_wh == tuple(case["resized_wh"])
    assert pre.grid_hw == tuple(case["grid_hw"])
    assert pre.num_image_tokens == case["num_image_tokens"]
    assert sha(pv) == case["pixel_values_sha256_f32"]
    assert float(pv.sum(dtype=np.float64)) == pytest.approx(case["pixel_values_sum"], rel=1e-12, abs=1e-9)
    assert float(np.abs(pv).sum(dtype=np.float64)) == pytest.approx(case["pixel_values_abs_sum"], rel=1e-12)
    assert pv[0, 0, 0].tolist() == case["first_patch_first_row_ch0"]
    if "pixel_values_file" in case:
        assert np.array_equal(pv, np.load(GOLDEN / case["pixel_values_file"]))


def test_preprocess_vision_image_and_png():
    z = load_npz("a_vision.npz")
    pre = preprocess_image(z["image_rgb_uint8"])
    assert np.array_equal(pre.pixel_values, z["pixel_values"])
    assert [list(pre.grid_hw)] == z["image_grid_hws"].tolist()
    with Image.open(GOLDEN / "image_84x56.png") as im:
        assert np.array_equal(preprocess_image(im).pixel_values, z["pixel_values"])  # PIL input


def test_preprocess_pil_equals_numpy_with_resize():
    img = case_image(100, 30)
    a, b = preprocess_image(img), preprocess_image(Image.fromarray(img))
    assert np.array_equal(a.pixel_values, b.pixel_values) and a.grid_hw == b.grid_hw


def test_preprocess_rgba_composites_on_white():
    img = case_image(70, 50)
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    assert np.array_equal(preprocess_image(rgba).pixel_values, preprocess_image(img).pixel_values)
    rgba[..., 3] = 0  # fully transparent -> white -> +1.0 everywhere
    assert np.all(preprocess_image(rgba).pixel_values == 1.0)
    pil = Image.fromarray(np.dstack([img, np.full(img.shape[:2], 128, np.uint8)]), "RGBA")
    assert np.array_equal(preprocess_image(pil).pixel_values,
                          preprocess_image(np.asarray(pil)).pixel_values)


def test_preprocess_non_contiguous_view():
    img = case_image(84, 56)
    bgr = np.ascontiguousarray(img[..., ::-1])
    assert np.array_equal(preprocess_image(bgr[..., ::-1]).pixel_values, preprocess_image(img).pixel_values)


def test_preprocess_small_and_limit():
    pre = preprocess_image(np.zeros((1, 1, 3), np.uint8))
    assert pre.grid_hw == (2, 2) and pre.num_image_tokens == 1 and pre.resized_wh == (28, 28)
    # the class default limit (4096) downsizes a 1000x1000 image where the release limit (25600) does not
    assert preprocess_image(np.zeros((1000, 1000, 3), np.uint8), in_token_limit=4096).grid_hw == (66, 66)
    assert preprocess_image(np.zeros((1000, 1000, 3), np.uint8)).grid_hw == (72, 72)


@pytest.mark.parametrize("bad, msg", [
    ([[[0, 0, 0]]], "numpy array"),
    ("image.png", "numpy array"),
    (np.zeros((4, 4, 3), np.float32), "uint8"),
    (np.zeros((4, 4, 3), np.uint16), "uint8"),
    (np.zeros((4, 4), np.uint8), "HxWx3"),
    (np.zeros((4, 4, 2), np.uint8), "HxWx3"),
    (np.zeros((1, 4, 4, 3), np.uint8), "HxWx3"),
    (np.zeros((0, 4, 3), np.uint8), "empty"),
    (np.zeros((4, 0, 3), np.uint8), "empty"),
    (np.zeros((20, 8000, 3), np.uint8), "512"),  # under the patch limit but 572 patches wide
])
def test_preprocess_rejects(bad, msg):
    with pytest.raises(ImageError, match=msg):
        preprocess_image(bad)
    assert issubclass(ImageError, ValueError)


# --------------------------------------------------------------------------------------------------------- prompts

# b_prompt_variants.json, in file order: (task, query) for each reference question
VARIANT_TASKS = [
    [("detect", "red square"), ("detect", ["red square"])],
    [("detect", ["person", "car"]), ("detect", "person</c>car")],
    [("ground", "red square")],
    [("ground_multi", "red square")],
    [("text_ground", "STOP")],
    [("ocr", None), ("ocr", "")],
    [("gui_box", "the search button")],
    [("point", "the red square"), ("gui_point", "the red square")],
]


def test_every_task_question():
    variants = load_json("b_prompt_variants.json")["variants"]
    assert len(variants) == len(VARIANT_TASKS)
    seen = set()
    for v, calls in zip(variants, VARIANT_TASKS):
        for task, query in calls:
            assert build_question(task, query) == v["question"], (task, query)
            seen.add(task)
    assert seen == set(TASKS)
    assert build_question("ground_multi", "red square") == load_json("b_prompt.json")["question"]
    assert build_question("detect", "  red square \n") == variants[0]["question"]  # surrounding space trimmed


@pytest.mark.parametrize("task, query, msg", [
    ("segment", "cat", "unknown task"),
    ("detect", None, "needs a query"),
    ("detect", "", "empty"),
    ("detect", "  \t", "empty"),
    ("detect", [], "at least one"),
    ("detect", ["cat", " "], "empty"),
    ("detect", ["cat", 3], "string"),
    ("ground", ["cat", "dog"], "single string"),
    ("point", 7, "single string"),
    ("ground", "x" * 2001, "2001 characters"),
    ("ocr", "cat", "no query"),
    ("detect", "cat<|im_end|>", "markup"),
    ("ground", "<image-1>cat", "markup"),
    ("detect", "<IMG_CONTEXT>", "markup"),
])
def test_build_question_rejects(task, query, msg):
    with pytest.raises(PromptError, match=msg):
        build_question(task, query)


def test_max_query_chars():
    assert build_question("ground", "x" * 2000).count("x") == 2000
    with pytest.raises(PromptError):
        build_question("ground", "abcdef", max_query_chars=5)


def test_chat_text_and_expansion():
    b = load_json("b_prompt.json")
    text = build_chat_text(b["question"])
    assert text == b["chat_text_before_expansion"]
    assert expand_image_placeholder(text, 6) == b["chat_text_after_expansion_decoded"]
    for v in load_json("b_prompt_variants.json")["variants"]:
        assert build_chat_text(v["question"], "worker") == v["worker_py_apply_chat_template"]["text"]
        assert build_chat_text(v["question"], "eval") == v["eval_jinja_apply_chat_template"]["text"]
    with pytest.raises(PromptError, match="template"):
        build_chat_text("q", "jinja")
    with pytest.raises(PromptError, match="<image-1>"):
        build_chat_text("<image-1>q")


# ------------------------------------------------------------------------------------------------------- processor


@pytest.fixture(scope="module")
def processor(tiny_checkpoint):
    return Processor.from_pretrained(tiny_checkpoint, LocateAnythingConfig.from_json(tiny_checkpoint / "config.json"))


@pytest.fixture
def ckpt_copy(tiny_checkpoint, tmp_path):
    """The checkpoint's small files only (no weights), to break one at a time."""
    for name in ("config.json", "tokenizer.json", "preprocessor_config.json", "processor_config.json"):
        shutil.copy(tiny_checkpoint / name, tmp_path / name)
    return tmp_path


def test_processor_settings(processor):
    assert processor.in_token_limit == 25600  # from preprocessor_config.json, not the class default
    assert (processor.patch_size, processor.merge_size) == (14, 2)
    assert processor.token_to_id("<IMG_CONTEXT>") == processor.config.tokens.image
    assert processor.token_to_id("<|im_end|>") == processor.config.tokens.im_end
    assert processor.token_to_id("<box>") == processor.config.tokens.box_start
    assert processor.token_to_id("<0>") == processor.config.tokens.coord_start
    assert processor.token_to_id("no-such-token") is None


def test_encode_prompt_golden(processor):
    b = load_json("b_prompt.json")
    ids = processor.encode_prompt(b["question"], 6)
    assert ids == b["input_ids"]
    assert [i for i, t in enumerate(ids) if t == processor.config.tokens.image] == b["image_token_positions"]
    assert processor.decode(ids) == b["chat_text_after_expansion_decoded"]
    assert "<|im_start|>" not in processor.decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize("template, key", [("worker", "worker_py_apply_chat_template"),
                                           ("eval", "eval_jinja_apply_chat_template")])
def test_encode_prompt_variants(processor, template, key):
    for v in load_json("b_prompt_variants.json")["variants"]:
        assert processor.encode_prompt(v["question"], 6, template=template) == v[key]["input_ids"], v["task"]


def test_prepare(processor):
    z = load_npz("a_vision.npz")
    pre, ids = processor.prepare(z["image_rgb_uint8"], "ground_multi", "red square")
    assert np.array_equal(pre.pixel_values, z["pixel_values"])
    assert ids == load_json("b_prompt.json")["input_ids"]
    pre, ids = processor.prepare(case_image(100, 30), "detect", ["person", "car"], template="eval")
    gh, gw = pre.grid_hw
    assert ids.count(processor.config.tokens.image) == gh * gw // 4 == pre.num_image_tokens == 8
    with pytest.raises(PromptError):
        processor.prepare(case_image(100, 30), "nope", "x")


def test_from_pretrained_default_limit(ckpt_copy):
    cfg = json.loads((ckpt_copy / "preprocessor_config.json").read_text())
    del cfg["in_token_limit"]
    (ckpt_copy / "preprocessor_config.json").write_text(json.dumps(cfg))
    assert Processor.from_pretrained(ckpt_copy).in_token_limit == 4096  # config loaded from the dir


def test_declared_training_sizes_rescale_the_image_keeping_its_shape():
    small = case_image(100, 30)
    pre = preprocess_image(small, min_short_side=160)
    assert pre.original_wh == (100, 30)  # answers are still normalised by the input's own size
    assert pre.resized_wh == (560, 168) and pre.grid_hw == (12, 40)  # 533x160, rounded up to whole tokens
    # the same pixels as enlarging the input first (PIL bicubic, the aspect ratio kept) without the settings
    enlarged = preprocess_image(np.asarray(Image.fromarray(small).resize((533, 160), Image.BICUBIC)))
    assert np.array_equal(pre.pixel_values, enlarged.pixel_values)
    # the longer side's limit wins over the shorter side's: 256x77 (x2.56), not 533x160
    assert preprocess_image(small, min_short_side=160, max_long_side=256).resized_wh == (280, 84)
    big = case_image(640, 480)  # a camera frame: shrunk to 256x192
    pre = preprocess_image(big, min_short_side=160, max_long_side=256)
    assert pre.original_wh == (640, 480) and pre.resized_wh == (280, 196)
    shrunk = preprocess_image(np.asarray(Image.fromarray(big).resize((256, 192), Image.BICUBIC)))
    assert np.array_equal(pre.pixel_values, shrunk.pixel_values)
    inside = case_image(250, 200)  # already within the sizes: the reference's processing, bit for bit
    assert np.array_equal(preprocess_image(inside, min_short_side=160, max_long_side=256).pixel_values,
                          preprocess_image(inside).pixel_values)


def test_from_pretrained_reads_the_training_sizes(ckpt_copy):
    path = ckpt_copy / "preprocessor_config.json"
    cfg = json.loads(path.read_text())
    assert not {"min_short_side", "max_long_side"} & cfg.keys()  # a release layout: the reference's sizes
    processor = Processor.from_pretrained(ckpt_copy)
    assert processor.min_short_side is None and processor.max_long_side is None
    path.write_text(json.dumps({**cfg, "min_short_side": 160, "max_long_side": 256}))
    processor = Processor.from_pretrained(ckpt_copy)
    assert (processor.min_short_side, processor.max_long_side) == (160, 256)
    assert processor.preprocess(case_image(100, 30)).resized_wh == (280, 84)
    for key in ("min_short_side", "max_long_side"):
        for bad in (0, -5, 1.5, "160", True, 10**6):
            path.write_text(json.dumps({**cfg, key: bad}))
            with pytest.raises(ProcessorError, match=key):
                Processor.from_pretrained(ckpt_copy)


def test_from_pretrained_errors(ckpt_copy):
    (ckpt_copy / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(ProcessorError, match="preprocessor_config.json"):
        Processor.from_pretrained(ckpt_copy)
    (ckpt_copy / "tokenizer.json").write_text('{"version": "1.0", "model": 3}')
    with pytest.raises(ProcessorError, match="cannot load tokenizer"):
        Processor.from_pretrained(ckpt_copy)
    (ckpt_copy / "tokenizer.json").unlink()
    with pytest.raises(ProcessorError, match="not found"):
        Processor.from_pretrained(ckpt_copy)


def test_from_pretrained_image_token_mismatch(ckpt_copy):
    cfg = json.loads((ckpt_copy / "config.json").read_text())
    cfg["image_token_index"] = 151667  # the reference's wrong code default
    with pytest.raises(ProcessorError, match="image_token_index"):
        Processor.from_pretrained(ckpt_copy, LocateAnythingConfig.from_dict(cfg))
