"""Smoke tests for helpers.plots and helpers.widgets: what is drawn (axes, labels, lines) and what the sliders do."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers import plots, regularization, widgets  # noqa: E402
from helpers.fairness import constrained as fc  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _history(epochs: int, shift: float = 0.0) -> pd.DataFrame:
    e = np.arange(1, epochs + 1)
    return pd.DataFrame({"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.0 / e + 0.2 + shift,
                         "train_acc": 1 - 0.5 / e, "val_acc": 0.8 - 0.1 / e, "gap": 0.2 - 0.4 / e})


def test_group_bars_one_bar_per_group_with_labels_and_reference():
    ax = plots.plot_group_bars(pd.Series({"Female": 0.1, "Male": 0.3, "Other": 0.2}), reference=0.25,
                               xlabel="selection rate", title="t")
    bars = ax.containers[0]
    assert len(bars) == 3
    assert sorted(b.get_width() for b in bars) == pytest.approx([0.1, 0.2, 0.3])
    assert [t.get_text() for t in ax.texts if t.get_text()] != []  # the bars carry their values
    assert ax.get_xlabel() == "selection rate" and ax.get_ylabel() == "group"
    assert [line.get_xdata()[0] for line in ax.lines] == [0.25]  # the dashed reference line


def test_overfitting_curves_two_lines_per_run_and_the_restored_epoch():
    runs = {"plain": regularization.TrainResult(None, _history(6)),
            "early stopping": regularization.TrainResult(None, _history(6, 0.1), best_epoch=3)}
    axes = plots.plot_overfitting_curves(runs)
    assert len(axes) == 2
    assert [ax.get_title() for ax in axes] == ["plain", "early stopping"]
    assert len(axes[0].lines) == 2 and len(axes[1].lines) == 3  # train, validation (+ the restored epoch)
    np.testing.assert_allclose(axes[0].lines[1].get_ydata(), runs["plain"].history["val_loss"])
    assert axes[1].lines[2].get_xdata()[0] == 3
    assert all(ax.get_xlabel() == "epoch" for ax in axes) and axes[0].get_ylabel() != ""
    with pytest.raises(ValueError, match="metric"):
        plots.plot_overfitting_curves(runs, metric="f1")


def test_frontier_one_series_per_method_and_one_label_per_swept_point():
    rows = []
    for seed in (0, 1):
        rows += [{"method": "unconstrained", "constraint": "dp", "param": np.nan, "seed": seed, "accuracy": 0.85,
                  "dp": 0.2, "eo": 0.1},
                 {"method": "threshold", "constraint": "dp", "param": np.nan, "seed": seed, "accuracy": 0.8,
                  "dp": 0.02, "eo": 0.1}]
        rows += [{"method": "penalty", "constraint": "dp", "param": lam, "seed": seed, "accuracy": 0.85 - lam / 100,
                  "dp": 0.2 / (1 + lam), "eo": 0.1} for lam in (0.5, 1.0, 2.0)]
    ax = plots.plot_frontier(pd.DataFrame(rows), gap="dp")
    assert len(ax.containers) == 3  # one errorbar series per method
    labels = [t.get_text() for t in ax.texts]
    assert sorted(labels) == ["λ=0.5", "λ=1", "λ=2"]
    assert "demographic-parity" in ax.get_xlabel() and "accuracy" in ax.get_ylabel()
    assert len(ax.get_legend().get_texts()) == 3
    with pytest.raises(ValueError, match="gap"):
        plots.plot_frontier(pd.DataFrame(rows), gap="accuracy")
    ax = plots.plot_frontier(pd.DataFrame(rows), gap="dp", majority=0.754)  # the 0.8 and 0.85 points lie above it
    line = [ln for ln in ax.lines if list(ln.get_ydata()) == [0.754, 0.754]]
    assert len(line) == 1 and "predict the majority class (0.754)" in line[0].get_label()
    assert "predict the majority class (0.754): points below are dominated" in [
        t.get_text() for t in ax.get_legend().get_texts()]


def test_multiplier_plot_draws_lambda_gap_and_tolerance():
    hist = pd.DataFrame({"step": np.arange(10), "lam": np.linspace(0, 1, 10), "gap_estimate": np.linspace(0.2, 0.01, 10),
                         "surrogate": 0.0})
    ax = plots.plot_multiplier(hist, delta=0.05)
    twin = [a for a in ax.figure.axes if a is not ax][0]
    assert len(ax.lines) == 1 and len(twin.lines) == 2
    np.testing.assert_allclose(ax.lines[0].get_ydata(), hist["lam"])
    assert twin.lines[1].get_ydata()[0] == 0.05  # the tolerance line
    assert len(ax.get_legend().get_texts()) == 3
    assert "step" in ax.get_xlabel()


def _toy(n: int = 80, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    g = rng.integers(0, 2, n)
    y = ((X[:, 0] + g) > 0.5).astype(int)
    return X, y, g


def test_regularization_explorer_slider_retrains_and_redraws(monkeypatch):
    calls = []
    real = regularization.train_mlp

    def counting(*args, **kwargs):
        calls.append((kwargs.get("l2"), kwargs.get("p")))
        return real(*args, **kwargs)

    monkeypatch.setattr(regularization, "train_mlp", counting)
    X, y, _ = _toy()
    ex = widgets.regularization_explorer(X[:50], y[:50], X[50:], y[50:], hidden=8, epochs=2, device="cpu")
    out = ex.update(l2=1e-3, p=0.2)
    assert out["l2"] == pytest.approx(1e-3) and out["p"] == pytest.approx(0.2)
    assert calls == [(pytest.approx(1e-3), 0.2), (0.0, 0.0)]  # the run, then the unregularised baseline once
    assert len(ex.out.outputs) == 1 and "λ = 0.001" in ex.status.value
    ex.p_slider.value = 0.4  # moving a slider retrains through the callback, reusing the baseline
    assert len(calls) == 3 and calls[-1][1] == pytest.approx(0.4)
    assert ex.last.config["p"] == pytest.approx(0.4)


def test_fairness_explorer_controls_retrain_the_head():
    X, y, g = _toy(160)
    data = fc.FairData(X[:100], y[:100], g[:100], X[100:], y[100:], g[100:], ["a", "b"])
    ex = widgets.fairness_explorer(data, epochs=3, batch_size=32)
    got = ex.update(lam=2.0)
    pred = fc.train_fair_head(data.X_train, data.y_train, data.g_train, method="penalty", lam=2.0, constraint="dp",
                              epochs=3, batch_size=32).predict(data.X_test)
    expected = fc.evaluate(data.y_test, pred, data.g_test)
    assert {k: got[k] for k in expected} == pytest.approx(expected)
    assert got["lam"] == 2.0 and got["constraint"] == "dp" and "λ = 2, DP" in ex.status.value
    ex.constraint.value = "eo"  # the dropdown's callback retrains with the new constraint
    assert ex.last["constraint"] == "eo" and ex.last["lam"] == 2.0
