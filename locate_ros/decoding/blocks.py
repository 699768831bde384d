"""Inputs of one decoder forward: token ids, position ids and the attention mask.

Parallel Box Decoding (MTP) window, as the reference builds it: after the committed tokens that are
not cached yet comes a copy of the last committed token plus (block-1) `<text_mask>` tokens. The
window sits at positions L-1 .. L+block-2 (L = committed length), attends bidirectionally inside
itself, and cannot see the original copy of the last committed token (key column kv_len-block-1).
Everything else is causal.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def _new_block_mask(q_len: int, window: int) -> np.ndarray:
    """Mask of the S new rows over the S new key columns (the cached prefix is always visible)."""
    m = np.tril(np.ones((q_len, q_len), dtype=bool))
    if window:
        m[-window:, -window:] = True
        if q_len > window:
            m[-window:, -window - 1] = False
    m.setflags(write=False)
    return m


def attention_mask(past_len: int, q_len: int, window: int = 0) -> np.ndarray | None:
    """Boolean [q_len, past_len + q_len], True = attend; None when a single row sees every key."""
    if q_len == 1 and not window:
        return None
    new = _new_block_mask(q_len, window)
    if past_len == 0:
        return new.copy()  # callers may hand it to torch, which wants writable memory
    return np.concatenate([np.ones((q_len, past_len), dtype=bool), new], axis=1)


def ar_inputs(generated: list[int], past_len: int):
    """Token-by-token step: the committed tokens not yet in the cache."""
    ids = np.asarray(generated[past_len:], dtype=np.int64)
    pos = np.arange(past_len, len(generated), dtype=np.int64)
    return ids, pos, attention_mask(past_len, len(ids))


def mtp_inputs(generated: list[int], past_len: int, mask_token_id: int, block: int = 6):
    """Parallel step: uncached committed tokens + [copy of last token, (block-1) x <text_mask>]."""
    L = len(generated)
    ids = np.asarray(generated[past_len:] + [generated[-1]] + [mask_token_id] * (block - 1), dtype=np.int64)
    pos = np.concatenate([np.arange(past_len, L), np.arange(L - 1, L + block - 1)]).astype(np.int64)
    return ids, pos, attention_mask(past_len, len(ids), window=block)
