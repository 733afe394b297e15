"""Shared test setup: smoke mode, CPU, offline, a private build folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "notebooks" / "solutions"))

os.environ.setdefault("WORKBOOK_MODE", "smoke")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time (empty when the folder is missing)."""
    if not folder.is_dir():
        return {}
    return {str(f.relative_to(folder)): (f.stat().st_size, f.stat().st_mtime_ns) for f in folder.rglob("*") if f.is_file()}


@pytest.fixture(scope="session", autouse=True)
def _private_build_dir(tmp_path_factory):
    """Tests write results, checkpoints and caches to a temporary build folder (``$WORKBOOK_BUILD_DIR``, read by
    :func:`helpers.config.build_dir`), never the user's build/; the session fails if build/ changed."""
    build = tmp_path_factory.mktemp("build")
    old = os.environ.get("WORKBOOK_BUILD_DIR")
    os.environ["WORKBOOK_BUILD_DIR"] = str(build)
    before = _snapshot(ROOT / "build")
    yield build
    if old is None:
        os.environ.pop("WORKBOOK_BUILD_DIR", None)
    else:
        os.environ["WORKBOOK_BUILD_DIR"] = old
    changed = sorted(k for k, v in _snapshot(ROOT / "build").items() if before.get(k) != v)
    if changed:
        pytest.fail(f"build/ changed during the test session (a test, or another run writing there): {changed[:5]}",
                    pytrace=False)
