"""The per-group table and run summaries (notebook 03 and later), built on :mod:`helpers.fairness.metrics`.

:func:`group_metrics` (one row per group: rates, accuracy, TPR/FPR, calibration), :func:`fairness_summary`
(accuracy and the gaps), :func:`summarize_runs` / :func:`mean_sd_table` (several seeds) and
:func:`expected_calibration_error`. ``helpers.fairness.metrics.<name>`` finds them too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import (
    _binary,
    _prepare,
    _rate,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
)


def expected_calibration_error(y_true, y_prob, *, bins: int = 10) -> float:
    """ECE :math:`= \\sum_b \\frac{n_b}{n} |\\bar y_b - \\bar p_b|` over ``bins`` equal-width bins of p.

    Naeini, Cooper & Hauskrecht (2015); Guo et al. (2017). 0 = perfectly calibrated. Binning as
    scikit-learn's ``calibration_curve(strategy="uniform")``: a probability on an inner edge falls in the
    lower bin. The one implementation in the workbook (notebook 05 uses it too).
    """
    y = _binary(y_true, "y_true").astype(float)
    p = np.asarray(y_prob, dtype=np.float64).reshape(-1)
    if len(p) != len(y):
        raise ValueError(f"y_prob has {len(p)} entries but y_true {len(y)}.")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("y_prob must be probabilities in [0, 1] without NaN (pass P(y=1), shape (n,)).")
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}.")
    b = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], p)
    gap = np.abs(np.bincount(b, weights=y, minlength=bins) - np.bincount(b, weights=p, minlength=bins))
    return float(gap.sum() / len(y))


def group_metrics(y_true, y_pred, sensitive_features, y_prob=None, *, sample_weight=None,
                  overall: bool = False, bins: int = 10) -> pd.DataFrame:
    """One row per group: how the classifier treats that group.

    Columns: ``count``, ``share``, ``base_rate`` :math:`P(Y=1|a)`, ``selection_rate``
    :math:`P(\\hat Y=1|a)`, ``accuracy``, ``tpr`` :math:`P(\\hat Y=1|Y=1,a)` (NaN if the group has no
    positives), ``fpr`` :math:`P(\\hat Y=1|Y=0,a)` (NaN if it has no negatives); with ``y_prob``
    (P(y=1), shape (n,)) also ``mean_prob`` (mean predicted probability), ``calibration_gap`` =
    mean_prob - base_rate (calibration-in-the-large; > 0: the model over-predicts for this group)
    and ``ece`` (:func:`expected_calibration_error`, unweighted). ``overall=True`` appends an
    ``"overall"`` row. Weighted rates if ``sample_weight`` (``count`` stays the row count).
    """
    yt, yp, codes, index, w = _prepare(y_true, y_pred, sensitive_features, sample_weight)
    k = len(index)
    all_rows = np.ones(len(yt), bool)
    table = {
        "count": np.bincount(codes, minlength=k),
        "share": np.bincount(codes, weights=w, minlength=k) / w.sum(),
        "base_rate": _rate(yt == 1, all_rows, codes, w, k),
        "selection_rate": _rate(yp == 1, all_rows, codes, w, k),
        "accuracy": _rate(yt == yp, all_rows, codes, w, k),
        "tpr": _rate(yp == 1, yt == 1, codes, w, k),
        "fpr": _rate(yp == 1, yt == 0, codes, w, k),
    }
    if y_prob is not None:
        table.update(_probability_columns(yt, y_prob, codes, w, k, bins))
    out = pd.DataFrame({c: (v[0] if isinstance(v, tuple) else v) for c, v in table.items()}, index=index)
    if "mean_prob" in out:
        out.insert(out.columns.get_loc("ece"), "calibration_gap", out["mean_prob"] - out["base_rate"])
    if overall:
        out = _with_overall_row(out, table, len(yt))
    return out


def _probability_columns(yt, y_prob, codes, w, k: int, bins: int) -> dict:
    """``mean_prob`` and ``ece`` per group, each as ``(per-group array, overall value)``."""
    p = np.asarray(y_prob, dtype=np.float64)
    if p.ndim == 2 and p.shape[1] == 2:
        p = p[:, 1]
    if p.shape != (len(yt),):
        raise ValueError(f"y_prob must be P(y=1) with shape ({len(yt)},), got {p.shape}.")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("y_prob must hold probabilities in [0, 1] without NaN.")
    num = np.bincount(codes, weights=w * p, minlength=k)
    den = np.bincount(codes, weights=w, minlength=k)
    ece = [expected_calibration_error(yt[codes == j], p[codes == j], bins=bins) for j in range(k)]
    return {"mean_prob": (num / den, float((w * p).sum() / w.sum())),
            "ece": (np.array(ece), expected_calibration_error(yt, p, bins=bins))}


def _with_overall_row(out: pd.DataFrame, table: dict, n: int) -> pd.DataFrame:
    """``out`` with an ``"overall"`` row: the overall values of ``table``'s ``(per-group, overall)`` columns."""
    row = {c: (v[1] if isinstance(v, tuple) else None) for c, v in table.items()}
    row["count"], row["share"] = n, 1.0
    if "mean_prob" in out:
        row["calibration_gap"] = row["mean_prob"] - row["base_rate"]
    index = out.index
    key = "overall" if not isinstance(index, pd.MultiIndex) else ("overall",) * index.nlevels
    out.loc[key] = pd.Series(row)
    out["count"] = out["count"].astype(int)
    return out


def fairness_summary(y_true, y_pred, sensitive_features, *, sample_weight=None) -> dict[str, float]:
    """The gaps a model card reports, in one dict: ``accuracy``, ``dp_difference``, ``dp_ratio``,
    ``eo_difference``, ``eop_difference`` (equal opportunity), ``di_ratio`` (= dp_ratio)."""
    yt, yp, _, _, w = _prepare(y_true, y_pred, sensitive_features, sample_weight)
    kw = {"sensitive_features": sensitive_features, "sample_weight": sample_weight}
    dp_ratio = demographic_parity_ratio(yt, yp, **kw)
    return {
        "accuracy": float((w * (yt == yp)).sum() / w.sum()),
        "dp_difference": demographic_parity_difference(yt, yp, **kw),
        "dp_ratio": dp_ratio,
        "eo_difference": equalized_odds_difference(yt, yp, **kw),
        "eop_difference": equal_opportunity_difference(yt, yp, **kw),
        "di_ratio": dp_ratio,
    }


def summarize_runs(probabilities: dict[str, list], y_true, sensitive_features, *, threshold: float = 0.5) -> pd.DataFrame:
    """Mean and sd over runs (seeds) of :func:`fairness_summary`, one row per model.

    ``probabilities`` maps a model name to a list of P(y=1) arrays, shape ``(n,)``, one per seed;
    predictions are ``p >= threshold``. Columns: each metric, its ``<metric>_sd`` (sample sd,
    ddof = 1; NaN for a single run, whose spread is unknown, not 0) and ``runs``.
    """
    rows = []
    for name, runs in probabilities.items():
        if len(runs) == 0:
            raise ValueError(f"Model {name!r} has no runs.")
        per_run = pd.DataFrame([
            fairness_summary(y_true, (np.asarray(p) >= threshold).astype(int), sensitive_features) for p in runs
        ])  # fmt: skip
        row = per_run.mean().to_dict()
        sd = per_run.std(ddof=1)  # NaN for one run
        row.update({f"{k}_sd": v for k, v in sd.items()})
        row["runs"] = len(runs)
        rows.append(pd.Series(row, name=name))
    return pd.DataFrame(rows)


def mean_sd_table(summary: pd.DataFrame, columns=("accuracy", "dp_difference", "eo_difference"), *,
                  digits: int = 3) -> pd.DataFrame:
    """``"mean ± sd"`` strings for the ``columns`` of a :func:`summarize_runs` frame (for display); a mean alone
    where the sd is NaN. With one seed (every sd NaN: a single run has no spread to show) the numbers, rounded."""
    missing = [c for c in columns if c not in summary or f"{c}_sd" not in summary]
    if missing:
        raise ValueError(f"No mean/sd columns for {missing}; pass the output of summarize_runs().")
    if summary[[f"{c}_sd" for c in columns]].isna().all(axis=None):
        return summary[list(columns)].astype(float).round(digits)

    def cell(m: float, s: float) -> str:
        return f"{m:.{digits}f}" if pd.isna(s) else f"{m:.{digits}f} ± {s:.{digits}f}"

    return pd.DataFrame({c: [cell(m, s) for m, s in zip(summary[c], summary[f"{c}_sd"])] for c in columns},
                        index=summary.index)
