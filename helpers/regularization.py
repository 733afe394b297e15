"""Regularisation you can see: L2, decoupled weight decay, dropout, MC dropout and early stopping.

Notebook 05 trains a small MLP head (:class:`MLPHead`) on frozen MiniLM sentence embeddings of a
few hundred Adult records, so that it overfits visibly, and then cures the overfitting:

* **L2 penalty** (Tikhonov; Krogh & Hertz 1992): add :math:`\\frac{\\lambda}{2}\\lVert\\theta\\rVert_2^2`
  to the loss, gradient :math:`\\lambda\\theta` (:func:`l2_penalty`). Biases and LayerNorm
  parameters are excluded (:func:`split_decay_parameters`), the convention of BERT's reference code.
* **Decoupled weight decay** (AdamW; Loshchilov & Hutter 2019, "Decoupled Weight Decay
  Regularization", ICLR): shrink :math:`\\theta \\leftarrow \\theta - \\eta\\lambda\\theta` outside the
  adaptive update. For plain SGD this equals the L2 penalty; for Adam it does not, because Adam
  divides the penalty's gradient by :math:`\\sqrt{\\hat v}`.
* **Dropout** (Srivastava et al. 2014, JMLR 15:1929): zero each unit with probability ``p`` in
  training and scale survivors by :math:`1/(1-p)` ("inverted dropout", the frameworks' convention), so
  eval mode is the identity (:func:`inverted_dropout`). Srivastava et al. instead keep units with
  retention probability p and multiply the weights by p at test time; ``p`` here is PyTorch's drop
  probability. **MC dropout** (Gal & Ghahramani 2016, ICML) keeps dropout on at
  prediction time and averages ``T`` passes (:func:`mc_dropout_predict`).
* **Calibration**: expected calibration error (Naeini et al. 2015, AAAI; Guo et al. 2017, ICML)
  on P(y=1) with the reliability table behind a reliability diagram (:func:`expected_calibration_error`),
  and Guo et al.'s top-label version on the predicted class's confidence (:func:`top_label_calibration_error`).
* **Early stopping** with patience (Prechelt 1998, "Early stopping - but when?"), restoring the best
  weights from a ``safetensors`` checkpoint written atomically (:class:`EarlyStopping`).

Shapes: features ``X`` are ``(n, d)`` float arrays, labels ``y`` ``(n,)`` 0/1, groups ``(n,)``.
Everything random takes a ``seed``; on the CPU a fixed seed gives bit-identical results.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import validation as check
from .config import seeded, single_thread_on_cpu
from .heads import AfterStep, Callback, Evaluate, train_head

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")

def _check_p(p: float, name: str = "p") -> float:
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"The dropout probability {name} must be in [0, 1), got {p}.")
    return float(p)


# --------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------


class MLPHead(nn.Module):
    """A one-hidden-layer classifier head on fixed sentence embeddings.

    ``x (B, d) -> LayerNorm(d) -> Dropout(input_p) -> Linear(d, h) -> ReLU -> Dropout(p) -> Linear(h, 1)``,
    returning one logit per example, shape ``(B,)`` (P(y=1) = sigmoid(logit)). The LayerNorm
    (Ba et al. 2016) standardises each embedding; it sits *before* the first weight matrix, so an L2
    penalty on that matrix really limits the function (after it, LayerNorm would undo any shrinking).
    """

    def __init__(self, in_dim: int, hidden: int = 256, p: float = 0.0, *, input_p: float = 0.0,
                 layer_norm: bool = True) -> None:
        super().__init__()
        if in_dim < 1 or hidden < 1:
            raise ValueError(f"in_dim and hidden must be positive, got {in_dim} and {hidden}.")
        self.norm = nn.LayerNorm(in_dim) if layer_norm else nn.Identity()
        self.input_dropout = nn.Dropout(_check_p(input_p, "input_p"))
        self.fc1 = nn.Linear(in_dim, hidden)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(_check_p(p))
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.act(self.fc1(self.input_dropout(self.norm(x)))))
        return self.fc2(h).squeeze(-1)


# --------------------------------------------------------------------------------------------
# L2 and weight decay
# --------------------------------------------------------------------------------------------


def split_decay_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(decay, no_decay)``: weight matrices get L2 / weight decay; biases and norm parameters do not.

    Why exclude them (a convention of BERT's reference code, Devlin et al. 2019, which excludes ``bias`` and
    ``LayerNorm`` from decay, followed by Hugging Face's training scripts; the papers of Krogh & Hertz and of
    Loshchilov & Hutter do not make this rule):
    a bias does not multiply an input, so shrinking it does not make the function smoother - it
    only drags the decision threshold towards 0 (a prior nobody means). LayerNorm's gain and shift
    re-scale already-normalised features; pulling the gain to 0 silences the layer, and because
    the next weight matrix can undo any scale, the penalty buys no smoothness. The rule used here:
    parameters with fewer than 2 dimensions (biases, norm gains and shifts) are not decayed.
    """
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 else no_decay).append(param)
    return decay, no_decay


def l2_penalty(params: Iterable[torch.Tensor], lam: float) -> torch.Tensor:
    """The L2 penalty :math:`\\frac{\\lambda}{2}\\sum_j \\lVert\\theta_j\\rVert_2^2` (a scalar tensor).

    Its gradient with respect to each ``theta_j`` is ``lam * theta_j`` (Krogh & Hertz 1992; Goodfellow
    et al. 2016, "Deep Learning", eq. 7.1-7.5). Pass the *decayed* parameters only
    (:func:`split_decay_parameters`).
    """
    if not math.isfinite(lam) or lam < 0:
        raise ValueError(f"The L2 strength lambda must be a finite number >= 0, got {lam}.")
    params = list(params)
    if not params:
        raise ValueError("l2_penalty() got no parameters.")
    return 0.5 * lam * sum((p**2).sum() for p in params)


def l2_term(params: Iterable[torch.Tensor], lam: float) -> Callable[..., torch.Tensor]:
    """:func:`l2_penalty` as a loss term for :func:`helpers.heads.train_head`:
    ``term(logits, labels, groups, step) -> lam / 2 * sum_j ||theta_j||^2`` (the batch is ignored)."""
    params = list(params)
    l2_penalty(params, lam)  # check lam and params now, not at the first step
    return lambda logits, labels, groups, step: l2_penalty(params, lam)


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float = 0.0,
                   *, exclude_no_decay: bool = True) -> torch.optim.Optimizer:
    """``torch.optim`` SGD / Adam / AdamW with ``weight_decay`` on the decayed parameters only (the fused CUDA
    kernels for Adam/AdamW when the parameters are on a GPU; same update).

    Note what ``weight_decay`` means: for SGD and Adam torch adds ``weight_decay * theta`` to the
    gradient (that *is* an L2 penalty, coupled to the adaptive scaling in Adam); for AdamW it is the
    shrink ``theta -= lr * weight_decay * theta`` outside the adaptive step. That shrink is still scaled by
    the learning rate ``lr``; Loshchilov & Hutter (2019, Algorithm 2, line 12) shrink by ``eta_t * lambda``,
    with ``eta_t`` the schedule multiplier and not the learning rate alpha. Their per-step decay ``lambda``
    (at ``eta_t = 1``) is torch's ``weight_decay = lambda / lr``, as :func:`decay_grid` passes it.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}.")
    if not lr > 0:
        raise ValueError(f"The learning rate must be > 0, got {lr}.")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}.")
    if exclude_no_decay:
        decay, no_decay = split_decay_parameters(model)
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    params = [p for g in groups for p in g["params"]]
    if not params:
        raise ValueError("The model has no trainable parameters (every parameter has requires_grad=False).")
    fused = {"fused": True} if name != "sgd" and params[0].device.type == "cuda" else {}
    return cls(groups, lr=lr, **fused)


# --------------------------------------------------------------------------------------------
# dropout
# --------------------------------------------------------------------------------------------


def inverted_dropout(x: torch.Tensor, p: float, *, training: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Inverted dropout: ``x * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)``, ``p`` the drop probability.

    Srivastava et al. (2014) keep each unit with retention probability (their p) and scale the weights by
    it at test time; scaling the survivors by its inverse in training instead ("inverted dropout") is the
    frameworks' convention and gives the same expected activation.

    In training, each element is zeroed with probability ``p`` and survivors are multiplied by
    ``1/(1-p)`` so that :math:`E[\\tilde x] = (1-p)\\cdot x/(1-p) = x`; in eval mode it is the
    identity. Same shape as ``x``. ``torch.nn.Dropout`` does exactly this.
    """
    p = _check_p(p)
    if not training or p == 0.0:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return x * keep.to(x.dtype) / (1.0 - p)


def set_dropout(model: nn.Module, p: float) -> int:
    """Set ``p`` on every ``nn.Dropout`` in ``model`` (and the attention dropout of HF BERT layers).

    Works for the encoder's dropout config too: in transformers 5 the attention reads its
    ``dropout.p``; in 4.4x the SDPA attention reads ``dropout_prob``. Returns how many were set.
    """
    p = _check_p(p)
    n = 0
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p
            n += 1
        if hasattr(module, "dropout_prob") and isinstance(module.dropout_prob, float):
            module.dropout_prob = p
    config = getattr(model, "config", None)
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if config is not None and hasattr(config, key):
            setattr(config, key, p)
    return n


def enable_mc_dropout(model: nn.Module) -> nn.Module:
    """Eval mode everywhere except the dropout layers, which stay stochastic (for MC dropout)."""
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.train()
    return model


# --------------------------------------------------------------------------------------------
# early stopping with atomic safetensors checkpoints
# --------------------------------------------------------------------------------------------


def save_state_atomic(model_or_state: nn.Module | dict[str, torch.Tensor], path: str | Path) -> Path:
    """Save a state dict as ``safetensors`` atomically: write a temp file in the same folder, then
    ``os.replace`` it over ``path`` (a crash never leaves a half-written checkpoint). Returns ``path``.

    safetensors stores raw tensors plus a JSON header - loading it cannot execute code, unlike pickle.
    """
    from safetensors.torch import save_file

    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_state(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a ``safetensors`` state dict into ``model`` (strict: every key must match)."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise ValueError(f"No checkpoint at {path}: nothing was saved there yet.")
    device = next(model.parameters()).device
    model.load_state_dict(load_file(str(path), device=str(device)))
    return model


class EarlyStopping(Callback):
    """Stop when the monitored value has not improved for ``patience`` epochs; keep the best weights.

    As a :func:`helpers.heads.train_head` callback it watches the epoch row's ``monitor`` entry and restores the
    best weights when training ends. By hand, call :meth:`step` once per epoch with the validation loss (``mode="min"``) or accuracy
    (``mode="max"``). An improvement means beating the best so far by more than ``min_delta``; it
    saves a checkpoint (:func:`save_state_atomic`). After ``patience`` consecutive epochs without
    improvement :meth:`step` returns ``True``; :meth:`restore` loads the best weights back.
    """

    def __init__(self, patience: int = 10, *, path: str | Path | None = None, min_delta: float = 0.0,
                 mode: str = "min", monitor: str = "val_loss") -> None:
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be a positive integer (epochs), got {patience!r}.")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' (a loss) or 'max' (an accuracy), got {mode!r}.")
        if min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}.")
        from .config import build_dir

        self.patience, self.min_delta, self.mode, self.monitor = patience, float(min_delta), mode, monitor
        self.path = Path(path) if path else build_dir() / "checkpoints" / f"early-stopping-{os.getpid()}-{id(self)}.safetensors"
        self.best: float = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.stopped_epoch: int | None = None

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta``."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float, model: nn.Module, epoch: int) -> bool:
        """Record one epoch's monitored ``value``; return ``True`` when training should stop."""
        value = float(value)
        if math.isnan(value):
            raise ValueError(f"The monitored value at epoch {epoch} is NaN: training diverged.")
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            save_state_atomic(model, self.path)
            return False
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def restore(self, model: nn.Module) -> nn.Module:
        """Load the best checkpoint into ``model``."""
        if self.best_epoch is None:
            raise ValueError("EarlyStopping.restore(): step() was never called, so there is no best checkpoint.")
        return load_state(model, self.path)

    # as a callback of helpers.heads.train_head: watch the epoch row's ``monitor`` value, restore at the end
    def on_epoch_end(self, model: nn.Module, row: dict) -> bool:
        return self.step(row[self.monitor], model, row["epoch"])

    def on_train_end(self, model: nn.Module) -> None:
        self.restore(model)


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """A trained head, its per-epoch history and what early stopping did."""

    model: MLPHead
    history: pd.DataFrame  # columns: epoch, train_loss, train_acc, val_loss, val_acc, gap (=train_acc-val_acc)
    config: dict[str, Any] = field(default_factory=dict)
    best_epoch: int | None = None  # the restored epoch with early stopping, else None
    stopped_epoch: int | None = None
    seconds: float = 0.0

    def final(self) -> dict[str, float]:
        """The metrics of the returned model: the restored epoch with early stopping, else the last."""
        row = self.history.iloc[-1] if self.best_epoch is None else \
            self.history.loc[self.history["epoch"] == self.best_epoch].iloc[0]
        return {k: float(row[k]) for k in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "gap")
                if k in row and pd.notna(row[k])}


def train_mlp(
    X_train: Any, y_train: Any, X_val: Any = None, y_val: Any = None, *,
    hidden: int = 256, p: float = 0.0, input_p: float = 0.0, layer_norm: bool = True,
    optimizer: str = "adam", lr: float = 1e-3, l2: float = 0.0, weight_decay: float = 0.0,
    exclude_no_decay: bool = True, epochs: int = 100, batch_size: int = 64, seed: int = 0,
    early_stopping: EarlyStopping | None = None, after_step: Callable[[nn.Module], None] | None = None,
    device: Any = None, progress: bool = False,
) -> TrainResult:
    """Train an :class:`MLPHead` with mini-batch ``optimizer`` on the binary cross-entropy

    .. math:: L(\\theta) = \\frac1B\\sum_{i\\in B} \\ell(f_\\theta(x_i), y_i) + \\frac{\\lambda}{2}\\lVert\\theta_{decay}\\rVert^2

    where ``l2`` is :math:`\\lambda` (explicit penalty, coupled) and ``weight_decay`` goes to the
    optimizer (coupled for SGD/Adam, decoupled for AdamW; see :func:`make_optimizer`); with
    ``exclude_no_decay=False`` both also act on biases and LayerNorm parameters.
    The loop is :func:`helpers.heads.train_head`; every epoch it records train and validation loss/accuracy
    (eval mode, dropout off) and their ``gap``. With ``early_stopping`` it monitors validation loss and restores
    the best weights at the end. ``after_step(model)`` runs after every optimiser step (used to study a broken
    "regulariser"). Initial weights and dropout masks come from ``seed``; the caller's generators are left alone.
    """
    from .config import get_device
    X_train = check.features(X_train, "X_train")
    y_train = check.binary_labels(y_train, "y_train", n=len(X_train), both_classes=True)
    has_val = X_val is not None
    if has_val:
        X_val = check.features(X_val, "X_val", n_features=X_train.shape[1])
        y_val = check.binary_labels(y_val, "y_val", n=len(X_val))
    elif early_stopping is not None:
        raise ValueError("Early stopping needs validation data (X_val, y_val).")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}.")
    device = get_device(device) if not isinstance(device, torch.device) else device
    t0 = time.perf_counter()
    with seeded(seed):  # initial weights and dropout masks; the caller's generators are left alone
        model = MLPHead(X_train.shape[1], hidden, p, input_p=input_p, layer_norm=layer_norm).to(device)
        opt = make_optimizer(model, optimizer, lr, weight_decay, exclude_no_decay=exclude_no_decay)
        decay_params = split_decay_parameters(model)[0] if exclude_no_decay else list(model.parameters())
        callbacks = _mlp_callbacks(X_train, y_train, X_val, y_val, device, early_stopping, after_step)
        model, rows = train_head(X_train, y_train, model=model, optimizer=opt, epochs=epochs, batch_size=batch_size,
                                 seed=seed, extra_loss=l2_term(decay_params, l2) if l2 > 0 else None,
                                 callbacks=callbacks, device=device, progress=progress)
    config = dict(hidden=hidden, p=p, input_p=input_p, optimizer=optimizer, lr=lr, l2=l2,
                  weight_decay=weight_decay, epochs=epochs, batch_size=batch_size, seed=seed)
    return TrainResult(model, pd.DataFrame(rows), config, early_stopping.best_epoch if early_stopping else None,
                       early_stopping.stopped_epoch if early_stopping else None, time.perf_counter() - t0)


def _mlp_callbacks(X_train, y_train, X_val, y_val, device, early_stopping, after_step) -> list:
    """:func:`train_mlp`'s callbacks: train (and validation) loss/accuracy and their gap, early stopping, after_step."""
    def on(X, y):
        return torch.from_numpy(X).to(device), torch.from_numpy(np.asarray(y, np.float32)).to(device)

    callbacks: list = [Evaluate(*on(X_train, y_train), "train", "acc")]
    if X_val is not None:
        callbacks += [Evaluate(*on(X_val, y_val), "val", "acc"), _Gap()]
    return callbacks + [cb for cb in (early_stopping, AfterStep(after_step) if after_step else None) if cb is not None]


class _Gap(Callback):
    """Callback: ``row["gap"] = train_acc - val_acc`` after each epoch."""

    def on_epoch_end(self, model: nn.Module, row: dict) -> bool:
        row["gap"] = row["train_acc"] - row["val_acc"]
        return False


def predict_proba(model: nn.Module, X: Any, *, batch_size: int = 4096) -> np.ndarray:
    """P(y=1) from one deterministic pass (eval mode: dropout off), shape ``(n,)``
    (:func:`helpers.heads.predict_head`)."""
    from .heads import predict_head

    return predict_head(model, X, batch_size=batch_size)


def accuracy(model: nn.Module, X: Any, y: Any) -> float:
    """Share of correct predictions (threshold P(y=1) = 0.5, eval mode)."""
    X = check.features(X, "X", n_features=check.model_width(model))
    y = check.binary_labels(y, "y", n=len(X))
    return float(((predict_proba(model, X) > 0.5) == (y > 0.5)).mean())


def max_param_difference(a: nn.Module, b: nn.Module) -> float:
    """Largest absolute difference between corresponding parameters of two same-shaped models."""
    pa, pb = list(a.state_dict().values()), list(b.state_dict().values())
    if len(pa) != len(pb) or any(x.shape != y.shape for x, y in zip(pa, pb)):
        raise ValueError("The two models do not have the same parameter shapes.")
    return max(float((x.detach().double() - y.detach().double()).abs().max()) for x, y in zip(pa, pb))


def mc_dropout_predict(model: nn.Module, X: Any, *, T: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Monte-Carlo dropout (Gal & Ghahramani 2016): ``T`` stochastic passes with dropout on.

    Returns ``(mean, std)`` of P(y=1) over the passes, each shape ``(n,)``. The mean is the
    predictive probability :math:`\\frac1T\\sum_t \\sigma(f_{\\theta, m_t}(x))`; the std is a
    (rough) per-example uncertainty. The model is put back in eval mode afterwards.
    """
    from .config import autocast

    if T < 1:
        raise ValueError(f"T (number of stochastic passes) must be >= 1, got {T}.")
    if not any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules()):
        raise ValueError("The model has no active dropout (p > 0): every MC pass would be identical.")
    X = torch.from_numpy(check.features(X, "X", n_features=check.model_width(model)))
    device = next(model.parameters()).device
    X = X.to(device)
    enable_mc_dropout(model)
    try:
        with seeded(seed), torch.no_grad(), autocast(device), single_thread_on_cpu(device):
            samples = torch.stack([torch.sigmoid(model(X).float()) for _ in range(T)]).cpu().double().numpy()
    finally:
        model.eval()
    return samples.mean(0), samples.std(0)


#: Studies built on the trainer (calibration tables, sweeps and grids, per-group gaps, the broken "regulariser",
#: the encoder's own dropout) live in :mod:`helpers.regularization_studies`; ``reg.<name>`` finds them there.
_STUDIES = ("reliability_table", "expected_calibration_error", "ece_difference", "top_label_calibration_error", "group_gaps", "sweep", "decay_grid", "good_region", "reinit_and_clamp_", "describe_one_class", "encoder_dropout_spread")


def __getattr__(name: str) -> Any:
    if name in _STUDIES:
        from . import regularization_studies

        return getattr(regularization_studies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_STUDIES])
