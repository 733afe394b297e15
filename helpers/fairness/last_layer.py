"""Fairness in full fine-tuning (:func:`fine_tune_fair`) and on a new last layer of a fine-tuned encoder
(:func:`constrain_last_layer`, :func:`train_last_layer`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .head import FairHeadResult, train_fair_head
from .mixture import RandomizedHeadResult, mix_iterates
from .surrogates import FairnessPenalty, LagrangianConstraint, _check_constraint

# --------------------------------------------------------------------------------------------
# Full fine-tuning through helpers.training.fine_tune
# --------------------------------------------------------------------------------------------


def fine_tune_fair(train_texts: Sequence[str], train_labels: Sequence[int], groups: Sequence[int], *,
                   method: str = "lagrangian", constraint: str = "dp", delta: float = 0.02, lam: float = 1.0,
                   dual_lr: float = 0.2, proxy: bool = True, temperature: float = 1.0,
                   **fine_tune_kwargs: Any) -> tuple[Any, Any]:
    """Full fine-tuning of the encoder with a fairness term, via :func:`helpers.training.fine_tune`'s hook.

    Returns ``(FineTuneResult, hook)``; for ``method="lagrangian"`` the hook's ``history_frame()`` is the
    multiplier over training steps. Uses the GPU (bf16 autocast) when present, like ``fine_tune``.
    """
    from .. import training

    groups = np.asarray(groups).astype(np.int64)
    if len(groups) != len(train_labels):
        raise ValueError(f"groups has {len(groups)} entries but there are {len(train_labels)} labels.")
    k = max(2, int(groups.max()) + 1)
    if method == "penalty":
        hook: Any = FairnessPenalty(lam, constraint, n_groups=k)
    elif method == "lagrangian":
        hook = LagrangianConstraint(delta, constraint=constraint, dual_lr=dual_lr, proxy=proxy, n_groups=k,
                                    temperature=temperature)
    elif method == "unconstrained":
        hook = None
    else:
        raise ValueError(f"Unknown method {method!r}: use 'unconstrained', 'penalty' or 'lagrangian'.")
    result = training.fine_tune(list(train_texts), list(train_labels), extra_loss=hook,
                                groups=groups if hook is not None else None, **fine_tune_kwargs)
    return result, hook


def constrain_last_layer(result: Any, X: np.ndarray, labels: Sequence[int], groups: Sequence[int], *,
                         constraint: str = "dp", delta: float = 0.02, dual_lr: float = 0.1,
                         temperature: float | None = None, seed: int = 0, randomized: bool = False,
                         mixture_delta: float | None = None, best_responses: int = 0,
                         **head_kwargs: Any) -> tuple[Any, FairHeadResult | RandomizedHeadResult]:
    """Constrained last-layer retraining: keep a fine-tuned encoder, retrain its classifier subject to gap <= delta.

    Two stages (Mao et al. 2023, *Last-layer fairness fine-tuning is simple and effective for neural networks*,
    arXiv:2304.03935; the same idea as Kirichenko et al. 2023's last-layer retraining for spurious features):

    1. fine-tune the whole encoder **without** a fairness term (:func:`fine_tune_fair` ``method="unconstrained"``),
       so that it learns the task; ``X = encode(train_texts, result.model.encoder, result.tokenizer)`` are its
       mean-pooled embeddings of the training sentences, shape ``(n, H)``;
    2. train a new linear head on ``X`` with the proxy-Lagrangian of :class:`LagrangianConstraint`
       (:func:`train_fair_head`: ``min CE s.t. gap <= delta``, stratified batches, averaged iterates).

    Why: under the constraint *during* full fine-tuning the encoder can close the gap by lowering the advantaged
    group's scores (levelling down, see :class:`LagrangianConstraint`). With the encoder fixed, the head can only move
    the decision boundary inside the representation that learned the task, and the multiplier sees many full passes
    over the data instead of one noisy pass. The price: the encoder itself is not made fairer, only the decision made
    from it. Returns ``(classifier, head_result)``; ``classifier`` is :func:`helpers.models.encoder_with_head`
    (texts in, ``logits = [0, z]`` out) and ``head_result.predict(X_test)`` gives the same decisions from test
    embeddings. ``head_kwargs`` go to :func:`train_fair_head` (epochs, batch_size, lr, ...).

    ``temperature`` (default: 0.25 for DP, 1 for EO) sharpens the surrogate as in :class:`LagrangianConstraint`.

    ``randomized=True`` returns the best randomised classifier over the run's iterates instead
    (:func:`mix_iterates`, a :class:`RandomizedHeadResult`), required to meet ``mixture_delta`` (default ``delta``)
    on ``X``. ``X`` holds the very sentences the encoder was fine-tuned on, so a mixture's gap on ``X`` can understate
    its test gap: a ``mixture_delta`` below ``delta`` leaves a margin. The classifier's probability is then ``q(x)``,
    the chance that the mixture says 1: sample from it (``head.predict(X, random_state=...)``). ``best_responses=K``
    adds K heads of :func:`best_response_heads` to the candidates.

    When the input carries the group (the sentence says "man" or "woman"), the most accurate classifier under DP is a
    per-group threshold on ``P(y=1 | x)`` (Corbett-Davies et al. 2017, *Algorithmic decision making and the cost of
    fairness*), and under EO a per-group randomised threshold rule derived from it (Hardt, Price & Srebro 2016): this
    head, fairlearn's reductions and post-processing search the same score, so they can at best approach the same
    frontier; moving it takes a better score (representation).
    """
    from ..models import encoder_with_head

    model = getattr(result, "model", result)
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        raise ValueError("constrain_last_layer needs a fine-tuned model with an .encoder (the result of fine_tune_fair "
                         "or helpers.training.fine_tune).")
    X = np.asarray(X)
    hidden = int(encoder.config.hidden_size)
    if X.ndim != 2 or X.shape[1] != hidden:
        raise ValueError(f"X has shape {X.shape}, but the encoder's embeddings have {hidden} columns: pass "
                         "helpers.models.encode(train_texts, result.model.encoder, result.tokenizer).")
    head = train_last_layer(X, labels, groups, constraint=constraint, delta=delta, dual_lr=dual_lr,
                            temperature=temperature, seed=seed, randomized=randomized, mixture_delta=mixture_delta,
                            best_responses=best_responses, **head_kwargs)
    head.model.to(next(encoder.parameters()).device)  # the composed classifier runs where the encoder is
    return encoder_with_head(encoder, head.model), head


def train_last_layer(X: np.ndarray, labels: Sequence[int], groups: Sequence[int], *, constraint: str = "dp",
                     delta: float = 0.02, dual_lr: float = 0.1, temperature: float | None = None, seed: int = 0,
                     randomized: bool = False, mixture_delta: float | None = None, best_responses: int = 0,
                     **head_kwargs: Any) -> FairHeadResult | RandomizedHeadResult:
    """Stage 2 of :func:`constrain_last_layer` on its own: the constrained head on embeddings ``X`` (n, H).

    For embeddings computed earlier (e.g. saved by ``benchmarks/finetune_full.py --embeddings``): the same head,
    the same seed, the same decisions as :func:`constrain_last_layer`, without the encoder. Arguments as there.
    """
    if not randomized and (best_responses or mixture_delta is not None):
        raise ValueError("mixture_delta and best_responses only apply to the randomised mixture: pass randomized=True.")
    if temperature is None:
        temperature = 0.25 if _check_constraint(constraint) == "dp" else 1.0
    head = train_fair_head(X, labels, groups, method="lagrangian", constraint=constraint, delta=delta,
                           dual_lr=dual_lr, temperature=temperature, seed=seed, keep_iterates=randomized,
                           **head_kwargs)
    if randomized:
        return mix_iterates(head, X, labels, groups, constraint=constraint, best_responses=best_responses,
                            delta=delta if mixture_delta is None else mixture_delta)
    return head
