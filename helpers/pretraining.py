"""Pretraining a (small) foundation model from scratch, offline, and measuring the bias it absorbs.

Notebook 01 uses this module in lesson order:

1. :func:`build_corpus` - the Adult census records as sentences, plus one pronoun sentence per
   record ("She works in a sales job.") whose pronoun matches the recorded sex, so the corpus
   she-rate per occupation equals the rate in the 1994 Current Population Survey records
   (:func:`pronoun_rates` counts it from text);
2. :func:`train_wordpiece` - a WordPiece tokenizer (Wu et al. 2016; Devlin et al. 2019) trained
   with the ``tokenizers`` library (in :mod:`helpers.wordpiece`, imported here);
3. :func:`mask_tokens` - BERT's masked-language-model corruption (15 % selected; 80/10/10);
4. :func:`make_model` + :func:`pretrain` - a small ``BertForMaskedLM`` trained from random weights,
   with held-out loss, perplexity and masked-token accuracy, and :func:`unigram_baseline`;
5. :func:`mask_distribution`, :func:`word_probs`, :func:`bias_absorption` - fill-mask probes and
   the corpus-vs-model she-rate correlation with a bootstrap interval;
6. :func:`weat`, :func:`run_weat_tests`, :func:`seat_sentences` - WEAT (Caliskan et al. 2017) and
   SEAT-style sentence templates (May et al. 2019) on a pretrained encoder.

Steps 5 and 6 live in :mod:`helpers.bias_probes`; ``helpers.pretraining`` finds their names there.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from .data import _OCCUPATION, serialize_frame
from .wordpiece import (  # noqa: F401
    SPECIAL_TOKENS,
    compare_tokenizers,
    special_ids_of,
    tokenize_lines,
    train_wordpiece,
    wordpiece_vocab,
)

#: The pronoun sentence added for every record; also the fill-mask probe (with [MASK] as pronoun).
PRONOUN_TEMPLATE = "{pronoun} works in {occupation}."
PROBE_TEMPLATE = "[MASK] works in {occupation}."
#: Occupation code (as in Adult) -> the phrase the serializer writes.
OCCUPATION_PHRASES: dict[str, str] = dict(_OCCUPATION)
_PRONOUN_RE = re.compile(r"^(She|He) works in (.+)\.$")

# --------------------------------------------------------------------------------------------
# 1. Corpus
# --------------------------------------------------------------------------------------------


def build_corpus(df: pd.DataFrame, *, pronoun_sentences: bool = True) -> pd.DataFrame:
    """One line per sentence: each Adult record's serialized sentence, then its pronoun sentence.

    The pronoun sentence is ``PRONOUN_TEMPLATE`` with "She" for ``sex == 'Female'`` and "He" for
    ``'Male'``: the serializer itself writes "man"/"woman", never a pronoun, so without it the
    corpus would contain no "she"/"he" at all. This is a *constructed* corpus: its pronoun
    statistics are exactly the sex ratios per occupation of the 1994 Current Population Survey records, nothing more.

    Returns:
        DataFrame with columns ``text``, ``record`` (row number in ``df``), ``kind``
        (``"record"``/``"pronoun"``), ``occupation`` (Adult code) and ``sex``.
    """
    if not isinstance(df, pd.DataFrame) or len(df) == 0:
        raise ValueError("build_corpus needs a non-empty DataFrame of Adult records (helpers.data.load_adult).")
    for col in ("occupation", "sex"):
        if col not in df.columns:
            raise ValueError(f"The frame has no {col!r} column; pass Adult records from helpers.data.load_adult.")
    if df["occupation"].isna().any():
        raise ValueError("Some records have no occupation; load Adult with dropna=True.")
    texts = serialize_frame(df)
    occ = df["occupation"].astype(str).to_numpy()
    sex = df["sex"].astype(str).to_numpy()
    rows = {"text": texts, "record": np.arange(len(df)), "kind": ["record"] * len(df), "occupation": occ, "sex": sex}
    out = pd.DataFrame(rows)
    if pronoun_sentences:
        unknown = sorted(set(occ) - set(OCCUPATION_PHRASES))
        if unknown:
            raise ValueError(f"Unknown occupation code(s) {unknown}.")
        pron = [PRONOUN_TEMPLATE.format(pronoun="She" if s == "Female" else "He", occupation=OCCUPATION_PHRASES[o])
                for o, s in zip(occ, sex)]
        extra = pd.DataFrame({"text": pron, "record": np.arange(len(df)), "kind": ["pronoun"] * len(df),
                              "occupation": occ, "sex": sex})
        out = pd.concat([out, extra]).sort_values(["record", "kind"], ascending=[True, False], kind="stable")
    return out.reset_index(drop=True)


def split_corpus(corpus: pd.DataFrame, heldout_fraction: float = 0.05, *, seed: int = 0
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split by *record* (both sentences of a person go to the same side): (train, held-out)."""
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction must be between 0 and 1, got {heldout_fraction}.")
    records = corpus["record"].unique()
    if len(records) < 2:
        raise ValueError("The corpus needs at least two records to hold some out.")
    rng = np.random.default_rng(seed)
    n_out = max(1, int(round(heldout_fraction * len(records))))
    held = set(rng.choice(records, size=n_out, replace=False).tolist())
    mask = corpus["record"].isin(held).to_numpy()
    return corpus[~mask].reset_index(drop=True), corpus[mask].reset_index(drop=True)


def pronoun_rates(lines: Sequence[str]) -> pd.DataFrame:
    """Count "She/He works in <occupation>." lines in raw text, per occupation.

    Returns:
        DataFrame indexed by occupation code with ``n_she``, ``n_he``, ``n`` and
        ``she_rate = n_she / (n_she + n_he)``. Occupations that never occur are left out.
    """
    phrase_to_code = {v: k for k, v in OCCUPATION_PHRASES.items()}
    counts: dict[str, list[int]] = {}
    for line in lines:
        m = _PRONOUN_RE.match(line.strip())
        if m and m.group(2) in phrase_to_code:
            c = counts.setdefault(phrase_to_code[m.group(2)], [0, 0])
            c[0 if m.group(1) == "She" else 1] += 1
    if not counts:
        raise ValueError('No "She/He works in <occupation>." sentences found: build the corpus with '
                         "pronoun_sentences=True.")
    out = pd.DataFrame.from_dict(counts, orient="index", columns=["n_she", "n_he"]).sort_index()
    out.index.name = "occupation"
    out["n"] = out["n_she"] + out["n_he"]
    out["she_rate"] = out["n_she"] / out["n"]
    return out


# --------------------------------------------------------------------------------------------
# 3. Masking
# --------------------------------------------------------------------------------------------


def mask_tokens(input_ids, *, special_ids: Sequence[int], mask_token_id: int, vocab_size: int,
                generator=None, mlm_probability: float = 0.15):
    """BERT's masked-language-model corruption (Devlin et al. 2019, section 3.1 and appendix A.1).

    Each token that is not special (``[CLS] [SEP] [PAD] ...``) is *selected* with probability
    ``mlm_probability`` (0.15). A selected token is replaced by ``[MASK]`` with probability 0.8,
    by a uniformly random non-special token with probability 0.1, and left unchanged with
    probability 0.1. The model must predict the original token at every selected position:
    ``labels`` holds it there and ``-100`` (ignored by the cross-entropy loss) everywhere else.

    Args:
        input_ids: LongTensor ``(B, T)``; not modified.
        special_ids: token ids never selected (pass :func:`special_ids_of`; includes padding).
        generator: a seeded ``torch.Generator`` on the CPU for reproducible masks.

    Returns:
        ``(inputs, labels)``, both LongTensor ``(B, T)`` on the device of ``input_ids``.
    """
    import torch

    if not torch.is_tensor(input_ids) or input_ids.dim() != 2:
        raise ValueError("input_ids must be a 2-d LongTensor of shape (batch, tokens).")
    if not 0 <= mlm_probability <= 1:
        raise ValueError(f"mlm_probability must be in [0, 1], got {mlm_probability}.")
    special = torch.as_tensor(sorted(set(int(i) for i in special_ids)), dtype=torch.long)
    special_set = set(special.tolist())
    normal = torch.as_tensor([i for i in range(vocab_size) if i not in special_set], dtype=torch.long)
    if len(normal) == 0:
        raise ValueError("Every token id is special: nothing can be masked.")
    ids = input_ids.detach().cpu()
    shape = ids.shape
    candidates = ~torch.isin(ids, special)
    selected = (torch.rand(shape, generator=generator) < mlm_probability) & candidates
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    draw = torch.rand(shape, generator=generator)  # one draw decides the 80/10/10 branch
    to_mask = selected & (draw < 0.8)
    to_random = selected & (draw >= 0.8) & (draw < 0.9)
    random_tokens = normal[torch.randint(len(normal), shape, generator=generator)]
    inputs = ids.clone()
    inputs[to_mask] = mask_token_id
    inputs[to_random] = random_tokens[to_random]
    return inputs.to(input_ids.device), labels.to(input_ids.device)


def masking_table(tokenizer, original, inputs, labels) -> pd.DataFrame:
    """One masked line as a table: rows ``original``, ``model input``, ``label`` (blank = -100);
    one column per (non-padding) position. Arguments are 1-d id tensors of one line."""
    keep = original != tokenizer.pad_token_id
    orig = tokenizer.convert_ids_to_tokens(original[keep].tolist())
    inp = tokenizer.convert_ids_to_tokens(inputs[keep].tolist())
    lab = ["" if int(x) == -100 else tokenizer.convert_ids_to_tokens(int(x)) for x in labels[keep]]
    return pd.DataFrame([orig, inp, lab], index=["original", "model input", "label (to predict)"])


# --------------------------------------------------------------------------------------------
# 4. Model, batches, training loop
# --------------------------------------------------------------------------------------------


def make_model(tokenizer, *, layers: int = 2, hidden: int = 128, heads: int = 2, intermediate: int | None = None,
               max_positions: int = 128, seed: int = 0):
    """A randomly initialised ``BertForMaskedLM`` (Devlin et al. 2019) sized for the tokenizer.

    Weights are drawn under :func:`helpers.config.seeded` (``seed``), so the same seed gives the same model.
    """
    from transformers import BertConfig, BertForMaskedLM

    from .config import seeded

    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads}).")
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=intermediate or 4 * hidden,
                        max_position_embeddings=max_positions, pad_token_id=tokenizer.pad_token_id)
    with seeded(seed):
        return BertForMaskedLM(config)


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int):
    """Right-pad id lists to the longest: ``(input_ids, attention_mask)``, LongTensors ``(B, T)``."""
    import torch

    if len(seqs) == 0:
        raise ValueError("pad_batch got no sequences.")
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return ids, (ids != pad_id).long()


def length_batches(lengths: Sequence[int], batch_size: int, generator) -> Iterator[list[int]]:
    """Endless index batches of similar length (less padding); reshuffled every epoch."""
    import torch

    n = len(lengths)
    if n == 0 or batch_size < 1:
        raise ValueError("Need at least one sequence and batch_size >= 1.")
    lengths_t = torch.as_tensor(lengths, dtype=torch.float64)
    while True:
        noise = torch.rand(n, generator=generator, dtype=torch.float64)
        order = torch.argsort(lengths_t + noise).tolist()  # random order among equal lengths
        chunks = [order[i : i + batch_size] for i in range(0, n, batch_size)]
        for j in torch.randperm(len(chunks), generator=generator).tolist():
            yield chunks[j]


@dataclass
class MaskedSet:
    """Held-out batches masked once with a fixed seed, so every evaluation sees the same masks."""

    batches: list = field(default_factory=list)  # (input_ids, attention_mask, labels) on the CPU

    @property
    def n_masked(self) -> int:
        return int(sum(int((lab != -100).sum()) for _, _, lab in self.batches))


def masked_set(seqs: Sequence[Sequence[int]], tokenizer, *, batch_size: int = 128, seed: int = 1) -> MaskedSet:
    """Pad ``seqs`` into batches and mask them once with :func:`mask_tokens` (seeded)."""
    import torch

    if len(seqs) == 0:
        raise ValueError("masked_set got no sequences.")
    g = torch.Generator().manual_seed(seed)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out = MaskedSet()
    for s in range(0, len(order), batch_size):
        ids, att = pad_batch([seqs[i] for i in order[s : s + batch_size]], tokenizer.pad_token_id)
        inp, lab = mask_tokens(ids, special_ids=special_ids_of(tokenizer), mask_token_id=tokenizer.mask_token_id,
                               vocab_size=len(tokenizer), generator=g)
        out.batches.append((inp, att, lab))
    return out


def evaluate_mlm(model, data: MaskedSet) -> dict[str, float]:
    """Held-out MLM figures over all masked positions of ``data``.

    ``loss`` = mean cross-entropy (nats per masked token), ``perplexity`` = exp(loss),
    ``accuracy`` = share of masked positions whose arg-max prediction is the original token.
    """
    import torch

    from .config import autocast

    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, correct, count = 0.0, 0, 0
    with torch.inference_mode():
        for inp, att, lab in data.batches:
            inp, att, lab = inp.to(dev), att.to(dev), lab.to(dev)
            with autocast(dev):
                logits = model(input_ids=inp, attention_mask=att).logits
            keep = lab != -100
            lg = logits[keep].float()
            total += float(torch.nn.functional.cross_entropy(lg, lab[keep], reduction="sum"))
            correct += int((lg.argmax(-1) == lab[keep]).sum())
            count += int(keep.sum())
    model.train(was_training)
    if count == 0:
        raise ValueError("No masked positions in the held-out set (too few tokens?).")
    loss = total / count
    return {"loss": loss, "perplexity": math.exp(loss), "accuracy": correct / count}


def unigram_baseline(train_seqs: Sequence[Sequence[int]], data: MaskedSet, *, vocab_size: int,
                     special_ids: Sequence[int]) -> dict[str, float]:
    """The no-context baseline: predict every masked token from training-token frequencies alone.

    Accuracy: always guess the most frequent (non-special) training token. Loss: cross-entropy
    of the add-one smoothed unigram distribution p(w) = (c(w) + 1) / (N + V) on the masked labels.
    A language model that uses context must beat both.
    """
    if len(train_seqs) == 0:
        raise ValueError("unigram_baseline needs training sequences.")
    counts = np.bincount(np.fromiter(itertools.chain.from_iterable(train_seqs), dtype=np.int64),
                         minlength=vocab_size).astype(np.float64)[:vocab_size]
    counts[list(special_ids)] = 0
    normal = np.ones(vocab_size, dtype=bool)
    normal[list(special_ids)] = False
    probs = np.where(normal, counts + 1, 0) / (counts.sum() + normal.sum())
    labels = np.concatenate([lab[lab != -100].numpy() for _, _, lab in data.batches])
    if len(labels) == 0:
        raise ValueError("No masked positions in the held-out set.")
    top = int(np.argmax(counts))
    loss = float(-np.log(probs[labels]).mean())
    return {"loss": loss, "perplexity": math.exp(loss), "accuracy": float((labels == top).mean()), "top_token_id": top}


@dataclass
class PretrainRun:
    """What :func:`pretrain` measured."""

    history: pd.DataFrame  # step, train_loss, heldout_loss, heldout_perplexity, heldout_accuracy
    tokens_per_s: float  # real (non-padding) tokens through forward+backward per second of training
    train_seconds: float
    tokens_seen: int
    device: str
    precision: str


def pretrain(model, tokenizer, train_seqs: Sequence[Sequence[int]], heldout: MaskedSet, *, steps: int,
             batch_size: int = 64, lr: float = 1e-3, warmup: float = 0.06, weight_decay: float = 0.01,
             eval_every: int = 100, seed: int = 0, device=None, progress: bool = True) -> PretrainRun:
    """Masked-language-model pretraining with AdamW and a linear warm-up/decay schedule.

    Each step: a batch of similar-length training lines, masked by :func:`mask_tokens` with a
    ``torch.Generator`` seeded by ``seed``; loss = mean cross-entropy over masked positions.
    On CUDA the forward pass runs under bf16 autocast (fp16 plus a gradient scaler on GPUs without
    bf16). Held-out loss/perplexity/accuracy are measured at step 0, every ``eval_every`` steps and
    at the end; evaluation time is excluded from ``tokens_per_s``.
    """
    from .config import get_device, seeded

    if steps < 1 or batch_size < 1 or eval_every < 1:
        raise ValueError("steps, batch_size and eval_every must be positive integers.")
    if len(train_seqs) == 0:
        raise ValueError("pretrain got no training sequences.")
    dev = get_device(device) if not hasattr(device, "type") else device
    with seeded(seed):  # dropout masks; the caller's random generators are left alone
        return _pretrain(model, tokenizer, train_seqs, heldout, steps=steps, batch_size=batch_size, lr=lr,
                         warmup=warmup, weight_decay=weight_decay, eval_every=eval_every, seed=seed, dev=dev,
                         progress=progress)


def _pretrain(model, tokenizer, train_seqs, heldout, *, steps, batch_size, lr, warmup, weight_decay, eval_every, seed,
              dev, progress) -> PretrainRun:
    """:func:`pretrain`'s loop on checked arguments."""
    import torch

    from .config import autocast_dtype
    from .progress import tqdm
    from .training import adamw_with_schedule

    model.to(dev).train()
    g = torch.Generator().manual_seed(seed)
    opt, sched = adamw_with_schedule(model, lr=lr, weight_decay=weight_decay, warmup_steps=int(warmup * steps),
                                     total_steps=steps)  # biases and LayerNorm parameters are not decayed
    dtype = autocast_dtype(dev)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    specials = special_ids_of(tokenizer)
    batches = length_batches([len(s) for s in train_seqs], batch_size, g)
    log = _MLMLog(model, heldout)
    bar = tqdm(range(1, steps + 1), desc="pretraining", disable=not progress, leave=False)
    for step in bar:
        ids, att = pad_batch([train_seqs[i] for i in next(batches)], tokenizer.pad_token_id)
        inp, lab = mask_tokens(ids, special_ids=specials, mask_token_id=tokenizer.mask_token_id,
                               vocab_size=len(tokenizer), generator=g)
        log.add(*_mlm_step(model, opt, sched, scaler, inp, att, lab, dev), tokens=int(att.sum()))
        if step % eval_every == 0 or step == steps:
            log.evaluate(step)
            bar.set_postfix(heldout_loss=f"{log.rows[-1]['heldout_loss']:.3f}")
    model.eval()
    return PretrainRun(history=pd.DataFrame(log.rows), tokens_per_s=log.seen / max(log.train_s, 1e-9),
                       train_seconds=log.train_s, tokens_seen=log.seen, device=str(dev),
                       precision=str(dtype).replace("torch.", "") if dtype else "float32")


def _mlm_step(model, opt, sched, scaler, inp, att, lab, dev) -> tuple[float, float]:
    """One optimiser step on a masked batch (autocast, gradient scaler, clipping at norm 1, schedule);
    returns ``(loss, seconds)`` with the host-to-device copy included and the GPU synchronised."""
    import torch

    from .config import autocast

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    inp, att, lab = inp.to(dev, non_blocking=True), att.to(dev, non_blocking=True), lab.to(dev, non_blocking=True)
    with autocast(dev):
        loss = model(input_ids=inp, attention_mask=att, labels=lab).loss
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(opt)
    scaler.update()
    sched.step()
    value = float(loss.detach())  # synchronises, so the timing is honest on the GPU too
    return value, time.perf_counter() - t0


class _MLMLog:
    """The pretraining history: running training loss since the last evaluation, held-out metrics at evaluations,
    training seconds and tokens seen."""

    def __init__(self, model, heldout: MaskedSet) -> None:
        self.model, self.heldout = model, heldout
        self.rows: list[dict] = []
        self.running: list[float] = []
        self.seen, self.train_s = 0, 0.0
        self.evaluate(0)

    def add(self, loss: float, seconds: float, *, tokens: int) -> None:
        self.running.append(loss)
        self.train_s += seconds
        self.seen += tokens

    def evaluate(self, step: int) -> None:
        ev = evaluate_mlm(self.model, self.heldout)
        self.rows.append({"step": step, "train_loss": float(np.mean(self.running)) if self.running else float("nan"),
                          "heldout_loss": ev["loss"], "heldout_perplexity": ev["perplexity"],
                          "heldout_accuracy": ev["accuracy"]})
        self.running.clear()


#: Fill-mask probes, bias absorption and WEAT/SEAT (steps 5 and 6) live in :mod:`helpers.bias_probes`;
#: ``pt.<name>`` finds them there.
_PROBES = ("mask_distribution", "top_fills", "word_probs", "she_ratio", "pearson_bootstrap", "bias_absorption", "fit_by_frequency", "FIT_MARGIN", "weat_association", "weat_effect_size", "WeatResult", "weat", "SEAT_TEMPLATES", "seat_sentences", "format_p_value", "run_weat_tests")


def __getattr__(name: str) -> Any:
    if name in _PROBES:
        from . import bias_probes

        return getattr(bias_probes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PROBES])
