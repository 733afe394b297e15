"""One trainer for a small head on fixed features (sentence embeddings), with loss terms and callbacks.

:func:`train_head` trains any module ``(B, d) -> (B,)`` logits - by default :class:`Head` (logistic regression,
or a one-hidden-layer MLP) - by mini-batch descent on the (optionally sample-weighted) mean binary cross-entropy
plus any number of *loss terms*:

.. math:: L = \\frac{\\sum_{i \\in B} w_i\\,\\ell(f(x_i), y_i)}{\\sum_{i \\in B} w_i} + \\sum_k
          \\text{term}_k(\\text{logits}, \\text{labels}, \\text{groups}, \\text{step})

A term has the signature of :mod:`helpers.training`'s ``extra_loss`` hook: an L2 penalty
(``l2=``, :func:`helpers.regularization.l2_penalty` on the weight matrices), a fairness penalty
(:class:`helpers.fairness.surrogates.FairnessPenalty`) or a Lagrangian constraint
(:class:`helpers.fairness.surrogates.LagrangianConstraint`). The optimiser never decays biases or LayerNorm
parameters (:func:`helpers.regularization.split_decay_parameters`). *Callbacks* see every step and every epoch:
:class:`Evaluate` (loss and accuracy on a data set), :class:`IterateAverage` (Polyak-Ruppert averaging),
:class:`AfterStep`, :class:`EpochLog` (an ``on_epoch`` function and TensorBoard) and
:class:`helpers.regularization.EarlyStopping`. :func:`predict_head` is the one prediction function for heads.

The notebooks reach these through thin wrappers: :func:`helpers.regularization.train_mlp` (notebook 05) and
:func:`helpers.fairness.head.train_fair_head` (notebook 04). On the CPU a fixed ``seed`` gives bit-identical
results.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from . import validation as check

ExtraLoss = Callable[..., Any]


def _device(device: Any):
    from .config import get_device

    return device if hasattr(device, "type") else get_device(device)


def _weighted_mean(losses, weights):
    """``sum_i w_i l_i / sum_i w_i`` (the plain mean without weights)."""
    if weights is None:
        return losses.mean()
    return (losses * weights).sum() / weights.sum().clamp(min=1e-12)


def _board(log_to: str | None):
    if log_to is None:
        return None
    from .monitor import TensorBoardLog

    return TensorBoardLog(log_to)


def _end_epoch(row: dict, model, on_epoch, board) -> None:
    """Merge the ``on_epoch`` callback's numbers into the epoch's row and send the row to TensorBoard."""
    if on_epoch is not None:
        row.update(on_epoch(row["epoch"], model) or {})
    if board is not None:
        board.log(row["epoch"], row)


class Head:
    """Namespace for building heads (kept tiny so a notebook can print the model)."""

    @staticmethod
    def build(n_features: int, hidden: int = 0):
        """``Linear(d, 1)`` (logistic regression) or ``Linear(d, h) -> ReLU -> Linear(h, 1)``.

        Input ``(B, d)`` -> output logit ``(B,)``.
        """
        import torch

        if hidden and hidden > 0:
            net = torch.nn.Sequential(torch.nn.Linear(n_features, hidden), torch.nn.ReLU(),
                                      torch.nn.Linear(hidden, 1), torch.nn.Flatten(0))  # fmt: skip
        else:
            net = torch.nn.Sequential(torch.nn.Linear(n_features, 1), torch.nn.Flatten(0))
        return net


# --------------------------------------------------------------------------------------------
# callbacks: on_step(model, record) after every optimiser step, on_epoch_end(model, row) -> stop?, on_train_end
# --------------------------------------------------------------------------------------------


class Callback:
    """Base class (every hook optional). ``record`` is ``{"epoch", "step", "ce", "loss"}`` for one step; ``row`` is
    the epoch's history row, which ``on_epoch_end`` may extend; returning ``True`` from it stops training."""

    def on_step(self, model, record: dict) -> None:
        pass

    def on_epoch_end(self, model, row: dict) -> bool:
        return False

    def on_train_end(self, model) -> None:
        pass


class Evaluate(Callback):
    """After each epoch, eval-mode loss and accuracy on ``(X, y)``: ``row[f"{prefix}_loss"]`` (mean binary
    cross-entropy) and ``row[f"{prefix}_{acc_name}"]`` (share with ``(logit > 0) == y``). ``X`` (n, d) and
    ``y`` (n,) float tensors on the model's device."""

    def __init__(self, X, y, prefix: str = "val", acc_name: str = "accuracy") -> None:
        self.X, self.y, self.prefix, self.acc_name = X, y, prefix, acc_name

    def on_epoch_end(self, model, row: dict) -> bool:
        import torch

        model.eval()
        with torch.no_grad():
            logits = model(self.X).float()
            row[f"{self.prefix}_loss"] = float(torch.nn.functional.binary_cross_entropy_with_logits(logits, self.y))
            row[f"{self.prefix}_{self.acc_name}"] = float(((logits > 0).float() == self.y).float().mean())
        return False


class EpochLog(Callback):
    """``on_epoch(epoch, model) -> dict`` merged into each epoch's row, and the row sent to TensorBoard run
    ``log_to`` (:class:`helpers.monitor.TensorBoardLog`) when given."""

    def __init__(self, on_epoch: Callable[[int, Any], dict] | None = None, log_to: str | None = None) -> None:
        self.on_epoch, self.board = on_epoch, _board(log_to)

    def on_epoch_end(self, model, row: dict) -> bool:
        _end_epoch(row, model, self.on_epoch, self.board)
        return False

    def on_train_end(self, model) -> None:
        if self.board is not None:
            self.board.close()


class AfterStep(Callback):
    """``fn(model)`` under ``torch.no_grad()`` after every optimiser step (e.g. a projection or clamp)."""

    def __init__(self, fn: Callable[[Any], None]) -> None:
        self.fn = fn

    def on_step(self, model, record: dict) -> None:
        import torch

        with torch.no_grad():
            self.fn(model)


def running_mean(avg: dict | None, model, n: int) -> dict:
    """Fold the model's weights into a running mean of ``n`` iterates: ``avg += (theta - avg) / n``."""
    import torch

    with torch.no_grad():
        if avg is None:
            return {k: v.detach().clone() for k, v in model.state_dict().items()}
        for k, v in model.state_dict().items():
            avg[k] += (v.detach() - avg[k]) / n
    return avg


class IterateAverage(Callback):
    """Polyak-Ruppert averaging: the mean of the iterates from step ``first_step`` on (0-based), loaded into the
    model at the end (Polyak & Juditsky 1992; Ruppert 1988). With ``per_epoch=True`` it also keeps the mean of
    each epoch's iterates (CPU state dicts) in ``self.iterates``."""

    def __init__(self, first_step: int = 0, *, per_epoch: bool = False) -> None:
        self.first_step, self.per_epoch = int(first_step), per_epoch
        self.avg, self.n = None, 0
        self.epoch_avg, self.n_epoch = None, 0
        self.iterates: list[dict] = []

    def on_step(self, model, record: dict) -> None:
        if record["step"] >= self.first_step:
            self.n += 1
            self.avg = running_mean(self.avg, model, self.n)
        if self.per_epoch:
            self.n_epoch += 1
            self.epoch_avg = running_mean(self.epoch_avg, model, self.n_epoch)

    def on_epoch_end(self, model, row: dict) -> bool:
        if self.per_epoch and self.epoch_avg is not None:
            self.iterates.append({k: v.cpu() for k, v in self.epoch_avg.items()})
            self.epoch_avg, self.n_epoch = None, 0
        return False

    def on_train_end(self, model) -> None:
        if self.avg is not None:
            model.load_state_dict(self.avg)


class StepLog(Callback):
    """Every step's ``{"epoch", "step", "ce", "loss"}`` in ``self.rows`` (``epoch`` counted from ``first_epoch``)."""

    def __init__(self, first_epoch: int = 1) -> None:
        self.rows: list[dict] = []
        self.shift = 1 - first_epoch

    def on_step(self, model, record: dict) -> None:
        self.rows.append({**record, "epoch": record["epoch"] - self.shift})


# --------------------------------------------------------------------------------------------
# the trainer
# --------------------------------------------------------------------------------------------


def _terms(extra_loss) -> list:
    if extra_loss is None:
        return []
    return list(extra_loss) if isinstance(extra_loss, (list, tuple)) else [extra_loss]


def _batches(n: int, batch_size: int, gen, rng, y, g, stratify: bool):
    """One epoch's index batches: stratified by (group, label) cell, else a torch permutation cut in order."""
    import torch

    if stratify:
        from .training import stratified_batches

        return [torch.as_tensor(b) for b in stratified_batches(y, g, batch_size, rng)]
    perm = torch.randperm(n, generator=gen)
    return [perm[s : s + batch_size] for s in range(0, n, batch_size)]


def _check_head_args(X_train, y_train, sample_weight, groups, epochs, batch_size, stratify, l2):
    X = check.features(X_train, "X_train")
    n = len(X)
    y = check.binary_labels(y_train, "y_train", n=n, both_classes=True)
    w = check.sample_weights(sample_weight, n)
    g = check.group_codes(groups, n=n) if groups is not None else None
    check.positive_int(epochs, "epochs")
    check.positive_int(batch_size, "batch_size")
    if stratify and g is None:
        raise ValueError("stratify=True needs the groups: pass groups=... (one group code per example).")
    if not (math.isfinite(l2) and l2 >= 0):
        raise ValueError(f"l2 must be a finite number >= 0, got {l2}.")
    return X, y, w, g


def train_head(
    X_train,
    y_train,
    *,
    X_val=None,
    y_val=None,
    hidden: int = 0,
    model=None,
    optimizer: Any = "adamw",
    epochs: int = 30,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    l2: float = 0.0,
    batch_size: int = 256,
    seed: int = 0,
    sample_weight=None,
    extra_loss: ExtraLoss | list | None = None,
    groups=None,
    stratify: bool = False,
    callbacks: list | tuple = (),
    device=None,
    progress: bool = False,
    on_epoch: Callable[[int, Any], dict] | None = None,
    log_to: str | None = None,
):
    """Train a head on fixed features: mini-batch descent on weighted cross-entropy plus loss terms.

    Args:
        X_train: features, shape ``(n, d)`` (e.g. MiniLM embeddings, d = 384).
        y_train: 0/1 labels, shape ``(n,)``.
        X_val, y_val: optional validation data: ``val_loss`` and ``val_accuracy`` after every epoch.
        hidden: 0 for logistic regression, else the width of the hidden layer (:class:`Head`).
        model: train this module ``(B, d) -> (B,)`` instead of a new :class:`Head`; the caller then owns the
            random state (the model's initialisation and any dropout draw from the global generators).
        optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"`` with ``lr`` and ``weight_decay`` on the weight matrices
            only (:func:`helpers.regularization.make_optimizer`), or a ready ``torch.optim.Optimizer``.
        l2: the L2 penalty ``l2 / 2 * ||W||^2`` on the weight matrices (biases and norms excluded).
        sample_weight: optional non-negative weights ``(n,)`` (e.g. from reweighing); the loss is
            the weighted mean of the per-example binary cross-entropy.
        extra_loss: a term or a list of terms ``term(logits (B,), labels (B,) long, groups (B,) | None, step)
            -> scalar``, added to the loss at every step.
        groups: int array ``(n,)`` of sensitive-group codes, sliced per batch for the terms.
        stratify: batches hold every (group, label) cell in its population share
            (:func:`helpers.training.stratified_batches`, NumPy generator seeded by ``seed``); otherwise a torch
            permutation (generator seeded by ``seed``) cut into consecutive batches.
        callbacks: :class:`Callback` objects (``on_step``, ``on_epoch_end`` -> stop?, ``on_train_end``), run in
            order after the built-in validation and ``on_epoch``/``log_to`` logging.
        on_epoch: ``on_epoch(epoch, model) -> dict`` after each epoch, merged into that epoch's row
            (e.g. :func:`helpers.monitor.group_metrics_callback` for per-group metrics).
        log_to: a run name: each epoch's row also goes to TensorBoard (:class:`helpers.monitor.TensorBoardLog`).

    Returns:
        ``(model, history)``: the model (in eval mode, on ``device``) and one dict per epoch with ``epoch``
        (from 1), ``train_loss`` (the mean training loss over the epoch's steps, terms included), with
        validation data ``val_loss`` and ``val_accuracy``, plus what ``on_epoch`` and the callbacks add.
    """
    import contextlib

    from .config import seeded

    X, y, w, g = _check_head_args(X_train, y_train, sample_weight, groups, epochs, batch_size, stratify, l2)
    dev = _device(device)
    own = model is None
    with seeded(seed) if own else contextlib.nullcontext():  # the initial weights; the caller's state is left alone
        if own:
            model = Head.build(X.shape[1], hidden)
        elif check.model_width(model) not in (None, X.shape[1]):
            raise ValueError(f"X_train has {X.shape[1]} features but the model expects {check.model_width(model)}.")
        model = model.to(dev)
        built = [EpochLog(on_epoch, log_to)] if (on_epoch is not None or log_to is not None) else []
        if X_val is not None:
            import torch

            Xv = check.features(X_val, "X_val", n_features=X.shape[1])
            yv = check.binary_labels(y_val, "y_val", n=len(Xv))
            built.insert(0, Evaluate(torch.as_tensor(Xv, device=dev), torch.as_tensor(yv, dtype=torch.float32, device=dev)))
        return _fit(model, X, y, w, g, optimizer=optimizer, lr=lr, weight_decay=weight_decay, l2=l2,
                    terms=_terms(extra_loss), epochs=epochs, batch_size=batch_size, seed=seed, stratify=stratify,
                    callbacks=[*built, *callbacks], dev=dev, progress=progress)


def _fit(model, X, y, w, g, *, optimizer, lr, weight_decay, l2, terms, epochs, batch_size, seed, stratify, callbacks,
         dev, progress):
    """The loop of :func:`train_head` on checked inputs; returns ``(model, history)``."""
    import torch

    from .config import single_thread_on_cpu
    from .progress import tqdm
    from .regularization import l2_term, make_optimizer, split_decay_parameters

    opt = make_optimizer(model, optimizer, lr, weight_decay) if isinstance(optimizer, str) else optimizer
    if l2 > 0:
        terms = [l2_term(split_decay_parameters(model)[0], l2), *terms]
    data = _Tensors(X, y, w, g, dev)
    gen, rng = torch.Generator().manual_seed(seed), np.random.default_rng(seed)
    history: list[dict] = []
    step = 0
    with single_thread_on_cpu(dev):
        for epoch in tqdm(range(1, epochs + 1), desc="training head", disable=not progress, leave=False):
            batches = _batches(len(X), batch_size, gen, rng, y, g, stratify)
            row, step = _epoch(model, opt, data, batches, terms, callbacks, epoch, step)
            stop = [cb.on_epoch_end(model, row) for cb in callbacks]
            history.append(row)
            if any(stop):
                break
        for cb in callbacks:
            cb.on_train_end(model)
    return model.eval(), history


class _Tensors:
    """The training data on the device: features ``X`` (n, d), labels as float ``y`` and long ``labels``, weights
    ``w`` (n,) or None, groups ``g`` (n,) or None."""

    def __init__(self, X, y, w, g, dev) -> None:
        import torch

        self.X = torch.as_tensor(X, device=dev)
        self.y = torch.as_tensor(y, dtype=torch.float32, device=dev)
        self.labels = torch.as_tensor(y, device=dev)
        self.w = torch.as_tensor(w, dtype=torch.float32, device=dev) if w is not None else None
        self.g = torch.as_tensor(g, device=dev) if g is not None else None
        self.dev = dev

    def loss(self, model, idx, terms, step):
        """``(ce, loss)`` of one batch: the weighted mean cross-entropy, and with every term added."""
        import torch.nn.functional as F

        logits = model(self.X[idx])
        ce = _weighted_mean(F.binary_cross_entropy_with_logits(logits, self.y[idx], reduction="none"),
                            self.w[idx] if self.w is not None else None)
        loss = ce
        for term in terms:  # a term may return None (nothing to add at this step)
            extra = term(logits, self.labels[idx], self.g[idx] if self.g is not None else None, step)
            loss = loss + extra if extra is not None else loss
        return ce, loss


def _epoch(model, opt, data: _Tensors, batches, terms, callbacks, epoch: int, step: int) -> tuple[dict, int]:
    """One pass over ``batches``: a step per batch, ``on_step`` callbacks; returns the epoch's row and the step."""
    model.train()
    total, count = 0.0, 0
    for idx in batches:
        idx = idx.to(data.dev)
        ce, loss = data.loss(model, idx, terms, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        record = {"epoch": epoch, "step": step, "ce": float(ce.detach()), "loss": float(loss.detach())}
        for cb in callbacks:
            cb.on_step(model, record)
        step += 1
        total += record["loss"] * len(idx)
        count += len(idx)
    return {"epoch": epoch, "train_loss": total / count}, step


def predict_head(model, X, *, device=None, batch_size: int = 8192) -> np.ndarray:
    """P(y = 1 | x) from a head on fixed features: ``sigmoid(logit)``, shape ``(n,)``, float64.

    Works for any module ``(B, d) -> (B,)`` logits (:func:`train_head`'s heads, notebook 05's
    :class:`helpers.regularization.MLPHead`, notebook 04's :class:`helpers.fairness.head.LinearHead`). Runs in
    eval mode (dropout off), without gradients, in batches of ``batch_size`` rows.
    """
    import torch

    X = check.features(X, "X", n_features=check.model_width(model))
    dev = next(model.parameters()).device if device is None else _device(device)
    model = model.to(dev).eval()
    out = [np.zeros(0)]
    with torch.no_grad():
        for s in range(0, len(X), batch_size):
            logits = model(torch.as_tensor(X[s : s + batch_size], device=dev)).float().reshape(-1)
            out.append(torch.sigmoid(logits).cpu().numpy().astype(np.float64))
    return np.concatenate(out)
