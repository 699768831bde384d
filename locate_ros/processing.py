"""Image preprocessing and prompt construction, bit-exact with the LocateAnything reference processor.

Reference: Eagle `locany/image_processing_locateanything.py` + `processing_locateanything.py` and the
worker's task prompts (spec §2-§4). Pixels go through PIL BICUBIC exactly where the reference resizes;
everything else is numpy. Token ids come from the checkpoint's config and tokenizer, never literals.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image

from .model.config import LocateAnythingConfig


class ImageError(ValueError):
    """The input image cannot be preprocessed (wrong type, dtype, shape, or too large)."""


class PromptError(ValueError):
    """Unknown task, or a query that is empty, too long or contains control markup."""


class ProcessorError(ValueError):
    """The checkpoint's tokenizer or processor files are missing, corrupt or inconsistent."""


# ---------------------------------------------------------------------------------------------------
# images

# to_tensor (uint8/255 in float32) then Normalize(0.5, 0.5), precomputed per uint8 value: the same
# float32 ops as torchvision, so indexing this table is bit-identical and costs one pass.
_LUT = ((np.arange(256, dtype=np.float32) / np.float32(255)) - np.float32(0.5)) / np.float32(0.5)


@dataclass(frozen=True)
class PreprocessedImage:
    pixel_values: np.ndarray  # float32 [L, 3, patch, patch], patches in row-major (row, col) order
    grid_hw: tuple[int, int]  # (rows, cols) of patches
    resized_wh: tuple[int, int]  # the size the patches were cut from
    original_wh: tuple[int, int]  # the input size: answer coordinates are normalised by this
    merge_size: int = 2

    @property
    def num_image_tokens(self) -> int:
        return self.grid_hw[0] * self.grid_hw[1] // (self.merge_size * self.merge_size)


def _to_rgb_pil(image: Image.Image) -> Image.Image:
    # fetch_image: RGBA is pasted on white through its alpha; every other mode is a plain convert
    if image.mode == "RGBA":
        bg = Image.new("RGB", image.size, (255, 255, 255))
        bg.paste(image, mask=image.split()[3])
        return bg
    return image if image.mode == "RGB" else image.convert("RGB")


def _as_rgb(image) -> Union[np.ndarray, Image.Image]:
    """A validated HxWx3 uint8 array, or an RGB PIL image."""
    if isinstance(image, Image.Image):
        if image.width == 0 or image.height == 0:
            raise ImageError(f"image is empty ({image.width}x{image.height})")
        return _to_rgb_pil(image)
    if not isinstance(image, np.ndarray):
        raise ImageError(f"image must be a numpy array (HxWx3 uint8 RGB) or a PIL image, not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageError(f"image dtype must be uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageError(f"image must be HxWx3 (RGB) or HxWx4 (RGBA), got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"image is empty (shape {image.shape})")
    if image.shape[2] == 4:
        return _to_rgb_pil(Image.fromarray(image, "RGBA"))
    return image


def _wh(img) -> tuple[int, int]:
    return img.size if isinstance(img, Image.Image) else (img.shape[1], img.shape[0])


def preprocess_image(image, in_token_limit: int = 25600, patch_size: int = 14, merge_size: int = 2,
                     min_short_side: Optional[int] = None, max_long_side: Optional[int] = None) -> PreprocessedImage:
    """HxWx3 uint8 RGB (or HxWx4 RGBA, or a PIL image) -> normalised patches, as the reference processor.

    `min_short_side` and `max_long_side` (not in the reference, which keeps the input's scale up to
    `in_token_limit`): first rescale the image, keeping its aspect ratio, into the sizes a checkpoint
    declares it was trained at: enlarged until its shorter side reaches `min_short_side`, but never
    so far that its longer side passes `max_long_side`, and shrunk to that when it is larger. None,
    the reference's behaviour, leaves the size as it is."""
    img = _as_rgb(image)
    w, h = original_wh = _wh(img)
    scale = 1.0
    if min_short_side is not None and min(w, h) < min_short_side:
        scale = min_short_side / min(w, h)
    if max_long_side is not None and max(w, h) * scale > max_long_side:  # the trained grid's edge wins
        scale = max_long_side / max(w, h)
    if scale != 1.0:
        w, h = max(1, round(w * scale)), max(1, round(h * scale))
    size = (w, h)
    n = (w // patch_size) * (h // patch_size)
    if n > in_token_limit:
        s = math.sqrt(in_token_limit / n)
        size = (max(1, int(w * s)), max(1, int(h * s)))  # max(1): only degenerate strips would reach 0
    # round up to whole merged tokens; this may end slightly above the limit (2352x2380 -> 25920 patches)
    q = patch_size * merge_size
    size2 = (-(-size[0] // q) * q, -(-size[1] // q) * q)
    gh, gw = size2[1] // patch_size, size2[0] // patch_size
    if gh >= 512 or gw >= 512:
        raise ImageError(f"image {original_wh[0]}x{original_wh[1]} gives a {gh}x{gw} patch grid; each side must stay "
                         f"under 512 patches (aspect ratio too extreme)")
    # two separate BICUBIC resizes, as the reference: one resize straight to size2 gives other pixels
    for target in (size, size2):
        if target != _wh(img):
            img = (img if isinstance(img, Image.Image) else Image.fromarray(img)).resize(target, Image.BICUBIC)
    a = np.asarray(img)
    # (H, W, C) -> (rows, 14, cols, 14, C) -> (rows, cols, C, 14, 14); the LUT gather writes the result once
    patches = a.reshape(gh, patch_size, gw, patch_size, 3).transpose(0, 2, 4, 1, 3)
    pv = _LUT[patches].reshape(gh * gw, 3, patch_size, patch_size)
    return PreprocessedImage(pv, (gh, gw), size2, original_wh, merge_size)


# ---------------------------------------------------------------------------------------------------
# prompts

# the worker's task prompts, verbatim (note "matches" in detect and "match" in ground_multi)
TASKS: dict[str, str] = {
    "detect": "Locate all the instances that matches the following description: {}.",
    "ground": "Locate a single instance that matches the following description: {}.",
    "ground_multi": "Locate all the instances that match the following description: {}.",
    "text_ground": "Please locate the text referred as {}.",
    "ocr": "Detect all the text in box format.",
    "gui_box": "Locate the region that matches the following description: {}.",
    "point": "Point to: {}.",
    "gui_point": "Point to: {}.",
}
CATEGORY_SEP = "</c>"  # joins detect categories
IMAGE_PLACEHOLDER = "<image-1>"
# a query holding these would change the prompt's structure (an extra turn, image, or image token)
_CONTROL = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<IMG_CONTEXT>", "<img>", "</img>", "<image-")

_SYSTEM = "<|im_start|>system\nYou are a helpful assistant.{}<|im_end|>\n"
_TEMPLATES = {
    # processor.py_apply_chat_template (worker and training): "\n" before the first <|im_end|>
    "worker": _SYSTEM.format("\n"),
    # chat_template.json through Jinja (the evaluation scripts): no newline
    "eval": _SYSTEM.format(""),
}


def _check_text(text: str, what: str, max_chars: int) -> str:
    if not isinstance(text, str):
        raise PromptError(f"{what} must be a string, not {type(text).__name__}")
    text = text.strip()
    if not text:
        raise PromptError(f"{what} is empty")
    if len(text) > max_chars:
        raise PromptError(f"{what} is {len(text)} characters long; the limit is {max_chars}")
    bad = [m for m in _CONTROL if m in text]
    if bad:
        raise PromptError(f"{what} contains prompt markup {bad[0]!r}")
    return text


def build_question(task: str, query: Union[str, Sequence[str], None] = None, max_query_chars: int = 2000) -> str:
    """The reference question for `task`. detect takes one category or a list (joined by </c>); ocr takes none."""
    if task not in TASKS:
        raise PromptError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
    if task == "ocr":
        if query:  # None, "" or [] are fine; anything else is a caller mistake worth reporting
            raise PromptError("task 'ocr' takes no query")
        return TASKS[task]
    if query is None:
        raise PromptError(f"task {task!r} needs a query")
    if not isinstance(query, str):
        if task != "detect":
            raise PromptError(f"task {task!r} takes a single string query, not {type(query).__name__}")
        parts = [_check_text(q, "category", max_query_chars) for q in query]
        if not parts:
            raise PromptError("task 'detect' needs at least one category")
        query = CATEGORY_SEP.join(parts)
    query = _check_text(query, "query", max_query_chars)
    return TASKS[task].format(query)


def build_chat_text(question: str, template: str = "worker") -> str:
    """One user turn holding the image placeholder and `question`, plus the generation prompt."""
    if template not in _TEMPLATES:
        raise PromptError(f"unknown chat template {template!r}; choose 'worker' or 'eval'")
    if IMAGE_PLACEHOLDER in question:  # the reference would then not add its own placeholder
        raise PromptError(f"question must not contain {IMAGE_PLACEHOLDER!r}")
    return f"{_TEMPLATES[template]}<|im_start|>user\n{IMAGE_PLACEHOLDER}{question}<|im_end|>\n<|im_start|>assistant\n"


def expand_image_placeholder(text: str, num_image_tokens: int, image_token: str = "<IMG_CONTEXT>",
                             start: str = "<img>", end: str = "</img>") -> str:
    """`<image-1>` -> `<image 1><img>` + N x `<IMG_CONTEXT>` + `</img>`; `<image 1>` stays plain text."""
    return text.replace(IMAGE_PLACEHOLDER, f"<image 1>{start}{image_token * num_image_tokens}{end}")


# ---------------------------------------------------------------------------------------------------
# processor


class Processor:
    """Tokenizer + image settings of one checkpoint."""

    DEFAULT_IN_TOKEN_LIMIT = 4096  # the reference class default; release checkpoints set 25600

    def __init__(self, tokenizer, config: LocateAnythingConfig, in_token_limit: int = DEFAULT_IN_TOKEN_LIMIT,
                 image_token: str = "<IMG_CONTEXT>", image_start: str = "<img>", image_end: str = "</img>",
                 min_short_side: Optional[int] = None, max_long_side: Optional[int] = None):
        self.tokenizer = tokenizer
        self.config = config
        self.in_token_limit = int(in_token_limit)
        self.min_short_side, self.max_long_side = min_short_side, max_long_side
        self.patch_size = config.vision.patch_size
        self.merge_size = config.vision.merge_kernel_size[0]
        self.image_token, self.image_start, self.image_end = image_token, image_start, image_end
        got = tokenizer.token_to_id(image_token)
        if got != config.tokens.image:  # the expanded text must tokenize to the id the model scatters into
            raise ProcessorError(f"tokenizer maps {image_token!r} to {got}, config.json says image_token_index "
                                 f"{config.tokens.image}")

    @classmethod
    def from_pretrained(cls, ckpt_dir: Union[str, Path], config: Optional[LocateAnythingConfig] = None) -> "Processor":
        from tokenizers import Tokenizer

        d = Path(ckpt_dir)
        config = config if config is not None else LocateAnythingConfig.from_json(d / "config.json")
        path = d / "tokenizer.json"
        if not path.is_file():
            raise ProcessorError(f"{path}: not found (the checkpoint must ship tokenizer.json)")
        try:
            tok = Tokenizer.from_file(str(path))  # plain JSON: no pickles, no network
        except Exception as e:
            raise ProcessorError(f"{path}: cannot load tokenizer ({e})") from None
        pre, proc = _read_json(d / "preprocessor_config.json"), _read_json(d / "processor_config.json")
        # our keys, absent from release checkpoints (they keep the reference's sizes): the image sizes
        # the checkpoint was trained at (the bundled demo model's are in its file)
        sides = {}
        for key in ("min_short_side", "max_long_side"):
            v = sides[key] = pre.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 4096):
                raise ProcessorError(f"{d / 'preprocessor_config.json'}: {key} must be an integer in 1..4096, "
                                     f"got {v!r}")
        return cls(tok, config, in_token_limit=pre.get("in_token_limit", cls.DEFAULT_IN_TOKEN_LIMIT),
                   image_token=proc.get("image_token", "<IMG_CONTEXT>"),
                   image_start=proc.get("image_start_token", "<img>"),
                   image_end=proc.get("image_end_token", "</img>"), **sides)

    def token_to_id(self, token: str) -> Optional[int]:
        """The id of `token`, or None when the tokenizer does not know it."""
        return self.tokenizer.token_to_id(token)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def encode_prompt(self, question: str, num_image_tokens: int, template: str = "worker") -> list[int]:
        """Prompt ids for one image and `question`, tokenized without BOS exactly as the reference."""
        text = expand_image_placeholder(build_chat_text(question, template), num_image_tokens,
                                        self.image_token, self.image_start, self.image_end)
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        n = ids.count(self.config.tokens.image)
        if n != num_image_tokens:  # the model scatters exactly num_image_tokens features into these slots
            raise PromptError(f"prompt holds {n} image tokens, the image has {num_image_tokens}")
        return ids

    def preprocess(self, image) -> PreprocessedImage:
        return preprocess_image(image, self.in_token_limit, self.patch_size, self.merge_size,
                                self.min_short_side, self.max_long_side)

    def prepare(self, image, task: str, query=None, template: str = "worker") -> tuple[PreprocessedImage, list[int]]:
        """Image patches and prompt ids for one request."""
        question = build_question(task, query)
        pre = self.preprocess(image)
        return pre, self.encode_prompt(question, pre.num_image_tokens, template)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProcessorError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise ProcessorError(f"{path}: expected a JSON object")
    return d
