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


@pytest.fixture(scope="session", autouse=True)
def _private_build_dir(tmp_path_factory):
    """Tests write results and caches to a temporary build folder, never the user's build/."""
    build = tmp_path_factory.mktemp("build")
    old = os.environ.get("WORKBOOK_BUILD_DIR")
    os.environ["WORKBOOK_BUILD_DIR"] = str(build)
    import helpers.config as config

    saved = config.BUILD_DIR
    config.BUILD_DIR = build
    yield build
    config.BUILD_DIR = saved
    if old is None:
        os.environ.pop("WORKBOOK_BUILD_DIR", None)
    else:
        os.environ["WORKBOOK_BUILD_DIR"] = old
