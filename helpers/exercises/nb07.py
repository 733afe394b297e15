"""Self-checks for notebook 07 (robustness, privacy, governance)."""

from __future__ import annotations

import numpy as np

from . import call, exercise, expect

_SENTENCES = [
    "He is a man.",
    "She met the Woman and HE left; she is a MAN too.",
    "A 39-year-old woman, married. Household role: wife.",
    "Nothing gendered here: human, mankind, heir.",
]


@exercise("07.1", title="a case-preserving gender swap",
          hint="Split with re.sub(r'[A-Za-z]+', f, text); in f look up word.lower() in {'he': 'she', 'she': 'he', "
               "'man': 'woman', 'woman': 'man'} and restore the case: lower, Title (w[0].upper() + w[1:]) or UPPER.")
def _swap(fn) -> None:
    expected = {
        "He is a man.": "She is a woman.",
        "She met the Woman and HE left; she is a MAN too.": "He met the Man and SHE left; he is a WOMAN too.",
        "A 39-year-old woman, married. Household role: wife.": "A 39-year-old man, married. Household role: wife.",
        "Nothing gendered here: human, mankind, heir.": "Nothing gendered here: human, mankind, heir.",
    }
    for text, want in expected.items():
        got = call(fn, text)
        expect(isinstance(got, str), f"expected a string, got {type(got).__name__}.")
        expect(got == want, f"swap({text!r}) gave {got!r}, expected {want!r}.")
        expect(call(fn, got) == text, f"swapping twice should give the sentence back: {text!r} -> {got!r} -> "
                                      f"{call(fn, got)!r}.")


@exercise("07.2", title="membership advantage at a threshold",
          hint="Members are guessed when loss <= tau: TPR = mean(member_losses <= tau), "
               "FPR = mean(nonmember_losses <= tau); return TPR - FPR.")
def _advantage(fn) -> None:
    member = np.array([0.1, 0.2, 0.3, 2.0])
    nonmember = np.array([0.25, 1.0, 1.5, 3.0, 0.05])
    got = call(fn, member, nonmember, 0.3)
    want = 3 / 4 - 2 / 5
    expect(np.isclose(float(got), want), f"with tau=0.3 you returned {got}, expected TPR - FPR = 0.75 - 0.4 = 0.35.")
    got = call(fn, member, nonmember, 10.0)
    expect(np.isclose(float(got), 0.0), f"with a threshold above every loss the advantage is 0, you returned {got}.")


@exercise("07.3", title="the P_output component: confidently wrong",
          hint="p_wrong = where(y == 1, 1 - p, p); return mean(p_wrong >= confidence).")
def _confident_errors(fn) -> None:
    y = np.array([1, 1, 0, 0, 1, 0])
    p = np.array([0.9, 0.1, 0.85, 0.3, 0.45, 0.05])
    got = call(fn, y, p, 0.8)
    expect(np.isclose(float(got), 2 / 6), f"you returned {got}; two of the six are wrong with P(wrong) >= 0.8 "
                                          "(rows 2 and 3), expected 1/3.")
    got = call(fn, y, p, 0.5)
    expect(np.isclose(float(got), 3 / 6), f"with confidence 0.5 expected 3/6 (row 5 counts too), got {got}.")
    expect(0.0 <= float(call(fn, y, 1 - p, 0.8)) <= 1.0, "a rate must lie in [0, 1].")


@exercise("07.4", title="uniqueness on more quasi-identifiers",
          hint="Count each combination with df.groupby(columns).transform('size') (or value_counts) and return the "
               "share of rows whose count is 1.")
def _uniqueness(fn) -> None:
    import pandas as pd

    df = pd.DataFrame({"age": [30, 30, 30, 40, 40, 50], "sex": ["F", "F", "M", "M", "M", "F"],
                       "zip": [1, 2, 3, 4, 4, 5]})
    got = call(fn, df, ["age", "sex"])
    expect(np.isclose(float(got), 2 / 6), f"on (age, sex) two of six rows are unique; you returned {got}.")
    got = call(fn, df, ["age", "sex", "zip"])
    expect(np.isclose(float(got), 4 / 6), f"adding zip makes four of six unique; you returned {got}.")
