"""Governance artefacts generated from measurements: a model card and a harm scorecard.

* :func:`model_card` renders a Markdown model card with the sections of Mitchell et al. (2019), "Model cards
  for model reporting" (FAT* '19), from ``build/<mode>/results.json``. It only ever quotes recorded numbers: a figure
  that no notebook measured is shown as "not measured", never filled in.
* :func:`harm_scorecard` rebuilds the course notes' harm score H = P_bias + P_output + P_privacy +
  P_adversarial as four documented components, each a measured rate in [0, 1] with its definition and the
  results key it comes from. A component that was not measured is reported as missing (not as 0), and the
  total is only given when all four are present.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

NB02 = "02_data_bias_audit"
NB03 = "03_finetuning_and_fairness_metrics"
NB04 = "04_fairness_constrained_training"
NB05 = "05_regularization"
NB06 = "06_explanations"
NB07 = "07_robustness_privacy_governance"
NOT_MEASURED = "not measured"

#: The model card's sections, in order (Mitchell et al. 2019, Sec. 4, with the workbook's measurements
#: split into fairness, explanations, robustness and privacy).
SECTIONS: tuple[str, ...] = (
    "Model details",
    "Intended use",
    "Factors",
    "Metrics",
    "Training and evaluation data",
    "Quantitative analyses: per-group metrics",
    "Fairness",
    "Explanations",
    "Robustness",
    "Privacy",
    "Harm scorecard",
    "Ethical considerations",
    "Caveats, limitations and recommendations",
)

#: Figures every card shows (``not measured`` when absent): section -> [(notebook, key, what it is)].
REQUIRED_FIGURES: dict[str, list[tuple[str, str, str]]] = {
    "Quantitative analyses: per-group metrics": [
        (NB03, "lr.accuracy", "Logistic regression on one-hot features: test accuracy"),
        (NB07, "unconstrained.accuracy", "Deployed (unconstrained) model: test accuracy"),
        (NB07, "constrained.accuracy", "Comparison (constrained) model: test accuracy"),
    ],
    "Fairness": [
        (NB03, "frozen.dp_difference", "Frozen encoder + head: demographic-parity difference (sex)"),
        (NB03, "finetuned.eo_difference", "Fine-tuned model: equalized-odds difference (sex)"),
        (NB07, "unconstrained.dp_difference", "Deployed model: demographic-parity difference (sex)"),
        (NB07, "constrained.dp_difference", "Comparison model: demographic-parity difference (sex)"),
        (NB07, "counterfactual.unconstrained.flip_rate", "Counterfactual gender swap: decisions flipped (deployed)"),
        (NB07, "counterfactual.constrained.flip_rate", "Counterfactual gender swap: decisions flipped (comparison)"),
    ],
    "Robustness": [
        (NB07, "attack.before.success_k1", "Word-substitution attack success, 1 edit, before defence"),
        (NB07, "attack.before.success_k3", "Word-substitution attack success, 3 edits, before defence"),
        (NB07, "attack.after.success_k3", "Word-substitution attack success, 3 edits, after defence"),
    ],
    "Privacy": [
        (NB07, "mia.deployed.auc", "Membership inference (loss threshold) AUC, deployed model"),
        (NB07, "mia.regularised.auc", "Membership inference (loss threshold) AUC, regularised model"),
        (NB07, "mia.unregularised.auc", "Membership inference (loss threshold) AUC, unregularised model"),
        (NB07, "mia.finetuned.auc", "Membership inference (loss threshold) AUC, fully fine-tuned encoder"),
        (NB07, "privacy.qi_uniqueness", "Training records unique within the sample on the quasi-identifiers (k = 1; sample uniqueness)"),
    ],
}

#: Which recorded keys (beyond the required ones) each section lists: section -> [(notebook, regex on key)].
SECTION_SOURCES: dict[str, list[tuple[str, str]]] = {
    "Training and evaluation data": [(NB07, r"^data\."), (NB02, r"^(?!.*(unique|anonym)).*")],
    "Quantitative analyses: per-group metrics": [
        (NB03, r"^(?!.*(dp_|eo_|parity|odds|gap|ratio|difference)).*"),
        (NB05, r".*"), (NB07, r"^(unconstrained|constrained|defence)\.(?!.*(dp_|eo_|difference)).*")],
    "Fairness": [(NB03, r".*(dp_|eo_|parity|odds|gap|ratio|difference).*"), (NB04, r".*"),
                 (NB07, r"^(counterfactual\.|(unconstrained|constrained)\..*(dp_|eo_|difference))")],
    "Explanations": [(NB06, r".*")],
    "Robustness": [(NB07, r"^(attack|robust)")],
    "Privacy": [(NB07, r"^(mia|dp_sgd|privacy)\."), (NB02, r".*(unique|anonym).*")],
}

_PROSE: dict[str, str] = {
    "Model details": (
        "A binary classifier that reads a census record written as an English sentence (UCI Adult, serialised "
        "by `helpers.data.serialize`) and predicts whether the person's income exceeds $50K a year. Encoder: "
        "all-MiniLM-L6-v2 (Wang et al. 2020) with a classification head, trained in the workbook's notebooks. "
        "Card format: Mitchell et al. (2019). Every figure below is read from `build/<mode>/results.json`."),
    "Intended use": (
        "Teaching: measuring fairness, robustness and privacy risks of a foundation-model classifier. "
        "**Out of scope:** any real decision about a person (credit, hiring, benefits, pricing). Census income is "
        "a proxy label, and the model's errors and gaps by sex and race would fall on real people."),
    "Factors": (
        "Groups: sex (Male/Female as recorded by the 1994 Current Population Survey) and race; instruments: the words the "
        "serialiser uses (man/woman, husband/wife) and proxies that remain when they are removed (relationship, "
        "occupation, hours). Environment: the sentence template is fixed; other phrasings are out of distribution."),
    "Metrics": (
        "Accuracy; demographic-parity difference max_a P(Y^=1|A=a) - min_a P(Y^=1|A=a) and equalized-odds "
        "difference (Hardt et al. 2016; computed with fairlearn); counterfactual flip rate under gendered word "
        "swaps (Garg et al. 2019); word-substitution attack success rate under a budget of k edits (Jin et al. "
        "2020); loss-threshold membership-inference AUC and advantage (Yeom et al. 2018); share of records unique "
        "on quasi-identifiers within the data set (sample uniqueness: an upper bound on the share of its records that "
        "are unique in the whole population; Sweeney 2002). Decision threshold 0.5."),
    "Training and evaluation data": (
        "UCI Adult (Kohavi 1996; 1994 Current Population Survey): training and validation from `adult.data` stratified by "
        "label x sex, test from `adult.test`, subsampled per run mode (see the mode under Model details)."),
    "Quantitative analyses: per-group metrics": "Test-set figures, overall and by group where recorded.",
    "Fairness": "Group and counterfactual fairness of the models the notebooks trained.",
    "Explanations": "Faithfulness and agreement of the attribution methods of notebook 06.",
    "Robustness": (
        "Greedy word-substitution attack with meaning-preserving synonyms from "
        "`helpers.robustness.SUBSTITUTIONS`; success = decision flipped among sentences first classified "
        "correctly. Defence: adversarial data augmentation."),
    "Privacy": (
        "Loss-threshold membership inference on the training records (AUC 0.5 = no leak) and re-identification "
        "risk from quasi-identifiers in the data itself."),
    "Harm scorecard": (
        "H = P_bias + P_output + P_privacy + P_adversarial, an unweighted sum of four measured rates (the harm score "
        "proposed in the course notes this workbook grew from), shown as its "
        "components; each is a measured rate in [0, 1], so H lies between 0 and 4. The total is only meaningful with all four present, and "
        "adding rates of different harms hides which one matters: read the components."),
    "Ethical considerations": (
        "The label encodes 1994 pay gaps; a model that reproduces them automates past discrimination. Removing "
        "sex words does not remove sex information (proxies). Membership inference shows that the model itself "
        "can leak who was in the training data."),
    "Caveats, limitations and recommendations": (
        "Small samples in cpu/smoke mode make figures noisy (smoke-mode numbers are meaningless); the word "
        "lists for swaps and substitutions are short and English-only; the attack is greedy, so its success "
        "rate is a lower bound on vulnerability. Re-measure before any use beyond teaching; report intervals."),
}


def _flatten(value: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            out += _flatten(v, f"{prefix}.{k}")
        return out
    return [(prefix, value)]


def _lookup(results: Mapping[str, Any], notebook: str, key: str) -> Any:
    """results[notebook][key], also reaching into nested dicts with dotted keys ("a.b" -> {"a": {"b": ...}})."""
    nb = results.get(notebook) or {}
    if key in nb:
        return nb[key]
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        head, rest = ".".join(parts[:i]), ".".join(parts[i:])
        if isinstance(nb.get(head), Mapping):
            return _lookup({notebook: nb[head]}, notebook, rest)
    return None


def format_value(value: Any) -> str:
    """How the card prints a recorded value: floats with 3 decimals, ints as they are, None -> not measured."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NOT_MEASURED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, str):
        return value.replace("|", "/").replace("\n", " ")
    return NOT_MEASURED  # lists and other shapes are not quoted


@dataclass
class Figure:
    """One row of the card: what it is, the value as printed, and where it comes from."""

    label: str
    notebook: str
    key: str
    value: Any

    @property
    def text(self) -> str:
        return format_value(self.value)


def card_figures(results: Mapping[str, Any]) -> dict[str, list[Figure]]:
    """Section -> the figures the card quotes (required ones first, then every matching recorded key)."""
    out: dict[str, list[Figure]] = {s: [] for s in SECTIONS}
    seen: set[tuple[str, str]] = set()
    for section, rows in REQUIRED_FIGURES.items():
        for nb, key, label in rows:
            out[section].append(Figure(label, nb, key, _lookup(results, nb, key)))
            seen.add((nb, key))
    for section, sources in SECTION_SOURCES.items():
        for nb, pattern in sources:
            for key, value in _flatten(results.get(nb) or {}, "")[:]:
                key = key[1:]
                if (nb, key) not in seen and _quotable(section, key, value, pattern):
                    out[section].append(Figure(f"`{key}`", nb, key, value))
                    seen.add((nb, key))
    return out


#: Keys of the claim machinery (a claim's or finding's verdict and evidence), never quoted by the card.
_INTERNAL = re.compile(r"^(claim|finding)\.|(^|\.)evidence(\.|$)")
#: Run settings and costs (sizes, timings, grid settings), not measurements of the model: quoted only among the data.
_SETTING = re.compile(r"seconds|per_second|checkpoint|parameters|^seeds$|_rows$|passes|tolerance|cells|max_param_diff"
                      r"|best_epoch|good_lrs|dropout_p|^best_(l2|p)$")


def _quotable(section: str, key: str, value: Any, pattern: str) -> bool:
    """Whether a recorded ``key`` belongs in ``section``: it matches ``pattern``, is not part of a claim's record, is
    a measurement (not a run setting) outside the data section, is a single value, and is text only in the data
    section."""
    if _INTERNAL.search(key) or not re.search(pattern, key):
        return False
    if section != "Training and evaluation data" and _SETTING.search(key):
        return False
    if isinstance(value, (list, tuple)) or value is None:
        return False
    return not (isinstance(value, str) and section != "Training and evaluation data")


def model_card(results: Mapping[str, Any] | None = None, *, title: str = "Income classifier (teaching model)") -> str:
    """A Markdown model card (Mitchell et al. 2019) built from ``results`` (default: ``build/<mode>/results.json``).

    Each quantitative section is a table | figure | value | source |; missing figures read "not measured".
    Notebooks that did not run are listed, so a reader knows what the card does not cover.
    """
    from .results import load_results

    results = load_results() if results is None else results
    if not isinstance(results, Mapping):
        raise ValueError(f"model_card expects the results dict (from helpers.results.load_results()), "
                         f"got {type(results).__name__}.")
    figures = card_figures(results)
    notebooks = (NB02, NB03, NB04, NB05, NB06, NB07)
    ran = [nb for nb in notebooks if results.get(nb)]
    extra = {"Model details": lambda: _details_lines(results, ran, [nb for nb in notebooks if nb not in ran]),
             "Harm scorecard": lambda: [scorecard_markdown(harm_scorecard(results),
                                                           total=_lookup(results, NB07, "harm.total")), ""]}
    lines = [f"# Model card: {title}", ""]
    for section in SECTIONS:
        lines += [f"## {section}", "", _PROSE[section], "", *extra.get(section, list)()]
        lines += _figure_table(figures.get(section) or [])
    return "\n".join(lines).rstrip() + "\n"


def _details_lines(results: Mapping[str, Any], ran: list[str], missing: list[str]) -> list[str]:
    """The "Model details" bullets: which notebooks ran, in which mode(s) and with which seed(s)."""
    meta = [m for nb, m in (results.get("_meta") or {}).items() if nb in ran and isinstance(m, Mapping)]
    modes = sorted({str(m.get("mode")) for m in meta})
    seeds = sorted({str(m.get("seed")) for m in meta} - {"None"})
    smoke = " (smoke mode: tiny sizes for testing; its numbers mean nothing)" if "smoke" in modes else ""
    lines = [f"- Notebooks with recorded figures: {_listing(ran, 'none')}",
             f"- Notebooks not run (their figures read '{NOT_MEASURED}'): {_listing(missing, 'none')}",
             f"- Run mode(s) of the recorded figures: {_listing(modes, 'unknown')}{smoke}",
             f"- Seed(s) of the recorded figures: {', '.join(seeds) or 'not recorded'}"]
    desc = _lookup(results, NB07, "model.description")
    if isinstance(desc, str):
        lines.append(f"- Deployed model (robustness notebook): {format_value(desc)}")
    return lines + [""]


def _listing(names: list[str], empty: str) -> str:
    """``a``, ``b`` as Markdown code, comma-separated, or ``empty``."""
    return ", ".join(f"`{n}`" for n in names) or empty


def _figure_table(rows: list[Figure]) -> list[str]:
    """A section's figures as a Markdown table | figure | value | source | (nothing when there are none)."""
    if not rows:
        return []
    return ["| Figure | Value | Source |", "| --- | --- | --- |",
            *(f"| {f.label} | {f.text} | `{f.notebook}` : `{f.key}` |" for f in rows), ""]


def write_model_card(path: str | Path | None = None, results: Mapping[str, Any] | None = None) -> Path:
    """Write :func:`model_card` to ``path`` (default ``build/<mode>/MODEL_CARD.md``); returns the path."""
    from .results import results_path

    path = Path(path) if path else results_path().parent / "MODEL_CARD.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model_card(results), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------
# Harm scorecard
# ----------------------------------------------------------------------------------------------

#: The four components of H: name -> (results key in notebook 07, definition).
HARM_COMPONENTS: dict[str, tuple[str, str]] = {
    "P_bias": ("unconstrained.dp_difference",
               "Demographic-parity difference of the deployed model's decisions between women and men on the "
               "test set: |P(Y^=1 | female) - P(Y^=1 | male)| (fairlearn)."),
    "P_output": ("unconstrained.confident_error_rate",
                 "Misleading output: share of test records the deployed model gets wrong with confidence >= 0.8 "
                 "(P(wrong class) >= 0.8)."),
    "P_privacy": ("mia.deployed.best_advantage",
                  "Membership advantage of the loss-threshold attack on the deployed model: max over thresholds "
                  "of TPR - FPR, members = training records, non-members = unseen records (Yeom et al. 2018). The "
                  "threshold is the best one chosen after the fact on the same records, so on small samples this "
                  "is biased upwards: it is above 0 even with no leak (privacy.best_advantage_no_leak)."),
    "P_adversarial": ("attack.before.success_k1",
                      "Share of correctly classified test sentences whose decision ONE meaning-preserving word "
                      "substitution flips (greedy attack, before the defence)."),
}


#: What each component measures, named as the rate it is (none is a probability that someone is harmed).
HARM_RATE_NAMES: dict[str, str] = {
    "P_bias": "demographic-parity difference",
    "P_output": "confident-error rate",
    "P_privacy": "membership advantage of the loss-threshold attack",
    "P_adversarial": "one-substitution attack success rate",
}


def describe_scorecard(scorecard: pd.DataFrame) -> str:
    """One sentence for a summary: each component as the measured rate it is (``HARM_RATE_NAMES``), the largest one,
    and why the sum H is not the headline (it hides which harm dominates). Missing components are named as missing."""
    measured = scorecard[scorecard["status"] == "measured"]
    parts = [f"{HARM_RATE_NAMES.get(r.component, r.component)} {format_value(float(r.value))} ({r.component})"
             for r in measured.itertuples()]
    missing = scorecard.loc[scorecard["status"] != "measured", "component"].tolist()
    text = f"{len(measured)} measured rates, not probabilities of harm: " + "; ".join(parts) + "."
    if len(measured):
        top = measured.loc[measured["value"].astype(float).idxmax()]
        text += f" The largest is the {HARM_RATE_NAMES.get(top['component'], top['component'])}."
    if missing:
        return text + f" Not measured: {', '.join(missing)} (missing, not zero), so H is not computed."
    return text + (f" Their sum H = {format_value(harm_total(scorecard))} would hide which harm dominates and weigh "
                   "unlike harms alike (exercise 07.6), so it is not the headline.")


def confident_error_rate(y_true, p, *, confidence: float = 0.8) -> float:
    """P_output: share of records predicted wrongly with P(wrong class) >= ``confidence``.

    p_wrong_i = 1 - p_i if y_i = 1 else p_i (``p`` = P(y=1), shape (n,)); rate = (1/n) sum_i 1[p_wrong_i >= c].
    """
    import numpy as np

    from . import validation as check

    y = check.binary_labels(y_true, "y_true")
    p = check.probabilities(p, "p", n=len(y))
    if not 0.5 <= confidence <= 1.0:
        raise ValueError(f"confidence must be in [0.5, 1], got {confidence}.")
    return float(np.mean(np.where(y == 1, 1.0 - p, p) >= confidence))


def harm_scorecard(results: Mapping[str, Any] | None = None, *, notebook: str = NB07,
                   components: Mapping[str, tuple[str, str]] = HARM_COMPONENTS) -> pd.DataFrame:
    """The harm score's components as a table: component, value (None if missing), status, definition, source.

    Each value must be a rate in [0, 1]; a value outside raises ValueError (it is not a rate), NaN/None means
    the component was not measured and is reported as ``missing`` (never as 0).
    """
    from .results import load_results

    results = load_results() if results is None else results
    rows = []
    for name, (key, definition) in components.items():
        value = _lookup(results, notebook, key)
        if isinstance(value, float) and math.isnan(value):
            value = None
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} ({notebook}:{key}) must be a number in [0, 1], got {value!r}.")
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} ({notebook}:{key}) = {value} is not a rate in [0, 1].")
            value = float(value)
        rows.append({"component": name, "value": value, "status": "measured" if value is not None else "missing",
                     "definition": definition, "source": f"{notebook}:{key}"})
    return pd.DataFrame(rows, columns=["component", "value", "status", "definition", "source"]).astype(
        {"value": object})


def harm_total(scorecard: pd.DataFrame) -> float | None:
    """H = sum of the components, or None when any component is missing (a partial sum would understate H)."""
    if (scorecard["status"] != "measured").any():
        return None
    return float(sum(float(v) for v in scorecard["value"]))


def scorecard_markdown(scorecard: pd.DataFrame, *, total: float | None | str = "compute") -> str:
    """The scorecard as a Markdown table, with the total H or the list of missing components.

    ``total="compute"`` sums the components; a number (e.g. the recorded ``harm.total``) is printed as given;
    ``None`` prints no total (the model card passes the recorded figure so it only quotes recorded numbers).
    """
    lines = ["| Component | Value | Definition | Source |", "| --- | --- | --- | --- |"]
    for r in scorecard.itertuples():
        value = "missing" if r.status != "measured" or pd.isna(r.value) else format_value(float(r.value))
        lines.append(f"| {r.component} | {value} | {r.definition} | `{r.source}` |")
    missing = scorecard.loc[scorecard["status"] != "measured", "component"].tolist()
    lines.append("")
    if missing:
        lines.append(f"H cannot be computed: missing {', '.join(missing)} (a missing component is not zero).")
    elif total == "compute":
        lines.append(f"H (sum of the components, between 0 and 4): {format_value(harm_total(scorecard))}")
    elif total is not None:
        lines.append(f"H (sum of the components, between 0 and 4, recorded as `harm.total`): {format_value(total)}")
    else:
        lines.append("H: the sum of the components above (between 0 and 4; not recorded as a figure).")
    return "\n".join(lines)
