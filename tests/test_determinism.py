"""Same seed, same mode -> the same recorded figures: notebook 01 (tokenizer training, masked-LM pretraining, probes)
executed twice in fresh build folders records identical results, timings aside."""

from __future__ import annotations

import json
import re

import pytest

from helpers.config import ROOT
from helpers.workbook import execute

TIMING = re.compile(r"(seconds|minutes|_per_s|peak_mb|_time)$")


def _figures(build) -> dict:
    figures = json.loads((build / "results.json").read_text())["01_pretraining"]
    assert figures, "notebook 01 recorded no figures"
    return {k: v for k, v in figures.items() if not TIMING.search(k)}


@pytest.mark.notebook
def test_same_seed_same_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_SEED", "1")
    runs = []
    for i in range(2):
        build = tmp_path / f"run{i}"
        execute(ROOT / "notebooks" / "01_pretraining.ipynb", mode="smoke", out_dir=build, html=False)
        runs.append(_figures(build))
    first, second = runs
    assert len(first) >= 10 and any(k.startswith("claim.") for k in first)
    differing = sorted(k for k in first.keys() | second.keys() if first.get(k) != second.get(k))
    assert not differing, f"re-running notebook 01 with the same seed changed: {differing}"
