"""Training curves in TensorBoard event files, and the deployment monitor's alerts (helpers.monitor)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import monitor
from helpers.training import train_head


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    g = rng.choice(["F", "M"], n, p=[0.3, 0.7])
    y = (X[:, 0] + 0.5 * (g == "M") + 0.5 * rng.normal(size=n) > 0.3).astype(int)
    return X, y, g


def test_train_head_writes_readable_event_files_with_the_logged_values():
    X, y, g = _data()
    cb = monitor.group_metrics_callback(X[300:], y[300:], g[300:])
    _, history = train_head(X[:300], y[:300], X_val=X[300:], y_val=y[300:], epochs=4, seed=0, on_epoch=cb,
                            log_to="test_head")
    events = monitor.read_events(monitor.runs_dir() / "test_head")
    assert {"train_loss", "val_loss", "val_accuracy", "val_accuracy/F", "val_selection_rate/M"} <= set(events)
    for key, tag in (("train_loss", "train_loss"), ("val_accuracy.F", "val_accuracy/F"),
                     ("val_selection_rate.M", "val_selection_rate/M")):
        assert [s for s, _ in events[tag]] == [1, 2, 3, 4]
        assert np.allclose([v for _, v in events[tag]], [h[key] for h in history], atol=1e-6)
    # the callback's per-group accuracy, recomputed by hand from the final model
    from helpers.training import predict_head

    model, _ = train_head(X[:300], y[:300], epochs=4, seed=0)
    pred = (predict_head(model, X[300:]) >= 0.5).astype(int)
    f = g[300:] == "F"
    assert history[-1]["val_accuracy.F"] == pytest.approx((pred[f] == y[300:][f]).mean())


def test_deployment_monitor_alerts_on_a_shift_and_not_on_an_unshifted_slice():
    rng = np.random.default_rng(1)

    def batch(n, shift=0.0):
        g = rng.choice(["F", "M"], n, p=[0.35, 0.65])
        y = (rng.random(n) < np.where(g == "F", 0.12, 0.31)).astype(int)
        pred = np.where(rng.random(n) < 0.85, y, 1 - y)  # 85% accurate
        if shift:  # a drift that approves far more women, right or wrong
            flip = (g == "F") & (rng.random(n) < shift)
            pred = np.where(flip, 1, pred)
        return y, pred, g

    reference = monitor.group_rates(*batch(20000))
    y0, p0, g0 = batch(2000)
    y1, p1, g1 = batch(2000, shift=0.4)
    report = monitor.deployment_monitor([("same", y0, p0, g0), ("shifted", y1, p1, g1)], reference, bound=0.1)
    assert not report[report.batch == "same"].alert.any()
    fired = report[report.alert]
    assert set(fired.batch) == {"shifted"} and set(fired.group) == {"F"}
    assert "selection_rate" in set(fired.metric)
    row = fired[fired.metric == "selection_rate"].iloc[0]
    assert row.value == pytest.approx(p1[g1 == "F"].mean()) and row.change == pytest.approx(row.value - row.reference)
    assert monitor.alerts(report)[0].startswith("ALERT batch shifted: selection rate of F")


def test_small_groups_do_not_alert_on_noise_alone():
    """A 10-record group whose selection rate moves 0.2 (3 standard errors of a 0.5 rate: 0.47) and error rate
    0.1 (3 standard errors of 0.2: 0.38): no alert."""
    import pandas as pd

    reference = pd.DataFrame({"n": [100], "selection_rate": [0.5], "error_rate": [0.2]}, index=pd.Index(["F"]))
    pred = np.r_[np.ones(7, int), np.zeros(3, int)]
    y = np.r_[1 - pred[:3], pred[3:]]  # 3 errors of 10
    report = monitor.deployment_monitor([("b", y, pred, ["F"] * 10)], reference, bound=0.1)
    assert not report.alert.any()
    with pytest.raises(ValueError, match="no reference"):
        monitor.deployment_monitor([("b", y, pred, ["X"] * 10)], reference)
