"""Training loops used across the workbook: a small head on fixed features, and full fine-tuning.

* :func:`train_head` - logistic regression (``hidden=0``) or a one-hidden-layer MLP on fixed
  features such as cached MiniLM embeddings (seconds on a CPU). :func:`predict_head` -> P(y=1). Both live in
  :mod:`helpers.heads` (the one head trainer, with loss terms and callbacks) and are imported here.
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
from .heads import ExtraLoss, Head, _board, _device, _end_epoch, _weighted_mean, predict_head, train_head
from .models import Tokenized, tokenize

__all__ = ["FineTuneResult", "Head", "Tokenized", "fine_tune", "length_bucketed_batches", "predict_head",
           "predict_proba", "pretokenize", "stratified_batches", "train_head"]

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


def _deal_cells(cells: np.ndarray, n_batches: int, rng: np.random.Generator, lengths, bucket_batches: int) -> np.ndarray:
    """The batch slot of every row: each cell's rows, shuffled, dealt over the slots in contiguous blocks
    (:func:`stratified_batches`)."""
    batch_of = np.empty(len(cells), dtype=np.int64)
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
    return batch_of


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
    batch_of = _deal_cells(cells, n_batches, rng, lengths, bucket_batches)
    order = np.argsort(batch_of, kind="stable")
    bounds = np.searchsorted(batch_of[order], np.arange(1, n_batches))
    batches = [rng.permutation(b) for b in np.split(order, bounds) if len(b)]
    if lengths is not None:  # slots follow length inside each run: shuffle the order of the batches
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def adamw_with_schedule(model, *, lr: float, weight_decay: float, warmup_steps: int, total_steps: int):
    """AdamW (Loshchilov & Hutter 2019) over the parameters that require gradients, with transformers'
    ``get_linear_schedule_with_warmup`` (linear warm-up over ``warmup_steps``, then linear decay to 0 at
    ``total_steps``). Weight decay applies to weight matrices only: biases and LayerNorm parameters (``dim < 2``)
    are not decayed, as in BERT (Devlin et al. 2019), by the one rule of
    :func:`helpers.regularization.make_optimizer`.

    Returns ``(optimizer, scheduler)``; call ``scheduler.step()`` after every ``optimizer.step()``.
    """
    from transformers import get_linear_schedule_with_warmup

    from .regularization import make_optimizer

    opt = make_optimizer(model, "adamw", lr, weight_decay)
    return opt, get_linear_schedule_with_warmup(opt, max(1, warmup_steps), max(1, total_steps))


def _pooled_features(model, tok: Tokenized, lengths_np: np.ndarray, batch_size: int) -> np.ndarray:
    """What ``model.classifier`` receives for every text (eval mode: no dropout), shape ``(n, H)``, input order."""
    import torch

    feats: list = [None] * len(lengths_np)
    order = np.argsort(-lengths_np, kind="stable")
    grabbed = {}
    handle = model.classifier.register_forward_hook(lambda _m, inp, _out: grabbed.__setitem__("x", inp[0]))
    model.eval()
    try:
        with torch.inference_mode():
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                model(*tok.batch(torch.as_tensor(idx, device=tok.ids.device), width=lengths_np[idx].max()))
                for i, row in zip(idx, grabbed["x"].float().cpu().numpy()):
                    feats[i] = row
    finally:
        handle.remove()
    return np.stack(feats)


def linear_probe(model, tok: Tokenized, y: np.ndarray, *, sample_weight=None, batch_size: int = 64) -> dict:
    """Step 1 of LP-FT (Kumar et al. 2022, *Fine-Tuning can Distort Pretrained Features and Underperform
    Out-of-Distribution*, ICLR): fit the linear head on the frozen model's features before fine-tuning.

    The features are the inputs of ``model.classifier`` (a ``Linear(H, 2)``) in eval mode. An L2-regularised
    logistic regression ``P(y=1|x) = sigmoid(w.x + b)`` (scikit-learn's ``LogisticRegression``; the strength
    ``C`` in 1e-2..1e3 chosen by ``GridSearchCV`` on stratified, cross-validated log-loss; ``C = 1`` when a class has
    fewer than 2 rows) is written into the head as logits ``(-(w.x + b)/2, (w.x + b)/2)``, whose softmax is that same sigmoid.
    Changes ``model.classifier`` in place; returns ``{"C": ..., "train_accuracy": ...}``.
    """
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    head = getattr(model, "classifier", None)
    if not isinstance(head, torch.nn.Linear) or head.out_features != 2:
        raise ValueError("linear_probe needs a model whose .classifier is a Linear layer with 2 outputs "
                         "(helpers.models.load_classifier gives one).")
    X = _pooled_features(model, tok, tok.lengths.cpu().numpy(), batch_size)
    folds = int(min(5, np.bincount(y, minlength=2).min()))
    fit = {} if sample_weight is None else {"sample_weight": sample_weight}
    lr = LogisticRegression(C=1.0, max_iter=5000)
    if folds >= 2:
        lr = GridSearchCV(lr, {"C": np.logspace(-2, 3, 6)}, cv=StratifiedKFold(folds), scoring="neg_log_loss")
    lr.fit(X, y, **fit)
    C = float(lr.best_params_["C"]) if folds >= 2 else 1.0
    lr = lr.best_estimator_ if folds >= 2 else lr
    w = torch.as_tensor(lr.coef_[0], dtype=head.weight.dtype) / 2
    b = float(lr.intercept_[0]) / 2
    with torch.no_grad():
        head.weight.copy_(torch.stack([-w, w]).to(head.weight.device))
        head.bias.copy_(torch.tensor([-b, b], dtype=head.bias.dtype, device=head.bias.device))
    return {"C": C, "train_accuracy": float((lr.predict(X) == y).mean())}


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
    max_grad_norm: float | None = 1.0,
    linear_probe_first: bool = True,
    stratify: bool = False,
    progress: bool = True,
    on_epoch: Callable[[int, Any], dict] | None = None,
    log_to: str | None = None,
    adapt: Callable[[Any], Any] | None = None,
) -> FineTuneResult:
    """Fine-tune the encoder plus a 2-way classification head (LP-FT by default).

    ``linear_probe_first=True`` (default): LP-FT (Kumar et al. 2022) - the head first gets the logistic
    regression fitted on the frozen model's pooled features (:func:`linear_probe`), then everything trains from
    there; with few rows a random head's early gradients otherwise distort the pretrained features and the model
    can collapse to the majority class. ``False``: a randomly initialised head (plain fine-tuning).

    Texts are tokenized once; each epoch draws shuffled, length-bucketed batches
    (:func:`length_bucketed_batches`), or, with ``stratify=True`` (needs ``groups``), batches that hold every
    (group, label) cell in its population share (:func:`stratified_batches`). Forward passes run under bf16
    (fp16 on old GPUs) autocast on CUDA and in float32 on the CPU. Optimiser: :func:`adamw_with_schedule`
    (no decay on biases/LayerNorm; warm-up over ``warmup_fraction`` of the steps, then linear decay);
    gradients clipped to global norm ``max_grad_norm`` (``None``: no clipping). Loss: weighted mean
    cross-entropy of the logits ``(B, 2)`` plus ``extra_loss(logits, labels, groups, step)`` if given.

    ``epochs`` / ``batch_size`` / ``lr`` default to the run mode's ``finetune_*`` sizes. ``adapt(model) -> model``
    changes the classifier after the linear probe and before training, e.g. :func:`helpers.lora.add_lora`; only
    parameters that still require gradients are optimised. ``on_epoch`` / ``log_to`` work as in
    :func:`train_head`. All randomness (head initialisation, dropout, batch order) comes from ``seed``; the
    caller's global random generators are left as they were. ``examples_per_second`` counts training examples
    over the training loop's wall time (tokenization, model loading and the linear probe excluded).

    Returns:
        :class:`FineTuneResult` (model in eval mode, tokenizer, per-epoch history with
        ``epoch``, ``train_loss``, ``seconds``, ``examples_per_second``).
    """
    from .config import release_memory, seeded

    texts = check.texts(train_texts, "train_texts")
    n = len(texts)
    y = check.binary_labels(train_labels, "train_labels", n=n)
    w = check.sample_weights(sample_weight, n)
    g = check.group_codes(groups, n=n) if groups is not None else None
    if stratify and g is None:
        raise ValueError("stratify=True needs the groups: pass groups=... (one group code per sentence).")
    epochs, batch_size, lr = _fine_tune_sizes(epochs, batch_size, lr, max_grad_norm)
    with seeded(seed):  # head init and dropout reproducible; the caller's generators untouched
        result = _fine_tune_loop(texts, y, w, g, model_name=model_name, epochs=epochs, lr=lr, batch_size=batch_size,
                                 max_length=max_length, seed=seed, dev=_device(device), extra_loss=extra_loss,
                                 weight_decay=weight_decay, warmup_fraction=warmup_fraction,
                                 max_grad_norm=max_grad_norm, probe=bool(linear_probe_first), stratify=bool(stratify),
                                 progress=progress, on_epoch=on_epoch, log_to=log_to, adapt=adapt)
    release_memory()  # the loop's activations, gradients and optimiser state are garbage now
    return result


def _fine_tune_sizes(epochs: int | None, batch_size: int | None, lr: float | None,
                     max_grad_norm: float | None) -> tuple[int, int, float]:
    """``(epochs, batch_size, lr)``, each defaulting to the run mode's ``finetune_*`` size; checked."""
    from .config import size

    epochs = int(epochs if epochs is not None else size("finetune_epochs"))
    batch_size = int(batch_size if batch_size is not None else size("finetune_batch_size"))
    lr = float(lr if lr is not None else size("finetune_lr"))
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be at least 1.")
    if max_grad_norm is not None and not max_grad_norm > 0:
        raise ValueError(f"max_grad_norm must be positive or None, got {max_grad_norm}.")
    return epochs, batch_size, lr


def _as_tensor(x, dev, dtype=None):
    """``x`` as a tensor on ``dev`` (``None`` stays ``None``)."""
    import torch

    return None if x is None else torch.as_tensor(x, dtype=dtype, device=dev)


def _sync(dev) -> None:
    """Wait for the GPU's queued work (so wall-clock times are real); nothing on the CPU."""
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _batch_loss(model, tok: Tokenized, b: np.ndarray, lengths_np: np.ndarray, yt, wt, gt, extra_loss, step: int, dev):
    """Weighted mean cross-entropy of the batch ``b`` (row indices), plus ``extra_loss`` if given."""
    import torch

    from .config import autocast

    idx = torch.as_tensor(b, device=dev)
    ids, mask = tok.batch(idx, width=lengths_np[b].max())
    with autocast(dev):
        logits = model(input_ids=ids, attention_mask=mask).logits
    logits = logits.float()
    ce = torch.nn.functional.cross_entropy(logits, yt[idx], reduction="none")
    loss = _weighted_mean(ce, wt[idx] if wt is not None else None)
    if extra_loss is not None:
        loss = loss + extra_loss(logits, yt[idx], gt[idx] if gt is not None else None, step)
    return loss


def _optimizer_step(loss, opt, sched, params: list, max_grad_norm: float | None) -> None:
    """Backward pass, gradient clipping to global norm ``max_grad_norm`` (``None``: none), one optimiser and
    scheduler step."""
    import torch

    opt.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    opt.step()
    sched.step()


def _probe_and_adapt(model, tok: Tokenized, y: np.ndarray, w, *, batch_size: int, probe: bool, adapt):
    """LP-FT's linear probe (if ``probe``), then ``adapt(model)`` (if given): the model fine-tuning starts from."""
    if probe:
        linear_probe(model, tok, y, sample_weight=w, batch_size=max(batch_size, 64))
    return adapt(model) if adapt is not None else model


def _epoch_batches(y, g, lengths_np: np.ndarray, batch_size: int, rng: np.random.Generator, *,
                   stratify: bool) -> list[np.ndarray]:
    """One epoch's batches: :func:`stratified_batches` by (group, label) cell, or :func:`length_bucketed_batches`."""
    if stratify:
        return stratified_batches(y, g, batch_size, rng, lengths=lengths_np)
    return length_bucketed_batches(lengths_np, batch_size, rng=rng)


def _close(board) -> None:
    if board is not None:
        board.close()


def _fine_tune_loop(texts, y, w, g, *, model_name, epochs, lr, batch_size, max_length, seed, dev, extra_loss,
                    weight_decay, warmup_fraction, max_grad_norm, probe, stratify, progress, on_epoch, log_to,
                    adapt) -> FineTuneResult:
    """The body of :func:`fine_tune` (inputs already checked; runs inside ``seeded(seed)``)."""
    import torch

    from .models import load_classifier, load_tokenizer
    from .progress import tqdm

    n = len(texts)
    tokenizer = load_tokenizer(model_name)
    model = load_classifier(model_name, num_labels=2, device=dev, seed=seed)
    tok = pretokenize(texts, tokenizer, max_length=max_length, device=dev)
    lengths_np = tok.lengths.cpu().numpy()
    model = _probe_and_adapt(model, tok, y, w, batch_size=batch_size, probe=probe, adapt=adapt)
    yt, wt, gt = _as_tensor(y, dev), _as_tensor(w, dev, torch.float32), _as_tensor(g, dev)
    rng = np.random.default_rng(seed)
    total_steps = epochs * math.ceil(n / batch_size)
    opt, sched = adamw_with_schedule(model, lr=lr, weight_decay=weight_decay, total_steps=total_steps,
                                     warmup_steps=int(warmup_fraction * total_steps))
    params = [p for p in model.parameters() if p.requires_grad]
    history: list[dict] = []
    step, seconds = 0, 0.0
    bar = tqdm(total=total_steps, desc="fine-tuning", disable=not progress, leave=False)
    board = _board(log_to)
    for epoch in range(1, epochs + 1):
        model.train()
        batches = _epoch_batches(y, g, lengths_np, batch_size, rng, stratify=stratify)
        _sync(dev)
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=dev)
        for b in batches:
            loss = _batch_loss(model, tok, b, lengths_np, yt, wt, gt, extra_loss, step, dev)
            _optimizer_step(loss, opt, sched, params, max_grad_norm)
            step += 1
            loss_sum += loss.detach() * len(b)
            bar.update(1)
        _sync(dev)
        dt = time.perf_counter() - t0
        seconds += dt
        history.append({"epoch": epoch, "train_loss": float(loss_sum) / n, "seconds": dt,
                        "examples_per_second": n / dt if dt > 0 else math.nan})  # fmt: skip
        bar.set_postfix(loss=f"{history[-1]['train_loss']:.3f}", ex_per_s=f"{n / dt:.0f}")
        _end_epoch(history[-1], model, on_epoch, board)
    bar.close()
    _close(board)
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
