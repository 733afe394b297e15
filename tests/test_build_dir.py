"""Everything the helpers write goes to helpers.config.build_dir() ($WORKBOOK_BUILD_DIR), never to build/ directly."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from helpers import config, regularization, results

ROOT = Path(__file__).resolve().parent.parent


def test_conftest_points_the_build_folder_at_a_temporary_directory(_private_build_dir):
    assert config.build_dir() == _private_build_dir
    assert config.build_dir() != config.BUILD_DIR
    assert results.results_path().parent == _private_build_dir


def test_early_stopping_checkpoint_goes_to_the_build_folder(_private_build_dir):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    stopper = regularization.EarlyStopping(patience=2)
    regularization.train_mlp(X, y, X, y, hidden=4, epochs=3, early_stopping=stopper, device="cpu")
    assert stopper.path.is_relative_to(_private_build_dir / "checkpoints")
    assert stopper.path.exists()


def test_no_code_reads_the_default_build_dir_constant():
    """Only config.build_dir() may use BUILD_DIR: a helper or notebook writing to BUILD_DIR ignores the variable."""
    offenders = []
    for path in [*ROOT.glob("helpers/**/*.py"), *ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("benchmarks/*.py")]:
        if path.name == "config.py" and path.parent.name == "helpers":
            continue
        if re.search(r"\bBUILD_DIR\b", path.read_text()):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
