"""Tokenizers: loading with the paper's conventions, and training small ones offline.

Paper conventions (App. A.1): byte-level BPE tokenizers get a prefix space (as RoBERTa needs) and a
tokenizer without a pad token pads with EOS.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

log = logging.getLogger(__name__)


def load_tokenizer(name: str | Path, gguf_file: str | None = None) -> PreTrainedTokenizerBase:
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tok = AutoTokenizer.from_pretrained(str(name), add_prefix_space=True, **kwargs)
    except (TypeError, ValueError):
        tok = AutoTokenizer.from_pretrained(str(name), **kwargs)
    return finalize_tokenizer(tok)


def finalize_tokenizer(tok: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Pad with EOS when there is no pad token (paper) and pad on the right for training."""
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise ValueError("tokenizer has neither a pad nor an EOS token; cannot pad batches")
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


def is_byte_level(tok: PreTrainedTokenizerBase) -> bool:
    """Byte-level BPE (GPT-2, RoBERTa, Llama-3 style) marks a word-initial space with 'Ġ'."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        text = backend.to_str()
        if '"ByteLevel"' in text:
            return True
    return False


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 1000, kind: str = "byte-level", min_frequency: int = 1
) -> PreTrainedTokenizerFast:
    """Train a small tokenizer with the `tokenizers` library (offline runs, tiny models, tests).

    kind: 'byte-level' (RoBERTa/GPT-2 style BPE with <s> </s> <pad> <unk> <mask>), 'wordpiece' (BERT style)
    or 'sentencepiece' (Metaspace + BPE, Llama-2 style).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    texts = list(texts)
    if kind == "byte-level":
        special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        t = Tokenizer(models.BPE(unk_token=None))
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        t.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=special,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
        )
        t.train_from_iterator(texts, trainer)
        t.post_processor = processors.RobertaProcessing(("</s>", t.token_to_id("</s>")), ("<s>", t.token_to_id("<s>")))
        return finalize_tokenizer(PreTrainedTokenizerFast(
            tokenizer_object=t, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
            mask_token="<mask>", cls_token="<s>", sep_token="</s>", add_prefix_space=True,
        ))
    if kind == "wordpiece":
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        t = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        t.normalizer = normalizers.BertNormalizer(lowercase=False)
        t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        t.decoder = decoders.WordPiece()
        t.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special,
                                                                show_progress=False))
        t.post_processor = processors.BertProcessing(("[SEP]", t.token_to_id("[SEP]")), ("[CLS]", t.token_to_id("[CLS]")))
        return finalize_tokenizer(PreTrainedTokenizerFast(
            tokenizer_object=t, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
            mask_token="[MASK]",
        ))
    if kind == "sentencepiece":
        special = ["<unk>", "<s>", "</s>"]
        t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
        t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        t.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
        t.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                                          show_progress=False))
        t.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", t.token_to_id("<s>"))]
        )
        return finalize_tokenizer(PreTrainedTokenizerFast(
            tokenizer_object=t, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        ))
    raise ValueError(f"unknown tokenizer kind '{kind}' (byte-level, wordpiece, sentencepiece)")
