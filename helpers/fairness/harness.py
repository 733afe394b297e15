"""Scoring hard decisions, and the experiment harness that compares fairness methods on the same features.

:func:`evaluate` / :func:`decision_report` / :func:`per_group_table` score decisions; :func:`describe_rate_change`
says how a gap closed. :class:`FairData` bundles a train and a test split; :func:`fit_predict` fits one method
(the constrained head of :mod:`helpers.fairness.head`, reweighing (Kamiran & Calders 2012), fairlearn's
``ExponentiatedGradient`` (Agarwal et al. 2018) or ``ThresholdOptimizer`` (Hardt, Price & Srebro 2016));
:func:`run_method` scores it, :func:`sweep` runs every method for every seed and :func:`summarize` averages over seeds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from .. import validation as check
from .head import train_fair_head
from .surrogates import _check_constraint

METHODS: tuple[str, ...] = ("unconstrained", "penalty", "lagrangian", "reweighing", "expgrad", "threshold")

# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def evaluate(y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[Any]) -> dict[str, float]:
    """Accuracy, demographic-parity, equalized-odds and accuracy-parity differences of hard predictions (n,) over
    ``groups`` (n,): ``{"accuracy", "dp", "eo", "ap"}``.

    The gaps are :func:`helpers.fairness.metrics.demographic_parity_difference`,
    :func:`~helpers.fairness.metrics.equalized_odds_difference` (fairlearn's definitions) and
    :func:`~helpers.fairness.metrics.accuracy_parity_difference` (fairlearn's accuracy ``MetricFrame`` difference). Raises ``ValueError`` for
    different lengths, non-0/1 labels, a single group, or a group without positives or negatives (its TPR or FPR
    is undefined).
    """
    from .metrics import accuracy_parity_difference, demographic_parity_difference, equalized_odds_difference

    check.same_length(y_true=y_true, y_pred=y_pred, groups=groups)
    y_true, y_pred = check.binary_labels(y_true, "y_true"), check.binary_labels(y_pred, "y_pred")
    groups = check.group_values(groups, "groups", min_groups=2)
    return {
        "accuracy": float((y_true == y_pred).mean()),
        "dp": float(demographic_parity_difference(y_true, y_pred, sensitive_features=groups)),
        "eo": float(equalized_odds_difference(y_true, y_pred, sensitive_features=groups)),
        "ap": accuracy_parity_difference(y_true, y_pred, sensitive_features=groups),
    }


def decision_report(y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[Any]) -> dict[str, float]:
    """:func:`evaluate` plus the share predicted positive and each group's selection rate (``selection_<group>``).

    The rates say *how* a gap closed: the same DP difference of 0.02 can mean both groups selected at 0.18 or
    both at 0.01 (levelling down, :func:`describe_rate_change`).
    """
    from .metrics import selection_rates

    out = evaluate(y_true, y_pred, groups)
    y_pred = np.asarray(y_pred)
    out["share_predicted_positive"] = float(y_pred.mean())
    out.update({f"selection_{k}": float(v) for k, v in selection_rates(y_pred, np.asarray(groups)).items()})
    return out


def per_group_table(y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[Any],
                    names: Sequence[str] | None = None) -> pd.DataFrame:
    """Who pays: :func:`helpers.fairness.metrics.group_metrics` (count, selection rate, TPR, FPR, accuracy per
    group) with the integer group codes replaced by ``names``."""
    from .metrics import group_metrics

    groups = np.asarray(groups)
    if names is not None:
        groups = np.asarray(names, dtype=object)[groups]
    return group_metrics(np.asarray(y_true), np.asarray(y_pred), pd.Series(groups, name="group"))


def describe_rate_change(before: dict[str, float], after: dict[str, float]) -> str:
    """One sentence on *how* a gap between group selection rates closed (or did not).

    With ``hi`` / ``lo`` the groups with the highest / lowest rate before, the gap ``r_hi - r_lo`` can close
    by raising ``r_lo`` (levelling up) or by lowering ``r_hi`` (levelling down): the share of the closed gap
    due to each is ``max(0, r_lo' - r_lo)`` and ``max(0, r_hi - r_hi')`` over their sum. A fairness method
    that closes the gap by lowering everyone's rate harms the advantaged group without helping the other
    (Mittelstadt, Wachter & Russell 2023, "The unfairness of fair machine learning: levelling down and strict
    egalitarianism by default"). ``before`` / ``after``: group name -> selection rate in [0, 1].
    """
    if set(before) != set(after) or len(before) < 2:
        raise ValueError("before and after need the same group names (at least two groups).")
    for name, r in [*before.items(), *after.items()]:
        if not (0.0 <= float(r) <= 1.0):
            raise ValueError(f"Selection rates must lie in [0, 1]; got {r} for {name!r}.")
    hi, lo = max(before, key=before.get), min(before, key=before.get)
    gap_before = before[hi] - before[lo]
    gap_after = max(after.values()) - min(after.values())
    if gap_after >= gap_before - 0.005:
        return f"The gap between selection rates did not close ({gap_before:.2f} before, {gap_after:.2f} after)."
    down, up = max(0.0, before[hi] - after[hi]), max(0.0, after[lo] - before[lo])
    total = down + up
    text = (f"The selection-rate gap closed from {gap_before:.2f} to {gap_after:.2f}: "
            f"{down / total:.0%} of the movement lowered the {hi} rate, {up / total:.0%} raised the {lo} rate")
    if after[lo] < before[lo]:
        return text + (f"; the {lo} rate fell too, so no group gained: this is *levelling down*, a harm to name "
                       "(Mittelstadt et al. 2023), not a success.")
    if down > up:
        return text + " - mostly *levelling down* (Mittelstadt et al. 2023): ask who was denied to close the gap."
    return text + "."


# --------------------------------------------------------------------------------------------
# Data bundle, baselines, and the sweep
# --------------------------------------------------------------------------------------------


@dataclass
class FairData:
    """Features, labels and sensitive-group codes of a train and a test split (``groups``: ints 0..K-1)."""

    X_train: np.ndarray
    y_train: np.ndarray
    g_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    g_test: np.ndarray
    group_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.X_train, self.y_train, self.g_train = check.labelled_features(
            self.X_train, self.y_train, self.g_train, names=("X_train", "y_train", "g_train"), min_groups=2)
        self.X_test = check.features(self.X_test, "X_test", n_features=self.X_train.shape[1])
        self.y_test = check.binary_labels(self.y_test, "y_test", n=len(self.X_test))
        self.g_test = check.group_codes(self.g_test, "g_test", n=len(self.X_test))


def reweighing_weights(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Kamiran & Calders (2012) weights ``w(a, y) = P(A=a) P(Y=y) / P(A=a, Y=y)``, shape (n,).

    Delegates to :func:`helpers.fairness.preprocessing.reweighing` (notebook 02's implementation).
    """
    from .preprocessing import reweighing

    return np.asarray(reweighing(np.asarray(groups), np.asarray(y)), dtype=np.float64)


def _sk_logreg(seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


def fit_predict(data: FairData, method: str, *, constraint: str = "dp", param: float | None = None, seed: int = 0,
                expgrad_iter: int = 50, **head_kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Fit one method on ``data.*_train``; return its hard decisions on ``data.X_test``, shape (n_test,), and extras.

    ``param`` is ``lambda`` for ``"penalty"``, ``delta`` for ``"lagrangian"`` and the ``difference_bound``
    (epsilon) for ``"expgrad"`` (``DemographicParity``, ``EqualizedOdds`` or, for ``"ap"``, ``ErrorRateParity``); unused
    otherwise. ``"threshold"`` is ThresholdOptimizer with the constraint (DP or EO only).
    ``head_kwargs`` go to :func:`train_fair_head` (epochs, batch_size, ...). The fairlearn baselines fit a
    standardised sklearn ``LogisticRegression`` on the same features. The extras hold ``final_lam`` for the
    Lagrangian. :func:`run_method` scores these decisions.
    """
    from ..config import seeded

    _check_constraint(constraint)
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose from {', '.join(METHODS)}.")
    fit = {"expgrad": _fit_expgrad, "threshold": _fit_threshold}.get(method, _fit_head)
    with seeded(seed):  # any global draw is reproducible, and the caller's generators are left alone
        return fit(data, method, constraint, param, seed, expgrad_iter, head_kwargs)


def _fit_head(data: FairData, method, constraint, param, seed, expgrad_iter, head_kwargs) -> tuple[np.ndarray, dict]:
    """:func:`fit_predict` for the heads: unconstrained, penalty (``lam``), Lagrangian (``delta``), reweighing."""
    kw = dict(head_kwargs)
    if method == "penalty":
        kw["lam"] = 1.0 if param is None else float(param)
    if method == "lagrangian":
        kw["delta"] = 0.02 if param is None else float(param)
    if method == "reweighing":
        kw["sample_weight"] = reweighing_weights(data.y_train, data.g_train)
    res = train_fair_head(data.X_train, data.y_train, data.g_train, constraint=constraint, seed=seed,
                          method="unconstrained" if method == "reweighing" else method, **kw)
    return res.predict(data.X_test), ({"final_lam": res.hook.lam} if method == "lagrangian" else {})


def _fit_expgrad(data: FairData, method, constraint, param, seed, expgrad_iter, head_kwargs) -> tuple[np.ndarray, dict]:
    """:func:`fit_predict` for fairlearn's ExponentiatedGradient with bound ``param`` (default 0.01)."""
    from fairlearn.reductions import DemographicParity, EqualizedOdds, ErrorRateParity, ExponentiatedGradient
    from threadpoolctl import threadpool_limits

    eps = 0.01 if param is None else float(param)
    moment = {"dp": DemographicParity, "eo": EqualizedOdds, "ap": ErrorRateParity}[constraint](difference_bound=eps)
    eg = ExponentiatedGradient(_sk_logreg(seed), constraints=moment, eps=eps, max_iter=expgrad_iter,
                               sample_weight_name="logisticregression__sample_weight")
    with threadpool_limits(torch.get_num_threads()):  # BLAS threads beyond the cores only thrash
        eg.fit(data.X_train, data.y_train, sensitive_features=data.g_train)
    return np.asarray(eg.predict(data.X_test, random_state=seed)), {}


def _fit_threshold(data: FairData, method, constraint, param, seed, expgrad_iter, head_kwargs) -> tuple[np.ndarray, dict]:
    """:func:`fit_predict` for fairlearn's ThresholdOptimizer (DP or EO)."""
    from fairlearn.postprocessing import ThresholdOptimizer
    from threadpoolctl import threadpool_limits

    if constraint == "ap":
        raise ValueError("ThresholdOptimizer has no accuracy-parity constraint (it equalises selection, TPR or "
                         "FPR rates); use 'expgrad' (ErrorRateParity) or the constrained head.")
    to = ThresholdOptimizer(estimator=_sk_logreg(seed), predict_method="predict_proba", prefit=False,
                            constraints="demographic_parity" if constraint == "dp" else "equalized_odds")
    # float64 features: fairlearn 0.15 + pandas 3 fail to write float64 thresholds into a float32 Series.
    with threadpool_limits(torch.get_num_threads()):
        to.fit(data.X_train.astype(np.float64), data.y_train, sensitive_features=data.g_train)
    return np.asarray(to.predict(data.X_test.astype(np.float64), sensitive_features=data.g_test,
                                 random_state=seed)), {}


def run_method(data: FairData, method: str, *, constraint: str = "dp", param: float | None = None, seed: int = 0,
               expgrad_iter: int = 50, keep_predictions: bool = False, **head_kwargs: Any) -> dict[str, Any]:
    """Fit one method on ``data.*_train`` and score it on ``data.*_test``; returns one tidy row (a dict).

    Arguments as in :func:`fit_predict`. Row: ``method, constraint, param, seed``, :func:`evaluate`'s accuracy and
    gaps on the test split, ``seconds`` (fit and predict) and ``final_lam`` for the Lagrangian; with
    ``keep_predictions`` also ``y_pred``, the 0/1 test decisions (n_test,), for a paired comparison.
    """
    t0 = time.perf_counter()
    y_pred, extra = fit_predict(data, method, constraint=constraint, param=param, seed=seed,
                                expgrad_iter=expgrad_iter, **head_kwargs)
    return {"method": method, "constraint": constraint, "param": np.nan if param is None else float(param),
            "seed": seed, **evaluate(data.y_test, y_pred, data.g_test), "seconds": time.perf_counter() - t0, **extra,
            **({"y_pred": np.asarray(y_pred)} if keep_predictions else {})}


def sweep(data: FairData, *, constraint: str = "dp", lambdas: Iterable[float] = (), deltas: Iterable[float] = (),
          seeds: Iterable[int] = (0,), baselines: Iterable[str] | None = None,
          expgrad_eps: float = 0.01, expgrad_iter: int = 50, progress: bool = True, **head_kwargs: Any) -> pd.DataFrame:
    """Run every method for every seed; return a tidy DataFrame.

    Columns: ``method, constraint, param, seed, accuracy, dp, eo, ap, seconds`` (+ ``final_lam`` for the
    Lagrangian). ``param`` is lambda for the penalty rows, delta for the Lagrangian rows and epsilon for
    ExponentiatedGradient. One row per (method, param, seed). ``baselines`` default: unconstrained, reweighing,
    expgrad and (for DP and EO, which it supports) threshold.
    """
    from ..progress import tqdm

    seeds = list(seeds)
    if not seeds:
        raise ValueError("sweep() needs at least one seed (seeds).")
    jobs = _sweep_jobs(constraint, baselines, expgrad_eps, lambdas, deltas)
    rows = []
    total = len(jobs) * len(seeds)
    with tqdm(total=total, desc=f"sweep ({constraint})", disable=not progress, leave=False) as bar:
        for seed in seeds:
            for method, param in jobs:
                kw = {k: v for k, v in head_kwargs.items()} if method not in ("expgrad", "threshold") else {}
                rows.append(run_method(data, method, constraint=constraint, param=param, seed=seed,
                                       expgrad_iter=expgrad_iter, **kw))
                bar.update()
    return pd.DataFrame(rows)


def _sweep_jobs(constraint: str, baselines, expgrad_eps: float, lambdas, deltas) -> list[tuple[str, float | None]]:
    """``(method, param)`` for every run of :func:`sweep`: the baselines, then each lambda and each delta."""
    if baselines is None:
        baselines = ("unconstrained", "reweighing", "expgrad") + (("threshold",) if constraint != "ap" else ())
    jobs: list[tuple[str, float | None]] = [(b, expgrad_eps if b == "expgrad" else None) for b in baselines]
    return jobs + [("penalty", float(v)) for v in lambdas] + [("lagrangian", float(v)) for v in deltas]


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds per (method, constraint, param): columns ``accuracy_mean, accuracy_sd, dp_mean...``."""
    keys = ["method", "constraint", "param"]
    g = df.groupby(keys, dropna=False, sort=False, observed=True)[[m for m in ("accuracy", "dp", "eo", "ap") if m in df]]
    out = g.agg(["mean", "std"])
    out.columns = [f"{a}_{'sd' if b == 'std' else b}" for a, b in out.columns]
    out["seeds"] = g.size().values
    return out.reset_index()
