"""Comparing two models on one shared test set: a paired bootstrap of the difference (notebook 03).

Two models scored on the same rows make correlated errors, so their separate intervals (``metrics.gap_interval``)
say little about their difference: overlapping intervals do not mean "no difference", and the difference can be
far more precise than either number. The paired bootstrap resamples the rows once and scores both models on the
same resample (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*, ch. 13 and 16).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

from .metrics import _prepare

_METRICS = ("accuracy", "dp", "eop", "eo")


class PairedDifference(NamedTuple):
    """``estimate`` = metric(model a) - metric(model b) on the test set; (``low``, ``high``) its bootstrap interval at
    ``level``; ``share_not_positive`` the share of resamples in which a's metric is not larger than b's."""

    estimate: float
    low: float
    high: float
    level: float
    share_not_positive: float


def _metric(metric: str, pos: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The metric from predicted-positive counts ``pos`` (..., groups, 2 labels) in cells of sizes ``m`` (groups, 2)."""
    if metric == "accuracy":
        return (pos[..., 1].sum(-1) + (m[:, 0] - pos[..., 0]).sum(-1)) / m.sum()
    if metric == "dp":
        rates = pos.sum(-1) / m.sum(1)
        return rates.max(-1) - rates.min(-1)
    tpr = pos[..., 1] / m[:, 1]
    gap = tpr.max(-1) - tpr.min(-1)
    if metric == "eo":
        fpr = pos[..., 0] / m[:, 0]
        gap = np.maximum(gap, fpr.max(-1) - fpr.min(-1))
    return gap


def paired_difference(y_true, pred_a, pred_b, *, sensitive_features,
                      metric: Literal["accuracy", "dp", "eop", "eo"] = "eo", level: float = 0.95,
                      n_boot: int = 2000, seed: int = 0) -> PairedDifference:
    """Paired percentile-bootstrap interval of metric(a) - metric(b) for two models' 0/1 predictions on the same rows.

    ``metric``: ``"accuracy"``, or a between-groups gap - demographic parity (``"dp"``, max - min selection rate),
    equal opportunity (``"eop"``, TPR) or equalized odds (``"eo"``, the larger of the TPR and FPR gaps), as in
    :mod:`helpers.fairness.metrics`. Each resample draws, within every group x true-label cell, as many rows as the
    cell has, with replacement (so every rate stays defined), and scores **both** models on those same rows. A row
    only matters through its pattern (label, a's prediction, b's prediction), so a cell's resampled pattern counts are
    drawn from the multinomial distribution they have under row resampling: time grows with ``n_boot x cells``.

    Returns the estimate, the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of the resampled differences, and the
    share of resamples with difference <= 0. An interval that excludes 0 says the test set tells the two models apart;
    it ignores the randomness of training (seeds). Shapes: ``y_true``, ``pred_a``, ``pred_b``, ``sensitive_features``:
    (n,). Raises ValueError on mismatched lengths, non-binary values, a group without both labels, or bad settings.
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}.")
    if not 0 < level < 1:
        raise ValueError(f"level is a confidence level between 0 and 1 (e.g. 0.95), got {level!r}.")
    if int(n_boot) != n_boot or n_boot < 100:
        raise ValueError(f"n_boot must be a whole number of at least 100 resamples, got {n_boot!r}.")
    yt, ya, codes, index, _ = _prepare(y_true, pred_a, sensitive_features)
    _, yb, _, _, _ = _prepare(y_true, pred_b, sensitive_features)
    k = len(index)
    # pattern counts per (group, label): pattern = 2 * a + b in {0: (0,0), 1: (0,1), 2: (1,0), 3: (1,1)}
    counts = np.zeros((k, 2, 4), dtype=np.int64)
    np.add.at(counts, (codes, yt, 2 * ya + yb), 1)
    m = counts.sum(-1)  # (groups, 2)
    if (m == 0).any():
        missing = [f"{index[g]!r} (y = {y})" for g, y in zip(*np.nonzero(m == 0))]
        raise ValueError(f"No rows with {', '.join(missing)}: every group needs both labels to resample within cells.")
    estimate = _metric(metric, counts[..., 2:].sum(-1), m) - _metric(metric, counts[..., [1, 3]].sum(-1), m)
    rng = np.random.default_rng(seed)
    draws = np.empty((int(n_boot), k, 2, 4), dtype=np.int64)
    for g in range(k):
        for y in range(2):
            draws[:, g, y] = rng.multinomial(m[g, y], counts[g, y] / m[g, y], size=int(n_boot))
    diff = _metric(metric, draws[..., 2:].sum(-1), m) - _metric(metric, draws[..., [1, 3]].sum(-1), m)
    low, high = np.quantile(diff, [(1 - level) / 2, (1 + level) / 2])
    return PairedDifference(float(estimate), float(low), float(high), float(level), float((diff <= 1e-12).mean()))


_NAMES = {"accuracy": "accuracy", "dp": "demographic-parity gap", "eop": "equal-opportunity gap",
          "eo": "equalized-odds gap"}


def describe_paired(pairs) -> str:
    """One sentence on which paired differences a test set resolves: ``pairs`` maps ``(label, metric)`` (label such
    as ``"finetuned - frozen"``) to a :class:`PairedDifference` or its ``_asdict()``. A difference is told apart when
    its interval excludes 0 (``low > 0`` or ``high < 0``); an interval that touches or contains 0 does not."""
    told, not_told = [], []
    for (label, metric), result in pairs.items():
        r = result._asdict() if hasattr(result, "_asdict") else dict(result)
        if r["low"] > 0 or r["high"] < 0:
            told.append(f"{label} in {_NAMES[metric]} ({r['estimate']:+.3f}, {r['level']:.0%} interval "
                        f"{r['low']:+.3f} to {r['high']:+.3f})")
        else:
            not_told.append(f"{label} in {_NAMES[metric]}")
    parts = []
    if told:
        parts.append("This test set tells apart " + "; ".join(told) + ".")
    if not_told:
        parts.append(("It" if told else "This test set") + " cannot tell apart (the interval contains 0) "
                     + "; ".join(not_told) + ".")
    return " ".join(parts)
