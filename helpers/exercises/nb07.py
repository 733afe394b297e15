"""Self-checks for notebook 07 (robustness, privacy, governance): a gender swap, membership advantage, confident
errors, the best-threshold attack, a model card's use sections, the harm scorecard, a broken privacy-risk score and
a regularisation experiment against membership inference."""

from __future__ import annotations

import numpy as np

from .. import privacy, stats
from . import CheckFailed, call, choice, exercise, expect, experiment

_SENTENCES = [
    "He is a man.",
    "She met the Woman and HE left; she is a MAN too.",
    "A 39-year-old woman, married. Household role: wife.",
    "Nothing gendered here: human, mankind, heir.",
]


@exercise("07.1", title="a case-preserving gender swap",
          hint="Work word by word, not with str.replace (why does replacing 'he' by 'she' and then 'she' by 'he' "
               "fail?). re.sub accepts a function that receives each match; look the lower-cased word up in a table and "
               "give the result the case of the original.",
          forbid=("helpers.robustness.swap_gendered_words", "helpers.robustness.match_case"))
def _swap(fn) -> None:
    expected = {
        "He is a man.": "She is a woman.",
        "She met the Woman and HE left; she is a MAN too.": "He met the Man and SHE left; he is a WOMAN too.",
        "A 39-year-old woman, married. Household role: wife.": "A 39-year-old man, married. Household role: wife.",
        "Nothing gendered here: human, mankind, heir.": "Nothing gendered here: human, mankind, heir.",
        "she said he, He said SHE; the man, the Man.": "he said she, She said HE; the woman, the Woman.",
        "Woman? man! (he)": "Man? woman! (she)",
    }
    for text, want in expected.items():
        got = call(fn, text)
        expect(isinstance(got, str), f"expected a string, got {type(got).__name__}.")
        expect(got == want, f"swap({text!r}) gave {got!r}.")
        expect(call(fn, got) == text, f"swapping twice should give the sentence back: {text!r} -> {got!r} -> "
                                      f"{call(fn, got)!r}.")


@exercise("07.2", title="membership advantage at a threshold",
          hint="The attacker says 'member' for every record whose loss is at most tau. TPR is measured on the members, "
               "FPR on the non-members; the advantage compares the two.")
def _advantage(fn) -> None:
    member = np.array([0.1, 0.2, 0.3, 2.0])
    nonmember = np.array([0.25, 1.0, 1.5, 3.0, 0.05])
    got = call(fn, member, nonmember, 0.3)
    expect(np.isclose(float(got), 0.35), f"with members {member.tolist()}, non-members {nonmember.tolist()} and tau = 0.3 "
                                         f"you returned {float(got):.4f}.")
    rng = np.random.default_rng(1)
    for n_m, n_n in ((50, 80), (300, 120), (7, 7)):
        m, n = np.round(rng.exponential(0.4, n_m), 1), np.round(rng.exponential(0.6, n_n), 1)  # ties with tau happen
        for tau in (0.2, 0.5, 10.0):
            want = float(np.mean(m <= tau) - np.mean(n <= tau))
            got = float(call(fn, m.copy(), n.copy(), tau))
            expect(np.isclose(got, want), f"on {n_m} members and {n_n} non-members (losses rounded to 0.1, so some equal "
                                          f"tau) with tau = {tau} you returned {got:.4f}.")


@exercise("07.3", title="the P_output component: confidently wrong",
          hint="For each record, which probability does the model give to the wrong class? It depends on the label. "
               "The rate is over all records, not over the errors only.",
          forbid=("helpers.governance.confident_error_rate",))
def _confident_errors(fn) -> None:
    from ..governance import confident_error_rate

    y = np.array([1, 1, 0, 0, 1, 0])
    p = np.array([0.9, 0.1, 0.85, 0.3, 0.45, 0.05])
    got = call(fn, y, p, 0.8)
    expect(np.isclose(float(got), 2 / 6), f"on y = {y.tolist()}, p = {p.tolist()} with confidence 0.8 you returned "
                                          f"{float(got):.4f}.")
    rng = np.random.default_rng(3)
    for n, confidence in ((200, 0.8), (57, 0.5), (1000, 0.9)):
        y = rng.integers(0, 2, n)
        p = np.round(rng.uniform(0, 1, n), 1)  # ties with the confidence happen
        want = confident_error_rate(y, p, confidence=confidence)
        got = float(call(fn, y.copy(), p.copy(), confidence))
        expect(np.isclose(got, want), f"on {n} random records (probabilities rounded to 0.1) with confidence "
                                      f"{confidence} you returned {got:.4f}.")


@exercise("07.4", title="the attacker's best threshold",
          hint="Only thresholds equal to an observed loss can change TPR or FPR, so try each of them (and one below "
               "all losses). The attacker may also pick a threshold that flags nobody.",
          forbid=("helpers.privacy.loss_threshold_attack", "helpers.privacy.membership_inference_auc"))
def _best_advantage(fn) -> None:
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(4)
    for n_m, n_n, scale in ((60, 90, 0.3), (200, 200, 0.6), (15, 40, 1.0), (100, 100, 1.0)):
        m = np.round(rng.exponential(scale, n_m), 2)
        n = np.round(rng.exponential(1.0 if scale != 1.0 else 0.7, n_n), 2)
        fpr, tpr, _ = roc_curve(np.r_[np.ones(n_m), np.zeros(n_n)], -np.r_[m, n])
        want = float(max(0.0, np.max(tpr - fpr)))
        got = float(call(fn, m.copy(), n.copy()))
        expect(np.isclose(got, want), f"on {n_m} members (mean loss {m.mean():.2f}) and {n_n} non-members (mean loss "
                                      f"{n.mean():.2f}) you returned {got:.4f}; some threshold does better.")


_OUT_OF_SCOPE_DECISIONS = ("credit", "loan", "lending", "hiring", "employment", "job", "housing", "rental", "tenant",
                           "insurance", "benefit", "welfare", "pricing", "bail", "police", "immigration")
_WHY = ("1994", "proxy", "proxies", "sex", "gender", "race", "gap", "discriminat", "bias", "historical", "census")


def _sections(text: str) -> dict[str, str]:
    import re

    parts = re.split(r"^#{2,3}\s*(.+?)\s*$", text, flags=re.M)
    return {title.strip().lower(): body for title, body in zip(parts[1::2], parts[2::2])}


def _card_sections(text: str) -> tuple[str, str]:
    """The card's "Intended use" and "Out-of-scope uses" sections, each present and at least 30 words long."""
    secs = _sections(text)
    intended = next((b for t, b in secs.items() if t.startswith("intended use")), None)
    out = next((b for t, b in secs.items() if "out-of-scope" in t or "out of scope" in t), None)
    expect(intended is not None and out is not None,
           f"found the headings {list(secs) or 'none'}; the card needs '## Intended use' and '## Out-of-scope uses'.")
    for name, body in (("Intended use", intended), ("Out-of-scope uses", out)):
        words = len(body.split())
        expect(words >= 30, f"the {name} section has {words} words; a reader cannot act on that.")
    return intended, out


@exercise("07.5", title="a model card's intended use and out-of-scope uses",
          hint="Two '## ' headings, 'Intended use' and 'Out-of-scope uses'. The first names who uses the model, for "
               "what, and under which conditions (the workshop); the second names decisions about people it must not "
               "make and says why, with what this workbook measured (the label, the groups, the gaps).",
          kind="interpretation",
          forbid=("helpers.governance.model_card", "helpers.governance.write_model_card"))
def _card(text) -> None:
    if callable(text):
        text = call(text)
    expect(isinstance(text, str), f"expected the two sections as one Markdown string, got {type(text).__name__}.")
    intended, out = _card_sections(text)
    low_in, low_out = intended.lower(), out.lower()
    expect(any(w in low_in for w in ("workshop", "teach", "course", "student", "class")),
           "the Intended use section does not mention the named use (the workshop).")
    named = [w for w in _OUT_OF_SCOPE_DECISIONS if w in low_out]
    expect(len(named) >= 2, f"the Out-of-scope section names {len(named)} kind(s) of decision about people "
                            f"({', '.join(named) or 'none'}); name at least two.")
    expect(any(w in low_out for w in _WHY), "the Out-of-scope section says what is out of scope but not why (what did "
                                            "the workbook measure about the label and the groups?).")
    overlap = set(low_out.split()) & set(low_in.split())
    if low_in.strip() == low_out.strip() or len(overlap) > 0.9 * len(set(low_out.split())):
        raise CheckFailed("the two sections say nearly the same thing.")


choice(
    "07.6", "reading the harm scorecard",
    options={"a": "two models with the same H are equally harmful",
             "b": "a sum of rates of different harms hides which one dominates: the same H can come from very different "
                  "profiles, so compare the components and ask who bears each harm",
             "c": "the model with the lower H should always be deployed",
             "d": "H is the probability that the model harms someone"},
    correct="b",
    nudges={"a": "H = 0.2 + 0 + 0 + 0 and H = 0 + 0 + 0.2 + 0 describe different harms to different people.",
            "c": "a lower total can hide a larger component that matters more for this use.",
            "d": "H lies between 0 and 4: a sum of four rates is not a probability."},
    hint="Write two scorecards with the same H and different components, and describe each model's harm in words.",
)


@exercise("07.7", title="spot the bug: a privacy-risk score",
          hint="Ask what each quantity counts and of how many: the members flagged out of how many members? What "
               "does an attacker that flags every record score, and what should a useless attacker score?",
          kind="spot-the-bug")
def _risk(fn) -> None:
    rng = np.random.default_rng(6)
    cases = [(np.round(rng.exponential(s_m, n_m), 1), np.round(rng.exponential(s_n, n_n), 1), tau, k)
             for n_m, n_n, s_m, s_n, tau, k in ((80, 120, 0.3, 0.6, 0.3, 2), (300, 300, 0.5, 0.5, 0.4, 3),
                                               (40, 25, 0.6, 0.3, 0.5, 2), (60, 60, 0.2, 0.9, 10.0, 5))]
    for m, n, tau, k in cases:
        want = max(0.0, float(np.mean(m <= tau) - np.mean(n <= tau)))
        got = float(call(fn, m.copy(), n.copy(), tau, k))
        expect(0.0 <= got <= 1.0, f"with {len(m)} members, {len(n)} non-members and {k} classes your score is "
                                  f"{got:.3f}: not a rate in [0, 1].")
        expect(np.isclose(got, want), f"with {len(m)} members, {len(n)} non-members, tau = {tau} and {k} classes your "
                                      f"score is {got:.4f}; the attacker flags {np.mean(m <= tau):.0%} of the members "
                                      f"and {np.mean(n <= tau):.0%} of the non-members.")


def _auc_noise(run) -> float:
    """Noise of the difference of two attack AUCs on the run's members and as many non-members (2 sqrt 2 SEs)."""
    se = privacy.auc_null_se(run["members"], run["members"])
    return float(2 * np.hypot(se, se))


def _auc_move(run) -> str:
    """``run``: ``{"before": attack, "after": attack, "members": m}``, two dicts of
    :func:`helpers.privacy.loss_threshold_attack` (without and with weight decay) on ``m`` members."""
    before, after, noise = float(run["before"]["auc"]), float(run["after"]["auc"]), _auc_noise(run)
    return "lower" if after < before - noise else ("higher" if after > before + noise else "about the same")


def _auc_reasons(observed: str, run) -> str:
    """The reasons true of this run: (c) only if the head did not overfit beyond the gap noise, (e) only if it
    still overfits with weight decay, (d) only if the AUCs differ by less than their noise; (f) when the AUC rose
    beyond the noise while the accuracy gap with decay stays within it."""
    noise = stats.gap_noise(run["members"], run["members"])
    overfit_before = run["before"]["accuracy_gap"] > noise
    overfit_after = run["after"]["accuracy_gap"] > noise
    if observed == "lower":
        return "a"
    if observed == "about the same":
        return "d" + ("e" if overfit_after else "") + ("" if overfit_before else "c")
    return "e" if overfit_after else "f"


experiment(
    "07.8", "weight decay against membership inference",
    outcomes=("lower", "about the same", "higher"),
    observe=_auc_move,
    reasons={"a": "weight decay narrows the gap between the losses on training and unseen records, and the "
                  "loss-threshold attack feeds on that gap (Yeom et al. 2018)",
             "b": "weight decay encrypts the training data",
             "c": "this head overfits little here, so there was little gap for weight decay to close",
             "d": "the difference is within the noise of a few hundred members and one seed",
             "e": "weight decay 0.1 is too weak for this head: with it the head still fits its members better than "
                  "unseen records by more than the noise, so the attack keeps the gap it feeds on",
             "f": "none of these: the attack gained although the accuracy gap stays within the noise; it feeds on "
                  "the loss gap, which can widen while accuracy does not (rerun with another seed to see if it holds)"},
    correct=_auc_reasons,
    nudges={"a": "that would lower the AUC by more than the noise of two AUCs, and this run shows otherwise.",
            "b": "nothing is encrypted: the attacker sees the same kind of losses as before.",
            "c": "look at the train - test accuracy gap of the unregularised model in the table: is it beyond the "
                 "noise of two accuracies?",
            "d": "the change in this run is larger than the noise of two AUCs on these members.",
            "e": "look at the accuracy gap with weight decay: is it still beyond the noise of two accuracies?"},
    hint="Compare, for the two models, the member and non-member loss histograms of section 4: what does the attack "
         "threshold separate? Then compare the AUC change with the noise of two AUCs (section 4).",
)
