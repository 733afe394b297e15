"""Fairness-constrained training (notebook 04): one namespace, ``fc.xxx``, over five focused modules.

Three ways to make a classifier fairer *while it trains*:

* **Penalty** (Kamishima et al. 2012, "prejudice remover"; Zafar et al. 2017): minimise
  ``CE(theta) + lambda * F(theta)`` with ``F`` a differentiable surrogate of the fairness gap
  (:func:`dp_gap`, :func:`eo_gap`, :func:`ap_gap`). ``lambda`` is a knob with no units; the gap it buys is unknown in advance.
* **Constrained** (Cotter, Jiang & Sridharan 2019, "Two-player games for efficient non-convex constrained
  optimization", ALT; Cotter et al. 2019 JMLR): minimise ``CE(theta)`` subject to ``gap(theta) <= delta``
  through the Lagrangian ``L(theta, lambda) = CE(theta) + lambda * (F(theta) - delta)``: gradient *descent* on
  ``theta`` and projected gradient *ascent* on the multiplier,
  ``lambda <- max(0, lambda + eta * (g_hat - delta))``. In the *proxy*-Lagrangian the theta-player uses the
  differentiable surrogate ``F`` while the lambda-player uses the real, non-differentiable gap ``g_hat`` of the
  hard decisions (``p > 0.5``), here a running (EMA) per-group estimate so a noisy batch cannot jerk ``lambda``.
  Its guarantee is for a *distribution* over the iterates: :func:`mix_iterates` finds the best one by a linear
  program (:func:`best_mixture`), a randomised classifier that can meet equalized odds where one linear head cannot.
* **Baselines on the same features**: unconstrained, reweighing (Kamiran & Calders 2012, from
  :mod:`helpers.fairness.preprocessing`), fairlearn's ``ExponentiatedGradient`` (Agarwal et al. 2018) and
  ``ThresholdOptimizer`` (Hardt, Price & Srebro 2016).

Everything works on a frozen-encoder head (:func:`train_fair_head`) and, through the
``extra_loss`` hook of :func:`helpers.training.fine_tune`, in full fine-tuning (:func:`fine_tune_fair`).
Groups are integer codes ``0..K-1`` (:func:`encode_groups`); all gaps are "max over groups minus min over
groups", the same definition as fairlearn's ``demographic_parity_difference`` / ``equalized_odds_difference``.

The code lives in :mod:`~helpers.fairness.surrogates` (gap surrogates and the penalty / Lagrangian hooks),
:mod:`~helpers.fairness.head` (the head trainer), :mod:`~helpers.fairness.mixture` (the LP mixture and best
responses), :mod:`~helpers.fairness.harness` (scoring, ``FairData``, ``fit_predict``, ``sweep``) and
:mod:`~helpers.fairness.last_layer` (full fine-tuning and last-layer retraining); this module re-exports their
public names.
"""

from __future__ import annotations

from ..training import stratified_batches
from .harness import (
    METHODS,
    FairData,
    decision_report,
    describe_rate_change,
    evaluate,
    fit_predict,
    per_group_table,
    reweighing_weights,
    run_method,
    summarize,
    sweep,
)
from .head import FairHeadResult, LinearHead, predict_fair_head, train_fair_head
from .last_layer import constrain_last_layer, fine_tune_fair, train_last_layer
from .mixture import (
    MixtureHead,
    RandomizedHeadResult,
    best_mixture,
    best_response_heads,
    lagrangian_costs,
    mix_iterates,
)
from .surrogates import (
    CONSTRAINTS,
    FairnessPenalty,
    LagrangianConstraint,
    RunningRates,
    ap_gap,
    dp_gap,
    encode_groups,
    eo_gap,
    gap,
    group_means,
    penalty_loss,
    probs_from_logits,
)

__all__ = [
    "CONSTRAINTS", "METHODS", "FairData", "FairHeadResult", "FairnessPenalty", "LagrangianConstraint", "LinearHead",
    "MixtureHead", "RandomizedHeadResult", "RunningRates", "ap_gap", "best_mixture", "best_response_heads",
    "constrain_last_layer", "decision_report", "describe_rate_change", "dp_gap", "encode_groups", "eo_gap",
    "evaluate", "fine_tune_fair", "fit_predict", "gap", "group_means", "lagrangian_costs", "mix_iterates",
    "penalty_loss", "per_group_table", "predict_fair_head", "probs_from_logits", "reweighing_weights",
    "run_method", "stratified_batches", "summarize", "sweep", "train_fair_head", "train_last_layer",
]
