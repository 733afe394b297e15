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
    """max(0, max over thresholds tau of TPR(tau) - FPR(tau)); only observed losses need to be tried."""

    def best_advantage(member_losses, nonmember_losses):
        m, n = np.asarray(member_losses, float), np.asarray(nonmember_losses, float)
        best = 0.0
        for tau in np.unique(np.r_[m, n]):
            best = max(best, float(np.mean(m <= tau) - np.mean(n <= tau)))
        return best

    return best_advantage


def solution_07_5():
    """A model answer for the named use (a two-day workshop for a bank's data scientists)."""
    return """## Intended use
Teaching only: a two-day workshop in which the bank's data scientists learn to audit a foundation-model classifier
before any deployment. Participants run the notebooks, read the per-group metrics, the counterfactual swaps, the
attack and the membership-inference results, and practise writing this card. The model and its numbers are
course material; they are re-measured in every run and carry no guarantee outside the workshop.

## Out-of-scope uses
Any decision about a real person: credit or loan approval, pricing, hiring or employment screening, rental or
housing applications, insurance, or benefits. The label is 1994 census income, a proxy that encodes that year's pay
gaps by sex and race; the workbook measured demographic-parity and equalized-odds gaps between women and men, words
such as husband/wife act as proxies for sex, and the loss-threshold attack shows the model leaks who was in its
training data. Using it on people would repeat those gaps as decisions.
"""


def solution_07_6():
    """Model answer: (b)."""
    return "b"


def solution_07_7():
    """The fixed privacy-risk score: a rate, not a count per class. max(0, TPR - FPR) of the attack at tau: the share
    of members flagged minus the share of non-members flagged (an attacker that flags everyone scores 0)."""

    def privacy_risk(member_losses, nonmember_losses, tau, n_classes):
        m, n = np.asarray(member_losses), np.asarray(nonmember_losses)
        return max(0.0, float(np.mean(m <= tau) - np.mean(n <= tau)))

    return privacy_risk


def solution_07_8():
    """Model answer when the AUC falls by more than the noise of two AUCs (a): with weight decay the 256-unit head
    memorises its members less, their losses move towards the non-members', and the threshold attack has less to
    separate. When the AUC moves by less than that noise the check accepts (d), and (e) if the head still overfits beyond the noise of two
    accuracies; (c) only if the unregularised head did not overfit beyond it."""
    return "a"
