"""A notebook meant for one class session stays readable in one: markdown words, the longest markdown cell, the
longest code cell (counted as a student meets them: words split on whitespace, code lines as shown)."""

from __future__ import annotations

import nbformat
import pytest

from helpers.config import ROOT

#: notebook -> (markdown words in all, words in one markdown cell, lines in one code cell)
LIMITS = {"04_fairness_constrained_training": (1800, 250, 15)}


def counts(path) -> dict[str, int]:
    """``{"words", "max_cell_words", "max_code_lines"}`` of a notebook file."""
    nb = nbformat.read(path, as_version=4)
    words = [len(c.source.split()) for c in nb.cells if c.cell_type == "markdown"]
    lines = [len(c.source.splitlines()) for c in nb.cells if c.cell_type == "code"]
    return {"words": sum(words), "max_cell_words": max(words, default=0), "max_code_lines": max(lines, default=0)}


def test_counts_on_a_hand_made_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title\n\nthree more words"), nbformat.v4.new_markdown_cell("one"),
                nbformat.v4.new_code_cell("a = 1\nb = 2\n\nprint(a + b)"), nbformat.v4.new_code_cell("x")]
    path = tmp_path / "toy.ipynb"
    nbformat.write(nb, path)
    assert counts(path) == {"words": 6, "max_cell_words": 5, "max_code_lines": 4}


@pytest.mark.parametrize("stem", sorted(LIMITS))
def test_one_session_notebook_within_limits(stem):
    path = ROOT / "notebooks" / f"{stem}.ipynb"
    assert path.exists(), f"{path} is missing"
    words, cell_words, code_lines = LIMITS[stem]
    got = counts(path)
    assert got["words"] <= words, f"{stem}: {got['words']} words of markdown (at most {words})"
    assert got["max_cell_words"] <= cell_words, f"{stem}: a markdown cell of {got['max_cell_words']} words"
    assert got["max_code_lines"] <= code_lines, f"{stem}: a code cell of {got['max_code_lines']} lines"
