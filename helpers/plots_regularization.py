"""Plots for notebook 05 (regularisation): learning curves with the gap shaded, sweeps, lr x decay heatmaps,
reliability diagrams and per-group gaps. Each takes the objects helpers.regularization returns.

Also reachable as ``helpers.plots.<name>``.
"""

from __future__ import annotations

from .plots import _ax


def plot_overfitting_curves(results, *, metric: str = "loss", axes=None, title: str = ""):
    """Train (dashed) and validation (solid) curves per run, the train-validation gap shaded.

    ``results``: ``{name: TrainResult}`` (from ``helpers.regularization.train_mlp``); ``metric``:
    ``"loss"`` (binary cross-entropy, nats) or ``"acc"`` (accuracy). One panel per run, shared y axis.
    A dotted vertical line marks the restored epoch when early stopping was used.
    """
    import matplotlib.pyplot as plt

    if metric not in ("loss", "acc"):
        raise ValueError(f"metric must be 'loss' or 'acc', got {metric!r}.")
    names = list(results)
    if axes is None:
        _, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names) + 0.6, 3.3), sharey=True, squeeze=False)
        axes = axes[0]
    label = "binary cross-entropy (nats)" if metric == "loss" else "accuracy"
    for i, (ax, name) in enumerate(zip(axes, names)):
        h = results[name].history
        ax.plot(h["epoch"], h[f"train_{metric}"], "--", c=f"C{i}", label="train")
        ax.plot(h["epoch"], h[f"val_{metric}"], "-", c=f"C{i}", label="validation")
        ax.fill_between(h["epoch"], h[f"train_{metric}"], h[f"val_{metric}"], color=f"C{i}", alpha=0.15, label="gap")
        if results[name].best_epoch is not None:
            ax.axvline(results[name].best_epoch, ls=":", c="k", lw=1, label="restored epoch")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    axes[0].set_ylabel(label)
    if title:
        axes[0].figure.suptitle(title)
    axes[0].figure.tight_layout()
    return axes


def plot_regularization_sweep(table, param: str, *, ax=None, log: bool = False, title: str = "", xlabel: str = ""):
    """Train and validation accuracy (mean over seeds, error bar = sd) against ``param``; gap shaded."""
    import numpy as np

    ax = _ax(ax)
    g = table.groupby(param)[["train_acc", "val_acc"]].agg(["mean", "std"]).fillna(0.0)
    x = np.asarray(g.index, dtype=float)
    xs = np.where(x == 0, x[x > 0].min() / 3 if (x > 0).any() else 1e-3, x) if log else x
    for col, style, lab in (("train_acc", "--o", "train"), ("val_acc", "-o", "validation")):
        ax.errorbar(xs, g[(col, "mean")], yerr=g[(col, "std")], fmt=style, ms=4, capsize=2, label=lab)
    ax.fill_between(xs, g[("train_acc", "mean")], g[("val_acc", "mean")], alpha=0.15, label="train - val gap")
    if log:
        ax.set_xscale("log")
        if (x == 0).any():
            ax.set_xticks(xs, ["0"] + [f"{v:g}" for v in x[1:]])
    ax.set_xlabel(xlabel or param)
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_decay_heatmaps(grid, *, axes=None, title: str = "Validation accuracy over learning rate x decay"):
    """One heatmap per method (``helpers.regularization.decay_grid``): rows = decay, columns = learning rate,
    colour and text = validation accuracy, the same colour scale for both; the best cell is boxed."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    methods = list(dict.fromkeys(grid["method"]))
    if axes is None:
        _, axes = plt.subplots(1, len(methods), figsize=(4.6 * len(methods), 3.8), squeeze=False,
                               layout="constrained")  # room for each panel's y-label and the shared colour bar
        axes = axes[0]
    vmin, vmax = grid["val_acc"].min(), grid["val_acc"].max()
    for ax, m in zip(axes, methods):
        t = grid[grid["method"] == m].pivot(index="decay", columns="lr", values="val_acc")
        im = ax.imshow(t.values, cmap="viridis", vmin=vmin, vmax=vmax, origin="lower", aspect="auto")
        ax.set_xticks(range(t.shape[1]), [f"{v:g}" for v in t.columns])
        ax.set_yticks(range(t.shape[0]), [f"{v:g}" for v in t.index])
        for (i, j), v in np.ndenumerate(t.values):
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=8, color="w" if v < (vmin + vmax) / 2 else "k")
        i, j = divmod(int(np.nanargmax(t.values)), t.shape[1])
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="r", lw=2))
        ax.set_xlabel("learning rate")
        ax.set_ylabel("L2 strength λ" if "L2" in m else "decay per step λ")
        ax.set_title(m)
        ax.grid(False)
    axes[0].figure.colorbar(im, ax=list(axes), label="validation accuracy")
    axes[0].figure.suptitle(title)
    return axes


def plot_reliability_diagram(tables, *, ax=None, title: str = "Reliability diagram (validation set)"):
    """Observed positive rate against mean predicted P(y=1) per bin, one line per model; marker area
    ~ examples in the bin; the diagonal is perfect calibration. ``tables``: ``{name: reliability_table}``."""
    ax = _ax(ax, figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], ls="--", c="k", lw=1, label="perfectly calibrated")
    for i, (name, t) in enumerate(tables.items()):
        ax.plot(t["confidence"], t["accuracy"], "-", c=f"C{i}", label=name)
        ax.scatter(t["confidence"], t["accuracy"], s=10 + 200 * t["count"] / t["count"].sum(), c=f"C{i}", alpha=0.7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted P(income > 50K) in bin")
    ax.set_ylabel("observed share with income > 50K")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left")
    return ax


def plot_group_gap_bars(gaps, *, ax=None, title: str = "Train - validation accuracy gap by group"):
    """Grouped bars: the gap per group (rows) for each setting (columns) of a DataFrame."""
    ax = _ax(ax)
    gaps.plot.bar(ax=ax, rot=0, width=0.8)
    for cont in ax.containers:
        ax.bar_label(cont, labels=[f"{v:.3f}" for v in cont.datavalues], fontsize=7, padding=2)
    ax.set_xlabel("group (sex)")
    ax.set_ylabel("train acc - validation acc")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.margins(y=0.15)
    return ax
