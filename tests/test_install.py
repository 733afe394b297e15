"""Version mismatches as a student meets them: each error or warning names the package, its version and the need."""

from __future__ import annotations

from importlib import metadata

import pytest

from helpers import config, install


def _requirements(tmp_path, text):
    (tmp_path / "requirements.txt").write_text(text)
    return tmp_path / "requirements.txt"


def test_version_problems_name_package_version_and_range(tmp_path):
    numpy = metadata.version("numpy")
    req = _requirements(tmp_path, "numpy>=99,<100  # too new for this machine\npandas>=1.0,<99\n"
                                  "no-such-package-xyz>=1.0\n\n# a comment\n")
    assert install.version_problems(req) == [f"numpy {numpy} (the workbook needs numpy>=99,<100)"]
    assert install.version_problems(req, skip=("numpy",)) == []
    assert install.requirements_to_install(req) == ["numpy>=99,<100", "no-such-package-xyz>=1.0"]


def test_local_build_versions_count_as_in_range(tmp_path):
    """torch's '2.13.0+cpu' is 2.13.0 for a range check."""
    torch = metadata.version("torch")
    major, minor = (int(p) for p in torch.split("+")[0].split(".")[:2])
    req = _requirements(tmp_path, f"torch>={major}.{minor},<{major + 1}\n")
    assert install.version_problems(req) == []


def test_setup_cell_names_an_out_of_range_package(tmp_path, monkeypatch, capsys):
    _requirements(tmp_path, "numpy>=99\n")
    monkeypatch.setattr(install, "ROOT", tmp_path)
    config.start("02_data_bias_audit")
    out = capsys.readouterr().out
    assert f"numpy {metadata.version('numpy')} (the workbook needs numpy>=99)" in out
    assert "python3 -m helpers install" in out and "restart the kernel" in out


def test_setup_cell_is_quiet_when_everything_is_in_range(tmp_path, monkeypatch, capsys):
    _requirements(tmp_path, "numpy>=1.0\n")
    monkeypatch.setattr(install, "ROOT", tmp_path)
    config.start("02_data_bias_audit")
    assert "Outside the versions" not in capsys.readouterr().out


def test_transformers_that_refuses_torch_names_both_versions(monkeypatch):
    """transformers switches torch off (a log line) when torch is too old for it; the error says so with versions."""
    import torch
    import transformers
    import transformers.utils

    from helpers import models

    monkeypatch.setattr(transformers.utils, "is_torch_available", lambda: False)
    with pytest.raises(ImportError) as info:
        models.check_torch_transformers()
    text = str(info.value)
    assert f"transformers {transformers.__version__}" in text and f"torch {torch.__version__}" in text
    with pytest.raises(ImportError, match="does not work with the installed torch"):
        models.load_encoder()
