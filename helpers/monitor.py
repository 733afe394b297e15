"""Monitoring: training curves as TensorBoard event files, and a deployment monitor that raises alerts.

**Training.** :func:`helpers.training.train_head` and :func:`helpers.training.fine_tune` take ``on_epoch``
(a callback ``(epoch, model) -> dict`` of extra numbers, e.g. :func:`group_metrics_callback`) and ``log_to``
(a run name): every epoch's row of the history - loss, accuracy, per-group metrics - goes to
``build_dir()/runs/<run name>`` through ``torch.utils.tensorboard.SummaryWriter``. Open them with
``tensorboard --logdir build/runs`` (or ``%load_ext tensorboard`` / ``%tensorboard --logdir build/runs`` in
Jupyter); :func:`plot_history` draws the same curves inline with matplotlib, so Colab and Binder need no server.

**Deployment.** :func:`deployment_monitor` scores a model on successive batches of new data and compares every
group's selection rate :math:`P(\\hat y = 1 \\mid g)` and error rate :math:`P(\\hat y \\ne y \\mid g)` with a
reference (the rates on data the model was validated on). A batch raises an alert for group :math:`g` when a rate
moves by more than ``bound`` in absolute terms, and by more than ``z`` binomial standard errors
:math:`\\sqrt{p(1-p)/n_{g}}` of the batch (so a small group's noise alone does not page anyone).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd


def runs_dir() -> Path:
    """``build_dir()/runs``: where the event files go."""
    from .config import build_dir

    return build_dir() / "runs"


def _tag(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_./-]", "_", key.replace(".", "/"))


class TensorBoardLog:
    """One TensorBoard run under :func:`runs_dir` (``name`` becomes a folder): ``log(step, row)`` writes every
    finite number of ``row`` as a scalar, the key's dots turned into TensorBoard's "/" sections
    (``accuracy.Female`` -> ``accuracy/Female``). Use as a context manager or call :meth:`close`."""

    def __init__(self, name: str):
        from torch.utils.tensorboard import SummaryWriter

        if not name or not isinstance(name, str):
            raise ValueError("Give the run a name, e.g. log_to='07_head'.")
        self.path = runs_dir() / name
        self.path.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(log_dir=str(self.path))

    def log(self, step: int, row: dict) -> None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value):
                self.writer.add_scalar(_tag(key), float(value), global_step=int(step))

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_events(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files under ``path``: ``tag -> [(step, value), ...]`` (TensorBoard's
    ``EventAccumulator``, the reader behind its dashboard)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def group_metrics_callback(X_val, y_val, groups_val, *, predict: Callable | None = None,
                           threshold: float = 0.5) -> Callable:
    """An ``on_epoch`` callback: validation ``val_accuracy`` and, per group, ``val_accuracy.<g>`` and
    ``val_selection_rate.<g>`` of the model after each epoch. ``predict(model, X_val) -> P(y=1)`` defaults to
    :func:`helpers.training.predict_head` (heads on features); for a fine-tuned classifier pass e.g.
    ``lambda m, texts: predict_proba(m, tokenizer, texts)[:, 1]``."""
    from .training import predict_head

    y = np.asarray(y_val).astype(int)
    g = np.asarray(groups_val, dtype=object)
    if len(y) != len(g):
        raise ValueError(f"{len(y)} labels but {len(g)} group values.")
    predict = predict or predict_head

    def on_epoch(epoch: int, model) -> dict:
        was_training = getattr(model, "training", False)
        pred = (np.asarray(predict(model, X_val)) >= threshold).astype(int)
        if was_training:
            model.train()
        row = {"val_accuracy": float((pred == y).mean())}
        for k in sorted(set(g)):
            row[f"val_accuracy.{k}"] = float((pred[g == k] == y[g == k]).mean())
            row[f"val_selection_rate.{k}"] = float(pred[g == k].mean())
        return row

    return on_epoch


def _loss_and_rate_columns(df: pd.DataFrame, keys: Iterable[str] | None) -> tuple[list[str], list[str]]:
    """The columns to draw (``keys`` or all, each with a number): names with "loss", and those with "accuracy"/"rate"."""
    cols = [c for c in (keys or df.columns) if c in df.columns and df[c].notna().any()]
    losses = [c for c in cols if "loss" in c]
    return losses, [c for c in cols if c not in losses and _is_rate(c)]


def _is_rate(column: str) -> bool:
    return "accuracy" in column or "rate" in column


def plot_history(history: Sequence[dict], *, keys: Iterable[str] | None = None, title: str = "Training curves"):
    """The per-epoch history of a training loop as inline curves: losses left, rates right (matplotlib)."""
    import matplotlib.pyplot as plt

    df = pd.DataFrame(list(history)).set_index("epoch")
    losses, rates = _loss_and_rate_columns(df, keys)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, group, label in ((axes[0], losses, "loss"), (axes[1], rates, "rate")):
        for c in group:
            ax.plot(df.index, df[c], marker="o" if len(df) < 15 else None, label=c)
        ax.set(xlabel="epoch", ylabel=label)
        if group:
            ax.legend(frameon=False, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def group_rates(y_true, y_pred, groups) -> pd.DataFrame:
    """Per group: ``n``, ``selection_rate`` P(y_hat = 1 | g) and ``error_rate`` P(y_hat != y | g)."""
    df = pd.DataFrame({"y": np.asarray(y_true).astype(int), "p": np.asarray(y_pred).astype(int),
                       "g": np.asarray(groups, dtype=object)})  # fmt: skip
    df["err"] = (df.p != df.y).astype(float)
    out = df.groupby("g").agg(n=("p", "size"), selection_rate=("p", "mean"), error_rate=("err", "mean"))
    out.index.name = "group"
    return out


def deployment_monitor(batches: Sequence[tuple], reference: pd.DataFrame, *, bound: float = 0.1,
                       z: float = 3.0) -> pd.DataFrame:
    """Check successive batches against reference rates.

    ``batches``: ``(name, y_true, y_pred, groups)`` per batch; ``reference``: :func:`group_rates` on the
    validation data. One row per batch x group x metric with the batch ``value``, the ``reference``, the
    ``change``, the batch ``n`` and ``alert`` = |change| > ``bound`` and |change| > z * sqrt(p(1-p)/n), p the
    reference rate. A group missing from the reference raises ``ValueError``.
    """
    rows = []
    for name, y_true, y_pred, groups in batches:
        rates = group_rates(y_true, y_pred, groups)
        for g, r in rates.iterrows():
            if g not in reference.index:
                raise ValueError(f"Group {g!r} of batch {name!r} has no reference rates.")
            for metric in ("selection_rate", "error_rate"):
                ref = float(reference.loc[g, metric])
                change = float(r[metric]) - ref
                se = math.sqrt(max(ref * (1 - ref), 1e-12) / r["n"])
                rows.append({"batch": name, "group": g, "metric": metric, "value": float(r[metric]), "reference": ref,
                             "change": change, "n": int(r["n"]), "alert": abs(change) > bound and abs(change) > z * se})
    return pd.DataFrame(rows)


def alerts(report: pd.DataFrame) -> list[str]:
    """The alert lines of a :func:`deployment_monitor` report, readable: one sentence per alert."""
    return [f"ALERT batch {r.batch}: {r.metric.replace('_', ' ')} of {r.group} moved {r.change:+.3f} "
            f"({r.reference:.3f} -> {r.value:.3f}, n = {r.n})" for r in report[report.alert].itertuples()]
