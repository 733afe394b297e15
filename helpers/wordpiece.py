"""Step 2 of notebook 01: a WordPiece tokenizer trained on the corpus (deterministic), and helpers to compare and
apply tokenizers. :mod:`helpers.pretraining` imports these names, so ``helpers.pretraining.<name>`` works too.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def wordpiece_vocab(words: dict[str, int], *, vocab_size: int, min_frequency: int = 2,
                    prefix: str = "##") -> list[str]:
    """The WordPiece vocabulary learned from word counts by frequency merges, with ties broken alphabetically.

    The procedure of the ``tokenizers`` library's ``WordPieceTrainer`` (a BPE trainer whose pieces inside a word
    carry ``prefix``): start from the special tokens, every character, and ``##c`` for every character seen
    inside a word; then repeatedly merge the adjacent pair of pieces with the largest count (summed over the
    words, weighted by word frequency) into one new piece (``"wo" + "##rk" -> "work"``), until the vocabulary
    holds ``vocab_size`` pieces or no pair occurs ``min_frequency`` times. The library breaks ties between
    equally frequent pairs by the ids of their pieces, but numbers the ``##`` pieces in hash-map order, which
    changes from one process to the next, so the same corpus can give different vocabularies (and a different
    pretrained model) on every run. Here the ids are fixed (characters sorted, ``##`` pieces in order of first
    appearance, merged pieces in order of creation) and a tie goes to the pair with the smallest ids, so the
    same corpus always gives the same vocabulary.

    Args:
        words: word -> count, words as the normalizer and pre-tokenizer produced them.
    Returns the vocabulary in id order (specials, alphabet, then merged pieces in the order they were made).
    """
    if vocab_size < len(SPECIAL_TOKENS) + 30:
        raise ValueError(f"vocab_size={vocab_size} is too small to hold the special tokens and the alphabet.")
    vocab, splits = _initial_pieces(words, prefix)
    ids = {t: i for i, t in enumerate(vocab)}
    while len(vocab) < vocab_size:
        best = _best_pair(_pair_counts(splits, words), ids, min_frequency)
        if best is None:
            break
        a, b = best
        merged = a + b.removeprefix(prefix)
        if merged not in ids:
            ids[merged] = len(vocab)
            vocab.append(merged)
        splits = {w: _merge_pair(pieces, a, b, merged) for w, pieces in splits.items()}
    return vocab


def _initial_pieces(words: dict[str, int], prefix: str) -> tuple[list[str], dict[str, list[str]]]:
    """The starting vocabulary (specials, sorted characters, ``##`` pieces in order of first appearance) and every
    word split into characters (``"work" -> ["w", "##o", "##r", "##k"]``)."""
    vocab = list(SPECIAL_TOKENS) + sorted({c for w in words for c in w})
    vocab += list(dict.fromkeys(prefix + c for w in words for c in w[1:]))
    splits = {w: [w[0]] + [prefix + c for c in w[1:]] for w in sorted(words) if w}
    return vocab, splits


def _best_pair(counts: dict[tuple[str, str], int], ids: dict[str, int], min_frequency: int):
    """The most frequent pair (ties: the smallest ids), or ``None`` when none occurs ``min_frequency`` times."""
    if not counts:
        return None
    pair, best = min(counts.items(), key=lambda kv: (-kv[1], ids[kv[0][0]], ids[kv[0][1]]))
    return pair if best >= max(1, min_frequency) else None


def _pair_counts(splits: dict[str, list[str]], words: dict[str, int]) -> dict[tuple[str, str], int]:
    """How often each adjacent pair of pieces occurs, summed over the words weighted by their counts."""
    counts: dict[tuple[str, str], int] = {}
    for w, pieces in splits.items():
        for pair in zip(pieces, pieces[1:]):
            counts[pair] = counts.get(pair, 0) + words[w]
    return counts


def _merge_pair(pieces: list[str], a: str, b: str, merged: str) -> list[str]:
    """``pieces`` with every adjacent ``(a, b)`` replaced by ``merged``, left to right."""
    i, out = 0, []
    while i < len(pieces):
        if i + 1 < len(pieces) and pieces[i] == a and pieces[i + 1] == b:
            out.append(merged)
            i += 2
        else:
            out.append(pieces[i])
            i += 1
    return out


def train_wordpiece(lines: Sequence[str], *, vocab_size: int = 2000, min_frequency: int = 2):
    """Train a lower-casing BERT-style WordPiece tokenizer on ``lines``; the same lines give the same tokenizer.

    WordPiece (Schuster & Nakajima 2012; Wu et al. 2016) builds a vocabulary of words and
    ``##``-prefixed word pieces; unknown words are split into pieces, never dropped. The papers pick each new piece
    by the gain in likelihood under a language model; ``tokenizers.trainers.WordPieceTrainer`` instead runs BPE
    (Sennrich et al. 2016: merge the most frequent adjacent pair) with the ``##`` continuation prefix, and so does
    :func:`wordpiece_vocab`, which learns the vocabulary here (the library's merge rule, with a deterministic
    tie-break). Encoding is WordPiece's greedy longest-match-first split; normalizer, pre-tokenizer, model and
    post-processor are the ``tokenizers`` library's. Special tokens: ``[PAD] [UNK] [CLS] [SEP] [MASK]``; every
    encoded sentence is ``[CLS] ... [SEP]``.

    Returns:
        A ``transformers.PreTrainedTokenizerFast`` (so it works like any Hugging Face tokenizer).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if isinstance(lines, str) or len(lines) == 0:
        raise ValueError("lines must be a non-empty list of sentences (train_wordpiece learns its vocabulary from them).")
    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words: dict[str, int] = {}
    for line in lines:
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)):
            words[word] = words.get(word, 0) + 1
    vocab = wordpiece_vocab(words, vocab_size=vocab_size, min_frequency=min_frequency)
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def compare_tokenizers(words: Sequence[str], tokenizers: dict) -> pd.DataFrame:
    """How each tokenizer splits each word: one row per word, one column per tokenizer name."""
    if isinstance(words, str) or len(words) == 0:
        raise ValueError("compare_tokenizers needs a list of words.")
    return pd.DataFrame({name: [" ".join(t.tokenize(w)) for w in words] for name, t in tokenizers.items()},
                        index=pd.Index(list(words), name="word"))


def tokenize_lines(tokenizer, lines: Sequence[str], *, max_length: int = 64) -> list[list[int]]:
    """Token ids of every line (with [CLS]/[SEP], truncated to ``max_length``), no padding."""
    if isinstance(lines, str):
        raise ValueError("tokenize_lines takes a list of sentences, not one string.")
    lines, out = list(lines), []
    for start in range(0, len(lines), 4096):  # in chunks: a fast tokenizer keeps heavy per-line objects
        out += tokenizer(lines[start : start + 4096], truncation=True, max_length=max_length,
                         return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    return out


def special_ids_of(tokenizer) -> list[int]:
    """Ids of every special token (padding included): the tokens MLM must never mask."""
    return sorted(set(tokenizer.all_special_ids))
