"""Execute every notebook top to bottom in smoke mode (in lesson order, sharing one build folder)."""

from __future__ import annotations

import re

import pytest

from helpers.results import load_results
from helpers.workbook import execute, notebooks

NOTEBOOKS = notebooks()
WARNING = re.compile(r"(Warning|WARNING|Traceback)")


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path, _private_build_dir):
    nb, seconds = execute(path, mode="smoke", out_dir=_private_build_dir, html=True)
    stderr = [o.text for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "stream" and o.name == "stderr"]
    noisy = [s for s in stderr if WARNING.search(s)]
    assert not noisy, f"{path.name} prints warnings:\n" + "\n---\n".join(noisy)[:3000]
    assert (_private_build_dir / "html" / f"{path.stem}.html").exists()
    assert path.stem in load_results(), f"{path.name} recorded no figures in results.json"
    print(f"{path.stem}: {seconds:.1f} s in smoke mode")
