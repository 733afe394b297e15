"""Plots for notebook 04 (fairness-constrained training): the accuracy-fairness frontier with error bars over
seeds, and the Lagrange multiplier over training. Also reachable as ``helpers.plots.<name>``.
"""

from __future__ import annotations

_METHOD_LABELS_04 = {
    "unconstrained": "unconstrained", "reweighing": "reweighing (pre-processing)",
    "expgrad": "ExponentiatedGradient (fairlearn)", "threshold": "ThresholdOptimizer (fairlearn)",
    "penalty": "penalty CE + λ·gap (sweep over λ)", "lagrangian": "constrained, gap ≤ δ (sweep over δ)",
}


def plot_frontier(results, *, gap: str = "dp", ax=None, annotate: bool = True, title: str | None = None):
    """Accuracy (y) against a fairness gap (x): one curve per swept method, the baselines as points.

    ``results`` is the tidy frame of :func:`helpers.fairness.constrained.sweep` (one row per method, param,
    seed); points are means over seeds with ±1 sd error bars on both axes. ``gap`` is ``"dp"``, ``"eo"`` or ``"ap"``.
    Each curve's points are labelled with their λ or δ. Returns the axes.
    """
    import matplotlib.pyplot as plt

    from .fairness import summarize

    if gap not in ("dp", "eo", "ap"):
        raise ValueError(f"gap must be 'dp', 'eo' or 'ap', got {gap!r}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.8, 4.4))
    s = summarize(results)
    markers = {"unconstrained": "s", "reweighing": "D", "expgrad": "^", "threshold": "v"}
    for method, part in s.groupby("method", sort=False):
        part = part.sort_values("param", ascending=method == "penalty")
        xerr, yerr = part[f"{gap}_sd"].fillna(0), part["accuracy_sd"].fillna(0)
        label = _METHOD_LABELS_04.get(method, method)
        if method in ("penalty", "lagrangian"):
            ax.errorbar(part[f"{gap}_mean"], part["accuracy_mean"], xerr=xerr, yerr=yerr, fmt="o-", capsize=2,
                        lw=1.4, ms=4, label=label)
            if annotate:
                sym = "λ" if method == "penalty" else "δ"
                for _, r in part.iterrows():
                    ax.annotate(f"{sym}={r['param']:g}", (r[f"{gap}_mean"], r["accuracy_mean"]), fontsize=8,
                                xytext=(3, 3), textcoords="offset points", alpha=0.8)
        else:
            ax.errorbar(part[f"{gap}_mean"], part["accuracy_mean"], xerr=xerr, yerr=yerr,
                        fmt=markers.get(method, "o"), ms=8, capsize=3, label=label)
    name = {"dp": "demographic-parity", "eo": "equalized-odds", "ap": "accuracy-parity"}[gap]
    ax.set_xlabel(f"{name} difference on the test split (0 = equal)")
    ax.set_ylabel("accuracy on the test split (share correct)")
    ax.set_title(title or f"The accuracy–fairness frontier ({gap.upper()}); mean ± 1 sd over seeds")
    # below the axes, so it never hides the end of a curve
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    return ax


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
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="center right")
    ax.set_title(title)
    return ax
