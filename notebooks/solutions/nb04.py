"""Reference solutions for notebook 04 (tests prove each passes its check)."""

import numpy as np
import pandas as pd
import torch


def solution_04_1():
    def eo_surrogate(probs, labels, groups):
        gaps = []
        for y in (0, 1):
            rows = labels == y
            means = [probs[rows & (groups == a)].mean() for a in torch.unique(groups) if (rows & (groups == a)).any()]
            gaps.append(torch.stack(means).max() - torch.stack(means).min() if len(means) >= 2 else probs.sum() * 0)
        return torch.maximum(gaps[0], gaps[1])

    return eo_surrogate


def solution_04_2():
    def perfect_but_unfair():
        labels = np.array([1, 1, 1, 0, 0, 0, 0, 1])
        groups = np.array([0, 0, 0, 0, 1, 1, 1, 1])
        probs = np.where(labels == 1, 0.9, 0.1)
        return probs, labels, groups

    return perfect_but_unfair


def solution_04_3():
    return lambda lam, gap, delta, lr: max(0.0, lam + lr * (gap - delta))


def solution_04_4():
    from helpers.data import load_compas
    from helpers.fairness.constrained import FairData, encode_groups, run_method

    def compas_transfer(delta):
        df = load_compas()
        df = df[df["race"].isin(["African-American", "Caucasian"])].reset_index(drop=True)
        X = pd.get_dummies(df[["age", "priors_count", "juv_fel_count", "juv_misd_count", "juv_other_count",
                               "c_charge_degree", "sex"]], columns=["c_charge_degree", "sex"], dtype=float)
        g, names = encode_groups(df["race"])
        rng = np.random.default_rng(0)
        test = rng.random(len(df)) < 0.3
        X, y = X.to_numpy(np.float32), df["label"].to_numpy()
        data = FairData(X[~test], y[~test], g[~test], X[test], y[test], g[test], names)
        keep = ("accuracy", "dp", "eo")
        u = run_method(data, "unconstrained")
        c = run_method(data, "lagrangian", param=delta)
        return {"unconstrained": {k: u[k] for k in keep}, "constrained": {k: c[k] for k in keep}}

    return compas_transfer


def solution_04_5():
    """The accuracy-parity Lagrangian fixed: accuracies per *group*, the violation a[g'] - a[g] - delta of the
    constraint a[g] >= a[g'] - delta, and projected *ascent* on the multipliers (the max player)."""

    def parity_lagrangian_step(correct, labels, groups, lam, delta, lr):
        k = lam.shape[0]
        acc = torch.stack([correct[groups == g].mean() for g in range(k)])
        violation = acc[None, :] - acc[:, None] - delta
        penalty = (lam * violation).sum()
        new_lam = (lam + lr * violation.detach()).clamp(min=0)
        return penalty, new_lam

    return parity_lagrangian_step


def solution_04_6():
    """Model answer: (b). Complementary slackness: an inactive constraint has multiplier 0."""
    return "b"


def solution_04_7():
    """Model answer: (a)."""
    return "a"
