"""Reference solutions for notebook 02 (data-bias audit). Each ``solution_02_k`` returns the answer for check()."""

from __future__ import annotations


def solution_02_1():
    """(P_f + P_m) / 2 with P_g = P(sex = g | y = 1): always 0.5, since P_f + P_m = 1."""
    import numpy as np

    def gender_bias_degree(labels, sex):
        labels, sex = np.asarray(labels), np.asarray(sex)
        positive = labels == 1
        p_f = (sex[positive] == "Female").mean()
        p_m = (sex[positive] == "Male").mean()
        return (p_f + p_m) / 2

    return gender_bias_degree


def solution_02_2():
    """DI = P(y=1 | unprivileged) / P(y=1 | privileged)."""
    import numpy as np

    def disparate_impact(labels, groups, unprivileged, privileged):
        labels, groups = np.asarray(labels), np.asarray(groups)
        return labels[groups == unprivileged].mean() / labels[groups == privileged].mean()

    return disparate_impact


def solution_02_3():
    """Kamiran & Calders (2012) weights w(g, y) = P(g) P(y) / P(g, y)."""
    import numpy as np

    def reweigh(groups, labels):
        groups, labels = np.asarray(groups), np.asarray(labels)
        w = np.empty(len(labels))
        for g in np.unique(groups):
            for y in np.unique(labels):
                cell = (groups == g) & (labels == y)
                if cell.any():
                    w[cell] = (groups == g).mean() * (labels == y).mean() / cell.mean()
        return w

    return reweigh


def solution_02_4():
    """Share of records whose quasi-identifier combination is unique (k = 1)."""

    def share_unique(df, columns):
        sizes = df.groupby(list(columns))[columns[0]].transform("size")
        return float((sizes == 1).mean())

    return share_unique
