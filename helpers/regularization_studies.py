"""Studies of regularisation built on :func:`helpers.regularization.train_mlp` (notebook 05).

* **Calibration**: the reliability table behind a reliability diagram and the expected calibration error
  (Naeini et al. 2015, AAAI; Guo et al. 2017, ICML).
* Per-group train-validation gaps, one-parameter sweeps over seeds, and the learning-rate x decay grid that
  compares coupled L2 with decoupled weight decay (Loshchilov & Hutter 2019).
* The source material's broken "regulariser" (:func:`reinit_and_clamp_`), kept only to be studied.
* How much the encoder's own dropout moves a sentence embedding (:func:`encoder_dropout_spread`).

``helpers.regularization`` re-exports every public name here, so ``reg.sweep`` keeps working.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import validation as check
from .config import seeded, single_thread_on_cpu
from .regularization import predict_proba, set_dropout, train_mlp

# --------------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------------


def reliability_table(y_true: Any, prob: Any, n_bins: int = 10) -> pd.DataFrame:
    """Bin predictions by P(y=1) into ``n_bins`` equal-width bins on [0, 1] (sklearn's
    ``calibration_curve(strategy="uniform")`` binning) and report, per non-empty bin, ``count``,
    mean predicted probability ``confidence`` and observed positive rate ``accuracy``.
    """
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    y = check.binary_labels(y_true, "y_true").astype(np.float64)
    prob = check.probabilities(prob, "prob", n=len(y))
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], prob)
    rows = []
    for b in range(n_bins):
        mask = ids == b
        if mask.any():
            rows.append({"bin": b, "lower": edges[b], "upper": edges[b + 1], "count": int(mask.sum()),
                         "confidence": float(prob[mask].mean()), "accuracy": float(y[mask].mean())})
    return pd.DataFrame(rows)


def expected_calibration_error(y_true: Any, prob: Any, n_bins: int = 10) -> float:
    """ECE (Naeini et al. 2015; Guo et al. 2017): :math:`\\sum_b \\frac{n_b}{n}\\,|\\bar y_b - \\bar p_b|`
    over ``n_bins`` equal-width bins of P(y=1), the same bins as :func:`reliability_table`.
    0 = perfectly calibrated. Delegates to :func:`helpers.fairness.metrics.expected_calibration_error`.
    """
    from .fairness.metrics import expected_calibration_error as ece

    return ece(y_true, prob, bins=n_bins)


def ece_difference(y_true: Any, prob_a: Any, prob_b: Any, n_bins: int = 10, *, n_boot: int = 1000,
                   level: float = 0.95, seed: int = 0):
    """ECE(a) - ECE(b) of two predictions of the same rows, with a paired percentile-bootstrap interval.

    Resamples the rows (shape (n,) each) with replacement ``n_boot`` times and recomputes both ECEs
    (:func:`expected_calibration_error`) on each resample, so the correlation between the two predictions
    is kept (Efron & Tibshirani 1993, ch. 13). Returns a :class:`helpers.stats.Interval`; an interval that
    contains 0 means this validation set cannot tell the two calibrations apart. Binned ECE is biased upwards
    on few rows; the interval describes which rows were drawn, not the randomness of training.
    """
    from .stats import Interval

    y = check.binary_labels(y_true, "y_true").astype(np.float64)
    a, b = check.probabilities(prob_a, "prob_a", n=len(y)), check.probabilities(prob_b, "prob_b", n=len(y))
    if not 0 < level < 1 or int(n_boot) != n_boot or n_boot < 100:
        raise ValueError(f"need 0 < level < 1 and n_boot >= 100 resamples, got level={level!r}, n_boot={n_boot!r}.")
    edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    ids_a, ids_b = np.searchsorted(edges, a), np.searchsorted(edges, b)

    def ece(ids: np.ndarray, p: np.ndarray, rows: np.ndarray) -> np.ndarray:  # rows: (n_boot, n) indices
        offset = (np.arange(len(rows))[:, None] * n_bins + ids[rows]).ravel()
        size = len(rows) * n_bins
        gap = np.abs(np.bincount(offset, y[rows].ravel(), size) - np.bincount(offset, p[rows].ravel(), size))
        return gap.reshape(len(rows), n_bins).sum(1) / rows.shape[1]

    rows = np.random.default_rng(seed).integers(0, len(y), size=(int(n_boot), len(y)))
    boot = ece(ids_a, a, rows) - ece(ids_b, b, rows)
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    estimate = expected_calibration_error(y, a, n_bins) - expected_calibration_error(y, b, n_bins)
    return Interval(float(estimate), float(low), float(high), float(level))


def top_label_calibration_error(y_true: Any, prob: Any, n_bins: int = 10) -> float:
    """Top-label ECE (Guo et al. 2017, Sec. 2): calibration of the *predicted class's* confidence.

    For a binary model with P(y=1) = ``prob``: prediction :math:`\\hat y = 1[p > 0.5]` (a tie predicts 0, like
    ``argmax`` of ``[1-p, p]``), confidence :math:`c = \\max(p, 1-p) \\in [0.5, 1]`,
    :math:`\\text{ECE} = \\sum_b \\frac{n_b}{n}\\,|\\text{acc}_b - \\bar c_b|` over ``n_bins`` equal-width bins of
    c on [0, 1] (only the upper half is ever used), acc_b the share of correct predictions in bin b. This is
    :func:`expected_calibration_error` applied to (correct, c). It differs from the P(y=1) version when
    errors in opposite directions meet in one confidence bin: ``y = [1, 1]``, ``prob = [0.8, 0.2]`` gives 0.3
    here and 0.5 on P(y=1).
    """
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    y = np.asarray(y_true).reshape(-1)
    if len(p) != len(y):
        raise ValueError(f"prob has {len(p)} entries but y_true {len(y)}.")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("prob must be probabilities P(y=1) in [0, 1] without NaN, shape (n,).")
    correct = ((p > 0.5).astype(int) == y).astype(int)
    return expected_calibration_error(correct, np.maximum(p, 1 - p), n_bins)


# --------------------------------------------------------------------------------------------
# per-group gaps, sweeps and grids
# --------------------------------------------------------------------------------------------


def group_gaps(model: nn.Module, X_train: Any, y_train: Any, g_train: Any, X_val: Any, y_val: Any,
               g_val: Any) -> pd.DataFrame:
    """Per-group train and validation accuracy and their gap (train - val), one row per group.

    A larger gap for a group means the model memorised that group's training examples more than it
    learned something that transfers - typical for the smaller group.
    """
    out = []
    for name, X, y, g in (("train", X_train, y_train, g_train), ("val", X_val, y_val, g_val)):
        X = check.features(X, f"X_{name}", n_features=check.model_width(model))
        y = check.binary_labels(y, f"y_{name}", n=len(X))
        g = check.group_values(g, f"g_{name}")
        check.same_length(**{f"X_{name}": X, f"g_{name}": g})
        pred = (predict_proba(model, X) > 0.5).astype(np.float32)
        out.append(pd.DataFrame({"group": g.astype(str), "correct": pred == y, "split": name}))
    df = pd.concat(out)
    table = df.pivot_table(index="group", columns="split", values="correct", aggfunc=["mean", "size"])
    missing = set(df.loc[df.split == "train", "group"]) ^ set(df.loc[df.split == "val", "group"])
    if missing:
        raise ValueError(f"Group(s) {sorted(missing)} appear in only one of train / val: cannot compare.")
    res = pd.DataFrame({
        "n_train": table[("size", "train")].astype(int), "n_val": table[("size", "val")].astype(int),
        "train_acc": table[("mean", "train")].astype(float), "val_acc": table[("mean", "val")].astype(float),
    })
    res["gap"] = res["train_acc"] - res["val_acc"]
    return res.reset_index()


def sweep(X_train: Any, y_train: Any, X_val: Any, y_val: Any, *, param: str, values: Sequence[float],
          seeds: Sequence[int] = (0,), progress: bool = True, **base: Any) -> pd.DataFrame:
    """Train once per ``value`` of ``param`` (e.g. ``"l2"`` or ``"p"``) and seed; other settings from
    ``base`` (keyword arguments of :func:`train_mlp`). One row per run with the final-epoch
    ``train_acc``, ``val_acc``, ``val_loss`` and ``gap``.
    """
    from .progress import tqdm

    if not values:
        raise ValueError("sweep() got no values to try.")
    runs = [(v, s) for v in values for s in seeds]
    rows = []
    for v, s in tqdm(runs, desc=f"sweep {param}", disable=not progress, leave=False):
        res = train_mlp(X_train, y_train, X_val, y_val, **{**base, param: v, "seed": s})
        rows.append({param: v, "seed": s, **{k: res.final()[k] for k in ("train_acc", "val_acc", "val_loss", "gap")}})
    return pd.DataFrame(rows)


def _grid_runs(lrs: Sequence[float], decays: Sequence[float], step_decays: Sequence[float],
               seeds: Sequence[int]) -> list[tuple[str, float, float, int]]:
    """The ``(method, lr, decay, seed)`` runs of :func:`decay_grid`: Adam+L2 over ``decays``, then AdamW over
    ``step_decays`` (shrink factors per step, each in [0, 1))."""
    step_decays = tuple(step_decays)
    if any(not 0 <= d < 1 for d in step_decays):
        raise ValueError(f"AdamW's decays are shrink factors per step, each in [0, 1); got {step_decays}.")
    runs = [("Adam+L2", lr, d, s) for lr in lrs for d in decays for s in seeds]
    return runs + [("AdamW", lr, d, s) for lr in lrs for d in step_decays for s in seeds]


def _decay_kwargs(method: str, lr: float, decay: float) -> dict[str, Any]:
    """:func:`train_mlp` arguments of one grid cell: Adam with the penalty ``l2 = decay``, or AdamW shrinking by
    ``decay`` per step (torch's ``weight_decay = decay / lr``)."""
    if method == "Adam+L2":
        return dict(optimizer="adam", l2=decay)
    return dict(optimizer="adamw", weight_decay=decay / lr)


def decay_grid(X_train: Any, y_train: Any, X_val: Any, y_val: Any, *, lrs: Sequence[float],
               decays: Sequence[float], step_decays: Sequence[float] | None = None, seeds: Sequence[int] = (0,),
               progress: bool = True, **base: Any) -> pd.DataFrame:
    """Adam + L2 (explicit penalty ``l2=decay``) versus AdamW over a learning-rate x decay grid, as in
    Loshchilov & Hutter (2019, Fig. 2). One row per (method, lr, decay) with the final-epoch validation
    accuracy and loss averaged over ``seeds``.

    AdamW is parametrised as in the paper's Algorithm 2 (line 12, schedule multiplier eta_t = 1): each step
    shrinks the decayed weights by the factor ``1 - decay``, whatever the learning rate. torch's AdamW shrinks
    by ``lr * weight_decay``, so this passes ``weight_decay = decay / lr``. Its ``decay`` values come from
    ``step_decays`` (default ``decays``; each must be < 1, a shrink per step). With torch's own parametrisation
    (a fixed ``weight_decay``) the decay would move with the learning rate and the grid could not show the
    decoupling the paper is about.
    """
    from .progress import tqdm

    runs = _grid_runs(lrs, decays, decays if step_decays is None else step_decays, seeds)
    rows = []
    for method, lr, d, s in tqdm(runs, desc="lr x decay grid", disable=not progress, leave=False):
        res = train_mlp(X_train, y_train, X_val, y_val, **{**base, **_decay_kwargs(method, lr, d), "lr": lr, "seed": s})
        f = res.final()
        rows.append({"method": method, "lr": lr, "decay": d, "seed": s, "val_acc": f["val_acc"],
                     "val_loss": f["val_loss"], "train_acc": f["train_acc"]})
    df = pd.DataFrame(rows)
    return df.groupby(["method", "lr", "decay"], as_index=False)[["val_acc", "val_loss", "train_acc"]].mean()


def good_region(grid: pd.DataFrame, tol: float = 0.01) -> pd.DataFrame:
    """Per method: best validation accuracy, and how many grid cells come within ``tol`` of the best
    accuracy of *either* method (``n_good``, ``fraction_good``) - the width of the good region - and
    how many distinct learning rates reach it (``lrs_good``).
    """
    if grid.empty:
        raise ValueError("The grid is empty.")
    top = grid["val_acc"].max()
    rows = []
    for method, g in grid.groupby("method"):
        good = g[g["val_acc"] >= top - tol]
        rows.append({"method": method, "best_val_acc": float(g["val_acc"].max()), "n_good": int(len(good)),
                     "fraction_good": float(len(good) / len(g)), "lrs_good": int(good["lr"].nunique()),
                     "cells": int(len(g))})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# the source material's broken "regulariser" (studied in an exercise; do not use)
# --------------------------------------------------------------------------------------------


def reinit_and_clamp_(model: nn.Module, std: float = 0.02, clamp: float = 0.1, *,
                      generator: torch.Generator | None = None) -> nn.Module:
    """The source material's "regulariser", kept only to be studied: after each step, re-draw every
    parameter from N(0, std^2) and clamp it to [-clamp, clamp], in place.

    It throws away everything the optimiser just learned: the model is a fresh random network
    after every step, so training loss never falls. With every weight that small, the output is dominated by the
    input-independent biases, so the network typically predicts one class for (nearly) everyone, chosen by the
    sign of a random bias (the majority or the minority class): see :func:`describe_one_class`.
    """
    with torch.no_grad():
        for param in model.parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype) * std
            param.copy_(noise.clamp_(-clamp, clamp).to(param.device))
    return model


def describe_one_class(prob: Any, y_true: Any, *, most: float = 0.95, rows: str = "rows") -> str:
    """What a model's 0/1 decisions ``prob > 0.5`` (n,) on labels ``y_true`` (n,) are: the class it predicts most,
    the share of rows given it, whether that is the majority or the minority class of ``y_true``, and whether it is
    one class for (nearly) everyone (share >= ``most``); the accuracy beside the predicted class's share.
    ``rows`` names the rows in the sentence ("validation sentences")."""
    pred, y = np.asarray(prob) > 0.5, np.asarray(y_true) > 0.5
    if pred.shape != y.shape or not len(y):
        raise ValueError(f"prob and y_true must be two non-empty arrays of one shape, got {pred.shape} and {y.shape}.")
    c = int(pred.mean() >= 0.5)
    share, rate = float(np.mean(pred == c)), float(np.mean(y == c))
    which = "majority" if rate >= 0.5 else "minority"
    head = (f"It predicts class {c} for {share:.1%} of the {rows}: one class for (nearly) everyone" if share >= most else
            f"It predicts class {c} for {share:.1%} of the {rows}, not one class for everyone")
    tail = ", about that class's share of the labels: the decisions say nothing about the rows." if share >= most else "."
    return f"{head}; class {c} is the {which} class here ({rate:.1%} of the labels). Accuracy {np.mean(pred == y):.3f}" + tail


# --------------------------------------------------------------------------------------------
# the encoder's own dropout (optional: on a few sentences)
# --------------------------------------------------------------------------------------------


def encoder_dropout_spread(texts: Sequence[str], ps: Sequence[float], *, T: int = 5, seed: int = 0,
                           model_name: str | None = None, device: Any = None) -> pd.DataFrame:
    """How much the encoder's own dropout (``hidden_dropout_prob`` and ``attention_probs_dropout_prob``,
    0.1 in MiniLM's config) moves a sentence embedding: for each ``p``, ``T`` stochastic passes in
    train mode; reports the mean cosine similarity of each pass to the deterministic (eval)
    embedding. Small ``texts`` only: this runs the full encoder ``T x len(ps)`` times.
    """
    from .models import encode, load_encoder, load_tokenizer

    if not texts:
        raise ValueError("encoder_dropout_spread() got no sentences.")
    model, tok = load_encoder(model_name, device=device), load_tokenizer(model_name)
    with single_thread_on_cpu(next(model.parameters()).device):
        return _dropout_spread(list(texts), ps, model, tok, T=T, seed=seed, encode=encode)


def _dropout_spread(texts: list[str], ps: Sequence[float], model: nn.Module, tok: Any, *, T: int, seed: int,
                    encode: Callable) -> pd.DataFrame:
    ref = torch.from_numpy(encode(list(texts), model, tok, normalize=True, progress=False))
    rows = []
    for p in ps:
        set_dropout(model, p)
        sims = []
        with seeded(seed):
            for _ in range(T):
                model.train()
                emb = _encode_train_mode(list(texts), model, tok)
                sims.append((nn.functional.normalize(emb, dim=-1) * ref).sum(-1))
        s = torch.stack(sims)
        rows.append({"p": float(p), "mean_cosine_to_eval": float(s.mean()), "min_cosine_to_eval": float(s.min())})
    model.eval()
    return pd.DataFrame(rows)


def _encode_train_mode(texts: list[str], model: nn.Module, tok: Any) -> torch.Tensor:
    """Mean-pooled embeddings (n, H) on the CPU with the model in its current (train) mode: dropout stays on."""
    from .models import forward_batches, mean_pool, tokenize

    ids = tokenize(texts, tok, max_length=128, device=next(model.parameters()).device)
    return forward_batches(model, ids, batch_size=len(texts),
                           head=lambda out, mask: mean_pool(out.last_hidden_state.float(), mask)).cpu()
