"""Known-wrong answers for every code exercise (used by test_exercises.py).

Each list holds at least a constant, a call to the helper being taught (where the exercise re-implements one)
and the classic mistake for that formula. ``HELPER_CALLS`` holds one answer per from-scratch exercise that
calls the forbidden helper; ``RUNS`` holds an experiment result for each experiment exercise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from helpers import data, explain, governance, pretraining, privacy, robustness
from helpers import regularization as reg
from helpers.fairness import constrained as fc
from helpers.fairness import metrics as fm
from helpers.fairness import preprocessing as pre

WRONG: dict[str, list] = {}
HELPER_CALLS: dict[str, object] = {}
RUNS: dict[str, object] = {}

# ---- notebook 00 -------------------------------------------------------------------------------------------
WRONG["00.1"] = [
    lambda df: 0.375,                                   # the old toy answer
    lambda df: df["label"].sum(),                       # a count, not a share
    lambda df: 1 - df["label"].mean(),                  # the share of label 0
    lambda df: df["label"].median(),
]
WRONG["00.2"] = [
    lambda df, col: pd.Series({"Male": 0.25, "Female": 0.5}),  # a constant Series
    lambda df, col: df.groupby(col)["label"].sum(),            # counts
    lambda df, col: df.groupby(col).size() / len(df),          # group shares, not base rates
    lambda df, col: pd.Series(df["label"].mean(), index=sorted(df[col].unique())),  # overall rate everywhere
]
WRONG["00.3"] = [
    lambda r: "wife",
    lambda r: data.serialize(r),                                        # still says man/woman
    lambda r: data.serialize(r, sex_words=False, race_words=False),     # loses race too
    lambda r: data.serialize(r).replace("man", "person"),               # "woperson"
]
RUNS["00.4"] = 0.45

# ---- notebook 01 -------------------------------------------------------------------------------------------


def _shares_over_all(original, inputs, labels, mask):
    n = original.numel()
    sel = labels != -100
    return (int(sel.sum()) / n, int((inputs == mask).sum()) / n, int((sel & (inputs != original)).sum()) / n,
            int((sel & (inputs == original)).sum()) / n)


def _random_includes_mask(original, inputs, labels, mask):
    sel = labels != -100
    n = int(sel.sum())
    return (n / original.numel(), int((sel & (inputs == mask)).sum()) / n,
            int((sel & (inputs != original)).sum()) / n, int((sel & (inputs == original)).sum()) / n)


WRONG["01.1"] = [
    lambda *a: (0.15, 0.8, 0.1, 0.1),
    _shares_over_all,
    _random_includes_mask,
]


def _masker(*, random_selected=False, random_not_masked=True, pad_random=False, p_select=0.15):
    def my_mask_tokens(input_ids, special_ids, mask_token_id, vocab_size, generator):
        labels = input_ids.clone()
        special = torch.isin(input_ids, torch.tensor(special_ids))
        selected = (torch.rand(input_ids.shape, generator=generator) < p_select) & ~special
        labels[~selected] = -100
        inputs = input_ids.clone()
        to_mask = (torch.rand(input_ids.shape, generator=generator) < 0.8) & selected
        inputs[to_mask] = mask_token_id
        to_random = torch.rand(input_ids.shape, generator=generator) < 0.5
        if random_not_masked:
            to_random &= ~to_mask
        if random_selected:
            to_random &= selected
        random_tokens = torch.randint(vocab_size, input_ids.shape, generator=generator)
        inputs[to_random] = 0 if pad_random else random_tokens[to_random]
        return inputs, labels

    return my_mask_tokens


WRONG["01.2"] = [
    _masker(random_selected=True, pad_random=True),              # every random replacement is [PAD]
    _masker(random_selected=True, random_not_masked=False),      # the random branch overwrites [MASK]s
    _masker(random_selected=True, p_select=0.5),
]


def _weat(*, cosine=True, ddof=1):
    def weat_d(X, Y, A, B):
        def unit(v):
            v = np.asarray(v, float)
            return v / np.linalg.norm(v, axis=1, keepdims=True) if cosine else v

        def s(W):
            return (unit(W) @ unit(A).T).mean(1) - (unit(W) @ unit(B).T).mean(1)

        sx, sy = s(X), s(Y)
        return (sx.mean() - sy.mean()) / np.concatenate([sx, sy]).std(ddof=ddof)

    return weat_d


WRONG["01.3"] = [lambda X, Y, A, B: 1.0, _weat(cosine=False), _weat(ddof=0),
                 lambda X, Y, A, B: pretraining.weat_effect_size(X, Y, A, B)]
HELPER_CALLS["01.3"] = WRONG["01.3"][-1]


def _augment_swapped_only(lines):
    return [("He" + x[3:]) if x.startswith("She works in ") else ("She" + x[2:]) if x.startswith("He works in ")
            else x for x in lines]


WRONG["01.4"] = [
    lambda lines: list(lines),
    _augment_swapped_only,                                  # swaps instead of adding copies
    lambda lines: list(lines) + list(lines),                # copies everything
]
RUNS["01.5"] = pd.DataFrame({"corpus_she_rate": [0.1, 0.3, 0.6, 0.0, 0.9],  # the two rare occupations (n = 10)
                             "model_she_ratio": [0.12, 0.28, 0.58, 0.45, 0.5],  # are fit worse: gap 0.42 vs 0.02
                             "n": [1000, 1000, 1000, 10, 10]})

# ---- notebook 02 -------------------------------------------------------------------------------------------


def _p_given_sex(labels, sex):  # the classic mistake: P(y = 1 | sex) instead of P(sex | y = 1)
    labels, sex = np.asarray(labels), np.asarray(sex)
    return (labels[sex == "Female"].mean() + labels[sex == "Male"].mean()) / 2


def _share_of_all(labels, sex):  # forgets to condition on y = 1
    sex = np.asarray(sex)
    return ((sex == "Female").mean() + (sex == "Male").mean()) / 2


WRONG["02.1"] = [lambda labels, sex: 0.5, _p_given_sex, _share_of_all]


def _share_women_of_positives(labels, sex):
    labels, sex = np.asarray(labels), np.asarray(sex)
    return (sex[labels == 1] == "Female").mean()


WRONG["02.2"] = [
    lambda labels, sex: 0.5,
    lambda labels, sex: (_share_women_of_positives(labels, sex) + (np.asarray(sex)[np.asarray(labels) == 1]
                                                                    == "Male").mean()) / 2,
    _share_women_of_positives,                                        # moves with group sizes, not bias
    lambda labels, sex: fm.disparate_impact_ratio(labels, sex, privileged="Male", unprivileged="Female"),  # 1 at parity
]


def _di(flip=False, diff=False):
    def disparate_impact(labels, groups, unprivileged, privileged):
        labels, groups = np.asarray(labels), np.asarray(groups)
        u, p = labels[groups == unprivileged].mean(), labels[groups == privileged].mean()
        return u - p if diff else (p / u if flip else u / p)

    return disparate_impact


WRONG["02.4"] = [lambda *a: 0.8, _di(flip=True), _di(diff=True),
                 lambda y, g, u, p: fm.disparate_impact_ratio(y, g, unprivileged=u, privileged=p)]
HELPER_CALLS["02.4"] = WRONG["02.4"][-1]


def _reweigh(inverse=False, no_joint=False):
    def reweigh(groups, labels):
        groups, labels = np.asarray(groups), np.asarray(labels)
        w = np.empty(len(labels))
        for g in np.unique(groups):
            for y in np.unique(labels):
                cell = (groups == g) & (labels == y)
                if cell.any():
                    indep = (groups == g).mean() * (labels == y).mean()
                    w[cell] = indep if no_joint else (cell.mean() / indep if inverse else indep / cell.mean())
        return w

    return reweigh


WRONG["02.5"] = [lambda g, y: np.ones(len(y)), _reweigh(inverse=True), _reweigh(no_joint=True),
                 lambda g, y: pre.reweighing(g, y)]
HELPER_CALLS["02.5"] = WRONG["02.5"][-1]
WRONG["02.6"] = [
    lambda df, cols: 0.0,
    lambda df, cols: df.groupby(cols).ngroups / len(df),             # distinct combinations, not unique rows
    lambda df, cols: float((df.groupby(cols).size() == 1).sum()),    # a count
    lambda df, cols: privacy.quasi_identifier_uniqueness(df, cols),
]
HELPER_CALLS["02.6"] = WRONG["02.6"][-1]
RUNS["02.7"] = 0.21

# ---- notebook 03 -------------------------------------------------------------------------------------------


def _dp(groups_fn=None, ratio=False):
    def dp_difference(y_pred, groups):
        y_pred, groups = np.asarray(y_pred), np.asarray(groups)
        rates = [y_pred[groups == g].mean() for g in np.unique(groups)]
        return min(rates) / max(rates) if ratio else rates[-1] - rates[0]  # last minus first: wrong for k > 2

    return dp_difference


WRONG["03.1"] = [
    lambda y_pred, groups: 0.0,
    _dp(),                                      # first minus last group, not max minus min
    _dp(ratio=True),                            # the ratio
    lambda y_pred, groups: fm.demographic_parity_difference(y_pred, y_pred, sensitive_features=groups),
]
HELPER_CALLS["03.1"] = WRONG["03.1"][-1]


def _eo(which="max", conditional=True):
    def eo_difference(y_true, y_pred, groups):
        y_true, y_pred, groups = map(np.asarray, (y_true, y_pred, groups))
        gs = np.unique(groups)
        if conditional:
            tpr = [y_pred[(groups == g) & (y_true == 1)].mean() for g in gs]
            fpr = [y_pred[(groups == g) & (y_true == 0)].mean() for g in gs]
        else:  # P(y_true = 1 | y_pred = 1): rates conditioned the wrong way
            tpr = [y_true[(groups == g) & (y_pred == 1)].mean() for g in gs]
            fpr = [1 - y_true[(groups == g) & (y_pred == 0)].mean() for g in gs]
        gaps = (max(tpr) - min(tpr), max(fpr) - min(fpr))
        return {"max": max(gaps), "tpr": gaps[0], "mean": sum(gaps) / 2}[which]

    return eo_difference


WRONG["03.2"] = [lambda *a: 0.1, _eo("tpr"), _eo("mean"), _eo(conditional=False),
                 lambda y, p, g: fm.equalized_odds_difference(y, p, sensitive_features=g)]
HELPER_CALLS["03.2"] = WRONG["03.2"][-1]


def _calib(sign=1, absolute=False):
    def calibration_gap(y_true, y_prob, groups):
        y_true, y_prob, groups = map(np.asarray, (y_true, y_prob, groups))
        out = {}
        for g in np.unique(groups):
            gap = sign * (y_prob[groups == g].mean() - y_true[groups == g].mean())
            out[g] = abs(gap) if absolute else gap
        return out

    return calibration_gap


WRONG["03.3"] = [
    lambda y, p, g: {k: 0.0 for k in np.unique(g)},
    _calib(sign=-1),                                                    # observed minus predicted
    lambda y, p, g: {k: np.mean(p[g == k]) - np.mean(y) for k in np.unique(g)},  # overall positive rate
    lambda y, p, g: fm.group_metrics(y, (p >= 0.5).astype(int), g, y_prob=p)["calibration_gap"],
]
HELPER_CALLS["03.3"] = WRONG["03.3"][-1]
WRONG["03.4"] = [
    lambda p, g, rate: {k: 0.5 for k in np.unique(g)},
    lambda p, g, rate: {k: float(np.quantile(p[g == k], rate)) for k in np.unique(g)},       # rate, not 1 - rate
    lambda p, g, rate: {k: float(np.quantile(p, 1 - rate)) for k in np.unique(g)},           # one global threshold
]


def _loop(double_loss=True, double_step=True, zero_grad=True):
    def train_one_epoch(model, batches, optimizer):
        loss_fn = torch.nn.CrossEntropyLoss()
        for x, y in batches:
            if zero_grad:
                optimizer.zero_grad()
            out = model(x, labels=y)
            loss = out.loss + loss_fn(out.logits, y) if double_loss else out.loss
            loss.backward()
            optimizer.step()
            if double_step:
                optimizer.step()
        return model

    return train_one_epoch


WRONG["03.5"] = [_loop(double_loss=False), _loop(double_step=False), _loop(False, False, zero_grad=False),
                 lambda model, batches, optimizer: model]


def _evaluate(kind):
    def evaluate(model, x, labels):
        with torch.no_grad():
            logits = model(x).logits
        pred = logits.argmax(dim=1)
        if kind == "slice":
            return (pred == labels[:, None]).float().mean().item()
        if kind == "count":
            return (pred == labels).sum().item()
        return (logits[:, 1] > 0).eq(labels.bool()).float().mean().item()  # binary-only shortcut

    return evaluate


WRONG["03.6"] = [_evaluate("count"), _evaluate("binary"), lambda model, x, labels: 0.5]
RUNS["03.7"] = {"before": 0.08, "after": 0.3}

# ---- notebook 04 -------------------------------------------------------------------------------------------


def _eo_surrogate(skip_empty=True, labels_used=(0, 1), numpy=False):
    def eo_surrogate(probs, labels, groups):
        gaps = []
        for y in labels_used:
            rows = labels == y
            means = [probs[rows & (groups == a)].mean() for a in torch.unique(groups)
                     if (rows & (groups == a)).any() or not skip_empty]
            gaps.append(torch.stack(means).max() - torch.stack(means).min())
        out = torch.stack(gaps).max()
        return torch.tensor(float(out.detach()), dtype=probs.dtype) if numpy else out

    return eo_surrogate


WRONG["04.1"] = [
    lambda probs, labels, groups: torch.tensor(0.1, dtype=probs.dtype, requires_grad=True),
    _eo_surrogate(labels_used=(1,)),                 # the TPR gap only
    _eo_surrogate(numpy=True),                       # no gradient
    _eo_surrogate(skip_empty=False),                 # NaN for a group without positives
    lambda probs, labels, groups: fc.eo_gap(probs, labels, groups),
]
HELPER_CALLS["04.1"] = WRONG["04.1"][-1]
WRONG["04.2"] = [
    lambda: (np.array([0.9, 0.1, 0.9, 0.1]), np.array([1, 0, 1, 0]), np.array([0, 0, 1, 1])),  # perfect and fair
    lambda: (np.array([0.9, 0.9, 0.1, 0.1]), np.array([1, 0, 0, 1]), np.array([0, 0, 1, 1])),  # unfair, not perfect
    lambda: (np.array([0.9, 0.9, 0.1, 0.1]), np.array([1, 1, 0, 0]), np.array([1, 1, 2, 2])),  # groups not 0/1
    lambda: (0.9, 1, 0),
]
WRONG["04.3"] = [
    lambda lam, gap, delta, lr: lam + lr * (gap - delta),                 # no projection onto lam >= 0
    lambda lam, gap, delta, lr: max(0.0, lam - lr * (gap - delta)),       # descent
    lambda lam, gap, delta, lr: max(0.0, lam + lr * (delta - gap)),       # violation with the wrong sign
    lambda lam, gap, delta, lr: 0.1,
]


def _compas(group="race", constrained=True, pass_delta=True):
    from nb04 import solution_04_4

    full = solution_04_4()

    def compas_transfer(delta):
        if group != "race":
            return {"unconstrained": {"accuracy": 0.67, "dp": 0.05, "eo": 0.06},
                    "constrained": {"accuracy": 0.66, "dp": 0.01, "eo": 0.03}}  # as sex would give: a small gap
        out = full(delta if pass_delta else 0.02)
        if not constrained:
            out["constrained"] = dict(out["unconstrained"])
        return out

    return compas_transfer


def _compas_says_no():
    from nb04 import solution_04_4

    full = solution_04_4()

    def compas_transfer(delta):
        out = full(delta)
        base = 1 - out["unconstrained"]["accuracy"]  # any accuracy: the point is the constant decision
        out["constrained"] = {"accuracy": max(base, 1 - base), "dp": 0.0, "eo": 0.0}
        return out

    return compas_transfer


WRONG["04.4"] = [
    lambda delta: {"unconstrained": {"accuracy": 0.67, "dp": 0.25, "eo": 0.27},
                   "constrained": {"accuracy": 0.6, "dp": 0.03, "eo": 0.04}},  # a constant
    _compas(group="sex"),
    _compas(constrained=False),             # the unconstrained model twice
    _compas(pass_delta=False),              # delta ignored
    lambda delta: {"unconstrained": {"accuracy": 0.67, "dp": 0.25, "eo": 0.27},   # a dict that follows delta
                   "constrained": {"accuracy": 0.62 if delta < 0.25 else 0.67, "dp": min(delta, 0.25),
                                   "eo": min(delta, 0.25) + 0.02}},
    _compas_says_no(),                      # "no" for everyone as the constrained model: gaps 0
]


def _parity(classes=False, flip=False, descend=False, clip=True):
    def parity_lagrangian_step(correct, labels, groups, lam, delta, lr):
        index = labels if classes else groups
        k = int(labels.max()) + 1 if classes else lam.shape[0]
        acc = torch.stack([correct[index == c].mean() for c in range(k)])
        violation = acc[:, None] - acc[None, :] + delta if flip else acc[None, :] - acc[:, None] - delta
        penalty = (lam * violation).sum()
        new_lam = lam - lr * violation.detach() if descend else lam + lr * violation.detach()
        return penalty, new_lam.clamp(min=0) if clip else new_lam

    return parity_lagrangian_step


WRONG["04.5"] = [
    _parity(classes=True, flip=True, descend=True),       # the three bugs as printed
    _parity(flip=True, descend=True),                     # classes fixed only
    _parity(descend=True),                                # minimises over the multiplier
    _parity(flip=True),                                   # constraint sign flipped
    _parity(classes=True),                                # classes instead of groups
    _parity(clip=False),                                  # no projection
    lambda correct, labels, groups, lam, delta, lr: (correct.sum() * 0, lam),
]

# ---- notebook 05 -------------------------------------------------------------------------------------------
WRONG["05.1"] = [
    lambda params, lam: torch.tensor(0.1, requires_grad=True),
    lambda params, lam: lam * sum((p**2).sum() for p in params),                # no 1/2
    lambda params, lam: 0.5 * lam * sum(p.abs().sum() for p in params),         # L1
    lambda params, lam: torch.tensor(0.5 * lam * sum(float((p.detach()**2).sum()) for p in params)),  # no gradient
    lambda params, lam: reg.l2_penalty(params, lam),
]
HELPER_CALLS["05.1"] = WRONG["05.1"][-1]


def _drop(scale="inverse", eval_drops=False, keep_prob_is_p=False):
    def dropout(x, p, training):
        if not training and not eval_drops:
            return x
        keep = torch.rand_like(x) < p if keep_prob_is_p else torch.rand_like(x) >= p
        factor = {"inverse": 1 / (1 - p), "none": 1.0, "times": 1 - p}[scale]
        return x * keep * factor

    return dropout


WRONG["05.2"] = [
    lambda x, p, training: x,
    _drop(scale="none"),
    _drop(scale="times"),
    _drop(keep_prob_is_p=True),                  # keeps with probability p
    _drop(eval_drops=True),                      # drops in eval mode too
    lambda x, p, training: reg.inverted_dropout(x, p) if training else x,
    lambda x, p, training: torch.nn.functional.dropout(x, p, training),
]
HELPER_CALLS["05.2"] = WRONG["05.2"][-1]


def _ece(right_edge=True, weighted=True, signed=False):
    def ece(y, prob, n_bins):
        y, prob = np.asarray(y, float), np.asarray(prob, float)
        edges = np.linspace(0, 1, n_bins + 1)
        ids = np.searchsorted(edges[1:-1], prob, side="left" if right_edge else "right")
        total, used = 0.0, 0
        for b in range(n_bins):
            m = ids == b
            if m.any():
                gap = y[m].mean() - prob[m].mean()
                gap = gap if signed else abs(gap)
                total += m.sum() / len(y) * gap if weighted else gap
                used += 1
        return total if weighted else total / used

    return ece


WRONG["05.3"] = [
    lambda y, prob, n_bins: 0.05,
    _ece(right_edge=False),                      # the other bin-edge convention (np.digitize)
    _ece(weighted=False),                        # plain mean over bins
    _ece(signed=True),                           # no absolute value
    lambda y, prob, n_bins: reg.expected_calibration_error(y, prob, n_bins),
]
HELPER_CALLS["05.3"] = WRONG["05.3"][-1]


def _reinit(which="all", clamp=True, std=0.02):
    def broken_regularizer_(model):
        with torch.no_grad():
            for name, t in model.named_parameters():
                if which == "weights" and not name.endswith("weight"):
                    continue
                t.normal_(0.0, std)
                if clamp:
                    t.clamp_(-0.1, 0.1)

    return broken_regularizer_


WRONG["05.4"] = [
    lambda model: 0,                                  # does nothing (returns a value, so it counts as an attempt)
    _reinit(which="weights"),                         # biases and LayerNorm untouched
    _reinit(clamp=False, std=0.2),                    # no clamp
    _reinit(std=0.05),
    lambda model: reg.reinit_and_clamp_(model),
]
HELPER_CALLS["05.4"] = WRONG["05.4"][-1]


def _early(tie_improves=False, zero_based=False, strict=False):
    def early_stop_epochs(losses, patience):
        best, best_epoch, bad = float("inf"), 0, 0
        for epoch, loss in enumerate(losses, start=0 if zero_based else 1):
            if loss < best or (tie_improves and loss == best):
                best, best_epoch, bad = loss, epoch, 0
            else:
                bad += 1
                if (bad > patience) if strict else (bad >= patience):
                    return best_epoch, epoch
        return best_epoch, len(losses) - (1 if zero_based else 0)

    return early_stop_epochs


def _early_helper(losses, patience):
    stopper = reg.EarlyStopping(patience=patience)
    model = torch.nn.Linear(1, 1)
    for epoch, loss in enumerate(losses, start=1):
        if stopper.step(loss, model, epoch):
            return stopper.best_epoch, epoch
    return stopper.best_epoch, len(losses)


WRONG["05.5"] = [lambda losses, patience: (1, len(losses)), _early(tie_improves=True), _early(zero_based=True),
                 _early(strict=True), _early_helper]
HELPER_CALLS["05.5"] = _early_helper


def _grad_no_unused(penalty_fn, model):
    grads = torch.autograd.grad(penalty_fn(model), list(model.parameters()))  # raises for a term that ignores them
    return float(torch.sqrt(sum((g**2).sum() for g in grads)))


WRONG["05.6"] = [
    lambda penalty_fn, model: 0.0,
    lambda penalty_fn, model: float(penalty_fn(model).detach()),                         # the value, not the gradient
    _grad_no_unused,
    lambda penalty_fn, model: float(torch.sqrt(sum((p**2).sum() for p in model.parameters()))),  # norm of theta
]
RUNS["05.7"] = {"before": 0.12, "after": 0.02, "noise": 0.05}

# ---- notebook 06 -------------------------------------------------------------------------------------------


def _shapley(weighting="shapley"):
    import itertools
    import math

    def shapley(value, n):
        phi = np.zeros(n)
        for i in range(n):
            others = [j for j in range(n) if j != i]
            for size in range(n):
                if weighting == "uniform":               # every coalition equally likely: the Banzhaf value
                    w = 1 / 2 ** (n - 1)
                elif weighting == "by_size":             # 1 / (n * C(n-1, |S|)) without the factorials' meaning
                    w = 1 / n
                else:
                    w = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
                for S in itertools.combinations(others, size):
                    phi[i] += w * (value(frozenset(S) | {i}) - value(frozenset(S)))
        return phi

    return shapley


WRONG["06.1"] = [
    lambda value, n: np.full(n, 1 / n),
    _shapley("uniform"),
    _shapley("by_size"),
    lambda value, n: np.array([value(frozenset({i})) - value(frozenset()) for i in range(n)]),  # singletons only
    lambda value, n: explain.shapley_from_values(np.array([value(frozenset(j for j in range(n) if m >> j & 1))
                                                           for m in range(2**n)]), n),
    # Owen values for a flat hierarchy are Shapley values: the workbook's Owen helper is forbidden too
    lambda value, n: __import__("helpers.shapley", fromlist=["owen_from_values"]).owen_from_values(
        np.array([value(frozenset(j for j in range(n) if m >> j & 1)) for m in range(2**n)]), n, tuple(range(n))),
]
HELPER_CALLS["06.1"] = WRONG["06.1"][-1]


def _lime(sqrt=True, weighted=True, intercept=True, alpha=1.0):
    from sklearn.linear_model import Ridge

    def lime_fit(Z, y, distances, kernel_width=25.0):
        k = np.exp(-np.asarray(distances, float) ** 2 / kernel_width**2)
        pi = np.sqrt(k) if sqrt else k
        return Ridge(alpha=alpha, fit_intercept=intercept).fit(Z, y, sample_weight=pi if weighted else None).coef_

    return lime_fit


def _lime_with_helper_kernel(Z, y, d, kernel_width=25.0):
    from sklearn.linear_model import Ridge

    return Ridge(alpha=1.0).fit(Z, y, sample_weight=explain.lime_kernel(d, kernel_width)).coef_


WRONG["06.2"] = [lambda Z, y, d, kernel_width=25.0: np.zeros(Z.shape[1]), _lime(sqrt=False), _lime(weighted=False),
                 _lime(intercept=False), _lime(alpha=1e-9), _lime_with_helper_kernel]
HELPER_CALLS["06.2"] = WRONG["06.2"][-1]
RUNS["06.3"] = {100: np.array([0.32, 0.33]), 50_000: np.array([0.09, 0.09])}
WRONG["06.4"] = [
    lambda curve: 0.3,
    lambda curve: float(np.mean(curve[0] - np.asarray(curve)[1:])),        # divides by K, not K + 1
    lambda curve: float(np.mean(np.asarray(curve) - curve[0])),            # sign
    lambda curve: float(np.sum(curve[0] - np.asarray(curve))),             # a sum
    lambda curve: explain.aopc(curve),
]
HELPER_CALLS["06.4"] = WRONG["06.4"][-1]

# ---- notebook 07 -------------------------------------------------------------------------------------------


def _swap_replace(text):  # chained str.replace: he -> she -> he
    for a, b in (("he", "she"), ("she", "he"), ("man", "woman"), ("woman", "man")):
        text = text.replace(a, b)
    return text


def _swap_lower(text):
    import re

    pairs = {"he": "she", "she": "he", "man": "woman", "woman": "man"}
    return re.sub(r"[A-Za-z]+", lambda m: pairs.get(m.group().lower(), m.group()), text)


def _swap_substrings(text):
    import re

    pairs = {"he": "she", "she": "he", "man": "woman", "woman": "man"}
    return re.sub(r"(?i)woman|man|she|he", lambda m: pairs[m.group().lower()], text)


WRONG["07.1"] = [lambda text: text, _swap_replace, _swap_lower, _swap_substrings,
                 lambda text: robustness.swap_gendered_words(text)]
HELPER_CALLS["07.1"] = WRONG["07.1"][-1]
WRONG["07.2"] = [
    lambda m, n, tau: 0.35,
    lambda m, n, tau: float(np.mean(np.asarray(m) < tau) - np.mean(np.asarray(n) < tau)),     # strict: ties lost
    lambda m, n, tau: float(np.mean(np.asarray(n) <= tau) - np.mean(np.asarray(m) <= tau)),   # FPR - TPR
    lambda m, n, tau: float(np.mean(np.asarray(m) <= tau)),                                   # TPR only
]
WRONG["07.3"] = [
    lambda y, p, c: 1 / 3,
    lambda y, p, c: float(np.mean(np.maximum(p, 1 - p) >= c)),                                # confident, not wrong
    lambda y, p, c: float(np.mean(np.where(y == 1, 1 - p, p) > c)),                           # strict
    lambda y, p, c: float(np.mean((np.where(y == 1, 1 - p, p) >= c)[np.where(y == 1, p, 1 - p) < 0.5])),  # among errors
    lambda y, p, c: governance.confident_error_rate(y, p, confidence=c),
]
HELPER_CALLS["07.3"] = WRONG["07.3"][-1]


def _fixed_tau(m, n):  # Yeom's threshold: the mean member loss
    m, n = np.asarray(m), np.asarray(n)
    return float(np.mean(m <= m.mean()) - np.mean(n <= m.mean()))


def _abs_best(m, n):  # |TPR - FPR|: counts an attack that works backwards
    m, n = np.asarray(m), np.asarray(n)
    return max(abs(float(np.mean(m <= t) - np.mean(n <= t))) for t in np.unique(np.r_[m, n]))


def _auc(m, n):
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(m)), np.zeros(len(n))], -np.r_[m, n]))


def _attack_helper(m, n):
    ones = np.ones(len(m))
    return privacy.loss_threshold_attack(np.exp(-np.asarray(m)), ones, np.exp(-np.asarray(n)),
                                         np.ones(len(n)))["best_advantage"]


WRONG["07.4"] = [lambda m, n: 0.2, _fixed_tau, _abs_best, _auc, _attack_helper]
HELPER_CALLS["07.4"] = _attack_helper
WRONG["07.5"] = [
    "## Intended use\nTeaching.\n\n## Out-of-scope uses\nEverything else.",
    "## Intended use\n" + "This model is intended for teaching in the workshop and nothing else at all. " * 4,  # no out
    "## Intended use\n" + "The workshop uses it to teach auditing to data scientists of the bank, step by step. " * 3
    + "\n## Out-of-scope uses\n" + "Research on other data sets and benchmarks is out of scope for this model here. "
    * 3,                                                                    # no decisions about people, no why
    lambda: governance.model_card(results={}),
]
HELPER_CALLS["07.5"] = WRONG["07.5"][-1]


def _risk(kind):
    def privacy_risk(member_losses, nonmember_losses, tau, n_classes):
        m, n = np.asarray(member_losses), np.asarray(nonmember_losses)
        if kind == "classes":
            return float(np.sum(m <= tau) / n_classes)       # the bug as printed
        if kind == "tpr":
            return float(np.mean(m <= tau))                   # flagging everyone scores 1
        if kind == "all":
            return float(np.sum(m <= tau) / (len(m) + len(n)))
        return float(np.mean(m <= tau) - np.mean(n <= tau))   # negative for a useless attacker

    return privacy_risk


WRONG["07.7"] = [_risk("classes"), _risk("tpr"), _risk("all"), _risk("unclipped"), lambda *a: 0.5]
RUNS["07.8"] = {"before": {"auc": 0.66, "accuracy_gap": 0.23}, "after": {"auc": 0.55, "accuracy_gap": 0.05},
                "members": 400}
