"""What a fairness-constrained run reports: per-group selection rates, claims checked on its numbers, its records.

Notebooks 04 and 04b interpret results only through :func:`helpers.claims.claim`: each function below (notebook 04b's
in :mod:`helpers.fairness.reporting_scale`) computes one lesson's check from the run's own numbers and shows either
the interpretation or a box saying what this run showed instead. Where the outcome could honestly go either way, or
the run's sizes cannot decide it (a tolerance below the test set's noise, a fine-tuning on a few hundred sentences),
the sentence is generated from the numbers instead: a :class:`Finding`, recorded as ``finding.<name>`` and never a
failed claim. ``noise`` is always the half-width of a 95 % bootstrap interval of a test gap
(:func:`helpers.fairness.metrics.gap_interval`): a difference smaller than that cannot be told apart on the test set.
One near-constant rule everywhere: a model is (nearly) constant for a group when that group's selection rate is below
``MIN_RATE`` or above ``1 - MIN_RATE`` (:func:`one_class_groups`), and no better than predicting the majority class
when its accuracy is at most the majority class's plus the accuracy's 95 % half-width (:func:`no_better_than_majority`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..claims import Claim, claim
from ..results import record
from .metrics import gap_interval, selection_rates

#: A group selected less often than this (or more often than 1 - this) is treated as given (nearly) one decision for all.
MIN_RATE = 0.05
_NAMES = {"dp": "DP", "eo": "EO", "ap": "accuracy-parity"}
_MADE: dict[str, dict[str, Claim]] = {}
_FOUND: dict[str, dict[str, str]] = {}


class Finding(str):
    """A sentence generated from this run's numbers where the outcome could honestly go either way (no claim):
    shown once as Markdown, recorded as ``finding.<name>`` and listed by :func:`recap`."""

    def _repr_markdown_(self) -> str:
        return f"**This run:** {self}"

    def _ipython_display_(self) -> None:  # shown by :func:`_finding` already
        pass


def _check(nb: str, name: str, held: Any, says: str, instead: str, evidence: dict[str, Any],
           claims: bool = True) -> Claim | Finding:
    """A claim, or with ``claims=False`` the same sentence as a finding (where the run's sizes cannot decide it)."""
    if claims:
        return _claim(nb, name, held, says, instead, evidence)
    return _finding(nb, name, says if held else instead, evidence)


def _finding(nb: str, name: str, text: str, evidence: dict[str, Any]) -> Finding:
    from IPython.display import Markdown, display

    found = Finding(text)
    record(nb, f"finding.{name}", {"text": text, "evidence": evidence})
    _FOUND.setdefault(nb, {})[name] = text
    display(Markdown(found._repr_markdown_()))
    return found


def _claim(nb: str, name: str, held: Any, says: str, instead: str, evidence: dict[str, Any]) -> Claim:
    made = claim(nb, name, bool(held), says=says, instead=instead,
                 evidence={k: (round(float(v), 4) if isinstance(v, (float, np.floating)) else v)
                           for k, v in evidence.items()})
    _MADE.setdefault(nb, {})[name] = made
    return made


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in values.items())


def selection_frame(predictions: dict[str, Any], groups: Any) -> pd.DataFrame:
    """Selection rate :math:`P(\\hat Y = 1 \\mid A = a)`: one row per model (``predictions``: name -> 0/1 decisions
    of shape (n,)), one column per group of ``groups`` (n,) (group names, not codes)."""
    return pd.DataFrame({name: selection_rates(np.asarray(p), pd.Series(np.asarray(groups)))
                         for name, p in predictions.items()}).T.rename_axis(index="model", columns="group")


def noise(y_true: Any, y_pred: Any, groups: Any, metrics: tuple[str, ...] = ("dp", "eo", "ap"),
          seed: int = 0) -> dict[str, float]:
    """Half-width of the 95 % bootstrap interval of each gap of ``y_pred`` on this test set: ``{metric: float}``."""
    out = {}
    for m in metrics:
        ci = gap_interval(np.asarray(y_true), np.asarray(y_pred), sensitive_features=np.asarray(groups), metric=m,
                          seed=seed)
        out[m] = round((ci.high - ci.low) / 2, 4)
    return out


def one_class_groups(rates: dict[str, float]) -> dict[str, float]:
    """The groups whose selection rate is below ``MIN_RATE`` or above ``1 - MIN_RATE`` ((nearly) one decision for
    all)."""
    return {g: float(r) for g, r in rates.items() if r < MIN_RATE or r > 1 - MIN_RATE}


def accuracy_noise(accuracy: float, n: int) -> float:
    """Normal-approximation 95 % half-width of one accuracy on ``n`` rows: :math:`1.96 \\sqrt{a(1-a)/n}`."""
    return float(1.96 * np.sqrt(accuracy * (1 - accuracy) / n))


def no_better_than_majority(y_true: Any, y_pred: Any) -> tuple[bool, float, float, float]:
    """Is the accuracy of ``y_pred`` (n,) at most the majority class's accuracy on ``y_true`` (n,) plus the accuracy's
    95 % half-width (:func:`accuracy_noise`)? Returns ``(flag, accuracy, majority accuracy, half-width)``."""
    y, p = np.asarray(y_true), np.asarray(y_pred)
    acc, rate = float(np.mean(p == y)), float(np.mean(y))
    majority, half = max(rate, 1 - rate), accuracy_noise(float(np.mean(p == y)), len(y))
    return acc <= majority + half, acc, majority, half


# --------------------------------------------------------------------------------------------
# notebook 04: accuracy parity, the multiplier, the frontier, who pays
# --------------------------------------------------------------------------------------------


def accuracy_vs_selection(nb: str, table: pd.DataFrame) -> Claim:
    """Is the head more accurate for the group with the lower base rate while selecting it less (notebook 03)?

    ``table``: :func:`helpers.fairness.metrics.group_metrics` of the unconstrained head on the test split.
    """
    lo, hi = table["base_rate"].idxmin(), table["base_rate"].idxmax()
    acc, sel, br = table["accuracy"], table["selection_rate"], table["base_rate"]
    ev = {"groups": [str(lo), str(hi)], "accuracy": [acc[lo], acc[hi]], "selection": [sel[lo], sel[hi]],
          "base_rate": [br[lo], br[hi]]}
    return _claim(
        nb, "more_accurate_for_less_selected", acc[lo] > acc[hi] and sel[lo] < sel[hi],
        f"The unconstrained head is **more accurate for {lo}** ({acc[lo]:.3f} vs {acc[hi]:.3f}) while **selecting "
        f"them less often** ({sel[lo]:.3f} vs {sel[hi]:.3f}) (compare notebook 03's per-group table): with a lower "
        f"base rate ({br[lo]:.2f} vs {br[hi]:.2f}) a \"no\" is right more often. Accuracy parity and demographic parity "
        "pull in different directions here.",
        f"In this run the head is not both more accurate for {lo} and less selecting: accuracy {acc[lo]:.3f} "
        f"({lo}) vs {acc[hi]:.3f} ({hi}), selection rate {sel[lo]:.3f} vs {sel[hi]:.3f}. Compare with notebook 03's "
        "per-group table before answering the question below.", ev)


def multiplier(nb: str, history: pd.DataFrame, *, delta: float, lam_max: float | None = None,
               claims: bool = True) -> Claim | Finding:
    """Did the multiplier settle: ``lambda`` fell at least once, and over the last tenth of the steps the running
    training gap ``g_hat`` averaged at most ``delta`` plus its own step-to-step spread (sd over those steps)?

    At a settled multiplier ``g_hat`` hovers around ``delta`` (the dual step averages to zero), so its late mean
    lies within batch noise of ``delta``; a multiplier still climbing leaves it above by more than that.
    ``history``: ``LagrangianConstraint.history_frame()`` (columns ``step, lam, gap_estimate``).
    """
    lam, g = history["lam"].to_numpy(), history["gap_estimate"].to_numpy()
    falls = int((np.diff(lam) < 0).sum())
    window = g[-max(1, len(g) // 10):]
    late, spread = float(window.mean()), float(window.std())
    ev = {"steps": len(lam), "falls": falls, "final_lam": float(lam[-1]), "min_gap_estimate": float(g.min()),
          "late_gap_estimate": late, "late_spread": spread, "delta": delta}
    capped = lam_max is not None and lam[-1] >= lam_max
    return _check(
        nb, "multiplier_falls_back", falls > 0 and late <= delta + spread,
        f"The multiplier rose while the running training gap ĝ was above δ = {delta:g} and fell at {falls} of "
        f"{len(lam)} steps, where ĝ had dropped below it; over the last tenth of training ĝ averaged {late:.3f} "
        f"(step-to-step spread ± {spread:.3f}), at δ within batch noise: λ settled where the tolerance holds on the "
        "training batches.",
        f"λ had not settled by the end of this run: over the last tenth of training the running training gap ĝ "
        f"averaged {late:.3f}, above δ = {delta:g} by more than its step-to-step spread (± {spread:.3f}; λ fell at "
        f"{falls} of {len(lam)} steps and ended at {lam[-1]:.2f}{' (its cap)' if capped else ''}). The tolerance was "
        "not met even on training batches, so a miss on the test split is not only a matter of new data. More "
        "epochs or a larger dual step give λ time to settle.", ev, claims)


def constrained_head(nb: str, *, before: dict[str, float], after: dict[str, float], rates: dict[str, float],
                     delta: float, noise: float, constraint: str = "dp", prefix: str = "",
                     claims: bool = True) -> list[Claim | Finding]:
    """Three checks of one constrained head on the test split: every group still selected; the gap fell by more than
    the noise; the test gap is within ``delta + noise``. ``before`` / ``after``: :func:`helpers.fairness.evaluate`
    of the unconstrained and the constrained head; ``rates``: the constrained head's selection rate per group;
    ``prefix`` starts the claims' names (several models in one notebook); ``claims=False`` reports the same
    sentences as findings (sizes too small to decide them)."""
    c, name, pre = constraint, _NAMES[constraint], prefix
    b, a = before[c], after[c]
    stuck = one_class_groups(rates)
    return [
        _check(nb, f"{pre}{c}_head_selects_every_group", not stuck,
               f"The constrained head still selects every group ({_fmt(rates)}): the gap did not close by giving one "
               "decision to everyone.",
               f"The constrained head gives one decision to (almost) everyone in {', '.join(stuck)} (selection rates "
               f"{_fmt(rates)}): a gap near 0 that comes from predicting one class says nothing about fairness. This "
               "is levelling down, not a success.", {"rates": rates}, claims),
        _check(nb, f"{pre}{c}_head_lowers_gap", a < b - noise,
               f"On the test split the {name} gap fell from {b:.3f} to {a:.3f}, by more than the test set's noise "
               f"(± {noise:.3f}).",
               f"The test {name} gap moved from {b:.3f} to {a:.3f}, by less than the test set's noise (± {noise:.3f}): "
               "this run cannot tell the two heads apart. More test rows (gpu mode) narrow the interval.",
               {"before": b, "after": a, "noise": noise}, claims),
        _meets_delta(nb, f"{pre}{c}_head_meets_delta", name, a, delta, noise, claims)]


def _rows_needed(noise: float, delta: float) -> str:
    if delta <= 0:
        return "No finite test set can check δ = 0."
    return (f"Checking δ = {delta:g} needs about {(noise / delta) ** 2:.1f}× as many test rows (the half-width shrinks with the "
            "square root of the rows).")


def _meets_delta(nb: str, key: str, name: str, gap: float, delta: float, noise: float,
                 claims: bool = True) -> Claim | Finding:
    """A claim that the test gap is within ``delta + noise`` when the test set can check it (noise < delta);
    otherwise a finding that says it cannot, and why."""
    ev = {"gap": gap, "delta": delta, "noise": noise}
    if noise >= delta:
        return _finding(nb, key, f"This test set cannot check the tolerance δ = {delta:g}: the noise of its {name} gap "
                        f"(± {noise:.3f}) is larger than δ itself, so any gap up to {delta + noise:.3f} would look "
                        f"compatible (measured {gap:.3f}). {_rows_needed(noise, delta)}", ev)
    return _check(nb, key, gap <= delta + noise,
                  f"The test {name} gap {gap:.3f} meets the tolerance δ = {delta:g} within the noise (± {noise:.3f}).",
                  f"The test {name} gap {gap:.3f} exceeds δ = {delta:g} by more than the noise (± {noise:.3f}): this "
                  "head did not carry the tolerance to new data (question 2).", ev, claims)


def _mean_of(summary: pd.DataFrame, target: str, method: str) -> float | None:
    """The first ``<target>_mean`` of ``method``'s rows for ``target`` (``None`` if it has none)."""
    rows = summary[(summary["target"] == target) & (summary["method"] == method)]
    return None if rows.empty else float(rows[f"{target}_mean"].iloc[0])


def _tolerances_met(nb: str, c: str, gaps: dict[float, float], noise: float,
                    unconstrained: float | None = None) -> list[Claim | Finding]:
    """One constraint's Lagrangian points (delta -> test gap): a claim on the tolerances the test set can check
    (``delta > noise``) and that bind (``delta + noise < unconstrained``, the unconstrained head's test gap); a
    finding on those at or below the noise and one on those the unconstrained head already meets (inactive)."""
    ev = {"gaps": {str(d): g for d, g in gaps.items()}, "noise": noise, "unconstrained": unconstrained}
    top = np.inf if unconstrained is None else unconstrained
    checkable = {d: g for d, g in gaps.items() if noise < d and d + noise < top}
    unchecked = {d: g for d, g in gaps.items() if d <= noise}
    inactive = {d: g for d, g in gaps.items() if d > noise and d + noise >= top}
    out: list[Claim | Finding] = [_checkable_met(nb, c, checkable, noise, ev)] if checkable else []
    if inactive:
        listing = "; ".join(f"δ = {d:g}: {g:.3f}" for d, g in inactive.items())
        out.append(_finding(
            nb, f"inactive_deltas_{c}", f"The {_NAMES[c]} tolerances within the noise (± {noise:.3f}) of the "
            f"unconstrained head's gap ({unconstrained:.3f}) or above it do not bind: the unconstrained head already "
            f"meets them as far as this test set can tell, so meeting them shows nothing about the multiplier "
            f"(measured {listing}).", ev))
    if not checkable:
        out.append(_finding(
            nb, f"constraint_meets_each_delta_{c}", f"No {_NAMES[c]} tolerance of this run is both larger than the "
            f"test set's noise (± {noise:.3f}) and tight enough to bind (below the unconstrained gap "
            f"{top:.3f} by more than the noise): this test set cannot show the multiplier meeting a tolerance it "
            "had to work for.", ev))
    return out + ([_unchecked(nb, c, unchecked, noise, ev)] if unchecked else [])


def _checkable_met(nb: str, c: str, checkable: dict[float, float], noise: float, ev: dict[str, Any]) -> Claim:
    missed = {d: g for d, g in checkable.items() if g > d + noise}
    listing = "; ".join(f"δ = {d:g}: {g:.3f}" for d, g in checkable.items())
    return _claim(
        nb, f"constraint_meets_each_delta_{c}", not missed,
        f"Every tolerance that binds and is larger than the test set's noise (± {noise:.3f}) was met on the test "
        f"split within that noise; measured {_NAMES[c]} gaps {listing}. You state the gap, the multiplier finds the weight.",
        f"Not every tolerance the test set can check was met: {listing} (noise ± {noise:.3f}); missed: "
        f"{', '.join(f'δ = {d:g}' for d in missed)}. The multiplier enforces δ on training batches; on new "
        "data the gap can exceed it (question 2).", ev)


def _unchecked(nb: str, c: str, unchecked: dict[float, float], noise: float, ev: dict[str, Any]) -> Finding:
    listing = "; ".join(f"δ = {d:g}: {g:.3f}" for d, g in unchecked.items())
    return _finding(
        nb, f"unchecked_deltas_{c}", f"The {_NAMES[c]} tolerances at or below the test set's noise "
        f"(± {noise:.3f}) cannot be checked on it: measured {listing}. Gaps that differ by less than the "
        f"noise cannot be told apart, so these points need not be ordered. "
        f"{_rows_needed(noise, max(unchecked))}",
        ev)


def _dp_methods(nb: str, summary: pd.DataFrame, noise: float, policy_delta: float) -> list[Claim]:
    """Reweighing part of the way between unconstrained and the DP constraint at ``policy_delta``; ThresholdOptimizer
    (if in the summary) at DP parity within the noise."""
    unc, rew = _mean_of(summary, "dp", "unconstrained"), _mean_of(summary, "dp", "reweighing")
    lag = summary[(summary["target"] == "dp") & (summary["method"] == "lagrangian")]
    con = float(lag.iloc[(lag["param"] - policy_delta).abs().argmin()]["dp_mean"])
    out = [_claim(
        nb, "reweighing_part_way", con < rew < unc,
        f"Reweighing moved the DP gap only part of the way ({unc:.3f} → {rew:.3f}); the constraint with "
        f"δ = {policy_delta:g} went further ({con:.3f}).",
        f"Reweighing did not land between the two: unconstrained {unc:.3f}, reweighing {rew:.3f}, constrained "
        f"(δ = {policy_delta:g}) {con:.3f}.", {"unconstrained": unc, "reweighing": rew, "constrained": con})]
    thr = _mean_of(summary, "dp", "threshold")
    if thr is not None:
        out.append(_claim(
            nb, "threshold_reaches_parity", thr <= noise,
            f"ThresholdOptimizer reached DP parity within the noise ({thr:.3f}, noise ± {noise:.3f}), by "
            "using sex at decision time: a different threshold per group.",
            f"ThresholdOptimizer's test DP gap {thr:.3f} is above the noise (± {noise:.3f}): its thresholds "
            "were fitted on the training split and did not transfer exactly.", {"threshold": thr}))
    return out


def frontier(nb: str, summary: pd.DataFrame, noise: dict[str, float], *,
             policy_delta: float = 0.02) -> list[Claim | Finding]:
    """Checks on the frontier's summary (:func:`helpers.fairness.summarize`, one ``target`` per constraint):
    every tolerance larger than the test noise and binding (below the unconstrained gap by more than the noise) met
    within it (findings name the ones the test set cannot check and the inactive ones);
    reweighing part of the way; ThresholdOptimizer at parity."""
    out = []
    for c in summary["target"].unique():
        rows = summary[(summary["target"] == c) & (summary["method"] == "lagrangian")].sort_values("param")
        out += _tolerances_met(nb, c, dict(zip(rows["param"], rows[f"{c}_mean"])), noise[c],
                               _mean_of(summary, c, "unconstrained"))
    if "dp" in set(summary["target"]):
        out += _dp_methods(nb, summary, noise["dp"], policy_delta)
    return out


def who_pays(nb: str, tables: dict[str, pd.DataFrame], *, before: str, dp: str, eo: str | None = None,
             ap: str | None = None, noise: dict[str, float] | None = None) -> list[Claim]:
    """Who pays for each constraint, from :func:`~helpers.fairness.metrics.group_metrics` tables (model -> table).

    ``before``, ``dp``, ``eo``, ``ap`` name the unconstrained model and the heads constrained on each gap.
    """
    from .constrained import describe_rate_change

    t0, td = tables[before], tables[dp]
    lo, hi = t0["selection_rate"].idxmin(), t0["selection_rate"].idxmax()
    sel0, seld = t0["selection_rate"].to_dict(), td["selection_rate"].to_dict()
    story = describe_rate_change({str(k): v for k, v in sel0.items()}, {str(k): v for k, v in seld.items()})
    out = [_claim(
        nb, "dp_raises_low_lowers_high", seld[lo] > sel0[lo] and seld[hi] < sel0[hi],
        f"Enforcing DP raised {lo}'s selection rate ({sel0[lo]:.3f} → {seld[lo]:.3f}) and lowered {hi}'s "
        f"({sel0[hi]:.3f} → {seld[hi]:.3f}). {story}",
        f"The DP constraint did not move both rates towards each other: {lo} {sel0[lo]:.3f} → {seld[lo]:.3f}, {hi} "
        f"{sel0[hi]:.3f} → {seld[hi]:.3f}. {story}", {"before": sel0, "after": seld})]
    fpr, tpr = (t0["fpr"][lo], td["fpr"][lo]), (t0["tpr"][hi], td["tpr"][hi])
    out.append(_claim(
        nb, "dp_moves_errors", fpr[1] > fpr[0] and tpr[1] < tpr[0],
        f"Since base rates differ, some of the newly selected {lo} are negatives (their FPR rose {fpr[0]:.3f} → "
        f"{fpr[1]:.3f}) and some qualified {hi} are no longer selected (their TPR fell {tpr[0]:.3f} → {tpr[1]:.3f}).",
        f"The errors did not move as the base rates suggest: {lo} FPR {fpr[0]:.3f} → {fpr[1]:.3f}, {hi} TPR "
        f"{tpr[0]:.3f} → {tpr[1]:.3f}.", {"fpr_low": fpr, "tpr_high": tpr}))
    if eo is not None:
        out.append(_eo_keeps_selection_apart(nb, tables, before=before, dp=dp, eo=eo, margin=(noise or {}).get("dp", 0.0)))
    if ap is not None:
        out.append(_ap_lowers_the_better_served(nb, t0["accuracy"].to_dict(), tables[ap]["accuracy"].to_dict(),
                                                t0["count"].to_dict()))
    return out


def _eo_keeps_selection_apart(nb: str, tables: dict[str, pd.DataFrame], *, before: str, dp: str, eo: str,
                              margin: float) -> Claim:
    """The EO constraint narrows the TPR/FPR gaps and leaves selection rates further apart than DP (by > ``margin``)."""
    spread = {k: float(t["selection_rate"].max() - t["selection_rate"].min()) for k, t in tables.items()}
    odds = {k: float(max(np.ptp(t["tpr"]), np.ptp(t["fpr"]))) for k, t in tables.items()}
    return _claim(
        nb, "eo_keeps_selection_apart", odds[eo] < odds[before] and spread[eo] > spread[dp] + margin,
        f"The EO constraint narrowed the TPR/FPR gaps instead ({odds[before]:.3f} → {odds[eo]:.3f}) and left "
        f"selection rates further apart ({spread[eo]:.3f}) than the DP constraint did ({spread[dp]:.3f}).",
        f"EO-constrained head: TPR/FPR gap {odds[before]:.3f} → {odds[eo]:.3f}, selection-rate gap {spread[eo]:.3f} "
        f"against {spread[dp]:.3f} under DP (noise ± {margin:.3f}): this run does not separate the two "
        "constraints clearly.", {"eo_gap": odds, "dp_gap": spread})


def _ap_lowers_the_better_served(nb: str, acc0: dict[str, float], acca: dict[str, float],
                                 counts: dict[str, int]) -> Claim:
    """The accuracy-parity constraint narrows the accuracy gap by lowering the best-served group's accuracy
    (``acc0`` / ``acca``: accuracy per group before / after; ``counts``: test rows per group). "Entirely" when the
    worst-served group's accuracy did not rise by more than its 95 % half-width (:func:`accuracy_noise`), "partly"
    otherwise; both groups falling is named levelling down."""
    best, worst = max(acc0, key=acc0.get), min(acc0, key=acc0.get)
    gap0, gapa = max(acc0.values()) - min(acc0.values()), max(acca.values()) - min(acca.values())
    half = accuracy_noise(acc0[worst], int(counts[worst]))
    how = "partly" if acca[worst] > acc0[worst] + half else "entirely"
    other = (f"{worst}'s accuracy {'rose' if how == 'partly' else 'did not rise beyond the noise'} "
             f"({acc0[worst]:.3f} → {acca[worst]:.3f}, ± {half:.3f})"
             + (": both groups ended less accurate, which is levelling down" if acca[worst] < acc0[worst] else ""))
    return _claim(
        nb, "ap_lowers_the_better_served", gapa < gap0 and acca[best] < acc0[best],
        f"The accuracy-parity constraint narrowed the accuracy gap ({gap0:.3f} → {gapa:.3f}) {how} by making the "
        f"model *less* accurate for {best} ({acc0[best]:.3f} → {acca[best]:.3f}), the group it served best; {other}.",
        f"Accuracy by group, unconstrained → accuracy-parity head: {_fmt(acc0)} → {_fmt(acca)} (gap {gap0:.3f} → "
        f"{gapa:.3f}); the gap did not close by lowering {best}'s accuracy in this run.",
        {"before": acc0, "after": acca, "worst_noise": half})


# --------------------------------------------------------------------------------------------
# notebook 04b: fine-tuning, measurability, meeting methods, monotonicity, four groups
# --------------------------------------------------------------------------------------------

#: The checks of notebook 04b live in :mod:`helpers.fairness.reporting_scale`; ``reporting.<name>`` finds them.
_AT_SCALE = ("MAX_HALF_WIDTH", "NEAR_CONSTANT", "rate_change", "interval", "methods_meet", "monotone", "multi_group")


def __getattr__(name: str) -> Any:
    if name in _AT_SCALE:
        from . import reporting_scale

        return getattr(reporting_scale, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def recap(nb: str) -> Any:
    """Every claim this kernel checked for ``nb``, as one Markdown list (held: the sentence; failed: the box text),
    then the findings (sentences generated from the numbers, not claims)."""
    from IPython.display import Markdown

    made, found = _MADE.get(nb, {}), _FOUND.get(nb, {})
    if not made and not found:
        return Markdown("No claims were checked in this run.")
    lines = [f"* {'✓' if c.held else '✗ *this run showed instead:*'} {c.says if c.held else c.instead}"
             for c in made.values()] + [f"* *this run (not a claim):* {text}" for text in found.values()]
    held = sum(c.held for c in made.values())
    return Markdown(f"**{held} of {len(made)} checks held on this run.**\n\n" + "\n".join(lines))


# --------------------------------------------------------------------------------------------
# the figures a run records
# --------------------------------------------------------------------------------------------


def _mean_sd(mean: float, sd: float) -> list:
    return [round(float(mean), 4), None if pd.isna(sd) else round(float(sd), 4)]


def record_frontier(nb: str, summary: pd.DataFrame, *, prefix: str = "") -> None:
    """Record a frontier summary (``target`` column, :func:`summarize` columns): the tables per target and one
    ``<target>.<method>[@param].<metric> = [mean, sd]`` entry per point (sd ``None`` for a single seed)."""
    metrics = [m for m in ("accuracy", "dp", "eo", "ap") if f"{m}_mean" in summary]
    for c, s in summary.groupby("target"):
        record(nb, f"{prefix}frontier_{c}", s.drop(columns="target").round(4).to_dict("records"))
    for _, r in summary.iterrows():
        at = "" if pd.isna(r["param"]) or r["method"] == "expgrad" else f"@{r['param']:g}"
        for m in metrics:
            record(nb, f"{prefix}{r['target']}.{r['method']}{at}.{m}", _mean_sd(r[f"{m}_mean"], r[f"{m}_sd"]))


def record_sweep(nb: str, sweeps: dict[str, pd.DataFrame], *, seconds: float, test_rows: int,
                 noise: dict[str, float], device: Any = None) -> None:
    """Record what a sweep cost and how precisely its test set measures a gap: ``sweep = {seconds, runs, seeds,
    test_rows, head_seconds_per_run, device, noise_95}`` (``sweeps``: target -> :func:`sweep` frame)."""
    import os

    runs = pd.concat(sweeps.values(), ignore_index=True)
    heads = runs[runs["method"].isin(["unconstrained", "penalty", "lagrangian", "reweighing"])]
    record(nb, "sweep", {"seconds": round(float(seconds), 1), "runs": len(runs), "seeds": int(runs["seed"].nunique()),
                         "test_rows": int(test_rows), "head_seconds_per_run": round(float(heads["seconds"].mean()), 3),
                         "device": f"{device} ({os.cpu_count()} cores visible)", "noise_95": dict(noise)})


def record_rates(nb: str, key: str, rates: pd.DataFrame) -> None:
    """Record a :func:`selection_frame` (models x groups): ``<key>.<model> = {group: rate}``."""
    for model, row in rates.iterrows():
        record(nb, f"{key}.{model}", {str(g): round(float(v), 4) for g, v in row.items()})


def record_table(nb: str, key: str, table: pd.DataFrame) -> None:
    """Record a per-method table whose columns are ``(metric, "mean" | "std")``: ``<key>.<method>.<metric>``."""
    for method, row in table.iterrows():
        for m in dict.fromkeys(c[0] for c in table.columns):
            record(nb, f"{key}.{method}.{m}", _mean_sd(row[(m, "mean")], row[(m, "std")]))


def summary_table(summary: pd.DataFrame, picks: dict[str, tuple[str, str, float | None]]) -> pd.DataFrame:
    """One row per pick (label -> ``(target, method, param)``; ``param`` None = the method's only point): the mean
    accuracy and gaps over seeds, for a notebook's closing table."""
    metrics = [m for m in ("accuracy", "dp", "eo", "ap") if f"{m}_mean" in summary]
    rows = {}
    for label, (target, method, param) in picks.items():
        part = summary[(summary["target"] == target) & (summary["method"] == method)]
        if part.empty:
            raise ValueError(f"No {method!r} rows for target {target!r} in the summary.")
        row = part.iloc[(part["param"] - param).abs().argmin()] if param is not None else part.iloc[0]
        rows[label] = {m: row[f"{m}_mean"] for m in metrics}
    return pd.DataFrame(rows).T
