"""Plots for the workbook's notebooks, one section per notebook (labelled axes, units, titles, legends)."""

from __future__ import annotations

import pandas as pd

# --- 01 ---
# Plots for notebook 01 (pretraining): learning curves, bias absorption, WEAT/SEAT effect sizes.


def plot_pretraining(history, *, baseline: dict | None = None, title: str = "Pretraining a small BERT"):
    """Held-out MLM loss (and train loss) and held-out masked-token accuracy against the step.

    ``history`` is :attr:`helpers.pretraining.PretrainRun.history`; ``baseline`` the dict of
    :func:`helpers.pretraining.unigram_baseline`, drawn as dashed lines. Returns the figure.
    """
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(history["step"], history["heldout_loss"], "o-", label="held-out MLM loss")
    ax1.plot(history["step"].iloc[1:], history["train_loss"].iloc[1:], "s--", alpha=0.7,
             label="training loss (mean since last point)")
    ax2.plot(history["step"], history["heldout_accuracy"], "o-", label="model (held-out)")
    if baseline is not None:
        ax1.axhline(baseline["loss"], ls=":", color="grey", label="unigram-frequency baseline")
        ax2.axhline(baseline["accuracy"], ls=":", color="grey", label="unigram baseline: most frequent token")
    ax1.set(xlabel="training step", ylabel="cross-entropy (nats per masked token)", title="Loss")
    ax2.set(xlabel="training step", ylabel="masked-token accuracy (share)", title="Accuracy", ylim=(0, 1))
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_bias_absorption(table, r: float, ci: tuple[float, float], *, ax=None,
                         title: str = "Model she-ratio against the corpus she-rate, per occupation"):
    """Scatter of corpus she-rate (x) against the model's P(she)/(P(she)+P(he)) (y), one point per
    occupation (size ~ number of sentences), with the diagonal y = x and Pearson r in the title."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 5))
    size = 20 + 180 * np.sqrt(table["n"] / table["n"].max())
    ax.scatter(table["corpus_she_rate"], table["model_she_ratio"], s=size, alpha=0.7, label="occupation")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="model = corpus")
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel='corpus share of "she" (1994 CPS records)',
           ylabel="model P(she) / (P(she) + P(he))",
           title=f"{title}\nPearson r = {r:.2f} (95% bootstrap CI {ci[0]:.2f} to {ci[1]:.2f})")
    ax.legend(loc="upper left", fontsize=8)
    ax.figure.canvas.draw()  # the legend's final place, which labels must avoid
    place_labels(ax, table["corpus_she_rate"], table["model_she_ratio"], table.index, marker_sizes=size,
                 priority=table["n"], avoid=[ax.get_legend()])
    return ax


def place_labels(ax, x, y, names, *, marker_sizes=None, priority=None, avoid=(), fontsize: float = 7) -> list[str]:
    """Label each point (``x``, ``y`` in data coordinates) with its name where the text overlaps no other label,
    no point's marker, nothing in ``avoid`` (e.g. the legend) and stays inside the axes: the first free place on
    rings of growing distance around the point, with a thin leader line when it is not next to its point. Points
    are labelled in order of ``priority`` (largest first); a point with no free place is left unlabelled and named
    in a note under the axes. ``marker_sizes``: the scatter sizes ``s`` (points²). Returns the unlabelled names.
    Place labels after the figure's layout is final (the test is made in display pixels)."""
    import numpy as np

    x, y, names = np.asarray(x, float), np.asarray(y, float), [str(n) for n in names]
    s = np.full(len(x), 36.0) if marker_sizes is None else np.asarray(marker_sizes, float)
    order = np.argsort(-np.asarray(priority, float), kind="stable") if priority is not None else range(len(x))
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    px = ax.transData.transform(np.column_stack([x, y]))
    radius = np.sqrt(s) / 2 * fig.dpi / 72  # marker radius in pixels
    frame = ax.get_window_extent(renderer)
    taken = [a.get_window_extent(renderer) for a in avoid if a is not None]
    directions = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
    align = {-1: "right", 0: "center", 1: "left"}, {-1: "top", 0: "center", 1: "bottom"}
    missing = []
    for i in order:
        placed = None
        for ring, step in enumerate((3, 12, 24, 38, 54)):
            for dx, dy in directions:
                gap = (radius[i] * 72 / fig.dpi + step) / np.hypot(dx, dy)  # from the marker's edge, in points
                t = ax.annotate(names[i], (x[i], y[i]), xytext=(dx * gap, dy * gap), textcoords="offset points",
                                fontsize=fontsize, ha=align[0][dx], va=align[1][dy])
                box = t.get_window_extent(renderer)
                clear = (frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
                         and not any(box.overlaps(b) for b in taken)
                         and not any(box.x0 - r < cx < box.x1 + r and box.y0 - r < cy < box.y1 + r
                                     for (cx, cy), r in zip(px, radius)))
                t.remove()
                if clear:
                    placed_box = box
                    placed = ax.annotate(names[i], (x[i], y[i]), xytext=(dx * gap, dy * gap),
                                         textcoords="offset points", fontsize=fontsize, ha=align[0][dx],
                                         va=align[1][dy], arrowprops=None if ring == 0 else dict(
                                             arrowstyle="-", lw=0.6, color="0.35", shrinkA=1, shrinkB=radius[i] * 72 / fig.dpi))
                    break
            if placed is not None:
                break
        if placed is None:
            missing.append(names[i])
        else:
            taken.append(placed_box)  # the text alone, not its leader line
    if missing:
        ax.annotate("not labelled (crowded): " + ", ".join(missing), (0, 0), xycoords="axes fraction",
                    xytext=(0, -42), textcoords="offset points", fontsize=fontsize, va="top")
    return missing


def plot_weat(results, *, ax=None, title: str = "WEAT / SEAT effect sizes on the bundled MiniLM"):
    """Horizontal bars of effect size d per test and method (WEAT words, SEAT sentences), with two reference
    markers per test: Caliskan et al.'s (2017) WEAT d on GloVe word vectors (their Table 1) and the human Implicit
    Association Test d of the study each test replicates (none for WEAT 4 and 5, whose original finding is a field
    experiment). Bars whose permutation p-value (column ``p_value``, if present) is >= 0.05 are faded and hatched.
    Tick labels keep the test number. ``results``: rows of :func:`helpers.pretraining.run_weat_tests` (concatenated)."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Patch

    wide = results.pivot_table(index="test", columns="method", values="effect_size", sort=False)
    refs = results.groupby("test", sort=False)[["glove_d", "iat_d"]].first().reindex(wide.index).astype(float)
    p = (results.pivot_table(index="test", columns="method", values="p_value", sort=False).reindex(
        index=wide.index, columns=wide.columns) if "p_value" in results else None)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.7 * len(wide) + 1.5))
    y = np.arange(len(wide))
    h = 0.8 / wide.shape[1]
    for j, col in enumerate(wide.columns):
        bars = ax.barh(y + j * h, wide[col], height=h, label=col)
        for bar, weak in zip(bars, (p[col] >= 0.05) if p is not None else [False] * len(wide)):
            if weak:  # not significant at 0.05 (one-sided permutation test): faded and hatched
                bar.set_alpha(0.35)
                bar.set_hatch("//")
    mid = y + 0.4 - h / 2
    ax.scatter(refs["glove_d"], mid, marker="|", s=200, color="black", label="WEAT on GloVe (Caliskan et al. 2017)")
    ax.scatter(refs["iat_d"], mid, marker="x", s=40, color="dimgrey", label="human IAT (original finding)")
    labels = [t.replace(":", "\n", 1) if ":" in t else t for t in wide.index]  # keep the test number
    ax.set_yticks(mid, labels, fontsize=8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.invert_yaxis()
    ax.set(xlabel="effect size d (in pooled standard deviations of the target words' scores)", title=title)
    handles, _ = ax.get_legend_handles_labels()
    if p is not None and bool((p >= 0.05).to_numpy().any()):
        handles.append(Patch(facecolor="lightgrey", hatch="//", alpha=0.5, label="p >= 0.05 (faded)"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: never over a marker
    return ax


# --- 02/03 ---
# Plots for notebooks 02 (data-bias audit) and 03 (fine-tuning and fairness metrics).


def _ax(ax=None, figsize=(6.4, 3.6)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_group_bars(values, *, ax=None, title: str = "", xlabel: str = "", reference: float | None = None,
                    reference_label: str = "overall", fmt: str = "{:.2f}"):
    """Horizontal bars, one per group (a Series, or a DataFrame = one bar colour per column).

    ``reference`` draws a dashed vertical line (e.g. the overall base rate). Each bar is labelled.
    """
    import pandas as pd

    df = values.to_frame() if isinstance(values, pd.Series) else values
    df = df.copy()
    df.index = [" x ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in df.index]
    ax = _ax(ax, figsize=(6.4, 0.35 * len(df) * max(1, df.shape[1]) + 1.2))
    df.iloc[::-1].plot.barh(ax=ax, width=0.8, legend=False)
    for cont in ax.containers:
        ax.bar_label(cont, labels=[fmt.format(v) for v in cont.datavalues], fontsize=8, padding=2)
    if reference is not None:
        ax.axvline(reference, ls="--", c="k", lw=1, label=reference_label)
    if reference is not None or df.shape[1] > 1:
        handles, labels = ax.get_legend_handles_labels()
        if df.shape[1] == 1:  # one bar series: the legend only needs the reference line
            handles, labels = handles[:1], labels[:1]
        else:
            handles, labels = handles[::-1], labels[::-1]
        ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("group")
    ax.set_title(title)
    ax.margins(x=0.15)
    return ax


def plot_representation(table, *, ax=None, title: str = "Who is in the data"):
    """Share of the data set per group (from ``helpers.fairness.metrics.representation``)."""
    return plot_group_bars(table["share"] * 100, ax=ax, title=title, xlabel="share of records (%)", fmt="{:.1f}")


def plot_k_anonymity(k, *, ax=None, title: str = "How many records share your quasi-identifiers"):
    """Histogram of equivalence-class sizes k (log-spaced bins): the fraction of records per k range.

    Records with k = 1 are unique: anyone who knows those attributes finds them (Sweeney 2002).
    """
    import numpy as np

    k = np.asarray(k)
    ax = _ax(ax)
    edges = np.unique(np.concatenate([[1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000], [k.max() + 1]]))
    edges = edges[edges <= k.max() + 1]
    counts, _ = np.histogram(k, bins=edges)
    labels = [f"{a}" if b - a == 1 else f"{a}-\n{b - 1}" for a, b in zip(edges[:-1], edges[1:])]  # 2 short lines
    bars = ax.bar(range(len(counts)), counts / len(k) * 100, color=["C3"] + ["C0"] * (len(counts) - 1))
    ax.bar_label(bars, labels=[f"{c / len(k) * 100:.1f}" for c in counts], fontsize=8)
    ax.set_xticks(range(len(counts)), labels, fontsize=8)
    ax.set_xlabel("equivalence-class size k (records sharing the same quasi-identifiers)")
    ax.set_ylabel("records (%)")
    ax.set_title(title)
    return ax


def plot_proxies(table, *, title: str = "Which columns give sex away"):
    """Two panels from ``proxy_table``: AUC of each column alone, and its mutual information share (bars coloured
    by ``mi_estimator``, the estimate used, when the table has that column)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 0.3 * len(table) + 1.5), sharey=True)
    t = table.iloc[::-1]
    a.barh(t.index, t["auc"], color="C0")
    a.axvline(0.5, ls="--", c="k", lw=1, label="chance (0.5)")
    a.set_xlim(0.4, 1.0)
    a.set_xlabel("ROC AUC predicting the attribute (cross-validated)")
    a.set_ylabel("column")
    a.legend(fontsize=8)
    kinds = t["mi_estimator"] if "mi_estimator" in t else pd.Series("", index=t.index)
    colors = {"counts": "C1", "binned counts": "C2", "k-NN": "C4", "": "C1"}
    for kind in sorted(set(kinds), key=list(colors).index):
        color = colors[kind]
        share = (t["mi_share"] * 100).where(kinds == kind, 0)
        b.barh(t.index, share, color=color, label=f"estimate: {kind}" if kind else None)
    if kinds.any():
        b.legend(fontsize=8)
    b.set_xlabel("mutual information / H(attribute) (%)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_base_rates_compared(rates, *, ess=None, ax=None, title: str = "P(income > 50K | group) after mitigation"):
    """Grouped bars: base rate per group (rows) under each data version (columns of ``rates``).

    ``ess`` (version -> effective sample size) is added to the legend labels.
    """
    df = rates.copy()
    if ess is not None:
        df.columns = [f"{c} (n_eff = {ess[c]:,.0f})" for c in df.columns]
    return plot_group_bars(df, ax=ax, title=title, xlabel="base rate P(y = 1 | group)")


def plot_group_metrics(tables, metrics=("selection_rate", "tpr", "fpr", "accuracy"), *,
                       title: str = "How each model treats each group"):
    """One panel per metric; in each, one bar per model and group (``tables``: model -> group_metrics frame)."""
    import textwrap

    import matplotlib.pyplot as plt
    import pandas as pd

    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.4), sharey=False)
    for ax, m in zip(axes, metrics):
        df = pd.DataFrame({name: t[m] for name, t in tables.items()})
        df.index = [str(i) for i in df.index]
        if len(tables) <= 2:  # model names on two or three short lines; more names are slanted below instead
            df.columns = [textwrap.fill(str(c), 13, break_long_words=False) for c in df.columns]
        df.T.plot.bar(ax=ax, rot=0, width=0.8, legend=ax is axes[0])
        ax.tick_params(axis="x", labelsize=8)
        if len(tables) > 2:  # side by side, three or more names collide: slant them
            plt.setp(ax.get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor")
        names = {"tpr": "true positive rate", "fpr": "false positive rate"}
        ax.set_title(names.get(m, m.replace("_", " ")))
        ax.set_xlabel("model")
        ax.set_ylabel("fraction of the group")
        ax.set_ylim(0, 1)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_calibration_by_group(y_true, y_prob, groups, *, bins: int = 10, ax=None,
                              title: str = "Calibration per group"):
    """Reliability diagram per group: observed P(y=1) against mean predicted probability in each bin."""
    import numpy as np
    import pandas as pd

    ax = _ax(ax, figsize=(4.6, 4.2))
    df = pd.DataFrame({"y": np.asarray(y_true), "p": np.asarray(y_prob), "g": np.asarray(groups, dtype=object)})
    df["bin"] = np.minimum((df["p"] * bins).astype(int), bins - 1)
    for g, part in df.groupby("g"):
        cal = part.groupby("bin").agg(p=("p", "mean"), y=("y", "mean"), n=("y", "size"))
        cal = cal[cal["n"] >= 5]
        ax.plot(cal["p"], cal["y"], "o-", label=f"{g} (n = {len(part)})")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfectly calibrated")
    ax.set_xlabel("mean predicted P(income > 50K)")
    ax.set_ylabel("observed fraction with income > 50K")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_accuracy_vs_gap(summary, *, gap: str = "dp_difference", ax=None,
                         title: str = "Accuracy against the fairness gap"):
    """Scatter of models (rows of ``summary``) with accuracy on x and ``gap`` on y (error bars if ``*_sd``)."""
    ax = _ax(ax, figsize=(5, 3.8))
    for name, row in summary.iterrows():
        xerr, yerr = (0.0 if pd.isna(row.get(k)) else float(row[k]) for k in ("accuracy_sd", f"{gap}_sd"))  # one seed: none
        ax.errorbar(row["accuracy"], row[gap], xerr=xerr, yerr=yerr, fmt="o", capsize=3, label=str(name))
    ax.set_xlabel("accuracy on the test split")
    ax.set_ylabel(gap.replace("_", " ") + " (sex)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


# --- 07 ---
# Plots for notebook 07 (robustness, privacy, governance): attack success vs budget, membership-inference losses.


def plot_attack_success(curves, *, ax=None, title: str = "Word-substitution attack: success rate vs budget"):
    """One line per model: ``curves = {label: {k: success rate}}`` (from ``robustness.success_curve``)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.6))
    for label, curve in curves.items():
        ks = sorted(curve)
        ax.plot(ks, [curve[k] for k in ks], marker="o", label=label)
    ax.set_xlabel("budget k (words substituted, at most)")
    ax.set_ylabel("attack success rate (fraction flipped)")
    ax.set_xticks(sorted({k for c in curves.values() for k in c}))
    ax.set_ylim(0, max(0.05, 1.15 * max((v for c in curves.values() for v in c.values()), default=0)))
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_membership_losses(losses, *, ax=None, bins: int = 30,
                           title: str = "Loss on members (training) vs non-members (unseen)"):
    """Histograms of per-example cross-entropy: ``losses = {label: (member_losses, nonmember_losses)}``."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, axes = plt.subplots(1, len(losses), figsize=(4.2 * len(losses), 3.4), squeeze=False, sharey=True)
        axes = axes[0]
    else:
        axes = np.atleast_1d(ax)
    for a, (label, (member, nonmember)) in zip(axes, losses.items()):
        hi = float(np.quantile(np.r_[member, nonmember], 0.99))
        edges = np.linspace(0, max(hi, 1e-3), bins + 1)
        a.hist(np.clip(member, 0, hi), bins=edges, alpha=0.6, density=True, label="members (trained on)")
        a.hist(np.clip(nonmember, 0, hi), bins=edges, alpha=0.6, density=True, label="non-members")
        a.set_xlabel("cross-entropy loss (nats)")
        a.set_title(label, fontsize=10)
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=8)
    axes[0].figure.suptitle(title)
    axes[0].figure.tight_layout()
    return axes


#: Notebook 04's plots live in :mod:`helpers.plots_fairness`, 05's in :mod:`helpers.plots_regularization`, 06's in
#: :mod:`helpers.plots_explain`;
#: ``plots.<name>`` finds them there.
_ELSEWHERE = {**dict.fromkeys(('plot_frontier', 'plot_frontiers', 'plot_multiplier'), "plots_fairness"),
              **dict.fromkeys(('plot_overfitting_curves', 'plot_regularization_sweep', 'plot_decay_heatmaps', 'plot_reliability_diagram', 'plot_group_gap_bars'), "plots_regularization"),
              **dict.fromkeys(('plot_attribution_bars', 'attribution_html', 'shap_text_html', 'plot_deletion_curves', 'plot_token_importance'), "plots_explain")}


def __getattr__(name: str):
    if name in _ELSEWHERE:
        import importlib

        return getattr(importlib.import_module(f"{__package__}.{_ELSEWHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_ELSEWHERE])
