"""Training loops used across the workbook: a small head on fixed features, and full fine-tuning.

* :func:`train_head` - logistic regression (``hidden=0``) or a one-hidden-layer MLP on fixed
  features such as cached MiniLM embeddings (seconds on a CPU). :func:`predict_head` -> P(y=1).
* :func:`fine_tune` - full fine-tuning of the encoder and a classification head
  (``AutoModelForSequenceClassification``): the texts are tokenized once, batches are formed from
  length buckets (little padding), forward passes run under bf16 autocast on CUDA, the optimiser
  is AdamW (Loshchilov & Hutter 2019) with linear warm-up and decay. :func:`predict_proba`.

Both loops minimise the (optionally sample-weighted) mean cross-entropy

.. math:: L = \\frac{\\sum_i w_i\\,\\ell(f(x_i), y_i)}{\\sum_i w_i} + \\text{extra\\_loss}(\\ldots)

and accept an ``extra_loss`` hook, called every step as
``extra_loss(logits, labels, groups, step) -> scalar tensor`` and added to the loss; it is how
notebook 04 adds fairness penalties. ``logits`` has shape ``(B,)`` in :func:`train_head` (one
logit) and ``(B, 2)`` in :func:`fine_tune`; ``labels`` ``(B,)``; ``groups`` ``(B,)`` long, or
``None`` when no ``groups`` array was passed. The code path is the same on CPU and GPU; on the CPU
a fixed ``seed`` gives bit-identical results.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import validation as check
from .models import Tokenized, tokenize

ExtraLoss = Callable[..., Any]


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def _device(device: Any):
    from .config import get_device

    return device if hasattr(device, "type") else get_device(device)


def _weighted_mean(losses, weights):
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


# --------------------------------------------------------------------------------------------
# a head on fixed features
# --------------------------------------------------------------------------------------------


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


def train_head(
    X_train,
    y_train,
    *,
    X_val=None,
    y_val=None,
    hidden: int = 0,
    epochs: int = 30,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    batch_size: int = 256,
    seed: int = 0,
    sample_weight=None,
    extra_loss: ExtraLoss | None = None,
    groups=None,
    device=None,
    progress: bool = False,
    on_epoch: Callable[[int, Any], dict] | None = None,
    log_to: str | None = None,
):
    """Train logistic regression / a one-hidden-layer MLP on fixed features with AdamW.

    Args:
        X_train: features, shape ``(n, d)`` (e.g. MiniLM embeddings, d = 384).
        y_train: 0/1 labels, shape ``(n,)``.
        X_val, y_val: optional validation data, evaluated after every epoch.
        hidden: 0 for logistic regression, else the width of the hidden layer.
        sample_weight: optional non-negative weights ``(n,)`` (e.g. from reweighing); the loss is
            the weighted mean of the per-example binary cross-entropy.
        extra_loss: ``extra_loss(logits (B,), labels (B,), groups (B,) | None, step) -> scalar``,
            added to the loss at every step.
        groups: int array ``(n,)`` of sensitive-group codes, sliced per batch for ``extra_loss``.
        on_epoch: ``on_epoch(epoch, model) -> dict`` after each epoch, merged into that epoch's row
            (e.g. :func:`helpers.monitor.group_metrics_callback` for per-group metrics).
        log_to: a run name: each epoch's row also goes to TensorBoard (:class:`helpers.monitor.TensorBoardLog`).

    Returns:
        ``(model, history)``: the model (in eval mode, on ``device``) and one dict per epoch with
        ``epoch``, ``train_loss`` and, with validation data, ``val_loss`` and ``val_accuracy``
        (NaN otherwise), plus what ``on_epoch`` returns.
    """
    import torch

    from .config import seeded
    from .progress import tqdm

    X = check.features(X_train, "X_train")
    n = len(X)
    y = check.binary_labels(y_train, "y_train", n=n, both_classes=True)
    w = check.sample_weights(sample_weight, n)
    g = check.group_codes(groups, n=n) if groups is not None else None
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be at least 1.")
    dev = _device(device)
    if X_val is not None:
        Xv = torch.as_tensor(check.features(X_val, "X_val", n_features=X.shape[1]), device=dev)
        yv = torch.as_tensor(check.binary_labels(y_val, "y_val", n=len(Xv)), dtype=torch.float32, device=dev)
    with seeded(seed):  # the initial weights, without reseeding the caller's generators
        model = Head.build(X.shape[1], hidden).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    Xt = torch.as_tensor(X, device=dev)
    yt = torch.as_tensor(y, dtype=torch.float32, device=dev)
    wt = torch.as_tensor(w, dtype=torch.float32, device=dev) if w is not None else None
    gt = torch.as_tensor(g, device=dev) if g is not None else None
    gen = torch.Generator().manual_seed(seed)
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    history: list[dict] = []
    step = 0
    board = _board(log_to)
    for epoch in tqdm(range(1, epochs + 1), desc="training head", disable=not progress, leave=False):
        model.train()
        perm = torch.randperm(n, generator=gen).to(dev)
        total, count = 0.0, 0
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]
            logits = model(Xt[idx])
            loss = _weighted_mean(bce(logits, yt[idx]), wt[idx] if wt is not None else None)
            if extra_loss is not None:
                loss = loss + extra_loss(logits, yt[idx].long(), gt[idx] if gt is not None else None, step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        row = {"epoch": epoch, "train_loss": total / count, "val_loss": math.nan, "val_accuracy": math.nan}
        if X_val is not None:
            model.eval()
            with torch.no_grad():
                lv = model(Xv)
                row["val_loss"] = float(bce(lv, yv).mean())
                row["val_accuracy"] = float(((lv > 0).float() == yv).float().mean())
        _end_epoch(row, model, on_epoch, board)
        history.append(row)
    if board is not None:
        board.close()
    return model.eval(), history


def predict_head(model, X, *, device=None, batch_size: int = 8192) -> np.ndarray:
    """P(y = 1 | x) from a head on fixed features: ``sigmoid(logit)``, shape ``(n,)``, float64.

    Works for any module ``(B, d) -> (B,)`` logits: :func:`train_head`'s heads and
    :func:`helpers.fairness.constrained.train_fair_head`'s. Runs in eval mode, in batches of ``batch_size`` rows.
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


# --------------------------------------------------------------------------------------------
# full fine-tuning
# --------------------------------------------------------------------------------------------


@dataclass
class FineTuneResult:
    """What :func:`fine_tune` returns."""

    model: Any
    tokenizer: Any
    history: list[dict] = field(default_factory=list)
    examples_per_second: float = math.nan
    seconds: float = math.nan


def pretokenize(texts: Sequence[str], tokenizer, *, max_length: int = 128, device=None) -> Tokenized:
    """Tokenize every text once, padded into one tensor on ``device`` (:func:`helpers.models.tokenize`).

    Texts longer than ``max_length`` tokens are cut by :data:`helpers.models.TRUNCATION_RULE`.
    """
    return tokenize(texts, tokenizer, max_length=max_length, device=_device(device))


def length_bucketed_batches(lengths: np.ndarray, batch_size: int, *, rng: np.random.Generator,
                            bucket_batches: int = 50) -> list[np.ndarray]:
    """Shuffled batches of indices whose sentences have similar lengths (less padding).

    Shuffle all indices, cut them into chunks of ``batch_size * bucket_batches``, sort each chunk
    by length, cut it into batches, then shuffle the order of the batches. Every index appears
    exactly once per epoch; the randomness comes only from ``rng``.
    """
    n = len(lengths)
    perm = rng.permutation(n)
    chunk = batch_size * bucket_batches
    batches: list[np.ndarray] = []
    for s in range(0, n, chunk):
        part = perm[s : s + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def stratified_batches(labels: np.ndarray, groups: np.ndarray, batch_size: int, rng: np.random.Generator, *,
                       lengths: np.ndarray | None = None, bucket_batches: int = 50) -> list[np.ndarray]:
    """Batches in which every (group, label) cell appears in (about) its population share.

    Each cell's indices are shuffled and dealt into ``ceil(n / batch_size)`` batches in contiguous blocks, so
    every batch gets ``floor`` or ``ceil`` of ``n_cell / n_batches`` of each cell: no batch lacks a group, and a
    gap measured on a batch is far less noisy than on a random batch. Without ``lengths`` each cell starts at a
    random batch (so the rounding remainders spread out); with ``lengths`` (token counts, for fine-tuning) the
    cells are instead aligned and, inside every run of ``bucket_batches`` batches, the shorter sentences of each
    cell go to the same batches (little padding, as in :func:`length_bucketed_batches`). The order of the
    batches and of the rows inside a batch is shuffled. Every index appears exactly once; randomness comes
    only from ``rng``.
    """
    labels, groups = np.asarray(labels, dtype=np.int64), np.asarray(groups, dtype=np.int64)
    n = len(labels)
    if len(groups) != n or (lengths is not None and len(lengths) != n):
        raise ValueError(f"labels ({n}), groups ({len(groups)}) and lengths must have the same length.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    n_batches = max(1, math.ceil(n / batch_size))
    cells = groups * (int(labels.max(initial=0)) + 1) + labels
    batch_of = np.empty(n, dtype=np.int64)
    offset = int(rng.integers(n_batches))
    for cell in np.unique(cells):
        idx = np.flatnonzero(cells == cell)
        idx = idx[rng.permutation(len(idx))]
        slot = np.arange(len(idx)) * n_batches // len(idx)
        if lengths is None:
            slot = (slot + offset) % n_batches
            offset += 1
        else:  # within each run of bucket_batches slots, shorter sentences to lower slots (ties stay random)
            idx = idx[np.lexsort((np.asarray(lengths)[idx], slot // max(1, bucket_batches)))]
        batch_of[idx] = slot
    order = np.argsort(batch_of, kind="stable")
    bounds = np.searchsorted(batch_of[order], np.arange(1, n_batches))
    batches = [rng.permutation(b) for b in np.split(order, bounds) if len(b)]
    if lengths is not None:  # slots follow length inside each run: shuffle the order of the batches
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def fine_tune(
    train_texts: Sequence[str],
    train_labels,
    *,
    model_name: str | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    max_length: int = 128,
    seed: int = 0,
    device=None,
    sample_weight=None,
    extra_loss: ExtraLoss | None = None,
    groups=None,
    weight_decay: float = 0.01,
    warmup_fraction: float = 0.06,
    stratify: bool = False,
    progress: bool = True,
    on_epoch: Callable[[int, Any], dict] | None = None,
    log_to: str | None = None,
    adapt: Callable[[Any], Any] | None = None,
) -> FineTuneResult:
    """Fine-tune the whole encoder plus a fresh 2-way classification head.

    Texts are tokenized once; each epoch draws shuffled, length-bucketed batches
    (:func:`length_bucketed_batches`), or, with ``stratify=True`` (needs ``groups``), length-bucketed
    batches that hold every (group, label) cell in its population share (:func:`stratified_batches`:
    a fairness term measured on the batch is far less noisy; opt-in, because on the full Adult data it has
    not been shown to give a better constrained model); the forward pass runs under bf16 (fp16 on old GPUs)
    autocast on CUDA and in float32 on the CPU; AdamW with linear warm-up over
    ``warmup_fraction`` of the steps, then linear decay to 0. Loss: weighted mean cross-entropy
    of the logits ``(B, 2)`` plus ``extra_loss(logits, labels, groups, step)`` if given.

    ``epochs`` / ``batch_size`` / ``lr`` default to the run mode's ``finetune_epochs`` /
    ``finetune_batch_size`` / ``finetune_lr`` sizes (few examples on a CPU need larger steps than the
    5e-5 used with the full data). ``examples_per_second`` counts training examples over the
    training loop's wall time (tokenization and model loading excluded, GPU synchronised).
    ``on_epoch(epoch, model) -> dict`` and ``log_to`` (a TensorBoard run name) work as in :func:`train_head`.
    ``adapt(model) -> model`` changes the loaded classifier before training, e.g. :func:`helpers.lora.add_lora`;
    only parameters that still require gradients are optimised.

    Returns:
        :class:`FineTuneResult` (model in eval mode, tokenizer, per-epoch history with
        ``epoch``, ``train_loss``, ``seconds``, ``examples_per_second``).
    """
    import torch

    from .config import autocast, seed_everything, size
    from .models import load_classifier, load_tokenizer
    from .progress import tqdm

    texts = check.texts(train_texts, "train_texts")
    n = len(texts)
    y = check.binary_labels(train_labels, "train_labels", n=n)
    w = check.sample_weights(sample_weight, n)
    g = check.group_codes(groups, n=n) if groups is not None else None
    stratify = bool(stratify)
    if stratify and g is None:
        raise ValueError("stratify=True needs the groups: pass groups=... (one group code per sentence).")
    epochs = int(epochs if epochs is not None else size("finetune_epochs"))
    batch_size = int(batch_size if batch_size is not None else size("finetune_batch_size"))
    lr = float(lr if lr is not None else size("finetune_lr"))
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be at least 1.")
    dev = _device(device)
    seed_everything(seed)
    tokenizer = load_tokenizer(model_name)
    model = load_classifier(model_name, num_labels=2, device=dev, seed=seed)
    if adapt is not None:
        model = adapt(model)
    tok = pretokenize(texts, tokenizer, max_length=max_length, device=dev)
    lengths_np = tok.lengths.cpu().numpy()
    yt = torch.as_tensor(y, device=dev)
    wt = torch.as_tensor(w, dtype=torch.float32, device=dev) if w is not None else None
    gt = torch.as_tensor(g, device=dev) if g is not None else None

    rng = np.random.default_rng(seed)
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = epochs * steps_per_epoch
    warmup = max(1, int(warmup_fraction * total_steps))
    fused = {"fused": True} if dev.type == "cuda" else {}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay,
                            **fused)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total_steps - s) / max(1, total_steps - warmup)))
    )
    history: list[dict] = []
    step = 0
    seconds = 0.0
    bar = tqdm(total=total_steps, desc="fine-tuning", disable=not progress, leave=False)
    board = _board(log_to)
    model.train()
    for epoch in range(1, epochs + 1):
        if stratify:
            batches = stratified_batches(y, g, batch_size, rng, lengths=lengths_np)
        else:
            batches = length_bucketed_batches(lengths_np, batch_size, rng=rng)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=dev)
        for b in batches:
            idx = torch.as_tensor(b, device=dev)
            ids, mask = tok.batch(idx, width=lengths_np[b].max())
            with autocast(dev):
                logits = model(input_ids=ids, attention_mask=mask).logits
            logits = logits.float()
            ce = torch.nn.functional.cross_entropy(logits, yt[idx], reduction="none")
            loss = _weighted_mean(ce, wt[idx] if wt is not None else None)
            if extra_loss is not None:
                loss = loss + extra_loss(logits, yt[idx], gt[idx] if gt is not None else None, step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            loss_sum += loss.detach() * len(b)
            bar.update(1)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t0
        seconds += dt
        history.append({"epoch": epoch, "train_loss": float(loss_sum) / n, "seconds": dt,
                        "examples_per_second": n / dt if dt > 0 else math.nan})  # fmt: skip
        bar.set_postfix(loss=f"{history[-1]['train_loss']:.3f}", ex_per_s=f"{n / dt:.0f}")
        _end_epoch(history[-1], model, on_epoch, board)
        model.train()
    bar.close()
    if board is not None:
        board.close()
    model.eval()
    eps = n * epochs / seconds if seconds > 0 else math.nan
    return FineTuneResult(model=model, tokenizer=tokenizer, history=history, examples_per_second=eps, seconds=seconds)


def predict_proba(model, tokenizer, texts: Sequence[str], *, batch_size: int | None = None, max_length: int = 128,
                  device=None, progress: bool = False) -> np.ndarray:
    """Class probabilities ``softmax(logits)`` from a sequence classifier, shape ``(n, C)``, float64, input order.

    The one inference path (:func:`helpers.models.tokenize` and :func:`helpers.models.forward_batches`):
    tokenized once, run longest-first in batches, ``inference_mode``, bf16 autocast on CUDA; texts longer
    than ``max_length`` tokens are cut by :data:`helpers.models.TRUNCATION_RULE`.
    """
    from .config import size
    from .models import forward_batches, logits_of

    dev = next(model.parameters()).device if device is None else _device(device)
    model = model.to(dev).eval()
    tok = pretokenize(texts, tokenizer, max_length=max_length, device=dev)
    probs = forward_batches(model, tok, batch_size=batch_size or size("encode_batch_size"), progress=progress,
                            head=lambda out, mask: logits_of(out).float().softmax(-1))
    return probs.cpu().numpy().astype(np.float64)
