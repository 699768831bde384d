"""A small tokenizer with LocateAnything's special tokens, for models trained from scratch.

Same structure as the release tokenizer (Qwen2's byte-level BPE, its pre-tokenizer split, NFC), so
any text can be encoded, but a vocabulary learned from the data engine's prompts and labels: a
few hundred merges instead of 151k rows of embeddings. The special tokens carry the release names;
their ids differ and go to config.json (`token_ids_config`), which is where the code reads them.
"""
from __future__ import annotations

from typing import Iterable

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

# Qwen2's pre-tokenizer split: contractions, letters, single digits, punctuation runs, newlines, spaces
SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
CHAT_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
MARKUP_TOKENS = ("<IMG_CONTEXT>", "<img>", "</img>", "<box>", "</box>", "<quad>", "</quad>", "<ref>", "</ref>",
                 "<text_mask>")
COORD_TOKENS = tuple(f"<{v}>" for v in range(1001))
TAIL_TOKENS = ("<null>", "<switch>", "</c>")
NONE_WORD = "None"  # an ordinary word in the release tokenizer; one token here so <box>None</box> is 3 tokens


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 640) -> Tokenizer:
    """Byte-level BPE learned from `corpus` (vocab_size base tokens, the 256 bytes included), then the
    special tokens in release order: chat, markup, <0>..<1000> (contiguous ids), <null>, <switch>, </c>."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    specials = CHAT_TOKENS + MARKUP_TOKENS + COORD_TOKENS + TAIL_TOKENS
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    tok.add_tokens([AddedToken(NONE_WORD, normalized=False, special=False)])
    return tok


def token_ids_config(tok: Tokenizer) -> dict:
    """The config.json fields (top level and text_config) that name token ids, read from `tok`."""
    ids = {t: tok.token_to_id(t) for t in ("<|endoftext|>", "<|im_end|>", "<IMG_CONTEXT>", "<box>", "</box>", "<ref>",
                                          "</ref>", "<0>", "<1000>", NONE_WORD, "<text_mask>", "<null>", "<switch>")}
    missing = [t for t, i in ids.items() if i is None]
    if missing:
        raise ValueError(f"tokenizer lacks {missing}")
    if ids["<1000>"] - ids["<0>"] != 1000:
        raise ValueError("coordinate tokens <0>..<1000> must have contiguous ids")
    top = {"image_token_index": ids["<IMG_CONTEXT>"], "box_start_token_id": ids["<box>"],
           "box_end_token_id": ids["</box>"], "ref_start_token_id": ids["<ref>"], "ref_end_token_id": ids["</ref>"],
           "coord_start_token_id": ids["<0>"], "coord_end_token_id": ids["<1000>"], "none_token_id": ids[NONE_WORD],
           "eos_token_id": ids["<|im_end|>"]}
    text = {"text_mask_token_id": ids["<text_mask>"], "null_token_id": ids["<null>"],
            "switch_token_id": ids["<switch>"], "eos_token_id": ids["<|im_end|>"],
            "bos_token_id": ids["<|endoftext|>"], "vocab_size": tok.get_vocab_size(with_added_tokens=True)}
    return {"top": top, "text": text}
