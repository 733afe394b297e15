"""Reference solutions for notebook 07 (tests prove each passes its check)."""

import re

import numpy as np


def solution_07_1():
    pairs = {"he": "she", "she": "he", "man": "woman", "woman": "man"}

    def swap(text):
        def one(m):
            w = m.group()
            new = pairs.get(w.lower())
            if new is None:
                return w
            if w.isupper() and len(w) > 1:
                return new.upper()
            if w[0].isupper():
                return new[0].upper() + new[1:]
            return new

        return re.sub(r"[A-Za-z]+", one, text)

    return swap


def solution_07_2():
    return lambda member, nonmember, tau: float(np.mean(np.asarray(member) <= tau)
                                                - np.mean(np.asarray(nonmember) <= tau))


def solution_07_3():
    def confident_error_rate(y, p, confidence):
        y, p = np.asarray(y), np.asarray(p, dtype=float)
        p_wrong = np.where(y == 1, 1 - p, p)
        return float(np.mean(p_wrong >= confidence))

    return confident_error_rate


def solution_07_4():
    return lambda df, columns: float((df.groupby(columns)[columns[0]].transform("size") == 1).mean())
