"""What a pretrained encoder absorbed (notebook 01, steps 5 and 6): fill-mask probes, the corpus-vs-model she-rate
correlation with a bootstrap interval (:func:`bias_absorption`), and WEAT (Caliskan et al. 2017) with SEAT-style
sentence templates (May et al. 2019). ``helpers.pretraining`` re-exports every public name here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from math import comb
from typing import Sequence

import numpy as np
import pandas as pd

from .pretraining import OCCUPATION_PHRASES, PROBE_TEMPLATE

# --------------------------------------------------------------------------------------------
# 5. Fill-mask probes and bias absorption
# --------------------------------------------------------------------------------------------


def mask_distribution(model, tokenizer, text: str) -> np.ndarray:
    """The model's probability distribution over the vocabulary at the single ``[MASK]`` in ``text``.

    softmax of the MLM logits at that position, computed in float64: shape ``(vocab_size,)``,
    non-negative, sums to 1.
    """
    import torch

    if not isinstance(text, str):
        raise ValueError("mask_distribution takes one sentence (a string).")
    enc = tokenizer(text, return_tensors="pt")
    where = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten()
    if len(where) != 1:
        raise ValueError(f"The sentence must contain exactly one {tokenizer.mask_token}, found {len(where)}: {text!r}")
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        logits = model(**{k: v.to(dev) for k, v in enc.items() if k in ("input_ids", "attention_mask")}).logits
    model.train(was_training)
    return torch.softmax(logits[0, int(where[0])].double(), dim=-1).cpu().numpy()


def top_fills(model, tokenizer, text: str, k: int = 5) -> pd.DataFrame:
    """The ``k`` most probable fillers of the ``[MASK]`` in ``text``: columns token, probability."""
    p = mask_distribution(model, tokenizer, text)
    idx = np.argsort(-p)[:k]
    return pd.DataFrame({"token": tokenizer.convert_ids_to_tokens(idx.tolist()), "probability": p[idx]})


def word_probs(model, tokenizer, text: str, words: Sequence[str]) -> dict[str, float]:
    """P(word) at the ``[MASK]`` of ``text`` for each word; every word must be a single token."""
    ids = []
    for w in words:
        pieces = tokenizer.tokenize(w)
        if len(pieces) != 1 or tokenizer.convert_tokens_to_ids(pieces[0]) == tokenizer.unk_token_id:
            raise ValueError(f"{w!r} is not a single token of this tokenizer ({pieces}); choose another word.")
        ids.append(tokenizer.convert_tokens_to_ids(pieces[0]))
    p = mask_distribution(model, tokenizer, text)
    return {w: float(p[i]) for w, i in zip(words, ids)}


def she_ratio(model, tokenizer, occupations: Sequence[str], *, template: str = PROBE_TEMPLATE) -> pd.Series:
    """P(she) / (P(she) + P(he)) at the [MASK] of ``template`` for each occupation code."""
    out = {}
    for code in occupations:
        if code not in OCCUPATION_PHRASES:
            raise ValueError(f"Unknown occupation {code!r}; known: {', '.join(OCCUPATION_PHRASES)}.")
        p = word_probs(model, tokenizer, template.format(occupation=OCCUPATION_PHRASES[code]), ["she", "he"])
        out[code] = p["she"] / (p["she"] + p["he"])
    return pd.Series(out, name="model_she_ratio")


def pearson_bootstrap(x: Sequence[float], y: Sequence[float], *, n_boot: int = 2000, level: float = 0.95,
                      seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Pearson r and a percentile bootstrap interval (Efron & Tibshirani 1993), resampling pairs.

    r = cov(x, y) / (sd(x) sd(y)). Resamples in which x or y is constant are skipped.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3:
        raise ValueError("x and y must be 1-d, of equal length, with at least 3 points.")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must not contain NaN or infinity.")
    if x.std() == 0 or y.std() == 0:
        raise ValueError("Pearson r is undefined when x or y is constant.")
    r = float(np.corrcoef(x, y)[0, 1])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    xb, yb = x[idx], y[idx]
    xc, yc = xb - xb.mean(1, keepdims=True), yb - yb.mean(1, keepdims=True)
    den = np.sqrt((xc**2).sum(1) * (yc**2).sum(1))
    ok = den > 0
    rs = (xc * yc).sum(1)[ok] / den[ok]
    alpha = (1 - level) / 2
    return r, (float(np.quantile(rs, alpha)), float(np.quantile(rs, 1 - alpha)))


def bias_absorption(model, tokenizer, corpus_rates: pd.DataFrame, *, template: str = PROBE_TEMPLATE,
                    n_boot: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, float, tuple[float, float]]:
    """Corpus she-rate vs the model's P(she)/(P(she)+P(he)) per occupation, with r and its CI.

    Args:
        corpus_rates: :func:`pronoun_rates` of the *training* lines.

    Returns:
        (table with ``corpus_she_rate``, ``model_she_ratio``, ``n``; Pearson r; bootstrap interval).
    """
    model_ratio = she_ratio(model, tokenizer, list(corpus_rates.index), template=template)
    table = pd.DataFrame({"corpus_she_rate": corpus_rates["she_rate"], "model_she_ratio": model_ratio,
                          "n": corpus_rates["n"]})
    r, ci = pearson_bootstrap(table["corpus_she_rate"], table["model_she_ratio"], n_boot=n_boot, seed=seed)
    return table, r, ci


#: A difference in mean |model - corpus| gap between rare and frequent occupations smaller than this counts as
#: "about the same": with two rare occupations, their mean gap moves by a few hundredths from seed to seed.
FIT_MARGIN = 0.05


def fit_by_frequency(table: pd.DataFrame, *, min_share: float = 0.02) -> pd.DataFrame:
    """Per-occupation fit of the model to its corpus, split by how often the corpus mentions the occupation.

    gap = |model_she_ratio - corpus_she_rate|; an occupation is *frequent* when it has at least ``min_share`` of
    all pronoun sentences (n >= min_share * sum(n)). Args: ``table`` from :func:`bias_absorption` (columns
    ``corpus_she_rate``, ``model_she_ratio``, ``n``). Returns the table with boolean ``frequent`` and ``gap``.
    """
    missing = {"corpus_she_rate", "model_she_ratio", "n"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks the column(s) {sorted(missing)}: pass the table of bias_absorption.")
    n = table["n"].astype(float)
    return table.assign(frequent=n >= min_share * n.sum(),
                        gap=(table["model_she_ratio"] - table["corpus_she_rate"]).abs())


# --------------------------------------------------------------------------------------------
# 6. WEAT and SEAT
# --------------------------------------------------------------------------------------------


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 2 or len(v) == 0:
        raise ValueError("Each word set must be a non-empty 2-d array (words x dimensions).")
    if not np.isfinite(v).all():
        raise ValueError("Embeddings contain NaN or infinity.")
    n = np.linalg.norm(v, axis=1, keepdims=True)
    if (n == 0).any():
        raise ValueError("A zero vector has no cosine similarity.")
    return v / n


def weat_association(W, A, B) -> np.ndarray:
    """s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b) for every row w of ``W`` (Caliskan et al. 2017)."""
    w, a, b = _unit(W), _unit(A), _unit(B)
    if not (w.shape[1] == a.shape[1] == b.shape[1]):
        raise ValueError("All embeddings must have the same dimension.")
    return (w @ a.T).mean(1) - (w @ b.T).mean(1)


def weat_effect_size(X, Y, A, B) -> float:
    """WEAT effect size (Caliskan, Bryson & Narayanan 2017, Science 356:183):

    d = [mean_{x in X} s(x, A, B) - mean_{y in Y} s(y, A, B)] / std_{w in X u Y} s(w, A, B),
    with the sample standard deviation (ddof = 1). Shapes: X (nX, D), Y (nY, D), A (nA, D), B (nB, D).
    """
    sx, sy = weat_association(X, A, B), weat_association(Y, A, B)
    both = np.concatenate([sx, sy])
    if len(both) < 2 or both.std(ddof=1) == 0:
        raise ValueError("The effect size is undefined: all target words have the same association.")
    return float((sx.mean() - sy.mean()) / both.std(ddof=1))


@dataclass
class WeatResult:
    effect_size: float
    p_value: float
    statistic: float  # s(X, Y, A, B) = sum_x s(x, A, B) - sum_y s(y, A, B)
    n_partitions: int
    exact: bool


def weat(X, Y, A, B, *, n_permutations: int = 10000, seed: int = 0) -> WeatResult:
    """WEAT effect size and one-sided permutation p-value (Caliskan et al. 2017).

    Test statistic s(X, Y, A, B) = sum_x s(x, A, B) - sum_y s(y, A, B). Under the null, the
    targets X u Y are exchangeable: p = share of equal-size re-partitions (X_i, Y_i) with
    s(X_i, Y_i, A, B) >= s(X, Y, A, B). The observed partition counts too, so p >= 1/#partitions
    (Caliskan et al. write ">"; the two differ by at most one partition). All partitions are
    enumerated when there are at most ``n_permutations`` of them (exact p); otherwise
    ``n_permutations`` random ones are drawn and p = (1 + #{>=}) / (1 + n_permutations)
    (Phipson & Smyth 2010).
    """
    sx, sy = weat_association(X, A, B), weat_association(Y, A, B)
    d = weat_effect_size(X, Y, A, B)
    s_all = np.concatenate([sx, sy])
    n, k = len(s_all), len(sx)
    observed = float(sx.sum() - sy.sum())
    total = s_all.sum()
    tol = 1e-10 * max(1.0, float(np.abs(s_all).sum()))
    n_partitions = comb(n, k)
    if n_partitions <= n_permutations:
        stats = np.array([2 * s_all[list(c)].sum() - total for c in itertools.combinations(range(n), k)])
        return WeatResult(d, float((stats >= observed - tol).mean()), observed, n_partitions, True)
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    while done < n_permutations:
        m = min(20000, n_permutations - done)
        perm = np.argsort(rng.random((m, n)), axis=1)[:, :k]
        stats = 2 * s_all[perm].sum(1) - total
        hits += int((stats >= observed - tol).sum())
        done += m
    return WeatResult(d, (1 + hits) / (1 + n_permutations), observed, n_partitions, False)


#: Semantically bleached templates in the style of SEAT (May et al. 2019, NAACL, section 3).
SEAT_TEMPLATES: tuple[str, ...] = ("This is {w}.", "That is {w}.", "There is {w}.", "Here is {w}.",
                                   "{w} is here.", "{w} is there.", "It is {w}.", "This will be {w}.")


def seat_sentences(words: Sequence[str], templates: Sequence[str] = SEAT_TEMPLATES) -> list[str]:
    """Every word in every template (SEAT uses each sentence as one element of the word set)."""
    if isinstance(words, str) or len(words) == 0:
        raise ValueError("seat_sentences needs a list of words.")
    out = []
    for w in words:
        for t in templates:
            s = t.format(w=w)
            out.append(s[0].upper() + s[1:])
    return out


def format_p_value(p: float, *, draws: int, exact: bool) -> str:
    """A permutation p-value as text that does not claim more precision than it has.

    An exact p (all ``draws`` partitions enumerated) is a multiple of 1/draws and is printed with 2 significant
    digits. A Monte Carlo p = (1 + hits) / (1 + draws) (Phipson & Smyth 2010) is itself a valid p-value and cannot
    go below 1 / (draws + 1): when no drawn partition was as extreme, it is printed as that fraction ("= 1/5,001")
    instead of being rounded to "0.000".
    """
    if not 0 < p <= 1:
        raise ValueError(f"A permutation p-value lies in (0, 1], got {p!r}.")
    if int(draws) != draws or draws < 1:
        raise ValueError(f"draws must be a positive whole number, got {draws!r}.")
    floor = 1 / draws if exact else 1 / (draws + 1)
    if p <= floor * (1 + 1e-9):
        return f"= 1/{draws + (0 if exact else 1):,}"
    return f"{p:.2g}"


def _embed_sets(t, seat: bool, embed) -> list[np.ndarray]:
    """The embeddings of a test's four word sets ``X, Y, A, B`` (SEAT: their template sentences), one encoder call."""
    sets = [seat_sentences(s) if seat else list(s) for s in (t.X, t.Y, t.A, t.B)]
    emb = embed([s for part in sets for s in part])
    cuts = np.cumsum([0] + [len(p) for p in sets])
    return [emb[cuts[i] : cuts[i + 1]] for i in range(4)]


def run_weat_tests(tests: Sequence, model, tokenizer, *, seat: bool = False, n_permutations: int = 10000,
                   seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """WEAT (single words) or SEAT (``seat=True``: sentences from :data:`SEAT_TEMPLATES`) on an encoder.

    Embeddings are mean-pooled sentence vectors from :func:`helpers.models.encode`.
    ``tests`` are :class:`helpers.data.WeatTest` objects. Returns one row per test (``p``: the p-value as text,
    :func:`format_p_value`), with the test's two reference values: ``iat_d`` (the human Implicit Association Test)
    and ``glove_d`` (Caliskan et al.'s WEAT on GloVe).
    """
    from .models import encode
    from .progress import tqdm

    method = "SEAT" if seat else "WEAT"
    rows = []
    for t in tqdm(tests, desc=method, disable=not progress, leave=False):
        X, Y, A, B = _embed_sets(t, seat, lambda texts: encode(texts, model, tokenizer, progress=False))
        res = weat(X, Y, A, B, n_permutations=n_permutations, seed=seed)
        draws = res.n_partitions if res.exact else n_permutations
        rows.append({"test": t.name, "method": method, "effect_size": res.effect_size,
                     "p_value": res.p_value, "p": format_p_value(res.p_value, draws=draws, exact=res.exact),
                     "iat_d": t.iat_d, "glove_d": t.glove_d, "n_targets": len(X) + len(Y), "exact_p": res.exact})
    return pd.DataFrame(rows)
