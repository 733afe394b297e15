"""The benchmark scripts run end to end at tiny sizes and write what their docstrings promise."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finetune_full_writes_runs_with_valid_metrics(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORKBOOK_MODE", "smoke")
    out = tmp_path / "ft.json"
    assert _load("finetune_full").main(["--device", "cpu", "--train-rows", "48", "--test-rows", "40", "--epochs", "1",
                                        "--methods", "unconstrained", "dp", "dp-last", "eo-mix", "--stratify", "--temperature", "0.5",
                                        "--json", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert [r["method"] for r in runs] == ["unconstrained", "dp-last", "eo-mix", "dp"]
    for r in runs:
        assert r["train_rows"] == 48 and r["test_rows"] == 40
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["dp_difference"] <= 1.0 and 0.0 <= r["eo_difference"] <= 1.0
        if not r["method"].startswith(("dp-last", "eo-mix")):  # the last layer is trained on embeddings: no fine-tuning epochs of its own
            assert r["examples_per_second"] > 0 and r["seconds_per_epoch"] > 0
        assert r["wall_seconds"] > 0
        rates = {k: v for k, v in r.items() if k.startswith("selection_")}
        assert sorted(rates) == ["selection_Female", "selection_Male"]
        assert abs(max(rates.values()) - min(rates.values()) - r["dp_difference"]) < 1e-9  # DP = gap of the rates
        for m in ("dp", "eo"):  # the test set's 95 % bootstrap interval brackets the measured gap
            assert 0.0 <= r[f"{m}_low"] <= r[f"{m}_difference"] <= r[f"{m}_high"] <= 1.0
    assert runs[0]["final_multiplier"] is None
    printed = capsys.readouterr().out
    assert "± n/a" in printed and "± 0.000" not in printed  # one seed: its spread is not measured, not 0
    assert all(r["final_multiplier"] >= 0.0 for r in runs[1:])


@pytest.mark.filterwarnings("ignore")
def test_explain_speed_reports_every_row(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_MODE", "smoke")
    out = tmp_path / "speed.json"
    assert _load("explain_speed").main(["--device", "cpu", "--texts", "40", "--lime", "40", "--shap", "20",
                                        "--naive", "4", "--global-n", "2", "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["info"]["texts_per_s_token_ids"] > 0
    assert any(k.startswith("LIME 40 samples") for k in result["rows"])
    for r in result["rows"].values():  # cold-only rows (repeats=0) have no warm time: NaN, not 0
        assert r["cold_s"] > 0 and (math.isnan(r["warm_s"]) or r["warm_s"] > 0)
