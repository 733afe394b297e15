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


def test_finetune_full_reuses_saved_embeddings(tmp_path, monkeypatch):
    """--embeddings: the first run saves the fine-tuned embeddings; the next reuses them (no fine-tune) and gets the
    same decisions; fairlearn baselines run on them too; embeddings of another recipe are refused."""
    monkeypatch.setenv("WORKBOOK_MODE", "smoke")
    ff = _load("finetune_full")
    common = ["--device", "cpu", "--train-rows", "48", "--test-rows", "40", "--embeddings", str(tmp_path / "emb")]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert ff.main([*common, "--epochs", "1", "--methods", "dp-mix", "threshold-dp", "--json", str(a)]) == 0
    from helpers.fairness import constrained as fc

    monkeypatch.setattr(fc, "fine_tune_fair", lambda *_, **__: pytest.fail("fine-tuned again: embeddings not reused"))
    assert ff.main([*common, "--epochs", "1", "--methods", "dp-mix", "threshold-dp", "expgrad-eo",
                    "--expgrad-iter", "5", "--json", str(b)]) == 0
    ra, rb = (json.loads(p.read_text())["runs"] for p in (a, b))
    assert [r["method"] for r in rb] == ["dp-mix", "threshold-dp", "expgrad-eo"]
    keys = ("accuracy", "dp_difference", "eo_difference", "dp_low", "eo_high")
    for x, y in zip(ra, rb):
        assert [x[k] for k in keys] == [y[k] for k in keys]
    assert rb[0]["final_multiplier"] >= 0.0 and rb[2]["final_multiplier"] is None
    assert 0.0 <= rb[2]["eo_low"] <= rb[2]["eo_difference"] <= rb[2]["eo_high"] <= 1.0
    with pytest.raises(ValueError, match="another recipe"):  # 2 epochs would not be the encoder these came from
        ff.main([*common, "--epochs", "2", "--methods", "dp-last"])


def _run(method, seed, acc, eo, train_rows=100):
    """A run as finetune_full's row() writes it (the fields summarize reads)."""
    return {"method": method, "seed": seed, "device": "cpu", "train_rows": train_rows, "test_rows": 50,
            "accuracy": acc, "dp_difference": 0.1, "eo_difference": eo, "dp_low": 0.05, "dp_high": 0.15,
            "eo_low": eo - 0.01, "eo_high": eo + 0.02, "share_predicted_positive": 0.2, "selection_Female": 0.1,
            "selection_Male": 0.2, "examples_per_second": float("nan") if method != "unconstrained" else 40.0 + seed,
            "seconds_per_epoch": float("nan"), "wall_seconds": 10.0, "final_multiplier": None}


def test_finetune_full_pools_runs_of_separate_invocations(tmp_path, monkeypatch, capsys):
    """Seeds run apart (half an hour each on a CPU) are pooled by --summarize; --record puts mean and sd in results.json."""
    monkeypatch.setenv("WORKBOOK_BUILD_DIR", str(tmp_path / "build"))
    a, b = tmp_path / "s0.json", tmp_path / "s12.json"
    a.write_text(json.dumps({"runs": [_run("unconstrained", 0, 0.86, 0.07), _run("eo-mix", 0, 0.85, 0.02)]}))
    b.write_text(json.dumps({"runs": [_run("unconstrained", s, 0.87 + s / 100, 0.08) for s in (1, 2)]
                             + [_run("eo-mix", 1, 0.86, 0.03)]}))
    bench = _load("finetune_full")
    assert bench.main(["--summarize", str(a), str(b), "--record"]) == 0
    got = json.loads((tmp_path / "build" / "results.json").read_text())[bench.SECTION]
    assert got["unconstrained.seeds"] == [0, 1, 2] and got["eo-mix.seeds"] == [0, 1]
    accs = [0.86, 0.88, 0.89]
    mean = sum(accs) / 3
    sd = (sum((x - mean) ** 2 for x in accs) / 2) ** 0.5  # sample sd (ddof = 1), as the printed table
    assert got["unconstrained.accuracy"] == pytest.approx([round(mean, 4), round(sd, 4)], abs=1e-4)
    assert got["eo-mix.eo_difference"] == pytest.approx([0.025, round(0.01 / 2**0.5, 4)], abs=1e-4)
    assert got["eo-mix.intervals_95"]["1"]["eo"] == pytest.approx([0.02, 0.05])
    assert "eo-mix.examples_per_second" not in got  # not measured for a last layer: absent, not NaN
    assert got["train_rows"] == 100 and got["test_rows"] == 50 and got["devices"] == ["cpu"]
    assert bench.main(["--summarize", str(b), "--record"]) == 0  # a second record replaces the whole section
    got = json.loads((tmp_path / "build" / "results.json").read_text())[bench.SECTION]
    assert got["unconstrained.seeds"] == [1, 2] and "0" not in got["eo-mix.intervals_95"]
    printed = capsys.readouterr().out
    assert "unconstrained: [0, 1, 2]" in printed and "nan" not in printed
    with pytest.raises(ValueError, match="seed 0 is in both"):
        bench.main(["--summarize", str(a), str(a)])
    c = tmp_path / "small.json"
    c.write_text(json.dumps({"runs": [_run("eo-mix", 2, 0.8, 0.05, train_rows=10)]}))
    with pytest.raises(ValueError, match="mix data sizes"):
        bench.main(["--summarize", str(a), str(c)])
    with pytest.raises(ValueError, match="does not exist"):
        bench.main(["--summarize", str(tmp_path / "missing.json")])


@pytest.mark.filterwarnings("ignore")
def test_explain_speed_reports_every_row(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_MODE", "smoke")
    out = tmp_path / "speed.json"
    assert _load("explain_speed").main(["--device", "cpu", "--texts", "40", "--lime", "40", "--shap", "20",
                                        "--naive", "4", "--global-n", "2", "--repeats", "1", "--agree", "2", "--finetune-rows", "16",
                                        "--agree-lime", "20", "--agree-shap", "10", "--no-fresh", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["info"]["texts_per_s_token_ids"] > 0
    assert any(k.startswith("LIME 40 samples") for k in result["rows"])
    for r in result["rows"].values():  # cold-only rows (repeats=0) have no warm time: NaN, not 0
        assert r["cold_s"] > 0 and (math.isnan(r["warm_s"]) or r["warm_s"] > 0)
    assert {"LIME: stock / ours fp32", "LIME: stock / ours int8", "SHAP: stock / ours int8"} <= set(result["ratios"])
    assert result["info"]["date_utc"] and result["info"]["cpu"] and result["info"]["cores"] >= 1
    from helpers.explain import cpu_has_bf16

    lower = {"int8", "bf16"} if cpu_has_bf16() else {"int8"}
    assert set(result["agreement"]) == lower  # one entry per lower precision, each against fp32
    for agree in result["agreement"].values():
        assert agree["sentences"] == 2 and 0 < agree["max_abs_dp"] < 1 and -1 <= agree["lime_spearman_min"] <= 1
    assert {f"forward: fp32 / {name}" for name in lower} <= set(result["ratios"])


@pytest.mark.filterwarnings("ignore")
def test_int8_variants_checks_the_smoothing_and_reports_every_scheme(tmp_path, monkeypatch):
    """SmoothQuant's rescaling leaves the fp32 model's probabilities unchanged (float rounding); every scheme gets
    its probability differences and time ratio."""
    monkeypatch.setenv("WORKBOOK_MODE", "smoke")
    out = tmp_path / "int8.json"
    assert _load("int8_variants").main(["--rows", "16", "--epochs", "1", "--texts", "3", "--perturbed", "3",
                                        "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert all(v < 1e-5 for v in result["info"]["smoothed_fp32_max_abs_dp"].values())
    assert {"per-tensor", "per-channel", "per-token (torch._int_mm)"} <= set(result["rows"])
    for r in result["rows"].values():
        assert 0 <= r["max_abs_dp_texts"] < 1 and 0 <= r["max_abs_dp_perturbed"] < 1 and r["fp32_over_int8_time"] > 0
    assert result["info"]["texts"] == 3 and result["info"]["perturbed"] == 3 * 3  # masked versions of each text
