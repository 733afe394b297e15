"""Self-checks for notebook 04 (the EO surrogate, why accuracy is no fairness term, dual ascent, COMPAS transfer)."""

from __future__ import annotations

import math

import numpy as np
import torch

from . import call, exercise, expect


@exercise("04.1", title="the equalized-odds surrogate",
          hint="For y in (0, 1): take the rows with labels == y, the mean of probs per group present there, "
               "and max - min; return the larger of the two. Skip a group with no rows (no division by zero).")
def _eo(fn) -> None:
    from ..fairness.constrained import eo_gap

    gen = torch.Generator().manual_seed(4)
    for k in (2, 3):
        probs = torch.rand(40, generator=gen, dtype=torch.float64)
        labels = torch.randint(0, 2, (40,), generator=gen)
        groups = torch.randint(0, k, (40,), generator=gen)
        got = call(fn, probs, labels, groups)
        expect(torch.is_tensor(got) and got.numel() == 1, f"expected a scalar tensor, got {type(got).__name__}.")
        want = float(eo_gap(probs, labels, groups))
        expect(abs(float(got) - want) < 1e-9, f"with {k} groups you return {float(got):.4f}, expected {want:.4f}.")
    z = torch.randn(6, dtype=torch.float64, requires_grad=True)
    out = call(fn, torch.sigmoid(z), torch.tensor([1, 1, 0, 0, 0, 0]), torch.tensor([0, 0, 0, 1, 1, 1]))
    expect(torch.is_tensor(out) and bool(torch.isfinite(out)),
           "a batch where group 1 has no positives gave NaN or inf: leave that group out of the TPR gap.")
    expect(out.requires_grad, "the result has no gradient: use torch operations on probs (no .item(), no numpy).")
    out.backward()
    expect(bool(torch.isfinite(z.grad).all()), "the gradient has NaN: avoid dividing by a zero count.")


@exercise("04.2", title="accuracy is not a fairness term",
          hint="Give group 0 mostly label 1 and group 1 mostly label 0, and let probs be 0.9 where the label is 1 "
               "and 0.1 where it is 0: a perfect classifier that still selects group 0 far more often.")
def _accuracy(fn) -> None:
    out = call(fn)
    expect(isinstance(out, (tuple, list)) and len(out) == 3, "return a tuple (probs, labels, groups).")
    probs, labels, groups = (np.asarray(torch.as_tensor(v).detach().cpu().numpy() if torch.is_tensor(v) else v)
                             for v in out)
    expect(probs.shape == labels.shape == groups.shape and probs.ndim == 1 and len(probs) >= 4,
           "probs, labels and groups must be 1-D and of the same length (at least 4 rows).")
    expect(set(np.unique(groups).tolist()) == {0, 1}, "use exactly two groups, coded 0 and 1.")
    pred = (probs > 0.5).astype(int)
    expect((pred == labels).all(), "the classifier is not perfectly accurate: every (probs > 0.5) must equal its label.")
    gap = abs(pred[groups == 0].mean() - pred[groups == 1].mean())
    expect(gap >= 0.5, f"the demographic-parity gap is only {gap:.2f}; make the groups' base rates differ more (>= 0.5).")


@exercise("04.3", title="one step of dual ascent",
          hint="lam + lr * (gap - delta), then clip at 0 (a multiplier of an inequality constraint is never negative).")
def _dual(fn) -> None:
    cases = [((0.0, 0.3, 0.1, 0.5), 0.1), ((1.0, 0.05, 0.1, 2.0), 0.9), ((0.2, 0.0, 0.1, 5.0), 0.0),
             ((2.0, 0.1, 0.1, 1.0), 2.0)]
    for args, want in cases:
        got = call(fn, *args)
        expect(isinstance(got, (int, float, np.floating)) or torch.is_tensor(got), "return a number.")
        expect(math.isclose(float(got), want, abs_tol=1e-9),
               f"dual_step(lam={args[0]}, gap={args[1]}, delta={args[2]}, lr={args[3]}) = {float(got):.4g}, "
               f"expected {want:.4g}.")


@exercise("04.4", title="transfer to COMPAS (race)",
          hint="Build numeric features from load_compas() (age, priors_count, juvenile counts, charge degree, sex), "
               "keep African-American and Caucasian defendants, encode race with encode_groups, split train/test, "
               "wrap in FairData and call run_method(data, 'unconstrained') and run_method(data, 'lagrangian', "
               "param=delta). No helper code changes.")
def _compas(fn) -> None:
    out = call(fn, 0.02)
    expect(isinstance(out, dict) and {"unconstrained", "constrained"} <= set(out),
           "return {'unconstrained': {...}, 'constrained': {...}} with accuracy, dp and eo in each.")
    u, c = out["unconstrained"], out["constrained"]
    for name, r in (("unconstrained", u), ("constrained", c)):
        expect(all(k in r for k in ("accuracy", "dp", "eo")), f"the {name} entry needs accuracy, dp and eo.")
        expect(all(0 <= float(r[k]) <= 1 for k in ("accuracy", "dp", "eo")), f"the {name} numbers must lie in [0, 1].")
    expect(0.6 <= float(u["accuracy"]) <= 0.8,
           f"unconstrained accuracy {float(u['accuracy']):.3f} is not what COMPAS gives (about 0.65-0.7): "
           "check the label (two_year_recid) and the features.")
    expect(float(u["dp"]) >= 0.1, f"the unconstrained race gap is only {float(u['dp']):.3f}; on COMPAS it is larger: "
           "did you use race as the group?")
    expect(float(c["dp"]) <= 0.5 * float(u["dp"]),
           f"the constrained DP gap {float(c['dp']):.3f} is not below half the unconstrained {float(u['dp']):.3f}.")
    expect(float(c["accuracy"]) >= float(u["accuracy"]) - 0.15, "the constrained model lost more than 15 points of "
           "accuracy: is the constraint DP with a sensible delta (e.g. 0.02)?")
