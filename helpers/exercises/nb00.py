"""Self-checks for notebook 00 (how exercises work): base rates, a sentence without sex words, two questions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import CheckFailed, call, choice, exercise, expect, experiment


def _frames():
    """Random frames: 0/1 labels, a sensitive column with 2-4 groups of different base rates and sizes."""
    rng = np.random.default_rng(0)
    for n, k in ((37, 2), (200, 3), (1000, 4)):
        names = np.array(["Female", "Male", "Other", "Unknown"][:k])
        group = names[rng.integers(0, k, n)]
        rate = dict(zip(names, rng.uniform(0.05, 0.6, k)))
        label = (rng.random(n) < np.vectorize(rate.get)(group)).astype(int)
        yield pd.DataFrame({"age": rng.integers(17, 90, n), "label": label, "sex": group})


@exercise("00.1", title="base rate",
          hint="The base rate is a share of records: how many have label 1, out of how many in total? "
               "A 0/1 column makes that one pandas method.")
def _base_rate(fn) -> None:
    for df in _frames():
        got = call(fn, df.copy())
        want = df["label"].mean()
        expect(np.ndim(got) == 0, f"expected one number, got {type(got).__name__}.")
        expect(np.isclose(float(got), want),
               f"on a frame of {len(df)} records with {int(df.label.sum())} positives you returned {float(got):.4f}.")


@exercise("00.2", title="base rate per group",
          hint="Split the frame by the values of `column` and compute 00.1's number inside each part "
               "(pandas has one method that splits by a column).")
def _group_rates(fn) -> None:
    for df in _frames():
        got = call(fn, df.copy(), "sex")
        expect(hasattr(got, "index"), f"expected a pandas Series indexed by group, got {type(got).__name__}.")
        got = pd.Series(got)
        groups = sorted(df["sex"].unique())
        expect(sorted(map(str, got.index)) == groups,
               f"on a frame with groups {groups} your Series has index {list(got.index)}.")
        for g in groups:
            m = df["sex"] == g
            expect(np.isclose(float(got[g]), df.loc[m, "label"].mean()),
                   f"group {g!r} ({int(m.sum())} records, {int(df.loc[m, 'label'].sum())} positives): "
                   f"you returned {float(got[g]):.4f}.")


_SEX_WORDS = {"man", "woman", "men", "women", "male", "female"}


@exercise("00.3", title="sentences without sex words",
          hint="Section 2 printed the same record twice: look at the arguments of the second serialize(...) call. "
               "Only the sex words should go; every other fact stays.")
def _no_sex_words(fn) -> None:
    from ..data import load_adult, serialize

    rows = load_adult("train").sample(6, random_state=3).to_dict("records")
    for record in rows:
        got = call(fn, dict(record))
        expect(isinstance(got, str), f"expected a sentence (str), got {type(got).__name__}.")
        words = set(got.lower().replace(",", " ").replace(".", " ").replace(";", " ").split())
        expect(not words & _SEX_WORDS, f"the sentence still names the sex: {got!r}")
        full = serialize(record).lower().replace(",", " ").replace(".", " ").replace(";", " ").split()
        lost = [w for w in full if w not in _SEX_WORDS and w not in words]
        if lost:
            raise CheckFailed(f"for a {record['age']}-year-old ({record['relationship']}) the sentence lost other "
                              f"facts too, e.g. {lost[:3]}: {got!r}")


experiment(
    "00.4", "does sex survive without sex words?",
    outcomes=("under 10%", "10-50%", "over 50%"),
    observe=lambda share: "under 10%" if share < 0.10 else ("10-50%" if share <= 0.50 else "over 50%"),
    reasons={"a": "a sentence without 'man'/'woman' is anonymous about sex",
             "b": "'husband' or 'wife' in the household role names the sex as surely as 'man' or 'woman'",
             "c": "the model guesses sex from the age",
             "d": "serialize keeps the sex column in the sentence on purpose"},
    correct=lambda observed: "b",
    nudges={"a": "then no record would reveal its sex, yet the run counted records that do.",
            "c": "the run counted household roles, not ages.",
            "d": "print one sentence from 00.3: the word for the sex is gone."},
    hint="Print three sentences of married people made by your 00.3 function and read their household role.",
)

choice(
    "00.5", "the model that says 'no' to everyone",
    options={"a": "its accuracy is 1 minus the base rate, and its demographic-parity gap is zero: accurate-looking "
                  "and 'fair' by that one number, yet useless",
             "b": "its accuracy is about 0.5, like a coin flip",
             "c": "its selection rates differ between women and men by the base-rate gap",
             "d": "its accuracy is the same for women and for men"},
    correct="a",
    nudges={"b": "it never guesses at random: it is right on every record whose label is 0.",
            "c": "it selects nobody, in either group.",
            "d": "it is right exactly on the label-0 records, and the share of those differs between the groups."},
    hint="Write down, for each group, which records such a model gets right and how many it selects.",
)
