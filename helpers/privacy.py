"""Privacy measurements: re-identification risk from quasi-identifiers and membership inference.

* ``k_anonymity`` / ``quasi_identifier_uniqueness`` — Sweeney (2002), "k-anonymity: a model for protecting
  privacy": a record is k-anonymous over quasi-identifiers Q if at least k records share its values on Q.
* ``population_class_sizes`` — for a sample with survey weights: how many people in the population share a
  record's values (sample uniqueness is not population uniqueness).
* ``membership_inference_auc`` and friends — the loss-threshold attack of Yeom et al. (2018), "Privacy risk in
  machine learning: analyzing the connection to overfitting".
* ``dp_advantage_bound`` — the most any membership attack can gain against an (epsilon, delta)-DP training
  algorithm (Kairouz, Oh & Viswanath 2015; Humphries et al. 2023).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd


def _check_columns(df: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"Expected a pandas DataFrame, got {type(df).__name__}.")
    if isinstance(columns, str):
        columns = [columns]
    columns = list(columns)
    if not columns:
        raise ValueError("Give at least one quasi-identifier column, e.g. ['age', 'sex', 'native_country'].")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"Unknown column(s) {missing}; the frame has {list(df.columns)}.")
    if len(df) == 0:
        raise ValueError("The frame is empty; k-anonymity needs at least one record.")
    return columns


def k_anonymity(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Equivalence-class size of every record over the quasi-identifiers ``columns``.

    k_i = |{j : x_j[Q] = x_i[Q]}| (Sweeney 2002). The data set is k-anonymous for k = min_i k_i.
    Missing values (NaN) count as a value of their own, so two records both missing ``occupation`` match.
    Category columns group by the combinations that occur (``observed=True``): without it pandas < 3 builds
    every combination of categories, billions for Adult's quasi-identifiers.
    Returns an int Series aligned with ``df.index`` (shape (n,)), named ``"k"``.
    """
    columns = _check_columns(df, columns)
    sizes = df.groupby(columns, dropna=False, sort=False, observed=True)[columns[0]].transform("size")
    return sizes.astype(int).rename("k")


def quasi_identifier_uniqueness(df: pd.DataFrame, columns: Sequence[str]) -> float:
    """Fraction of records that are unique on ``columns`` (k_i = 1): (1/n) * |{i : k_i = 1}|.

    This is *sample* uniqueness: unique among the rows of ``df``. Sweeney (2000) estimated that 87% of the US
    *population* is unique on (ZIP code, sex, date of birth), a population uniqueness. When ``df`` is a sample of
    a population, a record unique in the population is unique in the sample too, so this share is an upper
    bound on the share of its records that are unique in the population (often far above it); see
    :func:`population_class_sizes` for the population. 0 means nobody is singled out by these columns within the table, 1 means everyone is.
    """
    return float((k_anonymity(df, columns) == 1).mean())


def population_class_sizes(df: pd.DataFrame, columns: Sequence[str], *, weight: str = "fnlwgt",
                           scale: float = 1.0) -> pd.Series:
    """Estimated number of people in the *population* who share each record's values on ``columns``.

    N_i = scale * sum_{j : x_j[Q] = x_i[Q]} w_j, where the survey weight w_j is the number of people record j stands
    for: the Horvitz-Thompson estimate of the size of record i's equivalence class in the population the sample
    was drawn from (Horvitz & Thompson 1952). A record unique in the sample (k_i = 1) has N_i = scale * w_i: it was
    drawn as one of about that many people, so being unique in the *file* does not make it unique in the
    *population*. For a class seen once the estimate rests on one record and is crude; population uniqueness
    is properly estimated with models (Skinner & Holmes 1998; Rocher, Hendrickx & de Montjoye 2019). It is also
    only as good as the weights: a file that keeps part of the weighted sample (a filter, a train/test split)
    understates every N_i. ``scale`` converts stored weights to people (the CPS stores its weights, and so Adult's
    ``fnlwgt``, with two implied decimals: ``scale=0.01``).
    Returns a float Series aligned with ``df.index`` (shape (n,)), named ``"population_size"``.
    """
    columns = _check_columns(df, columns)
    if weight not in df.columns:
        raise ValueError(f"No weight column {weight!r}; the frame has {list(df.columns)}.")
    w = pd.to_numeric(df[weight], errors="coerce")
    if w.isna().any() or (w < 0).any() or not np.isfinite(w).all():
        raise ValueError(f"The weights {weight!r} must be finite, non-negative numbers.")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}.")
    keys = df[columns]
    sums = w.groupby([keys[c] for c in columns], dropna=False, sort=False, observed=True).transform("sum")
    return (scale * sums.astype(float)).rename("population_size")


# ----------------------------------------------------------------------------------------------
# Membership inference: the loss-threshold attack (Yeom et al. 2018)
# ----------------------------------------------------------------------------------------------

def _probs_labels(probs, labels, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """P(y=1) (from shape (n,) or (n, 2)) and 0/1 labels through :mod:`helpers.validation`, errors naming ``names``."""
    from . import validation as check

    p = np.asarray(probs, dtype=float) if not isinstance(probs, np.ndarray) else probs
    if p.ndim == 2:
        if p.shape[1] != 2:
            raise ValueError(f"{names[0]}: probabilities must be P(y=1) of shape (n,) or (n, 2), got {p.shape}.")
        p = p[:, 1]
    y = check.binary_labels(labels, names[1])
    check.same_length(**{names[0]: np.ravel(p), names[1]: y})
    return check.probabilities(p, names[0], n=len(y)), y


def example_losses(probs, labels, *, eps: float = 1e-7) -> np.ndarray:
    """Per-example cross-entropy ell_i = -log p(y_i | x_i), shape (n,). ``probs``: P(y=1), (n,) or (n, 2)."""
    p, y = _probs_labels(probs, labels, ("probs", "labels"))
    p_true = np.where(y == 1, p, 1.0 - p)
    return -np.log(np.clip(p_true, eps, 1.0))


def loss_threshold_attack(member_probs, member_labels, nonmember_probs, nonmember_labels) -> dict[str, float]:
    """Loss-threshold membership inference (Yeom et al. 2018, "Privacy risk in machine learning", Sec. 3.2).

    The attacker guesses "member" when the model's loss on (x, y) is low: score s_i = -ell_i. Reports
    * ``auc``: ROC AUC of s over members (1) vs non-members (0) (sklearn ``roc_auc_score``; 0.5 = no leak);
    * ``advantage``: Yeom's membership advantage TPR - FPR for the threshold tau = mean training loss;
    * ``best_advantage``: max over thresholds of TPR - FPR (the attacker's best case, in [0, 1]);
    * ``member_loss``, ``nonmember_loss``, ``loss_gap`` = nonmember_loss - member_loss (the generalisation
      gap in loss: Yeom et al. show the advantage is driven by it), ``accuracy_gap`` = train - test accuracy.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    pm, ym = _probs_labels(member_probs, member_labels, ("member_probs", "member_labels"))
    pn, yn = _probs_labels(nonmember_probs, nonmember_labels, ("nonmember_probs", "nonmember_labels"))
    lm, ln = example_losses(pm, ym), example_losses(pn, yn)
    is_member = np.r_[np.ones(len(lm)), np.zeros(len(ln))]
    score = -np.r_[lm, ln]
    fpr, tpr, _ = roc_curve(is_member, score)
    tau = lm.mean()
    return {
        "auc": float(roc_auc_score(is_member, score)),
        "advantage": float(np.mean(lm <= tau) - np.mean(ln <= tau)),
        "best_advantage": float(max(0.0, np.max(tpr - fpr))),
        "member_loss": float(lm.mean()),
        "nonmember_loss": float(ln.mean()),
        "loss_gap": float(ln.mean() - lm.mean()),
        "accuracy_gap": float(np.mean((pm >= 0.5) == ym) - np.mean((pn >= 0.5) == yn)),
    }


def auc_null_se(n_members: int, n_nonmembers: int) -> float:
    r"""Standard error of the attack's AUC when nothing leaks: :math:`\sqrt{(n_1 + n_0 + 1) / (12\, n_1 n_0)}`.

    The AUC is the Mann-Whitney U statistic over :math:`n_1 n_0` (Hanley & McNeil 1982, *Radiology*); with
    no leak (members' and non-members' scores exchangeable, no ties) U has variance
    :math:`n_1 n_0 (n_1 + n_0 + 1) / 12` (Mann & Whitney 1947). An AUC more than 2 of these above 0.5 is a
    measured leak; two AUCs on these sizes differ by noise alone up to about 2 sqrt(2) of them.
    """
    for name, n in (("n_members", n_members), ("n_nonmembers", n_nonmembers)):
        if int(n) != n or n < 1:
            raise ValueError(f"{name} must be a positive whole number of records, got {n!r}.")
    return math.sqrt((n_members + n_nonmembers + 1) / (12.0 * n_members * n_nonmembers))


def membership_inference_auc(member_probs, member_labels, nonmember_probs, nonmember_labels) -> float:
    """ROC AUC of the loss-threshold attack (see :func:`loss_threshold_attack`); 0.5 means no membership leak."""
    return loss_threshold_attack(member_probs, member_labels, nonmember_probs, nonmember_labels)["auc"]


# ----------------------------------------------------------------------------------------------
# What differential privacy promises against membership inference
# ----------------------------------------------------------------------------------------------

def dp_advantage_bound(epsilon, delta: float = 0.0):
    """Largest membership advantage TPR - FPR of *any* attack on an (epsilon, delta)-DP mechanism.

    Deciding "member or not" from the output of an (epsilon, delta)-DP mechanism is a hypothesis test between
    two neighbouring data sets, so every attack's (FPR, TPR) lies in the region (Wasserman & Zhou 2010;
    Kairouz, Oh & Viswanath 2015, "The composition theorem for differential privacy", Sec. 2)
    ``TPR <= e^eps FPR + delta`` and ``1 - FPR <= e^eps (1 - TPR) + delta``. TPR - FPR is largest where both
    bind: FPR = (1 - delta) / (e^eps + 1), TPR = (e^eps + delta) / (e^eps + 1), so

        Adv <= (e^eps - 1 + 2 delta) / (e^eps + 1)       (= tanh(eps / 2) for delta = 0),

    capped at 1 (Humphries et al. 2023, "Investigating membership inference attacks under data dependencies",
    IEEE CSF). The bound is tight: randomised response with parameter eps attains it. Yeom et al.'s looser
    bound e^eps - 1 exceeds 1, and so says nothing, for eps > ln 2; this one approaches 1 (vacuous: no
    protection promised) for eps >~ 5 (0.9993 at eps = 8). Scalars or arrays (broadcast); epsilon >= 0 (inf: no DP, bound 1), 0 <= delta <= 1.
    """
    eps = np.asarray(epsilon, dtype=np.float64)
    d = np.asarray(delta, dtype=np.float64)
    if np.isnan(eps).any() or (eps < 0).any():
        raise ValueError(f"epsilon must be >= 0 (0 = perfect privacy), got {epsilon!r}.")
    if np.isnan(d).any() or (d < 0).any() or (d > 1).any():
        raise ValueError(f"delta is a probability in [0, 1] (typically < 1/n), got {delta!r}.")
    with np.errstate(invalid="ignore", over="ignore"):  # eps = inf (no DP): inf / inf -> the bound 1
        bound = np.where(np.isinf(eps), 1.0, np.minimum(1.0, (np.expm1(eps) + 2 * d) / (np.exp(eps) + 1)))
    return float(bound) if bound.ndim == 0 else bound


def auc_ranking(aucs: dict[str, float], members: dict[str, int], top: str) -> str:
    """Which models does ``top`` leak measurably more than? One sentence from the run's own AUCs.

    ``aucs``: model -> attack AUC; ``members``: model -> number of members (as many non-members). Two AUCs differ
    by more than their noise when the difference exceeds :math:`2\\sqrt{SE_a^2 + SE_b^2}` with the no-leak
    standard errors of :func:`auc_null_se`. The sentence names the models ``top`` is ahead of, and those it is
    not (with each difference and its noise).
    """
    if top not in aucs:
        raise ValueError(f"{top!r} is not one of the models {sorted(aucs)}.")
    se = {k: auc_null_se(members[k], members[k]) for k in aucs}
    pairs = {k: (aucs[top] - aucs[k], 2 * math.hypot(se[top], se[k])) for k in aucs if k != top}
    ahead = [k for k, (d, noise) in pairs.items() if d > noise]
    close = [k for k in pairs if k not in ahead]

    def _list(names: list[str]) -> str:
        return ", ".join(f"{k} {aucs[k]:.3f} (difference {pairs[k][0]:+.3f}, noise ± {pairs[k][1]:.3f})"
                         for k in names)

    if not close:
        return f"It also leaks more than every other model by more than the noise of two AUCs: {_list(ahead)}."
    if not ahead:
        return (f"Whether it leaks *more* than the others this run cannot tell: its AUC {aucs[top]:.3f} is within the "
                f"noise of two AUCs of every other model's: {_list(close)}.")
    return (f"It leaks measurably more than {_list(ahead)}; but not measurably more than {_list(close)}: those "
            "differences are within the noise of two AUCs.")


def best_advantage_no_leak(n_members: int, n_nonmembers: int, *, quantile: float | None = None) -> float:
    r"""What ``best_advantage`` (the best threshold, chosen after the fact) scores when nothing leaks.

    With exchangeable member and non-member losses, max over thresholds of TPR - FPR is the one-sided two-sample
    Kolmogorov-Smirnov statistic :math:`D^+`; as both sizes grow, :math:`\sqrt{n_1 n_0 / (n_1 + n_0)}\, D^+` tends to
    the maximum of a Brownian bridge, with :math:`P(\max > x) = e^{-2x^2}` (Smirnov 1939). Hence the no-leak mean
    :math:`\sqrt{\pi/8}\,\sqrt{(n_1 + n_0)/(n_1 n_0)}` and, for ``quantile`` q, the level
    :math:`\sqrt{-\ln(1 - q)/2}\,\sqrt{(n_1 + n_0)/(n_1 n_0)}`. Asymptotic: a few per cent off for a few hundred
    records. A measured best advantage near this level is selection bias, not a leak.
    """
    for name, n in (("n_members", n_members), ("n_nonmembers", n_nonmembers)):
        if int(n) != n or n < 1:
            raise ValueError(f"{name} must be a positive whole number of records, got {n!r}.")
    scale = math.sqrt((n_members + n_nonmembers) / (n_members * n_nonmembers))
    if quantile is None:
        return math.sqrt(math.pi / 8) * scale
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}.")
    return math.sqrt(-math.log(1 - quantile) / 2) * scale


def describe_best_advantage(best: float, fixed: float, n_members: int, n_nonmembers: int) -> str:
    """One sentence on a hindsight-best membership advantage ``best`` (``best_advantage``) beside the fixed-threshold
    ``advantage`` ``fixed``: the no-leak mean and 95th percentile of :func:`best_advantage_no_leak`, and whether
    ``best`` exceeds that percentile (a leak beyond selection bias) or not."""
    null, q95 = (best_advantage_no_leak(n_members, n_nonmembers, quantile=q) for q in (None, 0.95))
    verdict = ("above that 95th percentile: a leak beyond the selection of the threshold" if best > q95 else
               "not above that 95th percentile: by this measure the run does not show a leak beyond the selection of "
               "the threshold")
    return (f"P_privacy takes the best threshold chosen after the fact on the same {n_members} + {n_nonmembers} "
            f"records, which is biased upwards: with no leak at all it would average about {null:.3f} (95th "
            f"percentile {q95:.3f}). The measured {best:.3f} is {verdict}; the fixed threshold (the mean training "
            f"loss) gives {fixed:.3f}.")
