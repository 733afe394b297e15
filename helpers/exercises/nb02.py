"""Self-checks for notebook 02 (data-bias audit): a metric that cannot move and one that can, disparate impact,
reweighing, uniqueness, a re-identification experiment."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import call, choice, exercise, expect, experiment


def _data(seed: int, n: int = 500, bias: float = 0.2, groups=("Female", "Male"), weights=None, base: float = 0.15):
    """Labels and groups: group i has base rate ``base + bias * i``; group sizes follow ``weights``."""
    rng = np.random.default_rng(seed)
    p = np.asarray(weights if weights is not None else np.linspace(1, 2, len(groups)), dtype=float)
    sex = rng.choice(list(groups), n, p=p / p.sum())
    rate = {g: base + bias * i for i, g in enumerate(groups)}
    y = (rng.random(n) < np.vectorize(rate.get)(sex)).astype(int)
    return y, sex


@exercise("02.1", title="the 'gender bias degree' (P_f + P_m) / 2",
          hint="Both P's condition on y = 1: keep only the high-income records first, then ask which share of them "
               "has each sex. The check's data sets include records whose sex is 'Unknown'.",
          kind="spot-the-bug")
def _check_02_1(answer) -> None:
    for seed, bias, groups in ((0, 0.0, ("Female", "Male")), (1, 0.3, ("Female", "Male")),
                               (2, 0.6, ("Female", "Male", "Unknown")), (3, 0.1, ("Female", "Unknown", "Male"))):
        y, sex = _data(seed, bias=bias, groups=groups)
        got = float(call(answer, y, sex))
        pos = y == 1
        ref = ((sex[pos] == "Female").mean() + (sex[pos] == "Male").mean()) / 2
        expect(abs(got - ref) < 1e-9, f"on a data set with sex values {sorted(map(str, set(sex)))} and base rates differing by "
                                      f"{bias} you returned {got:.4f}, which is not (P_f + P_m) / 2 there.")


@exercise("02.2", title="a bias score that moves",
          hint="Compare the groups' base rates P(y = 1 | Female) and P(y = 1 | Male): which combination of them is 0 "
               "when they are equal and grows as the women's rate falls below the men's?")
def _check_02_2(answer) -> None:
    for seed, weights in ((0, (1, 1)), (1, (1, 4)), (2, (3, 1))):
        y, sex = _data(seed, n=40_000, bias=0.0, weights=weights)
        got = float(call(answer, y, sex))
        expect(abs(got) < 0.03, f"on a data set where women and men have the same base rate (women {weights[0]} : men "
                                f"{weights[1]}) your score is {got:.3f}, not about 0.")
    values = []
    for seed, bias in ((4, 0.1), (5, 0.3), (6, 0.5)):
        y, sex = _data(seed, n=40_000, bias=bias)
        values.append(float(call(answer, y, sex)))
    expect(values[0] < values[1] < values[2] and values[2] - values[0] > 0.1,
           f"as the men's base rate exceeds the women's by 0.1, 0.3, 0.5 your score goes "
           f"{', '.join(f'{v:.3f}' for v in values)}: it should grow.")


@exercise("02.4", title="disparate impact of the labels",
          hint="A ratio of two conditional rates: which group's rate goes on top? The four-fifths rule reads DI < 0.8 "
               "as adverse impact on the unprivileged group.",
          forbid=("helpers.fairness.metrics.disparate_impact_ratio",
                  "helpers.fairness.metrics.statistical_parity_difference", "helpers.fairness.metrics.base_rates"))
def _check_02_4(answer) -> None:
    from ..fairness.metrics import disparate_impact_ratio

    for seed, groups in ((0, ("Female", "Male")), (1, ("Black", "Other", "White")), (2, ("a", "b", "c", "d"))):
        y, g = _data(seed, groups=groups)
        ref = disparate_impact_ratio(y, g, unprivileged=groups[0], privileged=groups[-1])
        got = float(call(answer, y, g, groups[0], groups[-1]))
        expect(abs(got - ref) < 1e-9, f"with groups {groups} (unprivileged {groups[0]!r}, privileged {groups[-1]!r}) "
                                      f"you returned {got:.4f}; the base rates are "
                                      + ", ".join(f"{k}: {y[g == k].mean():.3f}" for k in groups) + ".")


@exercise("02.5", title="Kamiran-Calders reweighing by hand",
          hint="Three frequencies, all counted over the whole data set: P(g), P(y) and the joint P(g, y). A cell "
               "that is rarer than independence predicts gets a weight above 1.",
          forbid=("helpers.fairness.preprocessing.reweighing", "helpers.fairness.preprocessing.reweighing_table",
                  "helpers.fairness.constrained.reweighing_weights"))
def _check_02_5(answer) -> None:
    from ..fairness.preprocessing import reweighing

    for seed, groups in ((0, ("Female", "Male")), (3, ("a", "b", "c")), (4, ("x", "y", "z", "w"))):
        y, g = _data(seed, groups=groups)
        want = reweighing(g, y)
        got = np.asarray(call(answer, g, y), dtype=float)
        expect(got.shape == (len(y),), f"expected one weight per row, shape ({len(y)},), got {got.shape}.")
        cell = (g == groups[0]) & (y == 1)
        expect(np.allclose(got, want, atol=1e-9), f"with groups {groups}: group {groups[0]!r} with label 1 (rarer than "
                                                  f"independence predicts) gets weight {got[cell][0]:.4f}.")


def _qi_frame(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(17, 90, n), "sex": rng.choice(["Female", "Male"], n),
                         "race": rng.choice(["A", "B", "C", "D"], n, p=[0.7, 0.2, 0.05, 0.05]),
                         "hours": rng.integers(1, 99, n)})


@exercise("02.6", title="how many records are unique?",
          hint="For every row, count how many rows share its combination of `columns` (its class size k); the answer "
               "is the share of rows with k = 1. Unique rows, not distinct combinations.",
          forbid=("helpers.privacy.quasi_identifier_uniqueness", "helpers.privacy.k_anonymity"))
def _check_02_6(answer) -> None:
    from ..privacy import quasi_identifier_uniqueness

    for seed, n in ((0, 400), (1, 57), (2, 3000)):
        df = _qi_frame(seed, n)
        for cols in (["age", "sex"], ["age", "sex", "race"], ["sex", "race", "hours"]):
            ref = quasi_identifier_uniqueness(df, cols)
            got = float(call(answer, df.copy(), cols))
            expect(abs(got - ref) < 1e-9, f"on {n} rows over {cols} you returned {got:.4f}; there are "
                                          f"{df.groupby(cols).ngroups} distinct combinations.")


choice(
    "02.3", "why (P_f + P_m) / 2 cannot move",
    options={"a": "because Adult happens to be balanced between women and men",
             "b": "because when every high-income record is either Female or Male, P_f + P_m = 1 by definition, so "
                  "the score is 1/2 whatever the data",
             "c": "because the bias in Adult is too small to show",
             "d": "because of rounding"},
    correct="b",
    nudges={"a": "women are about a third of the records (section 1), and the score is still 0.5.",
            "c": "the check's data sets included base rates differing by 0.6, and the score did not move.",
            "d": "exact fractions give the same value."},
    hint="Add P_f and P_m for a data set of two high-income people, one of each sex; then for two men.",
)


def _bucket(share: float) -> str:
    return "under 5%" if share < 0.05 else ("5-30%" if share <= 0.30 else "over 30%")


experiment(
    "02.7", "one more quasi-identifier",
    outcomes=("under 5%", "5-30%", "over 30%"),
    observe=_bucket,
    reasons={"a": "uniqueness depends only on the number of records, not on the columns",
             "b": "each added column splits the equivalence classes further, and a record alone in its class is "
                  "singled out by those columns",
             "c": "hours per week is not personal data, so it cannot identify anyone",
             "d": "k-anonymity removed the unique records before we counted"},
    correct=lambda observed: "b",
    nudges={"a": "the run kept the records and changed only the columns, and the share changed.",
            "c": "combined with age, sex, race and country, it is what singles people out in this run.",
            "d": "nothing was removed: k_anonymity only counts class sizes."},
    hint="Look at the uniqueness table of section 5: how do the class sizes change row by row as columns are added?",
)
