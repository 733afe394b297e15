"""Self-checks for notebook 00 (how exercises work)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import call, exercise, expect


def _toy() -> pd.DataFrame:
    return pd.DataFrame({"label": [1, 0, 0, 1, 0, 0, 0, 1], "sex": ["Male", "Female"] * 4})


@exercise("00.1", title="base rate", hint="The base rate is the mean of the 0/1 label column: df['label'].mean().")
def _base_rate(fn) -> None:
    toy = _toy()
    got = call(fn, toy)
    expect(np.isclose(float(got), 3 / 8), f"on a toy frame with 3 positives in 8 rows you returned {got}, expected 0.375.")


@exercise("00.2", title="base rate per group",
          hint="Group by the sensitive column and take the mean label: df.groupby(col)['label'].mean().")
def _group_rates(fn) -> None:
    toy = _toy()
    got = call(fn, toy, "sex")
    got = pd.Series(got)
    expect(set(got.index) == {"Male", "Female"}, f"expected one rate per group (Male, Female), got index {list(got.index)}.")
    expect(np.isclose(got["Male"], 1 / 4) and np.isclose(got["Female"], 2 / 4),
           f"expected Male 0.25 and Female 0.5, got {got.to_dict()}.")


@exercise("00.3", title="sentences without sex words",
          hint="Call helpers.data.serialize(record, sex_words=False) and look for ' man' / ' woman' in the result.")
def _no_sex_words(fn) -> None:
    record = {"age": 30, "race": "Black", "sex": "Female", "marital_status": "Married-civ-spouse", "hours_per_week": 35,
              "occupation": "Sales", "workclass": "Private", "education": "Masters", "relationship": "Wife",
              "native_country": "Canada", "capital_gain": 0, "capital_loss": 0}
    got = call(fn, record)
    expect(isinstance(got, str), f"expected a sentence (str), got {type(got).__name__}.")
    words = got.lower().replace(",", " ").split()
    expect("woman" not in words and "man" not in words, f"the sentence still names the sex: {got!r}")
    expect("wife" in got.lower(), "the relationship 'wife' should still be there: it is a proxy for sex. "
           "Removing explicit words does not remove the information.")
