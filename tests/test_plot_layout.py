"""Plots as a student sees them: no tick label on another, no label over a neighbouring panel, no point label on
another, no legend over data.

Each figure is drawn with the Agg renderer and the text extents matplotlib computes are compared.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import pkgutil
from types import SimpleNamespace

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


def _slanted(labels) -> bool:
    return bool(labels) and labels[0].get_rotation() % 90 != 0


def _slanted_overlap(labels, renderer) -> bool:
    """Slanted tick labels (parallel lines of text at angle θ) collide when the distance between neighbouring
    anchors times sin θ is less than a label's height; their upright bounding boxes always overlap, so that test
    cannot be used."""
    shown = [t for t in labels if t.get_visible() and t.get_text().strip()]
    if not _slanted(shown):
        return False
    theta = np.deg2rad(shown[0].get_rotation())
    rows = []
    for t in shown:
        rot = t.get_rotation()
        t.set_rotation(0)
        height = t.get_window_extent(renderer).height
        t.set_rotation(rot)
        rows.append((t.get_transform().transform(t.get_position())[0], height))
    rows.sort()
    return any((x2 - x1) * abs(np.sin(theta)) < (h1 + h2) / 2 for (x1, h1), (x2, h2) in zip(rows, rows[1:]))


def _twins(a, b) -> bool:
    """Axes drawn in the same box (``ax.twinx()``)."""
    return tuple(a.get_position().bounds) == tuple(b.get_position().bounds)


def _text_box(t, renderer):
    """A text's own box: for an annotation without its leader line (which may cross other labels' boxes)."""
    from matplotlib.text import Annotation, Text

    if isinstance(t, Annotation):
        t.update_positions(renderer)
    return Text.get_window_extent(t, renderer)


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
            if _slanted_overlap(labels, renderer) or any(
                    a.overlaps(b) for a, b in itertools.combinations(_texts(labels, renderer), 2)
                    if not _slanted(labels)):
                problems.append(f"axes {n}: {which} tick labels overlap")
        own = _texts([ax.xaxis.label, ax.yaxis.label, *ticks["x"], *ticks["y"]], renderer)
        for m, other in enumerate(axes):
            if other is not ax and any(t.overlaps(other.get_window_extent(renderer)) for t in own):
                problems.append(f"axes {n}: a label lies over axes {m}")
        notes = [_text_box(t, renderer) for t in ax.texts if t.get_visible() and t.get_text().strip()]
        if any(a.overlaps(b) for a, b in itertools.combinations(notes, 2)):
            problems.append(f"axes {n}: two texts in the plot (point labels, notes) overlap")
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            box = legend.get_window_extent(renderer)
            for m, other in enumerate(axes):
                theirs = other.get_legend()
                if other is not ax and not _twins(ax, other) and (box.overlaps(other.get_window_extent(renderer)) or (
                        theirs is not None and theirs.get_visible() and box.overlaps(theirs.get_window_extent(renderer)))):
                    problems.append(f"axes {n}: the legend lies over axes {m} or its legend")
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
    fig, ax = plt.subplots(figsize=(3, 3))
    for name in ("Craft-repair", "Transport-moving"):  # two point labels on almost the same point
        ax.annotate(name, (0.05, 0.06), xytext=(3, 3), textcoords="offset points")
    assert layout_problems(fig) == ["axes 0: two texts in the plot (point labels, notes) overlap"]
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_xticks(range(20), [f"label {i}" for i in range(20)], rotation=40, ha="right")
    assert layout_problems(fig) == ["axes 0: x tick labels overlap"]  # slanted, still too many
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_xticks(range(3), ["label a", "label b", "label c"], rotation=40, ha="right")
    assert layout_problems(fig) == []


def test_frontier_side_by_side_legend_hides_no_point_and_labels_are_readable():
    """As notebook 04 draws them: three panels in one row."""
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.6))
    for ax in axes:
        plots.plot_frontier(_frontier_rows(), gap="dp", ax=ax)
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


# --- every plot helper ---------------------------------------------------------------------------------------------
# Each public plot_* function anywhere in `helpers` is drawn with inputs shaped like the notebooks' (their real
# group, model and method names) and checked. A new plot helper fails test_every_plot_helper_has_an_example until
# it gets an entry in EXAMPLES.


def plot_helpers() -> dict[str, object]:
    """Every public ``plot_*`` function defined in a ``helpers`` module (found by walking the package)."""
    import helpers

    found = {}
    for info in pkgutil.walk_packages(helpers.__path__, "helpers."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("plot_") and inspect.isfunction(obj) and obj.__module__ == module.__name__:
                found[name] = obj
    return found


PLOT_HELPERS = plot_helpers()
RNG = np.random.default_rng(0)
RACES = ["White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"]
SEX = ["Female", "Male"]


def _occupations():
    """14 occupations as notebook 01 draws them: spread points and a cluster of five near (0.06, 0.06)."""
    rows = {"Adm-clerical": (0.67, 0.67, 5255), "Armed-Forces": (0.0, 0.49, 14), "Craft-repair": (0.052, 0.053, 5718),
            "Exec-managerial": (0.29, 0.35, 5667), "Farming-fishing": (0.066, 0.058, 1405),
            "Handlers-cleaners": (0.125, 0.057, 1932), "Machine-op-inspct": (0.27, 0.15, 2825),
            "Other-service": (0.55, 0.50, 4602), "Priv-house-serv": (0.94, 0.43, 219),
            "Prof-specialty": (0.37, 0.45, 5727), "Protective-serv": (0.13, 0.22, 928), "Sales": (0.35, 0.48, 5123),
            "Tech-support": (0.39, 0.22, 1347), "Transport-moving": (0.054, 0.062, 2199),
            "Transport-moving-2": (0.058, 0.060, 900)}
    return pd.DataFrame(rows, index=["corpus_she_rate", "model_she_ratio", "n"]).T


def test_clustered_point_labels_are_all_readable_or_listed():
    ax = plots.plot_bias_absorption(_occupations(), 0.64, (0.23, 0.95))
    assert layout_problems(ax.figure) == []
    shown = " ".join(t.get_text() for t in ax.texts if t.get_visible())
    assert all(name in shown for name in _occupations().index)  # as a label, or in the note under the axes
    frame = ax.get_window_extent()
    for t in ax.texts:
        box = _text_box(t, ax.figure.canvas.get_renderer())
        inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        assert inside or t.get_text().startswith("not labelled")


def _race_rates():
    return pd.DataFrame({"original": [0.26, 0.12, 0.28, 0.12, 0.09], "reweighed": [0.24] * 5}, index=RACES)


def _frontier_rows():
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
    return pd.DataFrame(rows)


def _train_result(best_epoch=None, epochs=30):
    e = np.arange(1, epochs + 1)
    history = pd.DataFrame({"epoch": e, "train_loss": 0.6 * np.exp(-e / 8), "val_loss": 0.35 + 0.004 * e,
                            "train_acc": 0.8 + 0.006 * e, "val_acc": 0.82 - 0.001 * e})
    return SimpleNamespace(history=history, best_epoch=best_epoch)


def _attribution():
    from helpers.explain.core import Attribution

    words = "age: 52; workclass: Self-emp-inc; education: Doctorate; marital-status: Married-civ-spouse".split()
    return Attribution(tokens=words, weights=RNG.normal(0, 0.05, len(words)), method="LIME", label=">50K",
                       prediction=0.81, base_value=0.24)


def _decay_grid():
    return pd.DataFrame([{"method": m, "lr": lr, "decay": d, "val_acc": 0.7 + 0.01 * i}
                         for m in ("Adam+L2", "AdamW") for i, (lr, d) in enumerate(itertools.product(
                             (1e-3, 3e-3, 1e-2, 3e-2), (1e-3, 1e-2, 1e-1, 1.0, 10.0)))])


def _sweep(param, values):
    return pd.DataFrame([{param: v, "seed": s, "train_acc": 0.85 + 0.01 * s - 0.02 * i,
                          "val_acc": 0.82 - 0.01 * abs(i - 2)} for i, v in enumerate(values) for s in (0, 1, 2)])


def _group_tables():
    table = pd.DataFrame({"selection_rate": [0.1, 0.3], "tpr": [0.5, 0.7], "fpr": [0.02, 0.1],
                          "accuracy": [0.9, 0.8]}, index=SEX)
    return {"unconstrained": table, "DP≤0.02": table * 0.9, "EO≤0.03": table * 0.95, "AP≤0.02": table * 0.97,
            "constrained, gap ≤ δ (long name)": table * 0.8}


def _weat():
    tests = ["WEAT 1: flowers/insects vs pleasant/unpleasant", "WEAT 6: career/family vs male/female names",
             "WEAT 7: maths/arts vs male/female terms", "WEAT 8: science/arts vs male/female terms"]
    return pd.DataFrame([{"test": t, "method": m, "effect_size": RNG.uniform(-0.5, 1.5), "glove_d": 1.5 - 0.1 * i,
                          "iat_d": 1.0 if i else np.nan, "p_value": 0.41 if (i, m) == (2, "SEAT") else 0.001}
                         for i, t in enumerate(tests) for m in ("WEAT", "SEAT")])


def test_plot_weat_fades_only_the_bars_with_p_at_least_005():
    from helpers import plots

    ax = plots.plot_weat(_weat())
    faded = [(round(b.get_y() + b.get_height() / 2, 2), b.get_alpha()) for b in ax.patches if b.get_hatch() == "//"]
    assert len(faded) == 1 and faded[0][1] == 0.35  # WEAT 7 with SEAT (p = 0.41) only
    assert [t.get_text().split("\n")[0] for t in ax.get_yticklabels()] == ["WEAT 1", "WEAT 6", "WEAT 7", "WEAT 8"]
    assert "p >= 0.05 (faded)" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(ax.figure)


def _dp_table():
    eps = [0.5, 1.0, 2.0, 4.0, 8.0, float("inf")]
    return pd.DataFrame({"accuracy": np.linspace(0.76, 0.83, 6), "accuracy.Female": np.linspace(0.86, 0.9, 6),
                         "accuracy.Male": np.linspace(0.7, 0.79, 6), "mia_best_advantage": np.linspace(0.01, 0.08, 6),
                         "advantage_bound": [np.tanh(e / 2) for e in eps]}, index=pd.Index(eps, name="target_epsilon"))


EXAMPLES = {
    "plot_pretraining": lambda f: f(pd.DataFrame({"step": [0, 50, 100, 150, 200], "heldout_loss": [9, 6, 5, 4.6, 4.4],
                                                  "train_loss": [np.nan, 7, 5.5, 4.9, 4.6],
                                                  "heldout_accuracy": [0, 0.1, 0.16, 0.19, 0.2]}),
                                    baseline={"loss": 6.2, "accuracy": 0.06}),
    "plot_bias_absorption": lambda f: f(_occupations(), 0.64, (0.23, 0.95)),
    "plot_weat": lambda f: f(_weat()),
    "plot_group_bars": lambda f: f(_race_rates(), reference=0.24, title="base rates"),
    "plot_representation": lambda f: f(pd.DataFrame({"share": [0.6, 0.25, 0.1, 0.03, 0.02]},
                                                    index=[("Male", r) for r in RACES])),
    "plot_k_anonymity": lambda f: f(RNG.integers(1, 2000, size=3000)),
    "plot_proxies": lambda f: f(pd.DataFrame({"auc": np.linspace(0.5, 0.95, 12), "mi_share": np.linspace(0, 0.4, 12),
                                              "mi_estimator": ["counts", "binned counts", "k-NN"] * 4},
                                             index=[f"marital-status-{i}" for i in range(12)])),
    "plot_base_rates_compared": lambda f: f(_race_rates(), ess={"original": 3000, "reweighed": 2712.4}),
    "plot_group_metrics": lambda f: f(_group_tables(), title="Who pays: per-group rates before and after the constraint"),
    "plot_calibration_by_group": lambda f: f(RNG.integers(0, 2, 400), RNG.uniform(0, 1, 400), RNG.choice(SEX, 400)),
    "plot_accuracy_vs_gap": lambda f: f(pd.DataFrame({"accuracy": [0.83, 0.82, 0.8], "dp_difference": [0.18, 0.1, 0.02],
                                                      "accuracy_sd": [0.01, np.nan, 0.01],
                                                      "dp_difference_sd": [0.02, 0.01, np.nan]},
                                                     index=["frozen encoder + head", "LoRA", "reweighed head"])),
    "plot_overfitting_curves": lambda f: f({"fixed epochs": _train_result(),
                                           "early stopping (patience 10)": _train_result(best_epoch=12)}),
    "plot_regularization_sweep": lambda f: f(_sweep("l2", [0.0, 1e-4, 1e-3, 1e-2, 1e-1]), "l2", log=True,
                                             xlabel="L2 strength λ (log scale; 0 = none)"),
    "plot_decay_heatmaps": lambda f: f(_decay_grid()),
    "plot_reliability_diagram": lambda f: f({"single pass (ECE 0.041)": pd.DataFrame(
        {"confidence": np.linspace(0.05, 0.95, 10), "accuracy": np.linspace(0.02, 0.9, 10), "count": np.arange(1, 11)}),
        "MC dropout (ECE 0.035)": pd.DataFrame({"confidence": np.linspace(0.06, 0.94, 10),
                                                "accuracy": np.linspace(0.05, 0.93, 10), "count": np.arange(10, 0, -1)})}),
    "plot_group_gap_bars": lambda f: f(pd.DataFrame({"no regularisation": [0.05, 0.12], "L2 λ = 0.01": [0.02, 0.06],
                                                     "dropout p = 0.5": [0.03, 0.05]}, index=SEX)),
    "plot_attack_success": lambda f: f({"before defence": {0: 0.0, 1: 0.2, 2: 0.35, 3: 0.5},
                                       "after defence (augmented)": {0: 0.0, 1: 0.1, 2: 0.2, 3: 0.3}}),
    "plot_membership_losses": lambda f: f({"no DP": (RNG.exponential(0.2, 300), RNG.exponential(0.4, 300)),
                                          "DP-SGD ε = 1": (RNG.exponential(0.4, 300), RNG.exponential(0.42, 300))}),
    "plot_attribution_bars": lambda f: f(_attribution(), top=10),
    "plot_deletion_curves": lambda f: f({"LIME order": np.linspace(0.8, 0.3, 9), "SHAP order": np.linspace(0.8, 0.25, 9),
                                        "random order (mean of 20)": np.linspace(0.8, 0.6, 9)}),
    "plot_token_importance": lambda f: f({m: pd.DataFrame({"word": ["Husband", "Wife", "Female", "Male", "Own-child"],
                                                           "mean_abs": RNG.uniform(0, 0.1, 5)})
                                         for m in ("fine-tuned", "fine-tuned on sex-blind text")}),
    "plot_frontier": lambda f: f(_frontier_rows(), gap="dp"),
    "plot_frontiers": lambda f: f({"dp": _frontier_rows(),
                                   "eo": _frontier_rows().assign(constraint="eo", eo=lambda d: d["dp"] + 0.05)}),
    "plot_multiplier": lambda f: f(pd.DataFrame({"step": np.arange(200), "lam": np.cumsum(RNG.uniform(0, 0.02, 200)),
                                                 "gap_estimate": 0.2 * np.exp(-np.arange(200) / 60)}), delta=0.02),
    "plot_history": lambda f: f([{"epoch": e, "train_loss": 0.6 / e, "val_loss": 0.4 + 0.01 * e, "val_accuracy": 0.8,
                                  "val_selection_rate.Female": 0.08, "val_selection_rate.Male": 0.3}
                                 for e in range(1, 11)], title="Logistic head on frozen embeddings"),
    "plot_dp_sweep": lambda f: f(_dp_table()),
}


def _figure(drawn):
    """The figure of what a plot helper returned: a Figure, an Axes, or an array or list of Axes."""
    if hasattr(drawn, "savefig"):
        return drawn
    if hasattr(drawn, "figure"):
        return drawn.figure
    return np.ravel(drawn)[0].figure


def test_every_plot_helper_has_an_example():
    assert len(PLOT_HELPERS) >= 20, sorted(PLOT_HELPERS)  # the walk found the package's plot helpers
    assert sorted(set(PLOT_HELPERS) - set(EXAMPLES)) == [], "add an example input for each new plot helper"
    assert sorted(set(EXAMPLES) - set(PLOT_HELPERS)) == [], "examples for plot helpers that no longer exist"


@pytest.mark.parametrize("name", sorted(PLOT_HELPERS))
def test_plot_helper_labels_do_not_overlap(name):
    if name not in EXAMPLES:
        pytest.fail(f"{name} has no example input in EXAMPLES")
    fig = _figure(EXAMPLES[name](PLOT_HELPERS[name]))
    assert any(ax.has_data() for ax in fig.axes), f"{name} drew nothing"
    assert layout_problems(fig) == []
