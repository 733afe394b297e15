"""Reference solutions for notebook 00 (tests prove each passes its check)."""

from helpers.data import serialize


def solution_00_1():
    return lambda df: df["label"].mean()


def solution_00_2():
    return lambda df, col: df.groupby(col, observed=True)["label"].mean()


def solution_00_3():
    return lambda record: serialize(record, sex_words=False)


def solution_00_4():
    """Predict, then count: about 45 % of Adult's records name a husband or a wife, which names the sex.

    Model answer: (b). Dropping 'man'/'woman' leaves the household role; 'husband' is a man and 'wife' a woman in
    all but a handful of records, so nearly half the sentences still state the sex outright (notebook 02 measures
    how well the rest of the sentence predicts it too).
    """
    return "b"


def solution_00_5():
    """Model answer: (a). It is right on every label-0 record (accuracy 1 - base rate, about 0.75 on Adult), it
    selects nobody in any group (demographic-parity gap 0), and it is useless: one fairness number is never enough."""
    return "a"
