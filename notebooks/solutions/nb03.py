"""Reference solutions for notebook 03 (fine-tuning and fairness metrics)."""

from __future__ import annotations


def solution_03_1():
    """max_a P(yhat=1 | a) - min_a P(yhat=1 | a)."""
    import numpy as np

    def dp_difference(y_pred, groups):
        y_pred, groups = np.asarray(y_pred), np.asarray(groups)
        rates = [y_pred[groups == g].mean() for g in np.unique(groups)]
        return max(rates) - min(rates)

    return dp_difference


def solution_03_2():
    """max(TPR gap, FPR gap) over groups (Hardt et al. 2016)."""
    import numpy as np

    def eo_difference(y_true, y_pred, groups):
        y_true, y_pred, groups = map(np.asarray, (y_true, y_pred, groups))
        tpr = [y_pred[(groups == g) & (y_true == 1)].mean() for g in np.unique(groups)]
        fpr = [y_pred[(groups == g) & (y_true == 0)].mean() for g in np.unique(groups)]
        return max(max(tpr) - min(tpr), max(fpr) - min(fpr))

    return eo_difference


def solution_03_3():
    """Mean predicted probability minus the observed positive rate, per group."""
    import numpy as np

    def calibration_gap(y_true, y_prob, groups):
        y_true, y_prob, groups = map(np.asarray, (y_true, y_prob, groups))
        return {g: y_prob[groups == g].mean() - y_true[groups == g].mean() for g in np.unique(groups)}

    return calibration_gap


def solution_03_4():
    """Per-group thresholds at the (1 - rate) quantile of each group's scores."""
    import numpy as np

    def parity_thresholds(y_prob, groups, rate):
        y_prob, groups = np.asarray(y_prob), np.asarray(groups)
        return {g: float(np.quantile(y_prob[groups == g], 1 - rate)) for g in np.unique(groups)}

    return parity_thresholds
