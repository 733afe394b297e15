"""The repository as students and CI meet it: layout, clean notebooks, badges, the README's commands."""

from __future__ import annotations

import re
import subprocess
import sys

import nbformat
import pytest

from helpers.config import ROOT
from helpers.workbook import notebooks

NB = notebooks()


def test_layout():
    for name in ("README.md", "requirements.txt", "notebooks", "helpers", "data", "tests", "binder", "pyproject.toml",
                 "Makefile", ".ci/run", "data/README.md", "binder/requirements.txt"):
        assert (ROOT / name).exists(), name
    assert [p.stem[:2] for p in NB] == sorted(p.stem[:2] for p in NB) and NB[0].stem == "00_start_here"


@pytest.mark.parametrize("path", NB, ids=[p.stem for p in NB])
def test_notebook_is_committed_clean_and_well_formed(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), f"strip {path.name}: python -m helpers strip"
    first_md = nb.cells[0].source
    for heading in ("Learning objectives", "Expected run time", "harms"):
        assert heading.lower() in first_md.lower(), f"{path.name}: first cell lacks '{heading}'"
    assert "colab-badge.svg" in first_md and "mybinder.org/badge_logo.svg" in first_md
    setup = code[0].source
    assert "google.colab" in setup and f'start("{path.stem}")' in setup, f"{path.name}: first code cell is not the setup cell"
    text = "\n".join(c.source for c in nb.cells)
    assert "## Summary" in text and "Exercise" in text
    # Cells define no functions except exercise stubs (cells that end in a check, e.g. "spot the bug").
    for c in code[1:]:
        if 'check("' in c.source:
            continue
        for m in re.finditer(r"^def (\w+)\(.*?(?=^\S|\Z)", c.source, flags=re.S | re.M):
            assert "NotImplementedError" in m.group(0) or "YOUR CODE" in m.group(0), f"{path.name}: def {m.group(1)} in a cell"


def test_badges_and_setup_cells_name_one_repository():
    from helpers.badges import stale

    assert stale() == [], "run `python -m helpers badges`"


def test_readme_quickstart_has_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Quickstart", 1)[1].split("```", 2)[1]
    commands = [ln.split("#")[0].strip() for ln in block.splitlines()[1:] if ln.split("#")[0].strip()]
    assert len(commands) == 2, commands
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci


def test_cli_help_runs():
    out = subprocess.run([sys.executable, "-m", "helpers", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "run" in out.stdout and "test" in out.stdout


def test_requirements_are_ranges_and_binder_is_locked():
    req = [ln.split("#")[0].strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    req = [r for r in req if r]
    torch_line = next(r for r in req if r.startswith("torch"))
    assert ">=" in torch_line and "==" not in torch_line  # Colab keeps its own torch
    lock = [ln.strip() for ln in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith(("#", "-"))]
    assert all("==" in ln for ln in lock)
    names = lambda lines: {re.split(r"[<>=!\[ ]", ln)[0].lower() for ln in lines}  # noqa: E731
    assert names(req) == names(lock)


def test_find_notebook_by_path_name_or_number():
    from helpers.workbook import find_notebook

    nb04 = [p for p in notebooks() if p.stem.startswith("04_")][0]
    assert find_notebook(nb04) == nb04
    assert find_notebook(nb04.stem) == nb04 and find_notebook(nb04.name) == nb04 and find_notebook("04") == nb04
    with pytest.raises(ValueError, match="00_start_here"):
        find_notebook("99")
