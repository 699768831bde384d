"""The public API: `Locator.from_pretrained(path).locate(image, query)`.

Plain Python, no ROS: the node, the CLI, evaluation and benchmarks all call this.
"""
from __future__ import annotations

import dataclasses
import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from .backends.torch_backend import TorchBackend
from .decoding.hybrid import HybridThresholds
from .decoding.loop import DecodeOptions, LogitsHook, generate
from .decoding.parse import parse_detections
from .model import load_model
from .model.checkpoint import CheckpointError
from .processing import Processor, build_question
from .results import LocateResult

Query = Union[str, Sequence[str]]
DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def resolve_dtype(dtype) -> Optional[torch.dtype]:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}") from None


def checkpoint_thresholds(path: Union[str, Path]) -> HybridThresholds:
    """Hybrid mode's fallback rule for a checkpoint: the reference's constants, with any that its
    generation_config.json declares under `hybrid_thresholds` (our key; release checkpoints have
    none) in their place. A model calibrates it for its own coordinate distributions: the reference's
    rule suits the released model's sharp ones (see HybridThresholds.ambiguous_top_k)."""
    file = Path(path) / "generation_config.json"
    if not file.is_file():
        return HybridThresholds()
    try:
        config = json.loads(file.read_text())
        declared = config.get("hybrid_thresholds", {}) if isinstance(config, dict) else None
        if not isinstance(declared, dict):
            raise ValueError("expected a JSON object whose hybrid_thresholds, if present, is an object")
        return HybridThresholds.from_dict(declared)
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"{file}: {e}") from None


def checkpoint_instance_anchored(path: Union[str, Path]) -> bool:
    """Whether the checkpoint declares `"instance_anchored_blocks": true` in its generation_config.json
    (our key): it was trained with x1 blocks, and its fast and hybrid windows anchor after each box's
    x1 (DecodeOptions.instance_anchored). Release checkpoints have no such key: the reference's windows."""
    file = Path(path) / "generation_config.json"
    if not file.is_file():
        return False
    try:
        config = json.loads(file.read_text())
        value = config.get("instance_anchored_blocks", False) if isinstance(config, dict) else None
        if not isinstance(value, bool):
            raise ValueError("expected a JSON object whose instance_anchored_blocks, if present, is true or false")
        return value
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{file}: {e}") from None


class Locator:
    def __init__(self, model, processor: Processor, backend=None, mode: str = "hybrid", template: str = "worker",
                 options: Optional[DecodeOptions] = None):
        self.model = model
        self.processor = processor
        self.backend = backend if backend is not None else TorchBackend(model)
        self.tokens = model.cfg.tokens
        self.template = template
        self.options = options or DecodeOptions(mode=mode)
        if mode != self.options.mode:
            self.options = dataclasses.replace(self.options, mode=mode)
        # the prompt depends on (question, image-token count) only: encode each once, not per frame
        self._prompt_ids = lru_cache(maxsize=256)(self._encode_prompt)

    @classmethod
    def from_pretrained(cls, path: Union[str, Path], device: str = "cpu", dtype=None, mode: str = "hybrid",
                        template: str = "worker", **decode_options) -> "Locator":
        """`decode_options` are DecodeOptions fields; without `thresholds` and `instance_anchored`,
        the checkpoint's own (`checkpoint_thresholds`, `checkpoint_instance_anchored`)."""
        model = load_model(path, device=device, dtype=resolve_dtype(dtype))
        processor = Processor.from_pretrained(path, model.cfg)
        if "thresholds" not in decode_options:  # read only when needed: the node passes its own
            decode_options["thresholds"] = checkpoint_thresholds(path)
        if "instance_anchored" not in decode_options:
            decode_options["instance_anchored"] = checkpoint_instance_anchored(path)
        return cls(model, processor, mode=mode, template=template, options=DecodeOptions(mode=mode, **decode_options))

    def _encode_prompt(self, question: str, num_image_tokens: int) -> tuple[int, ...]:
        return tuple(self.processor.encode_prompt(question, num_image_tokens, template=self.template))

    def locate(self, image: np.ndarray, query: Query, task: str = "detect", mode: Optional[str] = None,
               max_new_tokens: Optional[int] = None, repetition_penalty: float = 1.0, temperature: float = 0.0,
               top_p: Optional[float] = None, top_k: Optional[int] = None, max_boxes: Optional[int] = None,
               max_time_s: Optional[float] = None, seed: Optional[int] = None,
               logits_hook: Optional[LogitsHook] = None) -> LocateResult:
        """Ground `query` in `image` (HxWx3 uint8 RGB). Boxes and points come back in image pixels."""
        t0 = time.perf_counter()
        question = build_question(task, query)
        pre = self.processor.preprocess(image)
        prompt = list(self._prompt_ids(question, pre.num_image_tokens))
        base = self.options
        opts = DecodeOptions(
            mode=mode or base.mode,
            max_new_tokens=max_new_tokens or base.max_new_tokens,
            max_boxes=max_boxes if max_boxes is not None else base.max_boxes,
            max_time_s=max_time_s if max_time_s is not None else base.max_time_s,
            temperature=temperature, top_p=top_p, top_k=top_k, repetition_penalty=repetition_penalty,
            thresholds=base.thresholds, seed=seed, instance_anchored=base.instance_anchored,
            causal_readout=base.causal_readout)
        t1 = time.perf_counter()
        features = self.backend.encode_image(pre.pixel_values, [pre.grid_hw])
        if features.device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        gen = generate(self.backend, prompt, features, self.tokens, opts, block=self.model.cfg.text.block_size,
                       logits_hook=logits_hook)
        # the label of an answer group the model leaves unnamed: the query when there is exactly one
        default_label = query if isinstance(query, str) else (query[0] if query and len(query) == 1 else "")
        dets = parse_detections(gen.token_ids, gen.token_probs, pre.original_wh, self.tokens, self.processor.decode,
                                default_label=default_label.strip())
        t3 = time.perf_counter()
        stats = {
            "mode": opts.mode,
            "forward_steps": gen.forward_steps,
            "tokens": len(gen.token_ids),
            "prompt_tokens": len(prompt),
            "boxes": sum(t == self.tokens.box_start for t in gen.token_ids),  # as the paper counts BPS
            "detections": len(dets),
            "hybrid_fallbacks": gen.hybrid_fallbacks,
            "stop_reason": gen.stop_reason,
            "image_grid": list(pre.grid_hw),
            "preprocess_s": t1 - t0,
            "vision_s": t2 - t1,
            "prefill_s": gen.prefill_s,
            "decode_s": gen.decode_s,
            "total_s": t3 - t0,
        }
        return LocateResult(dets, self.processor.decode(gen.token_ids), gen.token_ids, stats)
