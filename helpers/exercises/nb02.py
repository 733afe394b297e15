"""Self-checks for notebook 02 (data-bias audit): a broken metric, disparate impact, reweighing, uniqueness."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import call, exercise, expect


def _data(seed: int, n: int = 500, bias: float = 0.2, groups=("Female", "Male")):
    rng = np.random.default_rng(seed)
    sex = rng.choice(list(groups), n, p=np.linspace(1, 2, len(groups)) / np.linspace(1, 2, len(groups)).sum())
    rate = {g: 0.15 + bias * i for i, g in enumerate(groups)}
    y = (rng.random(n) < np.vectorize(rate.get)(sex)).astype(int)
    return y, sex


@exercise("02.1", title="The 'gender bias degree' (P_f + P_m) / 2",
          hint="P_f = P(sex = Female | y = 1): among the people with income > 50K, the share who are women; "
               "P_m likewise for men. Compute both with boolean masks and return (P_f + P_m) / 2.")
def _check_02_1(answer) -> None:
    values = []
    for seed, bias in ((0, 0.0), (1, 0.3), (2, 0.6)):
        y, sex = _data(seed, bias=bias)
        got = float(call(answer, y, sex))
        pos = y == 1
        ref = ((sex[pos] == "Female").mean() + (sex[pos] == "Male").mean()) / 2
        expect(abs(got - ref) < 1e-9, f"for a data set with base rates differing by {bias} you returned {got:.4f}, "
                                      f"expected {ref:.4f}.")
        values.append(got)
    expect(np.allclose(values, 0.5), "the values should all be the same.")


@exercise("02.2", title="Disparate impact of the labels",
          hint="DI = P(y=1 | unprivileged) / P(y=1 | privileged): the mean of y within each group, then divide.")
def _check_02_2(answer) -> None:
    from ..fairness.metrics import disparate_impact_ratio

    for seed, groups in ((0, ("Female", "Male")), (1, ("Black", "Other", "White"))):
        y, g = _data(seed, groups=groups)
        got = float(call(answer, y, g, groups[0], groups[-1]))
        ref = disparate_impact_ratio(y, g, unprivileged=groups[0], privileged=groups[-1])
        expect(abs(got - ref) < 1e-9, f"with groups {groups} you returned {got:.4f}, expected {ref:.4f}.")


@exercise("02.3", title="Kamiran-Calders reweighing by hand",
          hint="w(g, y) = P(g) P(y) / P(g, y): three frequencies counted over the whole data set, one weight per "
               "(group, label) cell, returned as an array with one weight per row.")
def _check_02_3(answer) -> None:
    from ..fairness.preprocessing import reweighing

    for seed, groups in ((0, ("Female", "Male")), (3, ("a", "b", "c"))):
        y, g = _data(seed, groups=groups)
        got = np.asarray(call(answer, g, y), dtype=float)
        expect(got.shape == (len(y),), f"expected one weight per row, shape ({len(y)},), got {got.shape}.")
        expect(np.allclose(got, reweighing(g, y), atol=1e-9), "some weights differ from P(g)P(y)/P(g,y).")


@exercise("02.4", title="How many records are unique?",
          hint="Group by the quasi-identifier columns, take each row's group size (groupby(...).transform('size')), "
               "and return the fraction of rows whose group has size 1.")
def _check_02_4(answer) -> None:
    from ..privacy import quasi_identifier_uniqueness

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.integers(17, 90, 400), "sex": rng.choice(["Female", "Male"], 400),
                       "race": rng.choice(["A", "B", "C", "D"], 400, p=[0.7, 0.2, 0.05, 0.05])})
    for cols in (["age", "sex"], ["age", "sex", "race"]):
        got = float(call(answer, df, cols))
        ref = quasi_identifier_uniqueness(df, cols)
        expect(abs(got - ref) < 1e-9, f"over {cols} you returned {got:.4f}, expected {ref:.4f}.")
