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
    """A bias score that moves: the statistical-parity difference of the labels, P(y=1 | Male) - P(y=1 | Female)
    (0 for equal base rates, whatever the group sizes; grows with the gap)."""
    import numpy as np

    def bias_score(labels, sex):
        labels, sex = np.asarray(labels), np.asarray(sex)
        return labels[sex == "Male"].mean() - labels[sex == "Female"].mean()

    return bias_score


def solution_02_3():
    """Model answer: (b). P_f + P_m = P(Female or Male | y = 1) = 1 when sex takes these two values, so the score is
    1/2 for every data set; a score must compare the groups' base rates (02.2) to move with bias."""
    return "b"


def solution_02_4():
    """DI = P(y=1 | unprivileged) / P(y=1 | privileged)."""
    import numpy as np

    def disparate_impact(labels, groups, unprivileged, privileged):
        labels, groups = np.asarray(labels), np.asarray(groups)
        return labels[groups == unprivileged].mean() / labels[groups == privileged].mean()

    return disparate_impact


def solution_02_5():
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


def solution_02_6():
    """Share of records whose quasi-identifier combination is unique (k = 1)."""

    def share_unique(df, columns):
        sizes = df.groupby(list(columns))[columns[0]].transform("size")
        return float((sizes == 1).mean())

    return share_unique



def solution_02_7():
    """Model answer: (b). Adding hours per week to (age, sex, race, native country) splits the classes further;
    a record alone in its class is re-identifiable by anyone who knows those facts about the person."""
    return "b"
