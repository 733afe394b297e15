"""Differentiable fairness-gap surrogates and the ``extra_loss`` hooks that add them to a training loss.

* **Penalty** (Kamishima et al. 2012, "prejudice remover"; Zafar et al. 2017): minimise
  ``CE(theta) + lambda * F(theta)`` with ``F`` a differentiable surrogate of the fairness gap
  (:func:`dp_gap`, :func:`eo_gap`), added by :class:`FairnessPenalty`.
* **Constrained** (Cotter, Jiang & Sridharan 2019, "Two-player games for efficient non-convex constrained
  optimization", ALT; Cotter et al. 2019 JMLR): minimise ``CE(theta)`` subject to ``gap(theta) <= delta``
  through the Lagrangian ``L(theta, lambda) = CE(theta) + lambda * (F(theta) - delta)``: gradient *descent* on
  ``theta`` and projected gradient *ascent* on the multiplier, :class:`LagrangianConstraint`.

Groups are integer codes ``0..K-1`` (:func:`encode_groups`); all gaps are "max over groups minus min over
groups", the same definition as fairlearn's ``demographic_parity_difference`` / ``equalized_odds_difference``.
The hooks have the signature ``hook(logits, labels, groups, step) -> scalar tensor`` of
:func:`helpers.training.fine_tune` and :func:`helpers.fairness.head.train_fair_head`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .. import validation as check

CONSTRAINTS: tuple[str, ...] = ("dp", "eo", "ap")

# --------------------------------------------------------------------------------------------
# Input checks and group codes
# --------------------------------------------------------------------------------------------


def encode_groups(values: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    """Sensitive attribute values -> integer codes ``0..K-1`` (sorted names) and the names.

    >>> encode_groups(["Male", "Female", "Male"])
    (array([1, 0, 1]), ['Female', 'Male'])
    """
    arr = np.asarray(pd.Series(check.group_values(values, "values")).astype(str))
    names = sorted(set(arr.tolist()))
    lookup = {n: i for i, n in enumerate(names)}
    return np.array([lookup[v] for v in arr], dtype=np.int64), names


def _check_constraint(constraint: str) -> str:
    """``constraint`` if it is ``'dp'`` (demographic parity) or ``'eo'`` (equalized odds), else a ValueError."""
    return check.one_of(constraint, CONSTRAINTS, "constraint")


def _check_batch(probs: torch.Tensor, groups: torch.Tensor, labels: torch.Tensor | None = None) -> None:
    if probs.ndim != 1:
        raise ValueError(f"probs must be 1-D (one probability per example), got shape {tuple(probs.shape)}.")
    if groups.shape != probs.shape:
        raise ValueError(f"groups has shape {tuple(groups.shape)} but probs has {tuple(probs.shape)}: one group per example.")
    if labels is not None and labels.shape != probs.shape:
        raise ValueError(f"labels has shape {tuple(labels.shape)} but probs has {tuple(probs.shape)}.")
    if probs.numel() == 0:
        raise ValueError("The batch is empty.")
    if torch.isnan(probs).any():
        raise ValueError("probs contains NaN: the model diverged (lower the learning rate or lambda).")
    if groups.dtype.is_floating_point:
        raise ValueError("groups must hold integer codes 0..K-1 (see encode_groups), not floats.")
    if (groups < 0).any():
        raise ValueError("groups must hold integer codes 0..K-1 (see encode_groups); found a negative code.")


def probs_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """P(y=1) from logits: shape (B,) or (B, 1) -> sigmoid; (B, 2) -> softmax[:, 1]. Returns (B,)."""
    if logits.ndim == 2 and logits.shape[1] == 2:
        return torch.softmax(logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits, -1)[:, 1]
    if logits.ndim == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if logits.ndim != 1:
        raise ValueError(f"logits must have shape (B,), (B, 1) or (B, 2), got {tuple(logits.shape)}.")
    return torch.sigmoid(logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits)


# --------------------------------------------------------------------------------------------
# Differentiable gap surrogates
# --------------------------------------------------------------------------------------------


def group_means(values: torch.Tensor, groups: torch.Tensor, n_groups: int | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group means of ``values`` (B,) over the rows where ``mask`` (B,) is true.

    Returns ``(means (K,), present (K,) bool)``. A group with no rows gets mean 0 and ``present=False``
    (never 0/0 = NaN), so callers can ignore it. Differentiable in ``values``.
    """
    k = int(n_groups if n_groups is not None else int(groups.max()) + 1)
    onehot = F.one_hot(groups.long(), k).to(values.dtype)  # (B, K)
    if mask is not None:
        onehot = onehot * mask.to(values.dtype).unsqueeze(1)
    counts = onehot.sum(0)  # (K,)
    sums = onehot.t() @ values  # (K,)
    return sums / counts.clamp(min=1.0), counts > 0


def _spread(means: torch.Tensor, present: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if int(present.sum()) < 2:
        return like.sum() * 0.0  # zero that keeps the graph (gradient 0, never NaN)
    m = means[present]
    return m.max() - m.min()


def dp_gap(probs: torch.Tensor, groups: torch.Tensor, *, n_groups: int | None = None) -> torch.Tensor:
    """Differentiable demographic-parity gap: ``max_a E[p | A=a] - min_a E[p | A=a]``.

    The soft version (mean predicted probability instead of the selection rate ``P(p > 1/2 | A=a)``) of the
    demographic-parity difference (Calders & Verwer 2010; Zemel et al. 2013). With two groups it is
    ``|mean p(female) - mean p(male)|``. Shapes: ``probs`` (B,) in [0, 1], ``groups`` (B,) integer codes.
    Returns a scalar tensor; 0 when fewer than two groups are in the batch.
    """
    _check_batch(probs, groups)
    means, present = group_means(probs, groups, n_groups)
    return _spread(means, present, probs)


def eo_gap(probs: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, *,
           n_groups: int | None = None) -> torch.Tensor:
    """Differentiable equalized-odds gap: ``max_{y in {0,1}} [max_a E[p | A=a, Y=y] - min_a E[p | A=a, Y=y]]``.

    The soft version of Hardt, Price & Srebro (2016)'s equalized odds, i.e. the larger of the soft TPR gap
    (``y=1``) and the soft FPR gap (``y=0``); fairlearn's ``equalized_odds_difference`` with hard decisions.
    A group with no example of some label in the batch is left out of that label's gap (no NaN).
    Shapes: ``probs`` (B,), ``labels`` (B,) in {0, 1}, ``groups`` (B,). Returns a scalar tensor.
    """
    _check_batch(probs, groups, labels)
    gaps = []
    for y in (0, 1):
        means, present = group_means(probs, groups, n_groups, mask=labels == y)
        gaps.append(_spread(means, present, probs))
    return torch.maximum(gaps[0], gaps[1])


def ap_gap(probs: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, *,
           n_groups: int | None = None) -> torch.Tensor:
    """Differentiable accuracy-parity gap: ``max_a E[s | A=a] - min_a E[s | A=a]`` with ``s = y p + (1 - y)(1 - p)``.

    ``s`` is the probability that a decision drawn as ``Bernoulli(p)`` is correct, so ``E[s | A=a]`` is the soft
    accuracy of group ``a``; on hard probabilities ``p`` in {0, 1} it is the accuracy and the gap is
    :func:`helpers.fairness.metrics.accuracy_parity_difference` (fairlearn's accuracy ``MetricFrame`` difference, the
    moment of ``ErrorRateParity``). Shapes: ``probs`` (B,), ``labels`` (B,) in {0, 1}, ``groups`` (B,). Returns a
    scalar tensor; 0 when fewer than two groups are in the batch.
    """
    _check_batch(probs, groups, labels)
    y = labels.to(probs.dtype)
    means, present = group_means(y * probs + (1 - y) * (1 - probs), groups, n_groups)
    return _spread(means, present, probs)


def gap(constraint: str, probs: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, *,
        n_groups: int | None = None) -> torch.Tensor:
    """:func:`dp_gap` (``constraint='dp'``), :func:`eo_gap` (``'eo'``) or :func:`ap_gap` (``'ap'``)."""
    kind = _check_constraint(constraint)
    if kind == "dp":
        return dp_gap(probs, groups, n_groups=n_groups)
    if kind == "ap":
        return ap_gap(probs, labels, groups, n_groups=n_groups)
    return eo_gap(probs, labels, groups, n_groups=n_groups)


def penalty_loss(logits: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, lam: float, *,
                 constraint: str = "dp", sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """``mean CE(logits, y) + lambda * F(p)``, the penalty objective (``F`` = :func:`dp_gap` or :func:`eo_gap`).

    ``logits`` (B,) for a single-logit head or (B, 2) for a sequence classifier; ``labels``, ``groups`` (B,).
    """
    if lam < 0:
        raise ValueError(f"lambda must be >= 0, got {lam}.")
    labels = labels.long()
    if logits.ndim == 2 and logits.shape[1] == 2:
        ce = F.cross_entropy(logits, labels, reduction="none")
    else:
        flat = logits[:, 0] if logits.ndim == 2 else logits
        ce = F.binary_cross_entropy_with_logits(flat, labels.to(flat.dtype), reduction="none")
    ce = (ce * sample_weight).sum() / sample_weight.sum() if sample_weight is not None else ce.mean()
    return ce + lam * gap(constraint, probs_from_logits(logits), labels, groups)


# --------------------------------------------------------------------------------------------
# extra_loss hooks: a fixed penalty, and a Lagrange multiplier updated by dual ascent
# --------------------------------------------------------------------------------------------


@dataclass
class FairnessPenalty:
    """``extra_loss`` hook adding ``lambda * F(p)`` to the cross-entropy (the penalty method).

    Call signature (the one of :func:`helpers.training.train_head` / ``fine_tune``):
    ``hook(logits (B,) or (B, 2), labels (B,), groups (B,), step) -> scalar tensor``.
    """

    lam: float = 1.0
    constraint: str = "dp"
    n_groups: int | None = None

    def __post_init__(self) -> None:
        _check_constraint(self.constraint)
        if self.lam < 0:
            raise ValueError(f"lambda must be >= 0, got {self.lam}.")

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor | None,
                 step: int = 0) -> torch.Tensor:
        if groups is None:
            raise ValueError("The fairness penalty needs the sensitive groups: pass groups=... to the trainer.")
        return self.lam * gap(self.constraint, probs_from_logits(logits), labels, groups, n_groups=self.n_groups)


class RunningRates:
    """Exponential moving averages of per-(label, group) sums and counts of a rate.

    ``rate[y, a] = S[y, a] / N[y, a]`` with ``S <- beta S + (1 - beta) sum_batch`` and the same for ``N``,
    so large and small batches are weighted by their size, and a group missing from one batch keeps
    its old estimate. Row ``y = 2`` holds all labels together (for demographic parity); row 3 holds how often the
    decision is right, ``y v + (1 - y)(1 - v)`` over all labels (for accuracy parity).
    """

    def __init__(self, n_groups: int, beta: float = 0.9) -> None:
        if not 0 <= beta < 1:
            raise ValueError(f"beta must be in [0, 1), got {beta}.")
        self.beta = beta
        self.sums = np.zeros((4, n_groups))
        self.counts = np.zeros((4, n_groups))

    def update(self, values: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> None:
        k = self.sums.shape[1]
        s = np.zeros_like(self.sums)
        c = np.zeros_like(self.counts)
        right = labels * values + (1 - labels) * (1 - values)
        everyone = np.ones_like(labels, dtype=bool)
        for row, mask, v in ((0, labels == 0, values), (1, labels == 1, values), (2, everyone, values), (3, everyone, right)):
            s[row] = np.bincount(groups[mask], weights=v[mask], minlength=k)[:k]
            c[row] = np.bincount(groups[mask], minlength=k)[:k]
        seen = c > 0
        first = seen & (self.counts == 0)
        self.sums = np.where(first, s, np.where(seen, self.beta * self.sums + (1 - self.beta) * s, self.sums))
        self.counts = np.where(first, c, np.where(seen, self.beta * self.counts + (1 - self.beta) * c, self.counts))

    def gap(self, constraint: str) -> float:
        rows = {"dp": (2,), "eo": (0, 1), "ap": (3,)}[_check_constraint(constraint)]
        out = 0.0
        for r in rows:
            ok = self.counts[r] > 0
            if ok.sum() >= 2:
                rate = self.sums[r, ok] / self.counts[r, ok]
                out = max(out, float(rate.max() - rate.min()))
        return out


class LagrangianConstraint:
    """``extra_loss`` hook for ``min CE  s.t.  gap <= delta`` by (proxy-)Lagrangian gradient descent-ascent.

    Each call (one training step) returns ``lambda_t * F(p)`` for the theta-player (``F`` = the differentiable
    surrogate on the batch; the constant ``-lambda delta`` does not change gradients) and then takes one
    projected dual-ascent step on the multiplier (Cotter, Jiang & Sridharan 2019)::

        lambda_{t+1} = clip(lambda_t + eta * (g_hat_t - delta), 0, lambda_max)

    ``g_hat_t`` is a running (EMA, :class:`RunningRates`) per-group estimate of the gap, from hard decisions
    ``p > 1/2`` when ``proxy=True`` (the proxy-Lagrangian: the constraint the multiplier enforces is the real one)
    or from probabilities when ``proxy=False``. ``lambda`` rises while the constraint is violated and falls
    back towards 0 once it holds. ``history`` records ``step, lam, gap_estimate, surrogate`` at every step.

    ``temperature`` ``tau`` sharpens the surrogate: ``F`` is computed on ``sigmoid(z / tau)`` (``z`` = the logit
    margin) instead of ``p = sigmoid(z)``; the decisions ``z > 0`` are unchanged. With ``tau = 1`` a confident
    negative (``p = 0.3``) still counts 0.3 towards its group's rate, so the model can shrink ``F`` by pushing
    the *majority group's negatives* further down, which lowers its loss too but leaves the real gap, and
    ``lambda`` keeps rising until positives are given up for everyone ("levelling down"). A small ``tau`` makes
    ``F`` close to the real selection rates: only sentences near the decision boundary carry its gradient. It is
    no cure on its own: a model that can move its scores freely (full fine-tuning) can still park the advantaged
    group's scores just below the threshold, so that almost nobody is predicted positive
    (``benchmarks/finetune_full.py --temperature``); whatever ``tau``, look at the selection rate of each
    group (:func:`describe_rate_change`), not only at the gap. :func:`constrain_last_layer` applies this hook to a
    new last layer of an unconstrained fine-tuned encoder instead (``finetune_full.py --methods dp-last``).
    """

    def __init__(self, delta: float = 0.02, *, constraint: str = "dp", dual_lr: float = 0.2, beta: float = 0.9,
                 proxy: bool = True, lam_init: float = 0.0, lam_max: float = 50.0, n_groups: int = 2,
                 temperature: float = 1.0) -> None:
        _check_constraint(constraint)
        if delta < 0:
            raise ValueError(f"delta (the allowed gap) must be >= 0, got {delta}.")
        if dual_lr <= 0:
            raise ValueError(f"dual_lr must be > 0, got {dual_lr}.")
        if n_groups < 2:
            raise ValueError(f"A fairness constraint needs at least 2 groups, got n_groups={n_groups}.")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        self.temperature = float(temperature)
        self.delta, self.constraint, self.dual_lr, self.proxy = float(delta), constraint, float(dual_lr), proxy
        self.lam, self.lam_max, self.n_groups = float(lam_init), float(lam_max), int(n_groups)
        self.running = RunningRates(n_groups, beta)
        self.history: list[dict[str, float]] = []

    def dual_step(self, gap_estimate: float) -> float:
        """One projected ascent step ``lambda <- clip(lambda + eta (g_hat - delta), 0, lambda_max)``; returns lambda."""
        if not math.isfinite(gap_estimate):
            raise ValueError(f"The gap estimate is {gap_estimate}: cannot update the multiplier.")
        self.lam = float(min(self.lam_max, max(0.0, self.lam + self.dual_lr * (gap_estimate - self.delta))))
        return self.lam

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor | None,
                 step: int = 0) -> torch.Tensor:
        if groups is None:
            raise ValueError("The fairness constraint needs the sensitive groups: pass groups=... to the trainer.")
        probs = probs_from_logits(logits)
        soft = probs if self.temperature == 1.0 else probs_from_logits(logits / self.temperature)
        surrogate = gap(self.constraint, soft, labels, groups, n_groups=self.n_groups)
        term = self.lam * surrogate  # the theta-player's term, with lambda_t held fixed
        p = probs.detach().float().cpu().numpy()
        values = (p > 0.5).astype(np.float64) if self.proxy else p.astype(np.float64)
        self.running.update(values, labels.detach().cpu().numpy().astype(np.int64), groups.detach().cpu().numpy())
        g_hat = self.running.gap(self.constraint)
        self.history.append({"step": int(step), "lam": self.lam, "gap_estimate": g_hat,
                             "surrogate": float(surrogate.detach())})
        self.dual_step(g_hat)
        return term

    def history_frame(self) -> pd.DataFrame:
        """The multiplier history as a DataFrame (one row per step)."""
        return pd.DataFrame(self.history, columns=["step", "lam", "gap_estimate", "surrogate"])
