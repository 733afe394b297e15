"""Tests for helpers.governance: the model card quotes only recorded numbers; the scorecard never invents."""

import re

import pytest

from helpers import governance as G

FULL = {
    "_meta": {G.NB07: {"mode": "cpu", "recorded_at": "2026-01-01T00:00:00"}},
    G.NB03: {"lr.accuracy": 0.8471, "frozen.dp_difference": 0.1712, "finetuned.eo_difference": 0.0931,
             "frozen.accuracy_by_sex": {"Male": 0.81, "Female": 0.9}, "n_test": 2000, "curve": [0.1, 0.2]},
    G.NB04: {"constrained.dp_difference": 0.04},
    G.NB05: {"l2.gap": 0.012},
    G.NB06: {"shap_lime_spearman": 0.61},
    G.NB07: {"model.description": "all-MiniLM-L6-v2 frozen + logistic head", "unconstrained.accuracy": 0.8123,
             "unconstrained.dp_difference": 0.2, "unconstrained.confident_error_rate": 0.05,
             "mia.regularised.auc": 0.512, "mia.deployed.best_advantage": 0.04,
             "attack.before.success_k1": 0.07, "attack.before.success_k3": 0.2, "attack.after.success_k3": 0.1,
             "counterfactual.unconstrained.flip_rate": 0.03, "data.n_train": 3000, "privacy.qi_uniqueness": 0.12},
}

_NUM = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")


def _numbers(card: str) -> set[str]:
    """Number tokens outside `code spans` (sources and key names are code)."""
    return set(_NUM.findall(re.sub(r"`[^`]*`", "", card)))


def _leaves(results):
    for nb, d in results.items():
        if nb == "_meta":
            continue
        for _key, v in G._flatten(d, ""):
            yield v


def test_card_has_every_section_in_order():
    for results in ({}, FULL):
        card = G.model_card(results)
        heads = [line[3:] for line in card.splitlines() if line.startswith("## ")]
        assert heads == list(G.SECTIONS)


def test_every_number_in_the_card_is_a_recorded_number():
    static = _numbers(G.model_card({}))  # years of citations, "0.5", "$50K"... present with no results at all
    card = G.model_card(FULL)
    allowed = set(static)
    for v in _leaves(FULL):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            allowed.add(G.format_value(v))
        elif isinstance(v, str):
            allowed |= set(_NUM.findall(v))
    extra = _numbers(card) - allowed
    assert not extra, f"numbers in the card that are not in the results: {extra}"
    # and the recorded figures do appear, with their source
    assert "| 0.847 | `03_finetuning_and_fairness_metrics` : `lr.accuracy` |" in card
    assert "0.810" in card and "0.900" in card  # nested per-group dict, flattened
    assert "0.1" not in _numbers(card) or "0.1" in static  # lists are not quoted


def test_quoted_figures_equal_the_results():
    for figs in G.card_figures(FULL).values():
        for f in figs:
            assert f.value == G._lookup(FULL, f.notebook, f.key)
            if f.value is not None:
                assert f.text == G.format_value(f.value)


def test_missing_notebooks_read_not_measured():
    card = G.model_card({G.NB07: FULL[G.NB07]})
    assert f"| {G.NOT_MEASURED} | `{G.NB03}` : `lr.accuracy` |" in card
    assert f"`{G.NB03}`" in card.split("Notebooks not run")[1].splitlines()[0]
    empty = G.model_card({})
    n_required = sum(len(v) for v in G.REQUIRED_FIGURES.values())
    assert empty.count(f"| {G.NOT_MEASURED} |") == n_required


def test_scorecard_components_in_unit_interval_and_total():
    sc = G.harm_scorecard(FULL)
    assert sc["component"].tolist() == ["P_bias", "P_output", "P_privacy", "P_adversarial"]
    assert (sc["status"] == "measured").all()
    assert all(0.0 <= v <= 1.0 for v in sc["value"])
    assert G.harm_total(sc) == pytest.approx(0.2 + 0.05 + 0.04 + 0.07)
    assert all(sc["definition"].str.len() > 40)


def test_scorecard_missing_is_missing_not_zero():
    partial = {G.NB07: {"unconstrained.dp_difference": 0.2, "mia.deployed.best_advantage": None}}
    sc = G.harm_scorecard(partial)
    status = dict(zip(sc["component"], sc["status"]))
    assert status == {"P_bias": "measured", "P_output": "missing", "P_privacy": "missing", "P_adversarial": "missing"}
    assert sc.loc[sc["status"] == "missing", "value"].isna().all()
    assert G.harm_total(sc) is None
    md = G.scorecard_markdown(sc)
    assert "H cannot be computed: missing P_output, P_privacy, P_adversarial" in md
    assert "| P_output | missing |" in md
    assert G.harm_total(G.harm_scorecard({})) is None


@pytest.mark.parametrize("bad", [1.5, -0.1, "high", True])
def test_scorecard_rejects_non_rates(bad):
    with pytest.raises(ValueError):
        G.harm_scorecard({G.NB07: {"unconstrained.dp_difference": bad}})


def test_write_model_card(tmp_path):
    path = G.write_model_card(tmp_path / "card.md", FULL)
    assert path.read_text().startswith("# Model card")
    with pytest.raises(ValueError):
        G.model_card([1, 2])


def test_confident_error_rate():
    y = [1, 1, 0, 0, 1, 0]
    p = [0.9, 0.1, 0.85, 0.3, 0.45, 0.05]
    assert G.confident_error_rate(y, p) == pytest.approx(2 / 6)
    assert G.confident_error_rate(y, p, confidence=0.5) == pytest.approx(3 / 6)
    with pytest.raises(ValueError):
        G.confident_error_rate([1], [0.5, 0.5])


def test_claims_are_not_quoted_as_figures():
    results = {**FULL, G.NB03: {**FULL[G.NB03], "claim.each_group_selected": {
        "held": True, "mode": "cpu", "run": "r", "evidence": {"frozen.dp_difference": 0.4321}}}}
    card = G.model_card(results)
    assert "0.432" not in card and "claim." not in card
    assert "| 0.171 |" in card  # the recorded figure itself still is


def test_findings_evidence_and_run_settings_are_not_quoted_as_metrics():
    results = {**FULL,
               G.NB04: {"finding": {"dp_head_meets_delta": {"held": True, "evidence": {"noise": 0.6543}}},
                        "sweep.head_seconds_per_run": 0.7654},
               G.NB03: {**FULL[G.NB03], "lora_compare.full.checkpoint_MiB": 86.6471, "seeds": 7,
                        "finetuned.examples_per_second": 29.8624}}
    card = G.model_card(results)
    for text in ("finding.", "evidence", "0.654", "0.765", "86.647", "29.862", "`seeds`"):
        assert text not in card, text
    assert "source material" not in card and "| 0.171 |" in card


def test_describe_scorecard_names_each_rate_and_the_largest():
    text = G.describe_scorecard(G.harm_scorecard(FULL))
    for name, value in (("demographic-parity difference", "0.200"), ("confident-error rate", "0.050"),
                        ("membership advantage of the loss-threshold attack", "0.040"),
                        ("one-substitution attack success rate", "0.070")):
        assert f"{name} {value}" in text
    assert "The largest is the demographic-parity difference." in text  # 0.2 > 0.07 > 0.05 > 0.04
    assert "H = 0.360" in text and "probabilit" in text and "not the headline" in text  # 0.2 + 0.05 + 0.04 + 0.07
    partial = G.describe_scorecard(G.harm_scorecard({G.NB07: {"mia.deployed.best_advantage": 0.3,
                                                              "unconstrained.dp_difference": 0.1}}))
    assert "The largest is the membership advantage" in partial and "H is not computed" in partial
    assert "Not measured: P_output, P_adversarial (missing, not zero)" in partial and "H =" not in partial
