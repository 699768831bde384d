"""The decoding loop: slow (token by token), fast (one 6-token block per forward) and hybrid.

One loop for all three modes, over any `Backend`, following the reference generate() step for step:
build the inputs (blocks.py), forward, crop the window's K/V, sample (sampling.py), decide what to
commit (hybrid.py), append. Bounds on new tokens, boxes and wall time make every output terminate:
each step commits at least one token (a hybrid anchored window that keeps nothing is followed by a
token-by-token step that does).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from ..model.config import TokenIds
from .blocks import ar_inputs, mtp_inputs
from .hybrid import HybridThresholds, ar_decision, window_decision
from .sampling import sample_tokens

MODES = ("slow", "fast", "hybrid")
# (forward index, "mtp" | "ar", logits [rows, vocab], tokens generated so far) -> the logits the loop
# reads instead. Row j of an MTP step predicts generated token number n + j (a verifying hybrid step
# calls it twice: "ar" for the rows that check the last draft, then "mtp"). Used to replay scripted
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
    # Fast and hybrid windows after a box's x1 (not the reference's; only for a model trained with
    # x1 blocks, training.objective.build_example): a box-aligned window commits `<box>` x1 alone,
    # and the window anchored at that x1 writes y1 x2 y2 `</box>` and the next box's `<box>` x1, so
    # every box's other edges are read knowing which instance its x1 picked. The same one forward
    # per box; one more per answer group (hybrid.anchored_decision).
    instance_anchored: bool = False
    # With instance-anchored windows (fast and hybrid mode without verification): each box's x2 and
    # y2 as the next step's causal rows read them, not as the window drafted them. The window writes
    # y1 x2 y2 side by side, none seeing the others; the next step re-runs the committed box token by
    # token anyway (to cache it), so the row at y1 predicts x2 knowing x1 and y1, as slow mode does,
    # and the row at x2 predicts y2. The answer takes those picks (when coordinates); the cache keeps
    # the drafted values the later rows saw. No extra forward: only a few more rows of logits.
    causal_readout: bool = True

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


def causal_choices(causal: torch.Tensor, generated: list[int], first: int, tokens: TokenIds, opts: DecodeOptions,
                   generator: Optional[torch.Generator]) -> tuple[list[int], torch.Tensor]:
    """Token-by-token choices of causal rows [R, V] and their probabilities [R, V], as slow mode
    samples them: row j predicts generated[first + j] and sees generated[:first + j] (a repetition
    penalty must not count the draft's token at that very place)."""
    sampling = dict(tokens=tokens, mode="slow", temperature=opts.temperature, top_p=opts.top_p, top_k=opts.top_k,
                    repetition_penalty=opts.repetition_penalty, thresholds=opts.thresholds, generator=generator)
    if opts.repetition_penalty == 1.0:  # no row depends on its own history: one call for all
        rows = [sample_tokens(causal, generated, **sampling)]
    else:
        rows = [sample_tokens(causal[j:j + 1], generated[:first + j], **sampling) for j in range(causal.shape[0])]
    return [i for s in rows for i in s.x0], torch.cat([s.probs for s in rows])


def generate(backend, prompt_ids: list[int], image_features, tokens: TokenIds, opts: DecodeOptions,
             block: int = 6, logits_hook: Optional[LogitsHook] = None) -> Generation:
    if opts.mode == "hybrid" and opts.thresholds.verify_ratio > 0:
        return generate_verified(backend, prompt_ids, image_features, tokens, opts, block, logits_hook)
    prompt_len = len(prompt_ids)
    total = prompt_len + opts.max_new_tokens
    backend.reset(total + 2 * block)  # a window can overshoot the bound by block-1 tokens
    generator = None  # made on the logits' device at the first step (a CUDA draw needs a CUDA generator)
    generated = list(prompt_ids)
    probs_out: list[float] = []
    steps: list[Step] = []
    in_mtp = opts.mode != "slow"
    anchored = opts.instance_anchored and in_mtp
    at_x1 = False  # the last step ended with a box's x1 that the next window anchors at
    fallbacks, boxes, stop = 0, 0, "max_new_tokens"
    readout = opts.causal_readout and anchored
    reread: set[int] = set()  # indices of drafted x2 and y2 that the next step's causal rows reread
    rereads: dict[int, tuple[int, float]] = {}  # index -> (the causal row's pick, its probability)
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
        n_causal = L - past if reread and in_mtp and past > 0 else 0  # the rows of the uncached committed tokens
        logits = backend.forward(ids, pos, mask, n_causal + rows, image_features if past == 0 else None)
        backend.crop(L)  # drop the window's K/V: committed tokens are re-run causally next step
        if n_causal:
            causal, logits = logits[:n_causal], logits[n_causal:]
            if logits_hook is not None:  # causal row j predicts generated[past + j + 1]
                causal = logits_hook(len(steps), "ar", causal, past + 1 - prompt_len)
            targets = sorted(i for i in reread if past < i < L)  # row i - past - 1 predicts generated[i]
            if targets:
                picks, picks_p = causal_choices(causal[:targets[-1] - past], generated, past + 1, tokens, opts, generator)
                for i in targets:
                    pick = picks[i - past - 1]
                    if tokens.is_coord(pick):
                        rereads[i] = (pick, float(picks_p[i - past - 1, pick]))
        reread.clear()
        if logits_hook is not None:
            logits = logits_hook(len(steps), kind, logits, L - prompt_len)
        if generator is None and opts.seed is not None:
            generator = torch.Generator(device=logits.device).manual_seed(opts.seed)
        s = sample_tokens(logits, generated, tokens=tokens, mode=opts.mode, temperature=opts.temperature,
                          top_p=opts.top_p, top_k=opts.top_k, repetition_penalty=opts.repetition_penalty,
                          thresholds=opts.thresholds, generator=generator)
        if in_mtp:
            pat = window_decision(s, opts.mode, tokens, opts.thresholds, anchored, at_x1)
            if readout and at_x1 and pat.type in ("anchored_box", "anchored_end"):
                reread.update((L + 1, L + 2))  # the box's x2 and y2 (pat.tokens: y1 x2 y2 </box> ...)
        elif opts.mode == "hybrid":
            pat = ar_decision(s.x0[0], tokens)
        else:  # slow: plain next-token decoding
            pat = None
        at_x1 = pat is not None and pat.type in ("box_x1", "anchored_box")
        new = pat.tokens if pat is not None else [s.x0[0]]
        generated.extend(new)
        if not new:  # (a hybrid anchored window whose x1 has no valid box after it) the next step
            backend.crop(L - 1)  # re-runs the last token, whose row predicts what follows it
        if new:  # one gather (one device sync) for the probabilities of everything this step committed
            at = torch.arange(len(new), device=s.probs.device).clamp_(max=rows - 1)
            probs_out.extend(s.probs[at, torch.tensor(new, device=s.probs.device)].tolist())
        steps.append(Step(kind, len(ids), past, pat.type if pat else "token", list(new)))
        if t_first is None:
            t_first = time.perf_counter()
        boxes += sum(t == tokens.box_end for t in new)
        if pat is not None and pat.type in ("error_box", "anchored_error") and opts.mode == "hybrid":
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
    for i, (pick, p) in rereads.items():
        if i < len(generated):
            generated[i], probs_out[i - prompt_len] = pick, p
    return Generation(generated[prompt_len:], probs_out, stop, steps, fallbacks, t_first - t0, t_end - t_first)


def generate_verified(backend, prompt_ids: list[int], image_features, tokens: TokenIds, opts: DecodeOptions,
                      block: int = 6, logits_hook: Optional[LogitsHook] = None) -> Generation:
    """Hybrid mode with verification (`HybridThresholds.verify_ratio` > 0): draft a block, then check it.

    Every window step runs the tokens the step before committed causally ahead of its window (the
    reference does too, to cache them); here it also reads their rows: row j predicts the j+1-th
    token of the last draft, and the last row the token the new window drafts first. A drafted token
    stands if its row gives it at least `verify_ratio` times the probability of the row's own choice
    (sample_tokens as slow mode runs it). At the first that does not, the row's choice replaces it
    and the cache is cut there; if both are coordinates the draft's rest stays, unchecked, for the
    next step (the same slot with another value: the rest often still holds), otherwise decoding
    goes on token by token to the end of the unit (`</box>`, `</ref>`) and drafts again. So with a
    ratio of 1 at temperature 0 the answer is slow mode's, token for token, in fewer forwards when
    drafts hold. A bound (max_new_tokens, max_boxes) is judged on the verified prefix and cuts the
    answer where slow mode stops; max_time keeps the last draft unchecked. `hybrid_fallbacks`
    counts the answer's boxes that a check corrected (as the reference counts boxes it finishes
    token by token).
    """
    t, ratio = tokens, opts.thresholds.verify_ratio
    prompt_len = len(prompt_ids)
    total = prompt_len + opts.max_new_tokens
    backend.reset(total + 2 * block)
    generator = None
    generated = list(prompt_ids)
    probs_out: list[float] = []
    steps: list[Step] = []
    unverified = 0  # trailing tokens of `generated` drafted by a window and not checked yet
    in_mtp, boxes, stop = True, 0, "max_new_tokens"
    anchored, at_x1 = opts.instance_anchored, False  # at_x1: the next window anchors at a box's x1
    corrected: set[int] = set()  # where each box a check corrected starts (index into `generated`)
    unit_ends = (t.box_end, t.ref_end)
    t0 = time.perf_counter()
    t_first = None

    sampling = dict(tokens=t, temperature=opts.temperature, top_p=opts.top_p, top_k=opts.top_k,
                    repetition_penalty=opts.repetition_penalty, thresholds=opts.thresholds)

    def note_correction(at: int, choice: int) -> None:
        """The box that a correction at index `at` lands in, or starts, was not drafted whole."""
        for i in [i for i in corrected if i >= at]:
            corrected.discard(i)  # its box is being cut away
        if choice == t.box_start:
            corrected.add(at)
            return
        for i in range(at - 1, prompt_len - 1, -1):
            if generated[i] in (t.box_start, t.box_end):
                if generated[i] == t.box_start:
                    corrected.add(i)
                return

    def verdicts(probs: torch.Tensor, drafted: list[int], chosen: list[int], p_chosen: list[float]) -> list[bool]:
        """Whether each drafted token stands against the causal row that predicts it."""
        dev = probs.device
        p_draft = probs[torch.arange(len(drafted), device=dev), torch.tensor(drafted, device=dev)]
        ok = (p_draft >= torch.tensor(p_chosen[:len(drafted)], device=dev) * ratio).tolist()
        return [d == c or k for d, c, k in zip(drafted, chosen, ok)]

    while True:
        past = backend.cache_length
        L = len(generated)
        if in_mtp:
            ids, pos, mask = mtp_inputs(generated, past, t.text_mask, block)
            window = block
        else:
            ids, pos, mask = ar_inputs(generated, past)
            window = 0
        n_causal = unverified + 1  # the rows that predict each unverified token, and the next one
        logits = backend.forward(ids, pos, mask, n_causal + window, image_features if past == 0 else None)
        backend.crop(L)
        causal, win = logits[:n_causal], logits[n_causal:]
        first = L - unverified  # index of the token causal row 0 predicts
        if logits_hook is not None:
            causal = logits_hook(len(steps), "ar", causal, first - prompt_len)
            if window:
                win = logits_hook(len(steps), "mtp", win, L - prompt_len)
        if generator is None and opts.seed is not None:
            generator = torch.Generator(device=logits.device).manual_seed(opts.seed)
        chosen, causal_p = causal_choices(causal, generated, first, tokens, opts, generator)
        dev = causal_p.device
        chosen_p = causal_p[torch.arange(len(chosen), device=dev), torch.tensor(chosen, device=dev)].tolist()
        stands = verdicts(causal_p[:unverified], generated[first:], chosen, chosen_p) if unverified else []
        bad = next((j for j, ok in enumerate(stands) if not ok), None)
        if bad is not None:  # keep the verified prefix and the choice in place of the first miss
            cut = first + bad
            note_correction(cut, chosen[bad])
            missed, rest, rest_p = generated[cut], generated[cut + 1:], probs_out[cut + 1 - prompt_len:]
            del generated[cut:], probs_out[cut - prompt_len:]
            backend.crop(cut)
            new, new_p, pattern = [chosen[bad]], [chosen_p[bad]], "rejected"
            if anchored and t.is_coord(chosen[bad]) and generated[-1] == t.box_start:
                pass  # a new x1, a new instance: the window anchored at it drafts the rest
            elif t.is_coord(missed) and t.is_coord(chosen[bad]):
                # another value in the same slot: the draft's rest stays, unverified, for the next
                # step to check (at no extra forward); it often still holds
                new, new_p = new + rest, new_p + rest_p
        else:
            new, new_p, pattern = [chosen[-1]], [chosen_p[-1]], "token"
            if window:
                s = sample_tokens(win, generated, mode="fast", generator=generator, **sampling)
                decision = window_decision(s, "fast", t, opts.thresholds, anchored, at_x1)
                draft = decision.tokens
                if verdicts(causal_p[-1:], draft[:1], chosen[-1:], chosen_p[-1:])[0]:
                    at = torch.arange(len(draft), device=s.probs.device).clamp_(max=block - 1)
                    new, pattern = draft, "draft"
                    at_x1 = decision.type in ("box_x1", "anchored_box")
                    new_p = s.probs[at, torch.tensor(draft, device=s.probs.device)].tolist()
                    new_p[0] = chosen_p[-1]
                else:
                    pattern = "rejected"
                    note_correction(L, chosen[-1])
        generated.extend(new)
        probs_out.extend(new_p)
        unverified = len(new) - 1
        steps.append(Step("mtp" if window else "ar", len(ids), past, pattern, list(new)))
        if t_first is None:
            t_first = time.perf_counter()
        if pattern != "draft":
            # a box's x1 that nothing drafted after it (a correction, or a token-by-token step)
            at_x1 = anchored and len(new) == 1 and t.is_coord(new[0]) and generated[-2] == t.box_start
            in_mtp = new[-1] in unit_ends or at_x1
        # A check never cuts before `first`, so the verified prefix only grows: judge what it gained.
        # (In slow mode's order: the end, then the box bound, then the token bound.)
        checked = len(generated) - unverified
        end = min(checked, total)
        if t.im_end in generated[first:end]:
            stop = "eos"
            del generated[generated.index(t.im_end, first) + 1:]
            break
        for i in range(first, end):
            boxes += generated[i] == t.box_end
            if opts.max_boxes is not None and boxes >= opts.max_boxes:
                stop = "max_boxes"
                del generated[i + 1:]
                break
        if stop == "max_boxes":
            break
        if checked >= total:
            del generated[total:]
            break
        if opts.max_time_s is not None and time.perf_counter() - t0 > opts.max_time_s:
            stop = "max_time"
            break
    del probs_out[len(generated) - prompt_len:]
    t_end = time.perf_counter()
    t_first = t_first or t_end
    fallbacks = sum(i < len(generated) for i in corrected)
    return Generation(generated[prompt_len:], probs_out, stop, steps, fallbacks, t_first - t0, t_end - t_first)
