"""Tests for helpers.claims: recording, display text, enforcement filters and bad input."""

import numpy as np
import pytest

from helpers import claims, config
from helpers.results import load_results


@pytest.fixture()
def build(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_BUILD_DIR", str(tmp_path))
    monkeypatch.setenv("WORKBOOK_MODE", "cpu")
    monkeypatch.setenv("WORKBOOK_RUN_ID", "r1")
    return tmp_path


def test_held_and_failed_claims_are_recorded_with_their_evidence(build):
    ok = claims.claim("nbX", "gap_drops", np.bool_(True), says="It drops.", instead="It did not.",
                      evidence={"gap": 0.1}, show=False)
    bad = claims.claim("nbX", "lambda_falls", 0.2 < 0.1, says="It falls.", instead="It kept rising.", show=False)
    stored = load_results()["nbX"]
    assert stored["claim.gap_drops"] == {"held": True, "mode": "cpu", "run": "r1", "evidence": {"gap": 0.1}}
    assert stored["claim.lambda_falls"]["held"] is False
    assert "It drops." in ok.markdown() and "It did not." not in ok.markdown()
    assert bad.markdown().startswith("> **What this run showed instead**") and "It kept rising." in bad.markdown()
    assert [r["name"] for r in claims.failed()] == ["lambda_falls"]
    table = claims.table()
    assert "1/2" in table and "lambda_falls" in table


def test_smoke_mode_and_other_runs_are_not_enforced(build, monkeypatch):
    monkeypatch.setenv("WORKBOOK_MODE", "smoke")
    claims.claim("nbX", "a", False, says="s", instead="i", show=False)
    assert claims.failed() == []
    monkeypatch.setenv("WORKBOOK_MODE", "cpu")
    monkeypatch.setenv("WORKBOOK_RUN_ID", "old")
    claims.claim("nbY", "b", False, says="s", instead="i", show=False)
    assert [r["name"] for r in claims.failed()] == ["b"]
    assert claims.failed(run="r1") == []


@pytest.mark.parametrize("kwargs, word", [
    ({"notebook": "", "name": "a", "held": True}, "notebook"),
    ({"notebook": "n", "name": "a b", "held": True}, "name"),
    ({"notebook": "n", "name": "a", "held": np.array([True, False])}, "held"),
    ({"notebook": "n", "name": "a", "held": 1.0}, "held"),
])
def test_bad_input_names_the_argument(build, kwargs, word):
    with pytest.raises(ValueError, match=word):
        claims.claim(says="s", instead="i", show=False, **kwargs)


def test_run_seed_from_the_environment(monkeypatch):
    monkeypatch.delenv("WORKBOOK_SEED", raising=False)
    assert config.run_seed() == 0
    monkeypatch.setenv("WORKBOOK_SEED", "2")
    assert config.run_seed() == 2
    monkeypatch.setenv("WORKBOOK_SEED", "-1")
    with pytest.raises(ValueError, match="WORKBOOK_SEED"):
        config.run_seed()


def test_a_claim_forced_false_fails_an_enforced_run(tmp_path, monkeypatch, capsys):
    import nbformat

    from helpers.workbook import run_all

    root = config.ROOT
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"import sys; sys.path.insert(0, {str(root)!r})\n"
        "from helpers.claims import claim\n"
        "claim('99_forced', 'always_false', 1 > 2, says='never shown', instead='forced false for the test')")])
    path = tmp_path / "99_forced.ipynb"
    nbformat.write(nb, path)
    monkeypatch.setenv("WORKBOOK_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setenv("WORKBOOK_ENFORCE_CLAIMS", "1")
    monkeypatch.setenv("WORKBOOK_RUN_ID", "restored-after-the-test")  # run_all sets it; monkeypatch restores it
    assert run_all([path], mode="cpu") == 1
    out = capsys.readouterr().out
    assert "99_forced" in out and "FAILED:" not in out, out  # the notebook itself ran
    assert "FAILED claim 99_forced: always_false" in out and "the run fails" in out
    monkeypatch.setenv("WORKBOOK_ENFORCE_CLAIMS", "0")
    assert run_all([path], mode="cpu") == 0


def test_over_budget_names_memory_and_time():
    from helpers import workbook

    name = "01_pretraining"
    cpu_minutes = config.EXPECTED_MINUTES[name][1]
    assert workbook.over_budget(name, "cpu", 60 * cpu_minutes, 1000.0) == []
    problems = workbook.over_budget(name, "cpu", 60 * 2.5 * cpu_minutes, 1900.0)
    assert len(problems) == 2 and "1900 MB > 1800 MB" in problems[0] and "x the expected" in problems[1]
    assert workbook.over_budget(name, "smoke", 1e6, 1e6) == []  # only cpu mode has a budget
    assert workbook.over_budget("99_unknown", "cpu", 1e6, None) == []


def test_a_notebook_over_budget_fails_only_an_enforced_run(tmp_path, monkeypatch, capsys):
    import nbformat

    from helpers import workbook

    path = tmp_path / "99_budget.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), path)
    monkeypatch.setenv("WORKBOOK_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setenv("WORKBOOK_RUN_ID", "restored-after-the-test")
    monkeypatch.setattr(workbook, "CPU_PEAK_LIMIT_MB", 1.0)  # any kernel needs more than 1 MB
    monkeypatch.setenv("WORKBOOK_ENFORCE_CLAIMS", "1")
    assert workbook.run_all([path], mode="cpu") == 1
    assert "OVER BUDGET: peak memory" in capsys.readouterr().out
    monkeypatch.setenv("WORKBOOK_ENFORCE_CLAIMS", "0")
    assert workbook.run_all([path], mode="cpu") == 0
