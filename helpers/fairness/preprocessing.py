"""Pre-processing mitigations: change the training data, not the model.

* :func:`reweighing` - Kamiran & Calders (2012), "Data preprocessing techniques for classification
  without discrimination", Knowledge and Information Systems 33:1-33, section 4.2: give every
  example of group :math:`g` with label :math:`y` the weight

  .. math:: w(g, y) = \\frac{P(g)\\,P(y)}{P(g, y)} = \\frac{n_g\\, n_y}{n\\, n_{g,y}},

  so that in the weighted data the label is statistically independent of the group
  (every group's weighted base rate equals the overall base rate) while each group keeps its size.
* :func:`resample` - the same target by duplicating rows instead: each group x label cell is
  brought to the size it would have under independence, :math:`n\\,P(g)P(y)` (Kamiran & Calders
  2012, section 4.3, "uniform sampling"); with ``strategy="oversample"`` (default) all targets are
  scaled up so that no row is dropped, only under-represented cells gain copies.
* :func:`effective_sample_size` - Kish (1965): :math:`n_\\text{eff} = (\\sum_i w_i)^2 / \\sum_i w_i^2`,
  the number of unweighted examples that would give the same variance of a weighted mean. Both
  mitigations pay for independence with a smaller effective sample.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from .. import validation as check


def cell_counts(groups, labels) -> pd.DataFrame:
    """Counts :math:`n_{g,y}` as a group x label table."""
    g, gi = check.factorize(groups, "group")
    y, yi = check.factorize(labels, "label", n=len(g))
    counts = np.zeros((len(gi), len(yi)), dtype=np.int64)
    np.add.at(counts, (g, y), 1)
    return pd.DataFrame(counts, index=gi, columns=yi)


def reweighing(groups, labels) -> np.ndarray:
    """Kamiran & Calders (2012) weights :math:`w_i = P(g_i)P(y_i)/P(g_i, y_i)`, shape ``(n,)``.

    Every group x label cell gets one weight; weights sum to ``n``; each group's total weight is
    its size; the weighted :math:`P(y=1 \\mid g)` is the same for every group.
    Raises ``ValueError`` for mismatched lengths, missing values, or a single group or label.
    """
    g, gi = check.factorize(groups, "group")
    y, yi = check.factorize(labels, "label", n=len(g))
    if len(gi) < 2 or len(yi) < 2:
        raise ValueError(f"Reweighing needs at least two groups and two labels, got {list(gi)} and {list(yi)}.")
    n = len(g)
    n_g = np.bincount(g, minlength=len(gi)).astype(float)
    n_y = np.bincount(y, minlength=len(yi)).astype(float)
    n_gy = np.zeros((len(gi), len(yi)))
    np.add.at(n_gy, (g, y), 1)
    return n_g[g] * n_y[y] / (n * n_gy[g, y])


def reweighing_table(groups, labels) -> pd.DataFrame:
    """One row per group x label cell: ``count``, ``expected`` :math:`n P(g) P(y)` and ``weight``."""
    counts = cell_counts(groups, labels)
    n = counts.to_numpy().sum()
    expected = np.outer(counts.sum(1), counts.sum(0)) / n
    out = pd.DataFrame({
        "count": counts.stack(),
        "expected": pd.DataFrame(expected, index=counts.index, columns=counts.columns).stack(),
    })  # fmt: skip
    out["weight"] = out["expected"] / out["count"].where(out["count"] > 0)
    return out


def resample(df: pd.DataFrame, group: str, label: str, *, strategy: Literal["oversample", "uniform"] = "oversample",
             seed: int = 0) -> pd.DataFrame:
    """Duplicate (and, with ``uniform``, drop) rows so that ``label`` is independent of ``group``.

    Target size of cell (g, y): :math:`t_{g,y} = s \\cdot n P(g) P(y)` (rounded), with ``s = 1``
    for ``"uniform"`` (Kamiran & Calders 2012: over-represented cells are subsampled) and
    :math:`s = \\max_{g,y} n_{g,y} / (nP(g)P(y))` for ``"oversample"`` (no row dropped; every
    other cell grows by drawing extra copies with replacement). Deterministic for a ``seed``.

    Returns:
        The new frame (index reset) with a column ``source_row``: the position of the original
        row each row copies (use it for :func:`effective_sample_size` via copy counts).
    """
    if not isinstance(df, pd.DataFrame) or len(df) == 0:
        raise ValueError("resample() needs a non-empty DataFrame.")
    for c in (group, label):
        if c not in df.columns:
            raise ValueError(f"No column {c!r} in the frame.")
    if strategy not in ("oversample", "uniform"):
        raise ValueError(f"strategy must be 'oversample' or 'uniform', got {strategy!r}.")
    table = reweighing_table(df[group], df[label])
    table = table[table["count"] > 0]
    scale = 1.0 if strategy == "uniform" else float((table["count"] / table["expected"]).max())
    rng = np.random.default_rng(seed)
    g_codes = df[group].astype(object).to_numpy()
    y_codes = df[label].astype(object).to_numpy()
    parts = []
    for (gv, yv), row in table.iterrows():
        rows = np.flatnonzero((g_codes == gv) & (y_codes == yv))
        target = max(1, int(round(scale * row["expected"])))
        if target >= len(rows):
            pick = np.concatenate([rows, rng.choice(rows, size=target - len(rows), replace=True)])
        else:
            pick = rng.choice(rows, size=target, replace=False)
        parts.append(np.sort(pick))
    pick = np.concatenate(parts)
    out = df.iloc[pick].reset_index(drop=True)
    out["source_row"] = pick
    return out


def copy_counts(resampled: pd.DataFrame, n: int) -> np.ndarray:
    """How many times each of the ``n`` original rows appears in a :func:`resample` result, shape ``(n,)``."""
    if "source_row" not in resampled.columns:
        raise ValueError("The frame has no 'source_row' column: pass the output of resample().")
    return np.bincount(resampled["source_row"].to_numpy(), minlength=n).astype(float)


def effective_sample_size(weights) -> float:
    """Kish's effective sample size :math:`(\\sum_i w_i)^2 / \\sum_i w_i^2` (= n for equal weights).

    Kish (1965), *Survey Sampling*, section 11.7. Copy counts of a resampled data set are weights too.
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) == 0:
        raise ValueError("No weights given.")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("Weights must be finite and non-negative.")
    s2 = float((w**2).sum())
    if s2 == 0:
        raise ValueError("All weights are zero: there is no sample left.")
    return float(w.sum() ** 2 / s2)


def effective_sample_size_by_group(weights, groups) -> pd.Series:
    """:func:`effective_sample_size` within each group (how much data each group effectively keeps)."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    g, gi = check.factorize(groups, "group", n=len(w))
    return pd.Series([effective_sample_size(w[g == k]) for k in range(len(gi))], index=gi, name="effective_n")
