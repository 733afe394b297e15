"""Resampling with imbalanced-learn: undersampling, oversampling and SMOTE towards label-group independence.

The target is the one of :func:`helpers.fairness.preprocessing.reweighing` (Kamiran & Calders 2012, section
4.3): every group x label cell :math:`(g, y)` brought to the size it would have if the label were independent of
the group, :math:`t_{g,y} = s \\cdot n P(g) P(y)`. The scale :math:`s` decides the direction:

* ``"undersample"`` - :math:`s = \\min_{g,y} n_{g,y} / (nP(g)P(y))`: every cell shrinks (or keeps its size);
  records are dropped at random (``imblearn.under_sampling.RandomUnderSampler``);
* ``"oversample"`` - :math:`s = \\max_{g,y} n_{g,y} / (nP(g)P(y))`: every cell grows by copies drawn with
  replacement (``imblearn.over_sampling.RandomOverSampler``);
* ``"smote"`` - the same sizes, but the extra rows are *synthetic*: SMOTE (Chawla et al. 2002, *JAIR*
  16:321-357) draws a row :math:`x_i` of the cell, one of its ``k`` nearest neighbours :math:`x_{nn}` in the
  same cell, and :math:`u \\sim U(0, 1)`, and adds :math:`x_i + u\\,(x_{nn} - x_i)`
  (``imblearn.over_sampling.SMOTE``). On one-hot columns this makes fractional categories
  (0.3 of "Husband"); ``SMOTENC`` votes categories instead. On sentences there is no such segment at all: the
  midpoint of two token sequences is not a sentence, and the midpoint of two embeddings is a vector no text
  encodes.

The leakage trap (:func:`leakage_gap`): resampling *before* the train/test split puts copies (or
interpolations) of training rows into the test split, so the test score measures memory.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from ..validation import factorize
from .preprocessing import effective_sample_size, reweighing

Method = Literal["undersample", "oversample", "smote"]
METHODS: tuple[str, ...] = ("undersample", "oversample", "smote")


class Resampled(NamedTuple):
    """Output of :func:`resample_cells`: features, groups, labels, and ``source`` - the original row each
    row copies (``-1`` for a synthetic SMOTE row)."""

    X: np.ndarray
    groups: np.ndarray
    labels: np.ndarray
    source: np.ndarray


def independence_targets(groups, labels, *, direction: Literal["under", "over"] = "over") -> dict[tuple, int]:
    """Target size :math:`t_{g,y} = \\text{round}(s\\, n P(g) P(y))` of every non-empty (group, label) cell.

    ``direction="over"`` scales so that no cell shrinks, ``"under"`` so that none grows (see module doc).
    """
    g, gi = factorize(groups, "group")
    y, yi = factorize(labels, "label", n=len(g))
    if len(gi) < 2 or len(yi) < 2:
        raise ValueError(f"Resampling needs at least two groups and two labels, got {list(gi)} and {list(yi)}.")
    if direction not in ("under", "over"):
        raise ValueError(f"direction must be 'under' or 'over', got {direction!r}.")
    n = len(g)
    counts = np.zeros((len(gi), len(yi)))
    np.add.at(counts, (g, y), 1)
    expected = np.outer(counts.sum(1), counts.sum(0)) / n
    ratio = counts / expected
    scale = ratio.min() if direction == "under" else ratio.max()
    return {(gi[a], yi[b]): max(1, int(round(scale * expected[a, b])))
            for a in range(len(gi)) for b in range(len(yi)) if counts[a, b] > 0}  # fmt: skip


def resample_cells(X, groups, labels, *, method: Method = "smote", seed: int = 0, k_neighbors: int = 5) -> Resampled:
    """Resample the rows of ``X`` (shape ``(n, d)``) so that ``labels`` is independent of ``groups``.

    Uses imbalanced-learn with each (group, label) cell as one "class" and
    :func:`independence_targets` as its ``sampling_strategy``. SMOTE's ``k_neighbors`` is lowered to
    (smallest cell - 1) when a cell is smaller than ``k + 1``. Deterministic for a ``seed``.
    """
    from imblearn.over_sampling import SMOTE, RandomOverSampler
    from imblearn.under_sampling import RandomUnderSampler

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (rows x features), got shape {X.shape}.")
    g, gi = factorize(groups, "group", n=len(X))
    y, yi = factorize(labels, "label", n=len(X))
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    targets = independence_targets(gi[g], yi[y], direction="under" if method == "undersample" else "over")
    cell = g * len(yi) + y
    strategy = {int(gi.get_loc(gv) * len(yi) + yi.get_loc(yv)): t for (gv, yv), t in targets.items()}
    if method == "undersample":
        sampler = RandomUnderSampler(sampling_strategy=strategy, random_state=seed)
    elif method == "oversample":
        sampler = RandomOverSampler(sampling_strategy=strategy, random_state=seed)
    else:
        smallest = int(np.bincount(cell).min(where=np.bincount(cell) > 0, initial=len(X)))
        if smallest < 2:
            raise ValueError("SMOTE needs at least two rows in every (group, label) cell.")
        sampler = SMOTE(sampling_strategy=strategy, k_neighbors=min(k_neighbors, smallest - 1), random_state=seed)
    X_res, cell_res = sampler.fit_resample(X, cell)
    if method == "smote":  # imblearn keeps the originals first, then appends the synthetic rows
        source = np.concatenate([np.arange(len(X)), np.full(len(X_res) - len(X), -1)])
    else:
        source = np.asarray(sampler.sample_indices_)
    return Resampled(X_res, np.array(gi.tolist())[cell_res // len(yi)], np.array(yi.tolist())[cell_res % len(yi)], source)


def resampled_ess(source: np.ndarray, n: int) -> float:
    """Kish's effective sample size of a resampled set, counting real records only: the copy counts of the
    ``n`` original rows are the weights; a synthetic row (``source == -1``) adds no record."""
    real = source[source >= 0]
    return effective_sample_size(np.bincount(real, minlength=n))


def compare_resampling(X_train, y_train, group_train, X_test, y_test, group_test, *, seed: int = 0,
                       max_iter: int = 2000) -> pd.DataFrame:
    """Logistic regression on the original, reweighed, under-, over- and SMOTE-resampled training rows.

    One row per method: ``rows`` (training rows), ``synthetic`` rows, ``effective_n`` (Kish, real records),
    the base rate of each group after resampling (``base_rate.<group>``), and the test ``accuracy``,
    ``dp_difference`` and ``eo_difference`` (:func:`helpers.fairness.metrics.fairness_summary`).
    """
    from sklearn.linear_model import LogisticRegression

    from . import metrics as fm

    y_train, group_train = np.asarray(y_train), np.asarray(group_train, dtype=object)
    n = len(y_train)
    runs = {"original": (X_train, y_train, group_train, None, np.arange(n))}
    runs["reweighed"] = (X_train, y_train, group_train, reweighing(group_train, y_train), np.arange(n))
    for method in METHODS:
        r = resample_cells(X_train, group_train, y_train, method=method, seed=seed)
        runs[method] = (r.X, r.labels, r.groups, None, r.source)
    rows = {}
    for name, (X, y, grp, w, source) in runs.items():
        clf = LogisticRegression(max_iter=max_iter).fit(X, y, sample_weight=w)
        pred = clf.predict(X_test)
        rates = fm.base_rates(y, grp, sample_weight=w)
        ess = effective_sample_size(w) if w is not None else resampled_ess(source, n)
        summary = fm.fairness_summary(y_test, pred, group_test)
        rows[name] = {"rows": len(y), "synthetic": int((source < 0).sum()), "effective_n": ess,
                      **{f"base_rate.{k}": v for k, v in rates.items()},
                      **{k: summary[k] for k in ("accuracy", "dp_difference", "eo_difference")}}  # fmt: skip
    return pd.DataFrame(rows).T


def leakage_gap(X, y, groups, X_fresh, y_fresh, groups_fresh, *, method: Method = "oversample", model=None,
                test_fraction: float = 0.2, seed: int = 0) -> dict[str, float]:
    """How much resampling *before* the train/test split inflates the test score.

    * ``reported`` - the trap: resample all of ``(X, y)`` (cells group x label), split off ``test_fraction``,
      fit ``model`` on the rest and score it on that split;
    * ``fresh`` - the same fitted model on fresh data resampled the same way (same class and group mix, no
      shared records): what it really achieves; ``gap = reported - fresh``;
    * ``shared`` - the share of the trap's test rows that copy a record which also feeds its training split
      (a synthetic SMOTE test row counts as shared: it is interpolated from training-cell neighbours).

    ``model`` is any scikit-learn classifier (default: logistic regression). Undersampling never copies a
    row, so its gap is the noise level of the comparison.
    """
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    model = LogisticRegression(max_iter=2000) if model is None else model
    X, y, groups = np.asarray(X, dtype=np.float64), np.asarray(y), np.asarray(groups, dtype=object)

    r = resample_cells(X, groups, y, method=method, seed=seed)
    tr, te = train_test_split(np.arange(len(r.labels)), test_size=test_fraction, random_state=seed,
                              stratify=[f"{g}|{lab}" for g, lab in zip(r.groups, r.labels)])  # NumPy 1.26 cannot add str arrays
    fitted = clone(model).fit(r.X[tr], r.labels[tr])
    reported = float((fitted.predict(r.X[te]) == r.labels[te]).mean())
    f = resample_cells(X_fresh, groups_fresh, y_fresh, method=method, seed=seed + 1)
    fresh = float((fitted.predict(f.X) == f.labels).mean())
    train_sources = set(r.source[tr][r.source[tr] >= 0].tolist())
    shared = float(np.mean([s < 0 or s in train_sources for s in r.source[te]]))
    return {"reported": reported, "fresh": fresh, "gap": reported - fresh, "shared": shared}


def leakage_table(X, y, groups, X_fresh, y_fresh, groups_fresh, *, models: dict, methods=METHODS,
                  seeds=(0, 1, 2), test_fraction: float = 0.2) -> pd.DataFrame:
    """:func:`leakage_gap` for every method x model, averaged over ``seeds`` (resampling and split draws);
    ``gap_sd`` is the standard deviation of the gap over the seeds (NaN for one seed). ``models``: name -> scikit-learn classifier."""
    from ..progress import tqdm

    rows = []
    jobs = [(m, name, s) for m in methods for name in models for s in seeds]
    for method, name, s in tqdm(jobs, desc="leakage", leave=False):
        out = leakage_gap(X, y, groups, X_fresh, y_fresh, groups_fresh, method=method, model=models[name],
                          test_fraction=test_fraction, seed=s)
        rows.append({"method": method, "model": name, **out})
    df = pd.DataFrame(rows).groupby(["method", "model"], sort=False)
    return df.mean().join(df["gap"].std(ddof=1).rename("gap_sd"))
