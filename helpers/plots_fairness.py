"""Plots for notebook 04 (fairness-constrained training): the accuracy-fairness frontier with error bars over
seeds, and the Lagrange multiplier over training. Also reachable as ``helpers.plots.<name>``.
"""

from __future__ import annotations

_METHOD_LABELS_04 = {
    "unconstrained": "unconstrained", "reweighing": "reweighing (pre-processing)",
    "expgrad": "ExponentiatedGradient (fairlearn)", "threshold": "ThresholdOptimizer (fairlearn)",
    "penalty": "penalty CE + λ·gap (sweep over λ)", "lagrangian": "constrained, gap ≤ δ (sweep over δ)",
}


def plot_frontier(results, *, gap: str = "dp", ax=None, annotate: bool = True, title: str | None = None,
                  legend: bool = True, majority: float | None = None):
    """Accuracy (y) against a fairness gap (x): one curve per swept method, the baselines as points.

    ``results`` is the tidy frame of :func:`helpers.fairness.constrained.sweep` (one row per method, param,
    seed); points are means over seeds with ±1 sd error bars on both axes (none for one seed). ``gap`` is
    ``"dp"``, ``"eo"`` or ``"ap"``. Each curve's points are labelled with their λ or δ, except a label that would
    cover one already drawn (call :func:`plot_frontiers` for several panels with one legend). ``majority``: the
    accuracy of predicting the majority class on the test split, drawn as a dotted line (a point below it is
    dominated by predicting one class for everyone). Returns the axes.
    """
    import matplotlib.pyplot as plt

    from .fairness import summarize

    if gap not in ("dp", "eo", "ap"):
        raise ValueError(f"gap must be 'dp', 'eo' or 'ap', got {gap!r}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.8, 4.4))
    s = summarize(results)
    several = results["seed"].nunique() > 1 if "seed" in results else False
    markers = {"unconstrained": "s", "reweighing": "D", "expgrad": "^", "threshold": "v"}
    for method, part in s.groupby("method", sort=False):
        part = part.sort_values("param", ascending=method == "penalty")
        xerr, yerr = part[f"{gap}_sd"].fillna(0), part["accuracy_sd"].fillna(0)
        label = _METHOD_LABELS_04.get(method, method)
        if method in ("penalty", "lagrangian"):
            ax.errorbar(part[f"{gap}_mean"], part["accuracy_mean"], xerr=xerr, yerr=yerr, fmt="o-", capsize=2,
                        lw=1.4, ms=4, label=label)
        else:
            ax.errorbar(part[f"{gap}_mean"], part["accuracy_mean"], xerr=xerr, yerr=yerr,
                        fmt=markers.get(method, "o"), ms=8, capsize=3, label=label)
    if majority is not None:
        ax.axhline(majority, ls=":", lw=1.2, color="0.35", label=f"predict the majority class ({majority:.3f}): "
                                                                   "points below are dominated")
    name = {"dp": "demographic-parity", "eo": "equalized-odds", "ap": "accuracy-parity"}[gap]
    ax.set_xlabel(f"{name} difference on the test split (0 = equal)")
    ax.set_ylabel("accuracy on the test split (share correct)")
    spread = "mean ± 1 sd over seeds" if several else "one seed"
    ax.set_title(title or f"Accuracy–fairness frontier ({gap.upper()}); {spread}", fontsize=10)
    if legend:  # below the axes, so it never hides the end of a curve
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    if annotate:
        _label_points(ax, s, gap)
    return ax


def _drop_overlapping(ax, labels) -> None:
    """Hide each point label that would overlap a label kept before it (at the figure's current layout)."""
    if not labels:
        return
    renderer = ax.figure.canvas.get_renderer()
    kept = []
    for t in labels:
        box = t.get_window_extent(renderer)
        if any(box.overlaps(k) for k in kept):
            t.set_visible(False)
        else:
            kept.append(box)


def plot_frontiers(sweeps, *, width: float = 5.6, height: float = 4.4, majority: float | None = None):
    """One :func:`plot_frontier` panel per gap (``sweeps``: gap -> :func:`sweep` frame) and one legend for all,
    below the panels; ``majority`` as in :func:`plot_frontier`. Returns the figure."""
    import matplotlib.pyplot as plt

    from .fairness import summarize

    fig, axes = plt.subplots(1, len(sweeps), figsize=(width * len(sweeps), height), squeeze=False)
    for ax, (c, frame) in zip(axes[0], sweeps.items()):
        plot_frontier(frame, gap=c, ax=ax, annotate=False, legend=False, majority=majority)
    handles = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(3, len(handles)), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.1 if len(handles) > 3 else 0.06, 1, 1))
    for ax, (c, frame) in zip(axes[0], sweeps.items()):  # labels last, at the final layout
        _label_points(ax, summarize(frame), c)
    return fig


def _label_points(ax, s, gap: str) -> None:
    """Label each swept point with its δ (upper right of the point) or λ (lower left); ``s``: :func:`summarize`."""
    labels, (lo, hi) = [], ax.get_xlim()
    for method, sym, off, ha in (("lagrangian", "δ", (4, 3), "left"), ("penalty", "λ", (-4, -4), "right")):
        for _, r in s[s["method"] == method].iterrows():
            x = r[f"{gap}_mean"]
            near_edge = (x - lo) > 0.85 * (hi - lo) if ha == "left" else (x - lo) < 0.15 * (hi - lo)
            side = ("right", (-off[0], off[1])) if near_edge and ha == "left" else (
                ("left", (-off[0], off[1])) if near_edge else (ha, off))
            labels.append(ax.annotate(f"{sym}={r['param']:g}", (x, r["accuracy_mean"]), fontsize=8, xytext=side[1],
                                      textcoords="offset points", ha=side[0], va="center", alpha=0.85))
    _drop_overlapping(ax, labels)


def plot_multiplier(history, *, delta: float, ax=None, title: str = "Dual ascent: the multiplier over training"):
    """The Lagrange multiplier λ (left axis) and the running gap estimate with the tolerance δ (right axis)
    against the training step; ``history`` is ``LagrangianConstraint.history_frame()``. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.8, 3.4))
    ax.plot(history["step"], history["lam"], color="C0", label="multiplier λ")
    ax.set_xlabel("training step (one mini-batch each)")
    ax.set_ylabel("λ (no units)", color="C0")
    ax2 = ax.twinx()
    ax2.plot(history["step"], history["gap_estimate"], color="C3", alpha=0.7, label="running gap estimate ĝ")
    ax2.axhline(delta, color="C3", ls="--", lw=1, label=f"tolerance δ = {delta:g}")
    ax2.set_ylabel("gap of hard decisions (training batches)", color="C3")
    ax2.grid(False)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="upper center",  # below: hides no line
              bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    ax.set_title(title)
    return ax
