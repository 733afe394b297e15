"""Faithfulness (deletion curves, AOPC), agreement and stability of attributions, and global (bias) summaries."""

from __future__ import annotations

import itertools
from typing import Any, Callable, Sequence

import numpy as np

from .core import Attribution, BatchedPredictor, MaskedText
from .lime_shap import lime_explain, shap_explain

# --------------------------------------------------------------------------------------------
# Faithfulness, agreement, stability, global summaries
# --------------------------------------------------------------------------------------------


def deletion_curve(m: MaskedText, order: Sequence[int], *, steps: int | None = None) -> np.ndarray:
    """Scores after hiding the first k words of ``order``, for k = 0..steps (default W).

    A faithful attribution, deleted most-important first, makes the score fall fast
    (Samek et al. 2017, IEEE TNNLS, "Evaluating the visualization of what a deep neural network has learned").
    """
    order = np.asarray(order, dtype=int)
    if sorted(order.tolist()) != list(range(m.n_words)):
        raise ValueError(f"order must be a permutation of the {m.n_words} word indices.")
    steps = m.n_words if steps is None else min(int(steps), m.n_words)
    keep = np.ones((steps + 1, m.n_words), dtype=bool)
    for k in range(1, steps + 1):
        keep[k:, order[k - 1]] = False
    return m(keep)


def random_deletion_curve(m: MaskedText, *, repeats: int = 10, steps: int | None = None, seed: int = 0) -> np.ndarray:
    """Mean deletion curve over ``repeats`` random orders (the baseline an attribution must beat)."""
    rng = np.random.default_rng(seed)
    return np.mean([deletion_curve(m, rng.permutation(m.n_words), steps=steps) for _ in range(repeats)], axis=0)


def aopc(curve: Sequence[float]) -> float:
    """Area over the perturbation curve: :math:`\\frac{1}{K+1}\\sum_{k=0}^{K} (f(x) - f(x^{(k)}))`.

    ``curve[k]`` is the score after k deletions, ``curve[0] = f(x)`` (Samek et al. 2017).
    """
    c = np.asarray(curve, dtype=np.float64)
    if c.ndim != 1 or len(c) < 2 or not np.isfinite(c).all():
        raise ValueError("aopc needs a finite 1-D curve with at least 2 points (k = 0 and k = 1).")
    return float(np.mean(c[0] - c))


def rank_agreement(a: Attribution, b: Attribution, *, top: int | None = None) -> dict[str, float]:
    """How much two attributions of the same words agree.

    ``spearman``: Spearman rank correlation of the weights (all words); ``kendall``: Kendall's tau;
    ``top_k_overlap``: |top-k(a) ∩ top-k(b)| / k by |weight| (k = ``top``, default min(5, W)).
    """
    from scipy.stats import kendalltau, spearmanr

    if a.tokens != b.tokens:
        raise ValueError("The two attributions explain different words; compare explanations of the same text.")
    k = min(top or 5, len(a.tokens))
    ta = set(np.argsort(-np.abs(a.weights), kind="stable")[:k])
    tb = set(np.argsort(-np.abs(b.weights), kind="stable")[:k])
    return {"spearman": float(spearmanr(a.weights, b.weights).statistic),
            "kendall": float(kendalltau(a.weights, b.weights).statistic),
            "top_k_overlap": len(ta & tb) / k}


def lime_stability(m: MaskedText, *, seeds: Sequence[int] = (0, 1, 2), num_samples: int = 1000,
                   top: int | None = None) -> dict[str, float]:
    """LIME run with different seeds: mean pairwise Spearman and top-k overlap of the weights."""
    if len(seeds) < 2:
        raise ValueError("Stability needs at least two seeds.")
    runs = [lime_explain(m, num_samples=num_samples, seed=s) for s in seeds]
    pairs = [rank_agreement(a, b, top=top) for a, b in itertools.combinations(runs, 2)]
    return {key: float(np.mean([p[key] for p in pairs])) for key in pairs[0]} | {"seeds": len(seeds)}


def token_importance(attributions: Sequence[Attribution], words: Sequence[str] | None = None) -> "pd.DataFrame":  # noqa: F821
    """Global importance: mean |weight| of each (lower-cased) word over many explanations.

    Columns: word, mean_abs (mean |weight| where the word occurs), mean (signed), count,
    share (its |weight| as a fraction of all |weight| in the explanations where it occurs).
    ``words`` restricts the table to those words (e.g. :data:`GENDER_WORDS`).
    """
    import pandas as pd

    if not attributions:
        raise ValueError("No explanations to summarise.")
    rows = []
    for a in attributions:
        total = np.abs(a.weights).sum() or 1.0
        for t, w in zip(a.tokens, a.weights):
            rows.append((t.lower(), abs(w), w, abs(w) / total))
    df = pd.DataFrame(rows, columns=["word", "abs", "signed", "share"])
    if words is not None:
        df = df[df["word"].isin([w.lower() for w in words])]
    out = df.groupby("word").agg(mean_abs=("abs", "mean"), mean=("signed", "mean"), count=("abs", "size"),
                                 share=("share", "mean")).reset_index()
    return out.sort_values("mean_abs", ascending=False).reset_index(drop=True)


def word_importance_per_text(attributions: Sequence[Attribution], words: Sequence[str]) -> np.ndarray:
    """Mean |weight| of the (lower-cased) ``words`` in each explanation, shape (n,); NaN where none occurs.

    One number per sentence, so sentences can be resampled for an interval (:mod:`helpers.stats`).
    """
    want = {w.lower() for w in words}
    out = np.full(len(attributions), np.nan)
    for i, a in enumerate(attributions):
        hits = [abs(w) for t, w in zip(a.tokens, a.weights) if t.lower() in want]
        if hits:
            out[i] = float(np.mean(hits))
    return out


def explain_many(predictor: BatchedPredictor, texts: Sequence[str], *, method: str = "shap", label: int | str = 1,
                 max_evals: int = 500, num_samples: int = 1000, progress: bool = True) -> list[Attribution]:
    """Explain many sentences (for global summaries) with ``"shap"`` or ``"lime"``, one class."""
    from ..progress import tqdm

    if method not in ("shap", "lime"):
        raise ValueError(f"method must be 'shap' or 'lime', got {method!r}.")
    out = []
    for t in tqdm(list(texts), desc=f"explaining ({method})", disable=not progress, leave=False):
        m = MaskedText(predictor, t, label=label)
        out.append(shap_explain(m, max_evals=max_evals) if method == "shap" else lime_explain(m, num_samples=num_samples))
    return out


def time_call(fn: Callable[[], Any], *, repeats: int = 3) -> dict[str, float]:
    """Seconds for the first (cold) call, the median of ``repeats`` further (warm) calls (``warm_s``) and their
    smallest and largest (``warm_min_s``, ``warm_max_s``: the spread of repeated calls on this machine).

    When CUDA is available the device is synchronised before and after each call, so GPU work that
    was queued but not finished is counted.
    """
    import time

    import torch

    def sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        warm.append(time.perf_counter() - t0)
    if not warm:
        return {"cold_s": cold, "warm_s": float("nan"), "warm_min_s": float("nan"), "warm_max_s": float("nan"),
                "warm_calls": 0}
    return {"cold_s": cold, "warm_s": float(np.median(warm)), "warm_min_s": min(warm), "warm_max_s": max(warm),
            "warm_calls": len(warm)}


def describe_token_path(token_ids: dict, strings: dict, *, tokenising_s: float, forward_s: float, n: int,
                        device: str) -> str:
    """One sentence on whether perturbing token ids beat building and tokenising strings, from this machine's numbers.

    ``token_ids``, ``strings``: :func:`time_call` results for the same ``n`` perturbed inputs. The token-id path is
    called faster (slower) only when each path had at least two warm calls and all of its calls beat (lost to) all
    of the string path's; otherwise the difference is within the spread of repeated calls, or unjudged. A difference
    larger than ``tokenising_s`` cannot come from skipping the tokeniser, and the sentence says so. ``tokenising_s``
    and ``forward_s`` (from :func:`time_breakdown`) bound the gain: skipping the tokeniser saves at most its share
    ``tokenising_s / (tokenising_s + forward_s)`` of the string path's time.
    """
    a, b = token_ids, strings
    if min(a.get("warm_calls", 0), b.get("warm_calls", 0)) < 2:
        verdict = "with one warm call each there is no spread to judge the difference by"
    elif a["warm_max_s"] < b["warm_min_s"]:
        verdict = "the token-id path was faster"
    elif a["warm_min_s"] > b["warm_max_s"]:
        verdict = "the token-id path was slower"
    else:
        verdict = "no difference beyond the spread of repeated calls"
    if abs(a["warm_s"] - b["warm_s"]) > tokenising_s:
        verdict += (f"; the difference ({a['warm_s'] - b['warm_s']:+.3f} s) exceeds the whole tokenising time, so it "
                    "comes from elsewhere (batching, the machine's load), not from skipping the tokeniser")
    share = tokenising_s / (tokenising_s + forward_s)
    why = ("the forward pass dominates, so skipping the tokeniser can save little here" if share < 0.5 else
           "tokenising is the larger part, which the token-id path skips")
    spread = ("" if min(a.get("warm_calls", 0), b.get("warm_calls", 0)) < 2 else
              f"; calls ranged {a['warm_min_s']:.3f}–{a['warm_max_s']:.3f} s and {b['warm_min_s']:.3f}–{b['warm_max_s']:.3f} s")
    return (f"Perturbing token ids instead of strings on `{device}`: {a['warm_s']:.3f} s vs {b['warm_s']:.3f} s for "
            f"{n:,} perturbed sentences (warm{spread}): {verdict}. Tokenising the {n:,} strings took "
            f"{tokenising_s:.3f} s against {forward_s:.3f} s for the forward pass ({share:.1%} of the string path): "
            f"{why}.")


# --------------------------------------------------------------------------------------------
# Where the time goes, and what a faster (quantised) model changes
# --------------------------------------------------------------------------------------------


class _TimedValue:
    """A :class:`MaskedText` whose value-function calls are timed (``seconds``); everything else is delegated."""

    def __init__(self, m: MaskedText) -> None:
        self._m, self.seconds = m, 0.0

    def __call__(self, keep) -> np.ndarray:
        import time

        t0 = time.perf_counter()
        out = self._m(keep)
        self.seconds += time.perf_counter() - t0
        return out

    def full(self) -> float:
        return float(self(np.ones((1, self._m.n_words), dtype=bool))[0])

    def empty(self) -> float:
        return float(self(np.zeros((1, self._m.n_words), dtype=bool))[0])

    def __getattr__(self, name: str):
        return getattr(self._m, name)


def time_breakdown(m: MaskedText, *, num_samples: int = 1000, max_evals: int = 500, seed: int = 0) -> "pd.DataFrame":  # noqa: F821
    """Seconds per part of one LIME and one SHAP explanation of ``m`` (one run each, after one warm-up call).

    Rows: tokenising the ``num_samples`` perturbed strings (what the string path pays and the token-id path
    avoids), the forward passes on their token ids, LIME's own regression (``LimeBase`` on the same samples),
    LIME in total, SHAP Partition's forward passes, shap's own overhead (its total minus the time inside the
    model) and SHAP in total. Column ``seconds``; ``share`` = part / its explanation's total.
    """
    import time

    import pandas as pd
    from lime.lime_base import LimeBase

    from .lime_shap import lime_kernel, lime_samples

    def clock(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    data, distances = lime_samples(m.n_words, num_samples, seed)
    keep = data.astype(bool)
    strings = m.texts(keep)
    m(keep[:2])  # warm-up
    t_tok = clock(lambda: m.predictor.tokenize(strings))
    scores = m(keep)[:, None]
    t_fwd = clock(lambda: m(keep))
    base = LimeBase(lambda d: lime_kernel(d), random_state=seed)
    t_fit = clock(lambda: base.explain_instance_with_data(data, scores, distances, 0, m.n_words))
    t_lime = clock(lambda: lime_explain(m, num_samples=num_samples, seed=seed))
    timed = _TimedValue(m)
    t_shap = clock(lambda: shap_explain(timed, max_evals=max_evals, seed=seed))
    rows = {f"tokenising {num_samples} strings (string path only)": (t_tok, np.nan),
            f"forward pass, {num_samples} perturbed inputs": (t_fwd, t_fwd / t_lime),
            f"LIME's own regression ({num_samples} samples)": (t_fit, t_fit / t_lime),
            f"LIME {num_samples} samples, total": (t_lime, 1.0),
            f"SHAP Partition {max_evals} evals: forward passes": (timed.seconds, timed.seconds / t_shap),
            "SHAP Partition: shap's own overhead": (t_shap - timed.seconds, (t_shap - timed.seconds) / t_shap),
            f"SHAP Partition {max_evals} evals, total": (t_shap, 1.0)}
    return pd.DataFrame(rows, index=["seconds", "share"]).T


def compare_predictors(reference: BatchedPredictor, candidates, texts: Sequence[str], *,
                       label: int | str = 1, num_samples: int = 1000, max_evals: int = 500, seed: int = 0,
                       progress: bool = True) -> "pd.DataFrame":  # noqa: F821
    """How far each candidate predictor (e.g. ``reference.at_precision("int8")``) moves predictions and
    explanations from ``reference``.

    ``candidates``: one :class:`BatchedPredictor` (named ``"candidate"``) or a dict name -> predictor. One row per
    candidate and text: ``candidate`` (its name); ``max_abs_dp`` = max over classes of |p_candidate - p_reference|
    on the whole sentence; ``lime_spearman`` and ``shap_spearman`` = Spearman correlation of the two predictors'
    LIME (same seed, so the same samples) and SHAP Partition attributions; ``reference_s`` and ``candidate_s`` =
    seconds for that LIME + SHAP pair on each predictor (the reference is explained once and shared). Spearman is
    NaN when one attribution is constant.
    """
    import time

    import pandas as pd

    from ..progress import tqdm

    texts = list(texts)
    if not texts:
        raise ValueError("compare_predictors needs at least one text.")
    if isinstance(candidates, BatchedPredictor):
        candidates = {"candidate": candidates}
    if not candidates:
        raise ValueError("compare_predictors needs at least one candidate predictor.")

    def explain(p: BatchedPredictor, t: str):
        m = MaskedText(p, t, label=label)
        t0 = time.perf_counter()
        attrs = (lime_explain(m, num_samples=num_samples, seed=seed), shap_explain(m, max_evals=max_evals, seed=seed))
        return attrs, time.perf_counter() - t0

    p_ref = reference(texts)
    ref = [explain(reference, t) for t in tqdm(texts, desc="reference", disable=not progress, leave=False)]
    rows = []
    for name, cand in candidates.items():
        dp = np.abs(p_ref - cand(texts)).max(1)
        for i, t in enumerate(tqdm(texts, desc=str(name), disable=not progress, leave=False)):
            attrs, seconds = explain(cand, t)
            row = {"candidate": str(name), "max_abs_dp": float(dp[i])}
            for j, method in enumerate(("lime", "shap")):
                a, b = ref[i][0][j], attrs[j]
                row[f"{method}_spearman"] = (rank_agreement(a, b)["spearman"] if np.ptp(a.weights) and np.ptp(b.weights)
                                             else np.nan)
            row["reference_s"], row["candidate_s"] = ref[i][1], seconds
            rows.append(row)
    return pd.DataFrame(rows)[["candidate", "max_abs_dp", "lime_spearman", "shap_spearman", "reference_s",
                               "candidate_s"]]


def precision_summary(table: "pd.DataFrame", *, max_dp: float = 0.02, min_spearman: float = 0.95) -> "pd.DataFrame":  # noqa: F821
    """One row per candidate of a :func:`compare_predictors` table: ``speedup`` (reference seconds / candidate
    seconds, summed over the texts), the worst ``max_abs_dp``, the lowest ``lime_spearman`` and ``shap_spearman``
    (NaN rows skipped; ``rankings_compared`` counts the texts where both could be ranked) and ``within_tolerance``:
    probabilities moved by at most ``max_dp`` and every compared ranking has Spearman >= ``min_spearman``."""
    import pandas as pd

    if not 0 < max_dp < 1 or not -1 <= min_spearman <= 1:
        raise ValueError(f"max_dp must lie in (0, 1) and min_spearman in [-1, 1], got {max_dp} and {min_spearman}.")
    out = {}
    for name, g in table.groupby("candidate", sort=False):
        both = g[["lime_spearman", "shap_spearman"]].notna().all(1)
        lime_min, shap_min = float(g["lime_spearman"].min()), float(g["shap_spearman"].min())
        worst = float(g["max_abs_dp"].max())
        ok = bool(worst <= max_dp and both.any() and min(lime_min, shap_min) >= min_spearman)
        out[name] = {"speedup": float(g["reference_s"].sum() / g["candidate_s"].sum()), "max_abs_dp": worst,
                     "lime_spearman_min": lime_min, "shap_spearman_min": shap_min,
                     "rankings_compared": int(both.sum()), "texts": len(g), "within_tolerance": ok}
    return pd.DataFrame(out).T.astype({"speedup": float, "max_abs_dp": float, "lime_spearman_min": float,
                                       "shap_spearman_min": float, "rankings_compared": int, "texts": int,
                                       "within_tolerance": bool})


def describe_precisions(summary: "pd.DataFrame", *, max_dp: float = 0.02, min_spearman: float = 0.95,  # noqa: F821
                        same_speed: float = 0.1, seed_spearman: float | None = None) -> str:
    """Sentences on a :func:`precision_summary` (computed with the same ``max_dp`` and ``min_spearman``): for each
    candidate its speed against fp32 (faster or slower only when the ratio is more than ``same_speed`` away from
    1) and whether it stayed within the tolerance, naming the criterion it missed; then which precision to use
    for exploring many sentences (one both within tolerance and faster, else fp32). ``seed_spearman``, LIME's
    mean Spearman correlation with itself across seeds, puts the rank changes on the scale of LIME's own noise."""
    parts, usable = [], []
    for name, r in summary.iterrows():
        if r["speedup"] > 1 + same_speed:
            speed = f"explains **{r['speedup']:.1f}×** as fast as fp32"
        elif r["speedup"] < 1 - same_speed:
            speed = f"is **slower** than fp32 here ({r['speedup']:.2f}× its speed)"
        else:
            speed = f"runs at about fp32's speed ({r['speedup']:.2f}×)"
        moved = (f"its probabilities move by up to {r['max_abs_dp']:.4f} and its lowest Spearman correlation with "
                 f"fp32's rankings is {r['lime_spearman_min']:.3f} (LIME) and {r['shap_spearman_min']:.3f} (SHAP)")
        if r["rankings_compared"] == 0:
            moved = f"its probabilities move by up to {r['max_abs_dp']:.4f}; no sentence's rankings could be compared"
        elif r["rankings_compared"] < r["texts"]:
            moved += f", on the {r['rankings_compared']} of {r['texts']} sentences whose attributions are not constant"
        missed = [f"probabilities moved by more than {max_dp}"] if r["max_abs_dp"] > max_dp else []
        low = [m for m, v in (("LIME", r["lime_spearman_min"]), ("SHAP", r["shap_spearman_min"])) if v < min_spearman]
        if r["rankings_compared"] == 0:
            missed.append("no ranking could be compared")
        elif low:
            missed.append(f"{' and '.join(low)}'s Spearman correlation fell below {min_spearman}")
        tolerance = f"the tolerance (|Δp| ≤ {max_dp}, Spearman ≥ {min_spearman})"
        verdict = f"within {tolerance}" if r["within_tolerance"] else f"outside {tolerance}: " + " and ".join(missed)
        parts.append(f"**{name}** {speed}; {moved}: {verdict}.")
        if r["within_tolerance"] and r["speedup"] > 1 + same_speed:
            usable.append(str(name))
    n = int(summary["texts"].max())
    parts.append(f"These are the worst of {n} sentence{'s' if n != 1 else ''}; more sentences could only make the "
                 "worst case worse.")
    if seed_spearman is not None:
        parts.append(f"For scale: LIME's ranking of one sentence under another seed agrees with its own at Spearman "
                     f"{seed_spearman:.2f} on average (section 7); here both precisions share the seed, so every "
                     "difference comes from the precision.")
    if usable:
        parts.append(f"On this machine and these sentences {' and '.join(usable)} {'is' if len(usable) == 1 else 'are'} "
                     "a fair trade for exploring many sentences; report final explanations from the fp32 model.")
    else:
        parts.append("No lower precision is both within the tolerance and faster on this machine: explain with fp32.")
    if (summary["max_abs_dp"] > max_dp).any():
        parts.append(f"A probability that moves by more than {max_dp} can flip a sentence near the 0.5 threshold "
                     "to the other class.")
    return " ".join(parts)
