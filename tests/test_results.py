import json
import math

import numpy as np
import pytest

from helpers import results


def test_record_roundtrip_and_types(tmp_path):
    p = tmp_path / "r.json"
    results.record("03_x", "accuracy", np.float32(0.5), path=p)
    results.record("03_x", "curve", np.array([1, 2]), path=p)
    results.record("03_x", "gap", float("nan"), path=p)
    results.record("04_y", "table", {"a": np.int64(3)}, path=p)
    data = json.loads(p.read_text())
    assert data["03_x"] == {"accuracy": 0.5, "curve": [1, 2], "gap": None}
    assert data["04_y"]["table"] == {"a": 3}
    assert data["_meta"]["03_x"]["mode"] in ("smoke", "cpu", "gpu")
    assert results.get("03_x", "accuracy", path=p) == 0.5
    assert results.get("03_x", "missing", default=math.pi, path=p) == math.pi


def test_record_is_atomic_and_keeps_earlier_figures(tmp_path, monkeypatch):
    p = tmp_path / "r.json"
    results.record("a", "x", 1, path=p)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(results.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        results.record("a", "y", 2, path=p)
    monkeypatch.undo()
    assert json.loads(p.read_text())["a"] == {"x": 1}  # the old file is intact, not half-written


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="notebook name"):
        results.record("", "k", 1, path=tmp_path / "r.json")
    with pytest.raises(ValueError, match="Cannot store"):
        results.record("a", "k", object(), path=tmp_path / "r.json")


def test_record_section_replaces_only_that_section(tmp_path):
    p = tmp_path / "r.json"
    results.record("bench", "old_method.accuracy", 0.7, path=p)  # from an earlier, different run
    results.record("03_x", "accuracy", 0.8, path=p)
    results.record_section("bench", {"new.accuracy": [np.float64(0.86), None], "rows": np.int64(5)}, path=p)
    data = json.loads(p.read_text())
    assert data["bench"] == {"new.accuracy": [0.86, None], "rows": 5}  # the stale key is gone
    assert data["03_x"] == {"accuracy": 0.8} and "bench" in data["_meta"]
    for bad in ({}, [("a", 1)]):
        with pytest.raises(ValueError, match="non-empty dict"):
            results.record_section("bench", bad, path=p)
    with pytest.raises(ValueError, match="section name"):
        results.record_section("", {"a": 1}, path=p)
