"""Self-checks for notebook 04 (the EO surrogate, why accuracy is no fairness term, dual ascent, COMPAS transfer,
a broken accuracy-parity Lagrangian, two questions on multipliers)."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from . import call, choice, exercise, expect


@exercise("04.1", title="the equalized-odds surrogate",
          hint="Two gaps, one per label value: among the rows with that label, compare the groups' mean "
               "probabilities (largest minus smallest). Only groups with at least one such row take part; stay in "
               "torch so the gradient survives.",
          forbid=("helpers.fairness.constrained.eo_gap", "helpers.fairness.constrained.gap"))
def _eo(fn) -> None:
    from ..fairness.constrained import eo_gap

    gen = torch.Generator().manual_seed(4)
    for k, n in ((2, 40), (3, 40), (4, 200), (2, 9)):
        probs = torch.rand(n, generator=gen, dtype=torch.float64)
        labels = torch.randint(0, 2, (n,), generator=gen)
        groups = torch.randint(0, k, (n,), generator=gen)
        got = call(fn, probs, labels, groups)
        expect(torch.is_tensor(got) and got.numel() == 1, f"expected a scalar tensor, got {type(got).__name__}.")
        want = float(eo_gap(probs, labels, groups))
        expect(abs(float(got.detach()) - want) < 1e-9, f"on a random batch of {n} rows and {k} groups you return "
                                              f"{float(got.detach()):.4f}, which is not the larger of the two gaps there.")
    z = torch.randn(6, dtype=torch.float64, requires_grad=True)
    out = call(fn, torch.sigmoid(z), torch.tensor([1, 1, 0, 0, 0, 0]), torch.tensor([0, 0, 0, 1, 1, 1]))
    expect(torch.is_tensor(out) and bool(torch.isfinite(out)),
           "on a batch where group 1 has no positive example your result is NaN or inf.")
    expect(out.requires_grad, "the result has no gradient: it cannot be trained against.")
    out.backward()
    expect(bool(torch.isfinite(z.grad).all()), "on a batch where group 1 has no positive example the gradient has NaN.")


@exercise("04.2", title="accuracy is not a fairness term",
          hint="A perfect classifier selects exactly the rows with label 1. So its selection rate in a group is that "
               "group's base rate: how must the groups' labels differ?",
          kind="spot-the-bug")
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
    expect(gap >= 0.5, f"the demographic-parity gap of your example is only {gap:.2f} (the task asks for at least 0.5).")


@exercise("04.3", title="one step of dual ascent",
          hint="Ascent: the multiplier grows while the measured gap exceeds delta and shrinks when it is below, in "
               "steps of lr times the violation. Which values may the multiplier of an inequality constraint take?")
def _dual(fn) -> None:
    rng = np.random.default_rng(0)
    cases = [((0.0, 0.3, 0.1, 0.5), 0.1), ((1.0, 0.05, 0.1, 2.0), 0.9), ((0.2, 0.0, 0.1, 5.0), 0.0),
             ((2.0, 0.1, 0.1, 1.0), 2.0)]
    for _ in range(6):
        lam, gap, delta, lr = rng.uniform(0, 2), rng.uniform(0, 0.4), rng.uniform(0, 0.1), rng.uniform(0.1, 10)
        cases.append(((lam, gap, delta, lr), max(0.0, lam + lr * (gap - delta))))
    for args, want in cases:
        got = call(fn, *args)
        expect(isinstance(got, (int, float, np.floating)) or torch.is_tensor(got), "return a number.")
        expect(math.isclose(float(got), want, abs_tol=1e-9),
               f"dual_step(lam={args[0]:.3g}, gap={args[1]:.3g}, delta={args[2]:.3g}, lr={args[3]:.3g}) returned "
               f"{float(got):.4g}.")


@contextlib.contextmanager
def _recorded_fits():
    """Record every ``(data, method, param, y_pred)`` that the library's ``fit_predict`` (behind ``run_method``)
    produces while the block runs."""
    from ..fairness import harness

    fits: list[tuple] = []
    original = harness.fit_predict

    def recording(data, method, **kwargs):
        y_pred, extra = original(data, method, **kwargs)
        fits.append((data, method, kwargs.get("param"), np.asarray(y_pred)))
        return y_pred, extra

    harness.fit_predict = recording
    try:
        yield fits
    finally:
        harness.fit_predict = original


def _library_result(fits: list, method: str, delta: float | None, name: str) -> tuple:
    """The recorded fit of ``method`` (with ``param == delta``), checked for a sensible model: ``(data, scores)``."""
    from ..fairness.harness import evaluate

    mine = [f for f in fits if f[1] == method and (delta is None or f[2] is not None and abs(f[2] - delta) < 1e-12)]
    expect(bool(mine), f"the {name} numbers do not come from fc.run_method(data, {method!r}"
                       f"{'' if delta is None else f', param={delta}'}) on the COMPAS split: no such run happened.")
    data, _, _, y_pred = mine[-1]
    rates = [float(y_pred[data.g_test == g].mean()) for g in np.unique(data.g_test)]
    expect(all(0.05 < r < 0.95 for r in rates), f"the {name} model selects {', '.join(f'{r:.0%}' for r in rates)} of "
           "the groups on the test split: a (nearly) constant decision is no model of recidivism.")
    majority = max(float(data.y_test.mean()), 1 - float(data.y_test.mean()))
    return data, evaluate(data.y_test, y_pred, data.g_test), majority


@exercise("04.4", title="transfer to COMPAS (race)",
          hint="Follow the recipe of the markdown step by step and print each intermediate: the rows kept, the "
               "feature matrix's shape, the group codes, the sizes of the two splits. The group must be race, and "
               "the constrained run must receive delta.")
def _compas(fn) -> None:
    with _recorded_fits() as fits:
        loose = call(fn, 0.3)
    expect(isinstance(loose, dict) and "constrained" in loose and "unconstrained" in loose,
           "return {'unconstrained': {...}, 'constrained': {...}} with accuracy, dp and eo in each.")
    with _recorded_fits() as fits:
        out = call(fn, 0.02)
    expect(isinstance(out, dict) and {"unconstrained", "constrained"} <= set(out),
           "return {'unconstrained': {...}, 'constrained': {...}} with accuracy, dp and eo in each.")
    u, c = out["unconstrained"], out["constrained"]
    for name, r in (("unconstrained", u), ("constrained", c)):
        expect(isinstance(r, dict) and all(k in r for k in ("accuracy", "dp", "eo")),
               f"the {name} entry needs accuracy, dp and eo.")
        expect(all(0 <= float(r[k]) <= 1 for k in ("accuracy", "dp", "eo")), f"the {name} numbers must lie in [0, 1].")
    for name, r, method, delta in (("unconstrained", u, "unconstrained", None), ("constrained", c, "lagrangian", 0.02)):
        data, want, majority = _library_result(fits, method, delta, name)
        expect(all(abs(float(r[k]) - want[k]) < 1e-9 for k in ("accuracy", "dp", "eo")),
               f"your {name} numbers ({', '.join(f'{k} {float(r[k]):.3f}' for k in ('accuracy', 'dp', 'eo'))}) are "
               f"not those of the {method} run on your split ("
               f"{', '.join(f'{k} {want[k]:.3f}' for k in ('accuracy', 'dp', 'eo'))}).")
        expect(want["accuracy"] > majority, f"the {name} accuracy {want['accuracy']:.3f} is not above the majority "
               f"rate {majority:.3f} of the test split: the model has learnt nothing.")
    expect(len(data.y_train) + len(data.y_test) >= 5000 and len(np.unique(data.g_test)) == 2,
           f"the split has {len(data.y_train) + len(data.y_test)} rows and {len(np.unique(data.g_test))} groups: keep "
           "all African-American and Caucasian defendants (after ProPublica's filter), race as the group.")
    expect(0.6 <= float(u["accuracy"]) <= 0.8,
           f"unconstrained accuracy {float(u['accuracy']):.3f} is not what COMPAS gives (about 0.65-0.7): "
           "check the label (two_year_recid) and the features.")
    expect(float(u["dp"]) >= 0.1, f"the unconstrained race gap is only {float(u['dp']):.3f}; on COMPAS it is larger: "
           "did you use race as the group?")
    expect(float(c["dp"]) <= 0.5 * float(u["dp"]),
           f"the constrained DP gap {float(c['dp']):.3f} is not below half the unconstrained {float(u['dp']):.3f}.")
    expect(float(c["accuracy"]) >= float(u["accuracy"]) - 0.15, "the constrained model lost more than 15 points of "
           "accuracy: is the constraint DP with a sensible delta (e.g. 0.02)?")
    expect(float(loose["constrained"]["dp"]) >= 0.5 * float(u["dp"]),
           f"with delta = 0.3 (above the unconstrained gap) the constrained gap is {float(loose['constrained']['dp']):.3f},"
           f" far below the unconstrained {float(u['dp']):.3f}: is delta passed on to the constrained run?")


def _as_given(penalty, new_lam, correct, labels, lam, lr) -> bool:
    """Whether the outputs are those of the notebook's buggy original (accuracy per label, flipped sign, descent)."""
    acc = torch.stack([correct[labels == c].mean() for c in range(int(labels.max()) + 1)])
    if not torch.is_tensor(new_lam) or acc.numel() != lam.shape[0]:
        return False
    violation = (acc[:, None] - acc[None, :] + 0.02).detach()
    return (abs(float(penalty.detach()) - float((lam * violation).sum())) < 1e-12
            and torch.allclose(new_lam.detach(), (lam - lr * violation).clamp(min=0)))


@exercise("04.5", title="spot the bug: an accuracy-parity Lagrangian",
          hint="Write the constraint for one ordered pair (g, g') as 'something <= 0', then check the code against it "
               "three ways: over which index are the accuracies computed, which sign does the violation have, and "
               "in which direction does the player who maximises move?",
          kind="spot-the-bug")
def _parity(fn) -> None:
    gen = torch.Generator().manual_seed(0)
    for n, k, lr in ((300, 2, 0.5), (400, 3, 2.0), (250, 4, 1.0)):
        correct = torch.rand(n, generator=gen, dtype=torch.float64)
        labels = torch.randint(0, 2, (n,), generator=gen)
        groups = torch.randint(0, k, (n,), generator=gen)
        correct = (correct * (0.6 + 0.1 * groups)).clamp(0, 1).requires_grad_(True)
        lam = torch.rand(k, k, generator=gen, dtype=torch.float64) * (1 - torch.eye(k, dtype=torch.float64))
        acc = torch.stack([correct[groups == g].mean() for g in range(k)])
        want_violation = acc[None, :] - acc[:, None] - 0.02
        want_penalty = (lam * want_violation).sum()
        want_lam = (lam + lr * want_violation.detach()).clamp(min=0)
        out = call(fn, correct, labels, groups, lam.clone(), 0.02, lr)
        expect(isinstance(out, (tuple, list)) and len(out) == 2, "return (penalty, new_lam).")
        penalty, new_lam = out
        expect(torch.is_tensor(penalty) and penalty.numel() == 1, "the penalty must be a scalar tensor.")
        expect(not _as_given(penalty, new_lam, correct, labels, lam, lr),
               "this is still the code as given, with its three bugs: read it against the constraint first.")
        expect(torch.is_tensor(new_lam) and tuple(new_lam.shape) == (k, k),
               f"with {k} groups the multipliers must have shape ({k}, {k}); yours have "
               f"{tuple(new_lam.shape) if torch.is_tensor(new_lam) else type(new_lam).__name__}.")
        expect(abs(float(penalty.detach()) - float(want_penalty.detach())) < 1e-9,
               f"with {k} groups (accuracies {', '.join(f'{float(a):.3f}' for a in acc.detach())}) your penalty is "
               f"{float(penalty.detach()):+.4f}; compare its sign and size with the violations of that batch.")
        expect(penalty.requires_grad, "the penalty has no gradient: the model could not be trained against it.")
        (g_mine,) = torch.autograd.grad(penalty, correct)
        (g_want,) = torch.autograd.grad(want_penalty, correct)
        expect(torch.allclose(g_mine, g_want), "the penalty's gradient with respect to the rows' correctness differs.")
        grew = float(((new_lam.detach() - lam) * want_violation.detach()).sum())
        expect(torch.allclose(new_lam.detach(), want_lam, atol=1e-9),
               f"after one step the multipliers of violated constraints {'grew' if grew > 0 else 'shrank'}; "
               f"the smallest new multiplier is {float(new_lam.detach().min()):.3f}.")


choice(
    "04.6", "a multiplier that stays at zero",
    options={"a": "training failed: the Lagrangian method did nothing",
             "b": "the constraint was never violated on the training batches: the unconstrained solution already "
                  "met the bound, so the constraint was inactive",
             "c": "the multiplier should have gone negative to help the model",
             "d": "the learning rate of the multiplier was too high"},
    correct="b",
    nudges={"a": "the model trained as usual: only the constraint term was zero.",
            "c": "a negative multiplier would reward violating the constraint.",
            "d": "a large step moves the multiplier away from zero as soon as there is a violation."},
    hint="Write one step of dual ascent for a batch whose gap is below delta, starting from lam = 0.",
)

choice(
    "04.7", "choosing lambda versus choosing delta",
    options={"a": "the penalty weight lambda has no units: which gap a value buys is known only after training; the "
                  "Lagrangian takes the gap delta you want and finds its multiplier by dual ascent",
             "b": "the penalty method cannot reduce the gap at all",
             "c": "delta is a learning rate, so it is easier to tune",
             "d": "the Lagrangian needs no validation data"},
    correct="a",
    nudges={"b": "section 6's sweep shows the penalty does move the gap; the question is which lambda gives which gap.",
            "c": "delta is a bound on the gap, in the same units as the gap.",
            "d": "the bound holds on training batches; you still check the test gap (question 2)."},
    hint="Ask of each knob: in what units is it given, and what do you know about the resulting gap before you train?",
)
