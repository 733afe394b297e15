"""Group fairness metrics, written out so the formula is visible (and tested against fairlearn).

Notation: :math:`Y` the true label, :math:`\\hat Y` the prediction (1 = the favourable outcome,
e.g. "income > 50K", i.e. "approve"), :math:`A` the sensitive feature with groups :math:`a`.

* selection rate :math:`SR_a = P(\\hat Y=1 \\mid A=a)`, base rate :math:`BR_a = P(Y=1 \\mid A=a)`
* true positive rate :math:`TPR_a = P(\\hat Y=1 \\mid Y=1, A=a)`,
  false positive rate :math:`FPR_a = P(\\hat Y=1 \\mid Y=0, A=a)`
* demographic parity difference :math:`\\max_a SR_a - \\min_a SR_a` and ratio
  :math:`\\min_a SR_a / \\max_a SR_a` (Calders & Verwer 2010; Feldman et al. 2015 for the ratio)
* equalized-odds difference :math:`\\max(\\max_a TPR_a - \\min_a TPR_a,\\ \\max_a FPR_a - \\min_a FPR_a)`
  (Hardt, Price & Srebro 2016)
* equal-opportunity difference :math:`\\max_a TPR_a - \\min_a TPR_a` (Hardt et al. 2016)
* accuracy-parity difference :math:`\\max_a ACC_a - \\min_a ACC_a` (overall accuracy equality, Berk et al. 2021)
* :func:`gap_interval`: a percentile-bootstrap interval for a measured gap (how precisely does this test set pin it
  down?), checked against resampling rows

The four ``*_difference`` / ``*_ratio`` functions have the signatures of fairlearn 0.15's
functions of the same names (``method="between_groups" | "to_overall"``, ``sample_weight``,
``agg`` for equalized odds) and return the same numbers (``tests/test_fairness_metrics.py``
checks equality to 1e-12, with 2 and more groups, with and without weights).

Where fairlearn silently returns a number that is not defined, these functions raise a
``ValueError`` instead: a group with no positive examples has no TPR (and a group without
negatives no FPR), so equal-opportunity / equalized-odds raise; so do mismatched lengths, NaN,
non-binary labels and a sensitive feature with a single group. In :func:`group_metrics` an
undefined rate is shown as NaN (documented per column). A ratio whose denominator is 0 (nobody
selected in any group) is NaN.

Weighted versions use :math:`SR_a = \\sum_{i\\in a} w_i \\hat y_i / \\sum_{i \\in a} w_i` etc.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from .. import validation as check

Method = Literal["between_groups", "to_overall"]
_METHODS = ("between_groups", "to_overall")


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


_binary = check.binary_labels  # (values, name) -> 1-D 0/1 int64, or a ValueError naming ``name``


def _groups(sensitive_features: Any, n: int) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (n,) and the group labels; several columns make intersectional groups."""
    if sensitive_features is None:
        raise ValueError("sensitive_features is required (e.g. df['sex']).")
    sf = _as_frame(sensitive_features)
    if len(sf) != n:
        raise ValueError(f"sensitive_features has {len(sf)} rows but the labels have {n}: the lengths must match.")
    if sf.isna().to_numpy().any():
        raise ValueError("sensitive_features contains missing values (NaN/None); fill them with a group name or drop the rows.")
    codes, index = _factorize_rows(sf.reset_index(drop=True).astype(object))
    if len(index) < 2:
        raise ValueError(
            f"sensitive_features has a single group ({index[0]!r}): a disparity needs at least two groups to compare."
        )
    return codes.astype(np.int64), index


def _as_frame(sf: Any) -> pd.DataFrame:
    """Sensitive features as a DataFrame, one column per feature (a dict, Series, 1-D or 2-D array)."""
    if isinstance(sf, dict):
        sf = pd.DataFrame(sf)
    if isinstance(sf, pd.Series):
        return sf.to_frame()
    if isinstance(sf, pd.DataFrame):
        return sf
    arr = np.asarray(sf, dtype=object)
    if arr.ndim == 1:
        return pd.DataFrame({"group": arr})
    if arr.ndim == 2:
        return pd.DataFrame(arr, columns=[f"sensitive_feature_{i}" for i in range(arr.shape[1])])
    raise ValueError(f"sensitive_features must be 1-D or 2-D, got shape {arr.shape}.")


def _factorize_rows(sf: pd.DataFrame) -> tuple[np.ndarray, pd.Index]:
    """Sorted integer codes of the rows of ``sf`` and the group labels (a MultiIndex for several columns)."""
    if sf.shape[1] == 1:
        codes, labels = pd.factorize(sf.iloc[:, 0], sort=True)
        return codes, pd.Index(labels, name=sf.columns[0])
    codes, labels = pd.factorize(pd.MultiIndex.from_frame(sf), sort=True)
    return codes, pd.MultiIndex.from_tuples(list(labels), names=list(sf.columns))


def _weights(sample_weight: Any, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if len(w) != n:
        raise ValueError(f"sample_weight has {len(w)} entries but the labels have {n}: the lengths must match.")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("sample_weight must be finite and non-negative.")
    return w


def _prepare(y_true, y_pred, sensitive_features, sample_weight=None):
    yt = _binary(y_true, "y_true")
    yp = _binary(y_pred, "y_pred")
    if len(yt) != len(yp):
        raise ValueError(f"y_true has {len(yt)} entries and y_pred {len(yp)}: the lengths must match.")
    codes, index = _groups(sensitive_features, len(yt))
    return yt, yp, codes, index, _weights(sample_weight, len(yt))


def _rate(num_mask: np.ndarray, den_mask: np.ndarray, codes: np.ndarray, w: np.ndarray, k: int):
    """Per-group and overall ``sum(w * num & den) / sum(w * den)``; NaN where the denominator is 0."""
    num = np.bincount(codes, weights=w * (num_mask & den_mask), minlength=k)
    den = np.bincount(codes, weights=w * den_mask, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        by_group = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    overall = num.sum() / den.sum() if den.sum() > 0 else np.nan
    return by_group, overall


def _difference(by_group: np.ndarray, overall: float, method: str) -> float:
    if method == "between_groups":
        return float(np.max(by_group) - np.min(by_group))
    if method == "to_overall":
        return float(np.max(np.abs(by_group - overall)))
    raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")


def _ratio(by_group: np.ndarray, overall: float, method: str) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "between_groups":
            hi = np.max(by_group)
            return float(np.min(by_group) / hi) if hi > 0 else float("nan")
        if method == "to_overall":
            if overall == 0:
                return float("nan")
            r = by_group / overall
            r = np.where(r > 1, 1 / r, r)
            return float(np.min(r))
    raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")


def _need_defined(rate: np.ndarray, index: pd.Index, what: str, needs: str) -> None:
    missing = [index[i] for i in np.flatnonzero(np.isnan(rate))]
    if missing:
        raise ValueError(
            f"The {what} is undefined for group(s) {missing}: they have no {needs} examples. Merge small groups "
            "or use demographic parity, which needs no true labels."
        )


# --------------------------------------------------------------------------------------------
# the fairlearn-compatible disparities
# --------------------------------------------------------------------------------------------


def selection_rates(y_pred, sensitive_features, *, sample_weight=None) -> pd.Series:
    """:math:`SR_a = P(\\hat Y = 1 \\mid A = a)` per group (weighted if ``sample_weight``)."""
    yp = _binary(y_pred, "y_pred")
    codes, index = _groups(sensitive_features, len(yp))
    w = _weights(sample_weight, len(yp))
    by_group, _ = _rate(yp == 1, np.ones(len(yp), bool), codes, w, len(index))
    return pd.Series(by_group, index=index, name="selection_rate")


def demographic_parity_difference(y_true, y_pred, *, sensitive_features, method: Method = "between_groups",
                                  sample_weight=None) -> float:
    """:math:`\\max_a SR_a - \\min_a SR_a` (``to_overall``: :math:`\\max_a |SR_a - SR|`).

    ``y_true`` is checked but not used (as in fairlearn). 0 means every group is selected at the
    same rate. Source: Calders & Verwer (2010); fairlearn's ``demographic_parity_difference``.
    """
    yt, yp, codes, index, w = _prepare(y_true, y_pred, sensitive_features, sample_weight)
    by_group, overall = _rate(yp == 1, np.ones(len(yp), bool), codes, w, len(index))
    _need_defined(by_group, index, "selection rate", "(non-zero weight)")
    return _difference(by_group, overall, method)


def demographic_parity_ratio(y_true, y_pred, *, sensitive_features, method: Method = "between_groups",
                             sample_weight=None) -> float:
    """:math:`\\min_a SR_a / \\max_a SR_a` (1 = parity); NaN if nobody is selected at all.

    The "four-fifths rule" of the US EEOC (1978) flags a ratio below 0.8 (Feldman et al. 2015).
    """
    yt, yp, codes, index, w = _prepare(y_true, y_pred, sensitive_features, sample_weight)
    by_group, overall = _rate(yp == 1, np.ones(len(yp), bool), codes, w, len(index))
    _need_defined(by_group, index, "selection rate", "(non-zero weight)")
    return _ratio(by_group, overall, method)


def _tpr_fpr(y_true, y_pred, sensitive_features, sample_weight, need_fpr: bool = True):
    yt, yp, codes, index, w = _prepare(y_true, y_pred, sensitive_features, sample_weight)
    tpr = _rate(yp == 1, yt == 1, codes, w, len(index))
    _need_defined(tpr[0], index, "true positive rate", "positive (y_true = 1)")
    if not need_fpr:
        return tpr, None
    fpr = _rate(yp == 1, yt == 0, codes, w, len(index))
    _need_defined(fpr[0], index, "false positive rate", "negative (y_true = 0)")
    return tpr, fpr


def equal_opportunity_difference(y_true, y_pred, *, sensitive_features, method: Method = "between_groups",
                                 sample_weight=None) -> float:
    """:math:`\\max_a TPR_a - \\min_a TPR_a`: do qualified people get the good outcome equally often?

    Hardt, Price & Srebro (2016), "Equality of opportunity in supervised learning".
    Raises ``ValueError`` if a group has no positive examples (its TPR is undefined).
    """
    (tpr, tpr_all), _ = _tpr_fpr(y_true, y_pred, sensitive_features, sample_weight, need_fpr=False)
    return _difference(tpr, tpr_all, method)


def equal_opportunity_ratio(y_true, y_pred, *, sensitive_features, method: Method = "between_groups",
                            sample_weight=None) -> float:
    """:math:`\\min_a TPR_a / \\max_a TPR_a` (fairlearn's ``equal_opportunity_ratio``)."""
    (tpr, tpr_all), _ = _tpr_fpr(y_true, y_pred, sensitive_features, sample_weight, need_fpr=False)
    return _ratio(tpr, tpr_all, method)


def equalized_odds_difference(y_true, y_pred, *, sensitive_features, method: Method = "between_groups",
                              sample_weight=None, agg: Literal["worst_case", "mean"] = "worst_case") -> float:
    """The larger (``agg="worst_case"``) or the mean (``agg="mean"``) of the TPR gap and the FPR gap.

    Equalized odds (Hardt et al. 2016) asks :math:`P(\\hat Y=1 \\mid Y=y, A=a)` to be the same for
    every group, for both y = 1 (TPR) and y = 0 (FPR). Raises ``ValueError`` if a group has no
    positives or no negatives.
    """
    if agg not in ("worst_case", "mean"):
        raise ValueError(f"agg must be one of 'worst_case' or 'mean', got {agg!r}.")
    (tpr, tpr_all), (fpr, fpr_all) = _tpr_fpr(y_true, y_pred, sensitive_features, sample_weight)
    gaps = [_difference(tpr, tpr_all, method), _difference(fpr, fpr_all, method)]
    return float(max(gaps)) if agg == "worst_case" else float(np.mean(gaps))


def equalized_odds_ratio(y_true, y_pred, *, sensitive_features, method: Method = "between_groups",
                         sample_weight=None, agg: Literal["worst_case", "mean"] = "worst_case") -> float:
    """The smaller (``worst_case``) or the mean of the TPR ratio and the FPR ratio."""
    if agg not in ("worst_case", "mean"):
        raise ValueError(f"agg must be one of 'worst_case' or 'mean', got {agg!r}.")
    (tpr, tpr_all), (fpr, fpr_all) = _tpr_fpr(y_true, y_pred, sensitive_features, sample_weight)
    ratios = [_ratio(tpr, tpr_all, method), _ratio(fpr, fpr_all, method)]
    return float(min(ratios)) if agg == "worst_case" else float(np.mean(ratios))


def accuracy_parity_difference(y_true, y_pred, *, sensitive_features, method: Method = "between_groups",
                               sample_weight=None) -> float:
    """:math:`\\max_a ACC_a - \\min_a ACC_a` with :math:`ACC_a = P(\\hat Y = Y \\mid A = a)` (``to_overall``:
    :math:`\\max_a |ACC_a - ACC|`); the same number as the gap in error rates, fairlearn's ``ErrorRateParity``.

    Berk et al. (2021) call equal accuracy "overall accuracy equality". Unlike DP it uses the labels, unlike EO it
    mixes both kinds of error: a group with a lower base rate can be classified more accurately while being selected
    less. Equals fairlearn's ``MetricFrame(metrics=accuracy_score, ...).difference(method)``.
    """
    yt, yp, codes, index, w = _prepare(y_true, y_pred, sensitive_features, sample_weight)
    by_group, overall = _rate(yt == yp, np.ones(len(yp), bool), codes, w, len(index))
    _need_defined(by_group, index, "accuracy", "(non-zero weight)")
    return _difference(by_group, overall, method)


# --------------------------------------------------------------------------------------------
# how precise is a measured gap?
# --------------------------------------------------------------------------------------------


class GapInterval(NamedTuple):
    """A measured gap and its bootstrap interval (``low``, ``high``) at confidence ``level``."""

    estimate: float
    low: float
    high: float
    level: float


_GAP_METRICS = ("dp", "eop", "eo", "ap")


def gap_interval(y_true, y_pred, *, sensitive_features, metric: Literal["dp", "eop", "eo", "ap"] = "eo",
                 level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> GapInterval:
    """Percentile-bootstrap interval of a between-groups gap: how far can the test set's number be off?

    A gap measured on a test set is an estimate, and a small group makes it a noisy one (a TPR over 500 positives has a
    standard error of about 0.02). Resample the rows with replacement *within each cell the metric conditions on*
    (group for ``"dp"``; group x true label for ``"eop"``, ``"eo"`` and ``"ap"``, so every resample keeps each cell's
    size and every rate stays defined), recompute the gap (:func:`demographic_parity_difference`,
    :func:`equal_opportunity_difference`, :func:`equalized_odds_difference`, :func:`accuracy_parity_difference`,
    ``between_groups``) on each of ``n_boot``
    resamples, and report the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles (the percentile bootstrap; Efron &
    Tibshirani 1993, *An Introduction to the Bootstrap*, ch. 13). In a cell of ``m`` rows of which ``k`` are predicted
    positive, a resample's number of positives is Binomial(m, k/m), so the counts are drawn directly: time and memory
    grow with ``n_boot x cells``, not ``n_boot x rows`` (``tests/test_fairness_metrics.py`` checks the quantiles
    against resampling row indices).

    Read it as a statement about the test set, not the model's future: it ignores the randomness of training (use
    seeds for that). A gap is a maximum (of absolute differences; for EO, of two of them), and a resampled maximum tends
    to sit above the estimate when the differences are near 0 or near each other: the interval is then shifted up and
    is a rough guide. Two models on the same rows: bootstrap their difference (:mod:`helpers.fairness.compare`).
    """
    if metric not in _GAP_METRICS:
        raise ValueError(f"metric must be one of {_GAP_METRICS} (demographic parity, equal opportunity, equalized "
                         f"odds, accuracy parity), got {metric!r}.")
    if not 0 < level < 1:
        raise ValueError(f"level is a confidence level between 0 and 1 (e.g. 0.95), got {level!r}.")
    if int(n_boot) != n_boot or n_boot < 100:
        raise ValueError(f"n_boot must be a whole number of at least 100 resamples, got {n_boot!r}.")
    yt, yp, codes, index, _ = _prepare(y_true, y_pred, sensitive_features)
    estimate = {"dp": demographic_parity_difference, "eop": equal_opportunity_difference,
                "eo": equalized_odds_difference, "ap": accuracy_parity_difference,
                }[metric](yt, yp, sensitive_features=sensitive_features)  # rates defined?
    everyone = np.ones(len(yt), dtype=bool)
    cells = {"dp": [everyone], "eop": [yt == 1], "eo": [yt == 1, yt == 0], "ap": [yt == 1, yt == 0]}[metric]
    rng = np.random.default_rng(seed)
    gaps, correct = np.zeros(int(n_boot)), np.zeros((int(n_boot), len(index)))
    for cell in cells:
        m = np.bincount(codes[cell], minlength=len(index))
        hits = np.bincount(codes[cell], weights=(yp == yt)[cell] if metric == "ap" else yp[cell], minlength=len(index))
        draws = rng.binomial(m, hits / np.maximum(m, 1), size=(int(n_boot), len(index)))  # (n_boot, groups)
        if metric == "ap":  # accuracy of a group = correct decisions in both of its label cells / its size
            correct += draws
            continue
        rates = draws / m
        gaps = np.maximum(gaps, rates.max(1) - rates.min(1))
    if metric == "ap":
        acc = correct / np.bincount(codes, minlength=len(index))
        gaps = acc.max(1) - acc.min(1)
    low, high = np.quantile(gaps, [(1 - level) / 2, (1 + level) / 2])
    return GapInterval(float(estimate), float(low), float(high), float(level))


# --------------------------------------------------------------------------------------------
# disparities of the labels themselves (data audit, notebook 02)
# --------------------------------------------------------------------------------------------


def base_rates(y, sensitive_features, *, sample_weight=None) -> pd.Series:
    """:math:`P(Y = 1 \\mid A = a)` per group (weighted: :math:`\\sum w y / \\sum w`)."""
    s = selection_rates(y, sensitive_features, sample_weight=sample_weight)
    return s.rename("base_rate")


def _pick(rates: pd.Series, privileged, unprivileged) -> tuple[float, float]:
    if (privileged is None) != (unprivileged is None):
        raise ValueError("Give both privileged and unprivileged groups, or neither (then the extremes are used).")
    if privileged is None:
        return float(rates.min()), float(rates.max())
    for g in (privileged, unprivileged):
        if g not in rates.index:
            raise ValueError(f"Unknown group {g!r}; the groups are {list(rates.index)}.")
    return float(rates[unprivileged]), float(rates[privileged])


def disparate_impact_ratio(y, sensitive_features, *, privileged=None, unprivileged=None, sample_weight=None) -> float:
    """:math:`DI = P(Y=1 \\mid A=\\text{unprivileged}) / P(Y=1 \\mid A=\\text{privileged})`.

    Works on labels (how biased is the data?) or on predictions (how biased is the model?).
    Without the two group names, the lowest rate over the highest (= demographic-parity ratio).
    Feldman et al. (2015), "Certifying and removing disparate impact". The four-fifths rule (Uniform Guidelines, 1978)
    flags DI < 0.8 for selection decisions, not for labels. NaN if the privileged rate is 0.
    """
    rates = selection_rates(y, sensitive_features, sample_weight=sample_weight)
    low, high = _pick(rates, privileged, unprivileged)
    return low / high if high > 0 else float("nan")


def statistical_parity_difference(y, sensitive_features, *, privileged=None, unprivileged=None,
                                  sample_weight=None) -> float:
    """:math:`SPD = P(Y=1 \\mid A=\\text{unprivileged}) - P(Y=1 \\mid A=\\text{privileged})`.

    Negative: the unprivileged group gets the favourable label less often (AIF360's sign
    convention; Dwork et al. 2012 call parity of these rates "statistical parity"). Without the
    group names: lowest rate minus highest rate (minus the demographic-parity difference).
    """
    rates = selection_rates(y, sensitive_features, sample_weight=sample_weight)
    low, high = _pick(rates, privileged, unprivileged)
    return low - high


def representation(df: pd.DataFrame, by: str | Iterable[str], *, label: str | None = None,
                   reference: pd.Series | dict | None = None, sample_weight=None) -> pd.DataFrame:
    """How many people of each group are in ``df``: ``count``, ``share`` (and ``base_rate`` with ``label``).

    ``by`` is a column or a list of columns (e.g. ``["sex", "race"]`` for intersections).
    ``reference`` (group -> population share, e.g. from a census) adds ``reference_share`` and
    ``share_ratio = share / reference_share`` (< 1: under-represented). Rows sorted by count.
    """
    cols = _columns_of(df, by, label)
    w = pd.Series(_weights(sample_weight, len(df)), index=df.index)
    grouped = w.groupby([df[c] for c in cols], observed=True)
    out = pd.DataFrame({"count": df.groupby(cols, observed=True).size(), "weight": grouped.sum()})
    out["share"] = out["weight"] / out["weight"].sum()
    if sample_weight is None:
        out = out.drop(columns="weight")
    if label is not None:
        y = pd.Series(_binary(df[label], label), index=df.index)
        out["base_rate"] = (y * w).groupby([df[c] for c in cols], observed=True).sum() / grouped.sum()
    if reference is not None:
        out["reference_share"] = pd.Series(reference, dtype=float).reindex(out.index)
        out["share_ratio"] = out["share"] / out["reference_share"]
    return out.sort_values("count", ascending=False)


def _columns_of(df: pd.DataFrame, by: str | Iterable[str], label: str | None) -> list[str]:
    """The grouping columns ``by`` as a list, after checking ``df`` is a non-empty frame holding them and ``label``."""
    if not isinstance(df, pd.DataFrame) or len(df) == 0:
        raise ValueError("representation() needs a non-empty DataFrame (df).")
    cols = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*cols, label] if c is not None and c not in df.columns]
    if missing:
        raise ValueError(f"No column(s) {missing} in the frame; it has {list(df.columns)}.")
    return cols


#: The per-group table and run summaries (notebook 03 and later) live in :mod:`helpers.fairness.group_tables`;
#: ``metrics.<name>`` finds them there.
_TABLES = ('expected_calibration_error', 'group_metrics', 'fairness_summary', 'summarize_runs', 'mean_sd_table')


def __getattr__(name: str) -> Any:
    if name in _TABLES:
        from . import group_tables

        return getattr(group_tables, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_TABLES])
