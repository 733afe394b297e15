"""Plots as a student sees them: no tick label on another, no label over a neighbouring panel, no legend over data.

Each figure is drawn with the Agg renderer and the text extents matplotlib computes are compared.
"""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers import plots  # noqa: E402


def _texts(labels, renderer):
    return [t.get_window_extent(renderer) for t in labels if t.get_visible() and t.get_text().strip()]


def _shown(labels, locs, lim):
    """The tick labels matplotlib draws: those whose tick lies inside the axis' view limits."""
    lo, hi = sorted(lim)
    return [t for t, loc in zip(labels, locs) if lo - 1e-9 * abs(hi - lo) <= loc <= hi + 1e-9 * abs(hi - lo)]


def layout_problems(fig) -> list[str]:
    """Overlapping tick labels, axis labels or tick labels over another panel, legends over plotted points."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems = []
    axes = [ax for ax in fig.axes if ax.get_visible()]
    for n, ax in enumerate(axes):
        ticks = {"x": _shown(ax.get_xticklabels(), ax.get_xticks(), ax.get_xlim()),
                 "y": _shown(ax.get_yticklabels(), ax.get_yticks(), ax.get_ylim())}
        for which, labels in ticks.items():
            for a, b in itertools.combinations(_texts(labels, renderer), 2):
                if a.overlaps(b):
                    problems.append(f"axes {n}: {which} tick labels overlap")
        own = _texts([ax.xaxis.label, ax.yaxis.label, *ticks["x"], *ticks["y"]], renderer)
        for m, other in enumerate(axes):
            if other is not ax and any(t.overlaps(other.get_window_extent(renderer)) for t in own):
                problems.append(f"axes {n}: a label lies over axes {m}")
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            box = legend.get_window_extent(renderer)
            for line in ax.lines:
                pts = line.get_transform().transform(np.column_stack(line.get_data()).astype(float))
                if any(box.contains(x, y) for x, y in pts if np.isfinite(x) and np.isfinite(y)):
                    problems.append(f"axes {n}: the legend hides a point of {line.get_label()!r}")
    return problems


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_the_checker_finds_overlaps():
    """The check itself: crowded tick labels and a legend on top of the data are found."""
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 5], [0, 1], label="a line")
    ax.plot([2.5], [0.5], "o", label="_point under the legend")
    ax.set_xticks(range(6), [f"a long label {i}" for i in range(6)])
    ax.legend(loc="center", bbox_to_anchor=(0.5, 0.5))
    found = layout_problems(fig)
    assert any("tick labels overlap" in p for p in found) and any("legend hides" in p for p in found)


def test_who_pays_model_names_do_not_overlap():
    groups = ["Female", "Male"]
    table = pd.DataFrame({"selection_rate": [0.1, 0.3], "tpr": [0.5, 0.7], "fpr": [0.02, 0.1],
                          "accuracy": [0.9, 0.8]}, index=groups)
    tables = {"unconstrained": table, "constrained DP≤0.02": table * 0.9, "constrained EO≤0.03": table * 0.95}
    fig = plots.plot_group_metrics(tables, title="Who pays: per-group rates before and after the constraint")
    assert layout_problems(fig) == []


def test_decay_heatmaps_labels_stay_in_their_panel():
    rows = [{"method": m, "lr": lr, "decay": d, "val_acc": 0.7 + 0.01 * i}
            for m in ("Adam+L2", "AdamW") for i, (lr, d) in enumerate(itertools.product(
                (1e-3, 3e-3, 1e-2, 3e-2), (1e-3, 1e-2, 1e-1, 1.0, 10.0)))]
    axes = plots.plot_decay_heatmaps(pd.DataFrame(rows))
    assert layout_problems(axes[0].figure) == []


def test_frontier_legend_hides_no_point():
    rows = []
    for seed in (0, 1):
        for i, lam in enumerate((0.25, 0.5, 1.0, 2.0, 4.0, 8.0)):
            rows.append(dict(method="penalty", constraint="dp", param=lam, seed=seed,
                             accuracy=0.82 - 0.01 * i, dp=0.18 - 0.03 * i, eo=0.1))
        for i, delta in enumerate((0.15, 0.1, 0.05, 0.03, 0.02, 0.0)):
            rows.append(dict(method="lagrangian", constraint="dp", param=delta, seed=seed,
                             accuracy=0.815 - 0.008 * i, dp=delta + 0.01, eo=0.1))
        for method, acc, dp in (("unconstrained", 0.83, 0.19), ("reweighing", 0.82, 0.12),
                                ("expgrad", 0.80, 0.03), ("threshold", 0.79, 0.02)):
            rows.append(dict(method=method, constraint="dp", param=np.nan, seed=seed, accuracy=acc, dp=dp, eo=0.1))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    plots.plot_frontier(pd.DataFrame(rows), gap="dp", ax=axes[0])
    plots.plot_frontier(pd.DataFrame(rows), gap="dp", ax=axes[1])
    plt.tight_layout()
    assert layout_problems(fig) == []
    labels = [t for t in axes[0].texts if t.get_text().startswith(("λ", "δ"))]
    assert labels and min(t.get_fontsize() for t in labels) >= 8


def test_shap_text_plot_has_colours_a_browser_reads_and_no_maths():
    """shap.plots.text under NumPy 2 writes rgb(np.float64(...)); ours has plain numbers and is kept from MathJax."""
    import re

    import shap

    exp = shap.Explanation(values=np.array([0.2, -0.1, 0.05]), base_values=0.5,
                           data=np.array(["capital gain: ", "$0; capital loss: ", "$2,392"]))
    html = plots.shap_text_html(exp)
    colours = re.findall(r"rgba?\(([^()]*)\)", html)
    assert colours and all(re.fullmatch(r"[\d.,\s]+", c) for c in colours), colours[:5]
    assert html.startswith("<div class='tex2jax_ignore'>") and "$2,392" in html


def _race_rates():
    groups = ["White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"]
    return pd.DataFrame({"original": [0.26, 0.12, 0.28, 0.12, 0.09], "reweighed": [0.24] * 5}, index=groups)


@pytest.mark.parametrize("draw", [
    lambda: plots.plot_group_bars(_race_rates(), reference=0.24, title="base rates").figure,
    lambda: plots.plot_base_rates_compared(_race_rates(), ess={"original": 3000, "reweighed": 2712.4}).figure,
    lambda: plots.plot_k_anonymity(np.random.default_rng(0).integers(1, 2000, size=3000)).figure,
    lambda: plots.plot_proxies(pd.DataFrame({"auc": np.linspace(0.5, 0.95, 12), "mi_share": np.linspace(0, 0.4, 12)},
                                            index=[f"marital-status-{i}" for i in range(12)])),
], ids=["group_bars", "base_rates_compared", "k_anonymity", "proxies"])
def test_more_plot_helpers_have_no_overlapping_labels(draw):
    assert layout_problems(draw()) == []
