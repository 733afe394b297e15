"""A logistic-regression head on frozen embeddings, trained with an optional fairness hook.

:func:`train_fair_head` fits ``w . (x - mu) / sd + b`` (:class:`LinearHead`) by AdamW on stratified mini-batches,
adding a :class:`helpers.fairness.surrogates.FairnessPenalty` or
:class:`helpers.fairness.surrogates.LagrangianConstraint` term, and returns the Polyak-Ruppert average of the
iterates (a :class:`FairHeadResult`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from .. import validation as check
from ..heads import IterateAverage, StepLog, train_head
from ..training import stratified_batches
from .surrogates import FairnessPenalty, LagrangianConstraint

# --------------------------------------------------------------------------------------------
# A small trainer for a head on frozen embeddings
# --------------------------------------------------------------------------------------------


class LinearHead(torch.nn.Module):
    """Standardise the features (train mean/sd as buffers), then one logit: ``w . (x - mu) / sd + b``."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.linear = torch.nn.Linear(len(mean), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D) -> (B,)
        return self.linear((x - self.mean) / self.std)[:, 0]

    @classmethod
    def for_features(cls, X: np.ndarray) -> "LinearHead":
        """A head standardised by the mean and sd of ``X`` (n, D); a constant column keeps sd 1."""
        std = X.std(0)
        return cls(X.mean(0), np.where(std > 1e-6, std, 1.0))


@dataclass
class FairHeadResult:
    """What :func:`train_fair_head` returns: the model, per-step losses and the hook (with its history)."""

    model: torch.nn.Module
    history: list[dict[str, float]]
    hook: Any = None
    seconds: float = 0.0
    iterates: list[dict[str, torch.Tensor]] = field(default_factory=list)

    @property
    def multiplier_history(self) -> pd.DataFrame:
        if isinstance(self.hook, LagrangianConstraint):
            return self.hook.history_frame()
        return pd.DataFrame(columns=["step", "lam", "gap_estimate", "surrogate"])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return predict_fair_head(self.model, X)

    def predict(self, X: np.ndarray, random_state: int | None = None) -> np.ndarray:
        """Decisions ``p > 1/2``; ``random_state`` is ignored (one head is deterministic), so that a
        :class:`RandomizedHeadResult` can be used in the same call."""
        return (self.predict_proba(X) > 0.5).astype(np.int64)


def train_fair_head(
    X: np.ndarray,
    y: Sequence[int],
    groups: Sequence[int] | None = None,
    *,
    method: str = "lagrangian",
    constraint: str = "dp",
    lam: float = 1.0,
    delta: float = 0.02,
    dual_lr: float = 0.2,
    proxy: bool = True,
    temperature: float = 1.0,
    epochs: int = 60,
    batch_size: int = 512,
    lr: float = 0.01,
    weight_decay: float = 0.05,
    sample_weight: Sequence[float] | None = None,
    extra_loss: Callable | None = None,
    average_from: float = 0.5,
    seed: int = 0,
    device: str | None = None,
    progress: bool = False,
    keep_iterates: bool = False,
) -> FairHeadResult:
    """Train a logistic-regression head on fixed features with an optional fairness term.

    Loss per step: ``sum_i w_i CE_i / sum_i w_i + extra(logits, labels, groups, step)`` with ``extra`` chosen by
    ``method``: ``"unconstrained"`` (none), ``"penalty"`` (:class:`FairnessPenalty` with ``lam``),
    ``"lagrangian"`` (:class:`LagrangianConstraint` with ``delta``, ``dual_lr``, ``proxy``, ``temperature``), or
    ``extra_loss`` (any hook with the ``helpers.training`` signature). AdamW with ``weight_decay`` on ``w`` only
    (the bias is not decayed, :func:`helpers.regularization.split_decay_parameters`), stratified mini-batches
    (:func:`stratified_batches`), seeded (``seed`` drives the initialisation and the batch order).
    The returned weights are the average of the iterates after ``average_from`` of the steps (Polyak-Ruppert
    averaging): descent-ascent oscillates around the constrained optimum, and the last iterate alone is at
    the mercy of the last few batches (Cotter et al. 2019 return a mixture of iterates for the same reason).
    ``keep_iterates=True`` also stores the head averaged over each epoch in ``result.iterates`` (the candidates of
    :func:`mix_iterates`). Shapes: ``X`` (n, d), ``y`` and ``groups`` (n,) integer codes.
    """
    X, y, groups = check.labelled_features(X, y, groups)
    if method not in ("unconstrained", "penalty", "lagrangian"):
        raise ValueError(f"Unknown method {method!r}: use 'unconstrained', 'penalty' or 'lagrangian'.")
    if groups is None:
        if method != "unconstrained" or extra_loss is not None:
            raise ValueError(f"method={method!r} needs groups (the sensitive attribute codes).")
        groups = np.zeros(len(y), dtype=np.int64)
    n_groups = int(groups.max()) + 1
    if extra_loss is None and method == "penalty":
        extra_loss = FairnessPenalty(lam, constraint, n_groups=n_groups)
    elif extra_loss is None and method == "lagrangian":
        extra_loss = LagrangianConstraint(delta, constraint=constraint, dual_lr=dual_lr, proxy=proxy,
                                          n_groups=max(2, n_groups), temperature=temperature)
    check.positive_int(epochs, "epochs")
    check.positive_int(batch_size, "batch_size")
    w_all = check.sample_weights(sample_weight, len(y))
    w_all = np.ones(len(y), np.float32) if w_all is None else w_all.astype(np.float32)
    gen = torch.Generator().manual_seed(seed)
    model = LinearHead.for_features(X)
    with torch.no_grad():
        model.linear.weight.normal_(0.0, 0.01, generator=gen)
        model.linear.bias.zero_()
    n_steps = epochs * len(stratified_batches(y, groups, batch_size, np.random.default_rng(0)))
    average = IterateAverage(int(min(max(average_from, 0.0), 1.0) * n_steps), per_epoch=keep_iterates)
    steps = StepLog(first_epoch=0)
    t0 = time.perf_counter()
    model, _ = train_head(X, y, model=model, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                          sample_weight=w_all, extra_loss=extra_loss, groups=groups, stratify=True, seed=seed,
                          callbacks=[average, steps], device=device, progress=progress)
    return FairHeadResult(model, steps.rows, extra_loss, time.perf_counter() - t0, average.iterates)


def predict_fair_head(model: torch.nn.Module, X: np.ndarray, *, batch_size: int = 8192) -> np.ndarray:
    """P(y=1) for every row of ``X`` (n, d) -> (n,) (:func:`helpers.heads.predict_head`)."""
    from ..heads import predict_head

    return predict_head(model, X, batch_size=batch_size)
