"""Measured figures, stored so that prose, later notebooks and the model card quote real numbers.

``record("03_finetuning", "lr.accuracy", 0.847)`` writes ``build/<mode>/results.json`` as
``{"03_finetuning": {"lr.accuracy": <float>, ...}, ...}`` plus a ``_meta`` entry per notebook (mode, seed, time).
Every write is atomic (a temporary file, then ``os.replace``), so a crash mid-run never leaves a
half-written file, and figures recorded before the crash survive.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from .config import build_dir, current_seed, get_mode


def results_path() -> Path:
    """``build/<mode>/results.json`` (``$WORKBOOK_BUILD_DIR`` moves the whole build folder)."""
    return build_dir() / "results.json"


def _jsonable(value: Any) -> Any:
    """numpy / torch scalars and arrays -> plain Python; NaN and inf -> None (JSON has neither)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"Cannot store a {type(value).__name__} in results.json; record numbers, strings, lists or dicts.")


def load_results(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """All recorded figures (an empty dict if nothing was recorded yet)."""
    path = Path(path) if path else results_path()
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def record(notebook: str, key: str, value: Any, *, path: str | Path | None = None) -> None:
    """Store ``value`` under ``results[notebook][key]`` (returns nothing, so a cell shows no echo)."""
    if not notebook or not key:
        raise ValueError("record() needs a notebook name and a key, e.g. record('03_finetuning', 'lr.accuracy', 0.85).")
    path = Path(path) if path else results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        _update(path, notebook, key, value)


def record_section(notebook: str, figures: dict[str, Any], *, path: str | Path | None = None) -> None:
    """Replace everything stored under ``results[notebook]`` by ``figures``, in one atomic write.

    For a script that summarises a whole run (``benchmarks/finetune_full.py --record``): keys of an earlier, different
    run (another method set, another data size) must not survive next to the new ones, as they would with ``record``.
    """
    if not notebook or not isinstance(figures, dict) or not figures:
        raise ValueError("record_section() needs a section name and a non-empty dict of figures, "
                         "e.g. record_section('benchmark', {'accuracy': 0.86}).")
    path = Path(path) if path else results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        _update(path, notebook, None, figures)  # _jsonable makes the keys strings


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An advisory lock beside the file, so two kernels recording at once do not lose figures (POSIX)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the write is still atomic
        yield
        return
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _update(path: Path, notebook: str, key: str | None, value: Any) -> None:
    """Set ``results[notebook][key]``; with ``key=None``, replace ``results[notebook]`` by the dict ``value``."""
    data = load_results(path)
    if key is None:
        data[notebook] = _jsonable(value)
    else:
        data.setdefault(notebook, {})[key] = _jsonable(value)
    if not notebook.startswith("_"):
        meta = {"mode": get_mode(), "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if current_seed() is not None:
            meta["seed"] = current_seed()
        data.setdefault("_meta", {})[notebook] = meta
    fd, tmp = tempfile.mkstemp(prefix=".results.", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def get(notebook: str, key: str, default: Any = None, *, path: str | Path | None = None) -> Any:
    """One recorded figure, or ``default`` if that notebook has not recorded it (yet)."""
    return load_results(path).get(notebook, {}).get(key, default)
