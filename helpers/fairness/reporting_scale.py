"""Checks of notebook 04b (constraints at scale): fine-tuning, measurability, meeting methods, monotonicity, four
groups; claims and findings as in :mod:`helpers.fairness.reporting`, whose helpers they use.

``helpers.fairness.reporting.<name>`` finds these names too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..claims import Claim
from .metrics import gap_interval
from .reporting import (
    _NAMES,
    MIN_RATE,
    Finding,
    _check,
    _claim,
    _finding,
    _fmt,
    no_better_than_majority,
    one_class_groups,
    selection_frame,
)

#: A test gap whose 95 % interval is wider than this either side cannot be compared with a tolerance of 0.02-0.03.
MAX_HALF_WIDTH = 0.05


def rate_change(nb: str, name: str, before: dict[str, float], after: dict[str, float], *,
                claims: bool = True) -> Claim | Finding:
    """Did a gap between selection rates close by raising the lowest group's rate (not by levelling down)?"""
    from .constrained import describe_rate_change

    before, after = {str(k): float(v) for k, v in before.items()}, {str(k): float(v) for k, v in after.items()}
    lo = min(before, key=before.get)
    story = describe_rate_change(before, after)
    stuck = one_class_groups(after)
    return _check(nb, name, after[lo] > before[lo] and not stuck,
                  f"The lowest group's rate rose: {story}",
                  f"No levelling up in this run. {story}"
                  + (f" Groups given one decision for all: {_fmt(stuck)}." if stuck else ""),
                  {"before": before, "after": after}, claims)


def interval(nb: str, name: str, y_true: Any, y_pred: Any, groups: Any, *, metric: str, what: str, delta: float,
             seed: int = 0) -> Finding:
    """Did a head meet its tolerance on new data? A finding (generated from the run, not a claim): the test gap's
    estimate and 95 % bootstrap interval, compared with the tolerance ``delta``: *met* when the whole interval lies
    at or below ``delta``, *missed* when it lies entirely above, *cannot tell* when it contains ``delta`` (then, if
    the half-width exceeds ``MAX_HALF_WIDTH``, how many more test rows would narrow it)."""
    ci = gap_interval(np.asarray(y_true), np.asarray(y_pred), sensitive_features=np.asarray(groups), metric=metric,
                      seed=seed)
    half, what, n = (ci.high - ci.low) / 2, what[:1].upper() + what[1:], len(np.asarray(y_true))
    if ci.high <= delta:
        verdict = f"met: the whole interval lies at or below the tolerance δ = {delta:g}."
    elif ci.low > delta:
        verdict = f"missed: the whole interval lies above the tolerance δ = {delta:g}."
    else:
        verdict = (f"cannot tell: the interval contains the tolerance δ = {delta:g}, so with {n} test sentences this "
                   "run cannot say whether it was met.")
        if half > MAX_HALF_WIDTH:
            verdict += (f" About {(half / MAX_HALF_WIDTH) ** 2:.0f}× as many test sentences would narrow the interval "
                        f"to ± {MAX_HALF_WIDTH:g} (gpu mode scores the full test split).")
    return _finding(nb, name, f"{what} is {ci.estimate:.3f}, 95 % bootstrap interval {ci.low:.3f} to {ci.high:.3f} "
                    f"(± {half:.3f}): {verdict}",
                    {"estimate": ci.estimate, "low": ci.low, "high": ci.high, "delta": delta, "test_rows": n})


def methods_meet(nb: str, table: pd.DataFrame, pair: tuple[str, str], *, gap: str, y_true: Any,
                 predictions: dict[str, Any], groups: Any, seed: int = 0) -> Finding:
    """Can the test set tell two methods apart? A finding (either outcome is a fair result): ``table`` holds methods
    (rows) x ``(metric, "mean" | "std")`` columns, shown; the verdict comes from paired bootstrap intervals
    (:func:`helpers.fairness.compare.paired_difference`) of the accuracy difference and of the ``gap`` difference
    between the two methods' 0/1 test decisions ``predictions[a]``, ``predictions[b]`` (n,) on the same rows
    ``y_true`` (n,), ``groups`` (n,): the two land within the noise of each other when both intervals contain 0.
    A method no better than predicting the majority class (:func:`no_better_than_majority`) is flagged."""
    from .compare import paired_difference

    (a, b), m = pair, lambda k, c: float(table.loc[k, (c, "mean")])
    diff = {c: paired_difference(y_true, predictions[a], predictions[b], sensitive_features=groups, metric=c,
                                 seed=seed) for c in ("accuracy", gap)}
    apart = [c for c, d in diff.items() if not d.low <= 0 <= d.high]
    points = f"{a}: accuracy {m(a, 'accuracy'):.3f}, {_NAMES[gap]} {m(a, gap):.3f}; {b}: {m(b, 'accuracy'):.3f}, {m(b, gap):.3f}"
    paired = "; ".join(f"{'accuracy' if c == 'accuracy' else _NAMES[c] + ' gap'} {d.estimate:+.3f} "
                       f"[{d.low:+.3f}, {d.high:+.3f}]" for c, d in diff.items())
    noise_text = f"paired 95 % bootstrap intervals of {a} - {b} on the same test rows: {paired}"
    text = (f"On the same embeddings the test set cannot tell the two apart ({points}; {noise_text}, both containing "
            "0): this run credits neither method." if not apart else
            f"The test set tells the two apart in {' and '.join('accuracy' if c == 'accuracy' else _NAMES[c] + ' gap' for c in apart)} "
            f"({points}; {noise_text}). With one seed, check the seed spread before crediting the method.")
    weak = {k: no_better_than_majority(y_true, predictions[k]) for k in pair}
    weak = {k: v for k, v in weak.items() if v[0]}
    if weak:
        text += " " + "; ".join(f"{k}'s accuracy {acc:.3f} is no better than predicting the majority class ({maj:.3f} "
                                f"± {half:.3f})" for k, (_, acc, maj, half) in weak.items()) + (
            ": a comparison with it says nothing about the price of fairness." if len(weak) == 1 else
            ": a comparison between them says nothing about the price of fairness.")
    return _finding(nb, f"methods_meet_{gap}", text, {**{c: list(d[:3]) for c, d in diff.items()},
                                                      "no_better_than_majority": sorted(weak)})


def monotone(nb: str, summary: pd.DataFrame, noise: dict[str, float]) -> list[Claim | Finding]:
    """Is each constrained frontier monotone within the noise over the tolerances ``delta > 0``: tightening delta
    never raises the test gap by more than the 95 % half-width? (The penalty's largest increase as lambda grows is
    reported beside it.) ``delta = 0`` gets a finding instead: the running gap of hard decisions is never below 0,
    so the dual step is never negative and the multiplier only grows; that point is not a tolerance being met."""
    out = []
    for c in summary["target"].unique():
        part = summary[summary["target"] == c]
        worst = {}
        for method, ascending in (("lagrangian", False), ("penalty", True)):
            rows = part[(part["method"] == method) & ((part["param"] > 0) | (method == "penalty"))]
            rows = rows.sort_values("param", ascending=ascending)
            worst[method] = float(np.clip(rows[f"{c}_mean"].diff().max(), 0, None)) if len(rows) > 1 else 0.0
        out.append(_claim(
            nb, f"frontier_monotone_{c}", worst["lagrangian"] <= noise[c],
            f"Tightening δ > 0 raised the measured {_NAMES[c]} gap by at most {worst['lagrangian']:.3f}, within the "
            f"test set's noise (± {noise[c]:.3f}): the constrained frontier is monotone as far as this test set can "
            f"tell (penalty: up to {worst['penalty']:.3f} as λ grows).",
            f"Tightening δ > 0 raised the measured {_NAMES[c]} gap by {worst['lagrangian']:.3f}, more than the test "
            f"set's noise (± {noise[c]:.3f}): at these sizes the constraint does not order nearby tolerances. More "
            "epochs or seeds (gpu mode) may make it monotone; look at which δ broke the order.",
            {"max_increase": worst, "noise": noise[c]}))
        lag = part[part["method"] == "lagrangian"].set_index("param")[f"{c}_mean"]
        if 0 in lag.index and (lag.index > 0).any():
            d = float(lag.index[lag.index > 0].min())
            g0, gd = float(lag.loc[0]), float(lag.loc[d])
            how = ("no larger than" if g0 <= gd + noise[c] else "larger than")
            out.append(_finding(
                nb, f"delta_zero_{c}", f"δ = 0 asks for {'an' if _NAMES[c][0] in 'AEae' else 'a'} {_NAMES[c]} gap of exactly 0: the running gap of hard decisions "
                "is never below 0, so λ never falls: it grows until it reaches its cap λ_max. Its test gap "
                f"{g0:.3f} is {how} that of δ = {d:g} ({gd:.3f}) plus the noise (± {noise[c]:.3f}); a tolerance that "
                "cannot be met is not a tighter one.", {"gap_at_0": g0, "gap_at_smallest": gd, "noise": noise[c]}))
    return out


#: The near-constant rule of :mod:`helpers.fairness.reporting` (a group's selection rate below this or above 1 - this).
NEAR_CONSTANT = MIN_RATE


def _levelled_text(flat: dict[str, dict[str, float]], share: dict[str, float], acc: dict[str, float],
                   constant: float, half: dict[str, float], n_groups: int) -> str:
    """The finding on the methods levelled to (nearly) a constant classifier (``flat``: method -> rate per group)."""
    if not flat:
        return ("No method became (nearly) a constant classifier: each selects between "
                f"{MIN_RATE:.0%} and {1 - MIN_RATE:.0%} of every group and beats the majority class's accuracy by "
                "more than the noise.")
    return ("Levelled down to (nearly) a constant classifier (a group selected less than "
            f"{MIN_RATE:.0%} or more than {1 - MIN_RATE:.0%} of the time, or accuracy within the noise of one decision "
            "for everyone): "
            + "; ".join(f"{m} gives the positive decision to {share[m]:.1%} of people ({_fmt(r)}), accuracy "
                        f"{acc[m]:.3f} (± {half[m]:.3f}) against {constant:.3f} for one decision for everyone"
                        for m, r in flat.items())
            + f". With {n_groups} groups the tolerance must hold for every pair, and one way to meet "
            "it is to give (almost) everyone the same answer: a small gap from treating everyone the same way is not "
            "groups treated alike. A head that does not see the group moves a group's rate only through features "
            "correlated with it (ThresholdOptimizer sees the group when it decides); read the per-group rates before "
            "the gap.")


def multi_group(nb: str, predictions: dict[str, Any], y_true: Any, groups: Any, *, before: str,
                narrowing: list[str]) -> list[Claim | Finding]:
    """With several groups: which methods (nearly) became a constant classifier (a finding, with every group's
    selection rate), and did the other ``narrowing`` methods (those that target selection rates) at least halve the
    largest gap between group selection rates (a claim; a finding if every one of them is near-constant)?

    ``predictions``: method -> 0/1 decisions (n,); ``groups``: group names (n,); ``before``: the unconstrained method.
    A method counts as levelled to a constant if some group's selection rate is below ``MIN_RATE`` or above
    ``1 - MIN_RATE``, or if it is no better than predicting the majority class (accuracy at most the majority
    class's plus the accuracy's 95 % half-width), as in :mod:`helpers.fairness.reporting`.
    """
    rates = selection_frame(predictions, groups)
    share = {m: float(np.mean(p)) for m, p in predictions.items()}
    judged = {m: no_better_than_majority(y_true, p) for m, p in predictions.items()}
    acc, half = {m: j[1] for m, j in judged.items()}, {m: j[3] for m, j in judged.items()}
    constant = next(iter(judged.values()))[2]
    flat = {m: rates.loc[m].to_dict() for m in predictions
            if one_class_groups(rates.loc[m].to_dict()) or judged[m][0]}
    spread = (rates.max(axis=1) - rates.min(axis=1)).to_dict()
    kept = [m for m in narrowing if m not in flat]
    narrowed = {m: spread[m] < 0.5 * spread[before] for m in kept}
    listing = "; ".join(f"{m} {spread[m]:.3f}" for m in kept)
    left = [m for m in narrowing if m in flat]
    aside = (f" Left out as (nearly) constant or no better than the majority class: {', '.join(left)}." if left else "")
    ev = {"share_positive": share, "accuracy": acc, "constant_accuracy": constant, "accuracy_noise": half,
          "rates": {m: rates.loc[m].to_dict() for m in predictions}, "excluded": left}
    text = _levelled_text(flat, share, acc, constant, half, rates.shape[1])
    out: list[Claim | Finding] = [_finding(nb, "levelled_to_a_constant", text, ev)]
    if not kept:
        return out + [_finding(nb, "dp_methods_halve_largest_gap",
                               f"Every DP method became (nearly) a constant classifier or no better than the majority "
                               f"class ({', '.join(left)}): none narrowed the largest gap between the "
                               f"{rates.shape[1]} groups' rates (unconstrained {spread[before]:.3f}) while still "
                               "deciding.", {"spread": spread, "excluded": left})]
    return out + [
        _claim(nb, "dp_methods_halve_largest_gap", all(narrowed.values()),
               f"Every DP method that still decides at least halved the largest gap between the {rates.shape[1]} "
               f"groups' rates ({len(kept)} of {len(narrowing)}; unconstrained {spread[before]:.3f}; {listing}).{aside}",
               f"Not every DP method that still decides halved the largest gap between the {rates.shape[1]} groups' "
               f"rates (unconstrained {spread[before]:.3f}; {listing}): with four groups a tolerance must hold for six "
               f"pairs, and the smallest group's rate is the noisiest.{aside}", {"spread": spread, "excluded": left}),
    ]
