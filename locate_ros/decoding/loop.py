"""The decoding loop: slow (token by token), fast (one 6-token block per forward) and hybrid.

One loop for all three modes, over any `Backend`, following the reference generate() step for step:
build the inputs (blocks.py), forward, crop the window's K/V, sample (sampling.py), decide what to
commit (hybrid.py), append. Bounds on new tokens, boxes and wall time make every output terminate:
each step commits at least one token.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from ..model.config import TokenIds
from .blocks import ar_inputs, mtp_inputs
from .hybrid import HybridThresholds, ar_decision, mtp_decision
from .sampling import sample_tokens

MODES = ("slow", "fast", "hybrid")
# (forward index, "mtp" | "ar", logits [rows, vocab], tokens generated so far) -> the logits the loop
# reads instead. Row j of an MTP step predicts generated token number n + j. Used to replay scripted
# logits (golden scenarios) and to force a known box sequence through the real model (benchmarks).
LogitsHook = Callable[[int, str, torch.Tensor, int], torch.Tensor]


@dataclass(frozen=True)
class DecodeOptions:
    mode: str = "hybrid"
    max_new_tokens: int = 2048
    max_boxes: Optional[int] = None  # stop once this many boxes are closed
    max_time_s: Optional[float] = None  # stop after this much decoding time
    temperature: float = 0.0  # 0 = greedy (argmax)
    top_p: Optional[float] = None
    top_k: Optional[int] = None
    repetition_penalty: float = 1.0
    thresholds: HybridThresholds = field(default_factory=HybridThresholds)
    seed: Optional[int] = None  # for temperature > 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown decoding mode {self.mode!r}; choose one of {MODES}")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0 or self.repetition_penalty <= 0:
            raise ValueError("temperature must be >= 0 and repetition_penalty > 0")


@dataclass
class Step:
    kind: str  # "mtp" or "ar"
    q_len: int
    past_len: int
    pattern: str  # what the step committed: coord_box, point_box, error_box, ref_object, im_end, ...
    appended: list[int]


@dataclass
class Generation:
    token_ids: list[int]  # generated ids only
    token_probs: list[float]  # probability the decoder gave each generated id
    stop_reason: str  # eos | max_new_tokens | max_boxes | max_time
    steps: list[Step]
    hybrid_fallbacks: int = 0
    prefill_s: float = 0.0  # the first forward (prompt, plus the first window in fast/hybrid)
    decode_s: float = 0.0  # everything after it

    @property
    def forward_steps(self) -> int:
        return len(self.steps)


def generate(backend, prompt_ids: list[int], image_features, tokens: TokenIds, opts: DecodeOptions,
             block: int = 6, logits_hook: Optional[LogitsHook] = None) -> Generation:
    prompt_len = len(prompt_ids)
    total = prompt_len + opts.max_new_tokens
    backend.reset(total + 2 * block)  # a window can overshoot the bound by block-1 tokens
    generator = None  # made on the logits' device at the first step (a CUDA draw needs a CUDA generator)
    generated = list(prompt_ids)
    probs_out: list[float] = []
    steps: list[Step] = []
    in_mtp = opts.mode != "slow"
    fallbacks, boxes, stop = 0, 0, "max_new_tokens"
    t0 = time.perf_counter()
    t_first = None
    while len(generated) < total:
        past = backend.cache_length
        L = len(generated)
        if in_mtp:
            ids, pos, mask = mtp_inputs(generated, past, tokens.text_mask, block)
            rows, kind = block, "mtp"
        else:
            ids, pos, mask = ar_inputs(generated, past)
            rows, kind = 1, "ar"
        logits = backend.forward(ids, pos, mask, rows, image_features if past == 0 else None)
        backend.crop(L)  # drop the window's K/V: committed tokens are re-run causally next step
        if logits_hook is not None:
            logits = logits_hook(len(steps), kind, logits, L - prompt_len)
        if generator is None and opts.seed is not None:
            generator = torch.Generator(device=logits.device).manual_seed(opts.seed)
        s = sample_tokens(logits, generated, tokens=tokens, mode=opts.mode, temperature=opts.temperature,
                          top_p=opts.top_p, top_k=opts.top_k, repetition_penalty=opts.repetition_penalty,
                          thresholds=opts.thresholds, generator=generator)
        if in_mtp:
            pat = mtp_decision(s, opts.mode, tokens, opts.thresholds)
        elif opts.mode == "hybrid":
            pat = ar_decision(s.x0[0], tokens)
        else:  # slow: plain next-token decoding
            pat = None
        new = pat.tokens if pat is not None else [s.x0[0]]
        generated.extend(new)
        # one gather (one device sync) for the probabilities of everything this step committed
        at = torch.arange(len(new), device=s.probs.device).clamp_(max=rows - 1)
        probs_out.extend(s.probs[at, torch.tensor(new, device=s.probs.device)].tolist())
        steps.append(Step(kind, len(ids), past, pat.type if pat else "token", list(new)))
        if t_first is None:
            t_first = time.perf_counter()
        boxes += sum(t == tokens.box_end for t in new)
        if pat is not None and pat.type == "error_box":
            fallbacks += 1
        if (pat is None and new[0] == tokens.im_end) or (pat is not None and pat.is_terminal):
            stop = "eos"
            break
        if pat is not None and opts.mode == "hybrid":
            if pat.need_switch_to_ar:
                in_mtp = False
            elif pat.type == "box_end_ar":
                in_mtp = True
        if opts.max_boxes is not None and boxes >= opts.max_boxes:
            stop = "max_boxes"
            break
        if opts.max_time_s is not None and time.perf_counter() - t0 > opts.max_time_s:
            stop = "max_time"
            break
    t_end = time.perf_counter()
    t_first = t_first or t_end
    return Generation(generated[prompt_len:], probs_out, stop, steps, fallbacks, t_first - t0, t_end - t_first)
