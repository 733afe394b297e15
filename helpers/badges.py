"""Keep the Colab/Binder badges and the notebooks' setup cells pointing at one repository.

``helpers.config.REPOSITORY`` (and ``BRANCH``) is the one place to set the repository; run
``python -m helpers badges`` after changing it. ``python -m helpers strip`` removes outputs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from .config import BRANCH, REPOSITORY, ROOT

_COLAB = re.compile(r"https://colab\.research\.google\.com/github/[^/\s)]+/[^/\s)]+/blob/[^/\s)]+/")
_BINDER = re.compile(r"https://mybinder\.org/v2/gh/[^/\s)]+/[^/\s)]+/[^/?\s)]+")
_SETUP = re.compile(r'REPOSITORY = "[^"]*"')


def colab_url(notebook: str) -> str:
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/notebooks/{notebook}"


def binder_url(notebook: str | None = None) -> str:
    base = f"https://mybinder.org/v2/gh/{REPOSITORY}/{BRANCH}"
    return base + (f"?labpath=notebooks%2F{notebook}" if notebook else "")


def _rewrite_text(text: str) -> str:
    text = _COLAB.sub(f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/", text)
    text = _BINDER.sub(f"https://mybinder.org/v2/gh/{REPOSITORY}/{BRANCH}", text)
    return _SETUP.sub(f'REPOSITORY = "{REPOSITORY}"', text)


def targets() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "notebooks").glob("*.ipynb"))]


def rewrite() -> int:
    """Rewrite every badge URL and setup-cell REPOSITORY from config; print what changed."""
    changed = 0
    for path in targets():
        old = path.read_text(encoding="utf-8")
        new = _rewrite_text(old)
        if new != old:
            path.write_text(new, encoding="utf-8")
            changed += 1
            print(f"updated {path.relative_to(ROOT)}")
    print(f"{changed} file(s) updated for {REPOSITORY}@{BRANCH}")
    return 0


def stale() -> list[str]:
    """Files whose badges or setup cell name another repository (the tests assert this is empty)."""
    return [str(p.relative_to(ROOT)) for p in targets() if _rewrite_text(p.read_text(encoding="utf-8")) != p.read_text(encoding="utf-8")]


def strip(paths: Iterable[str | Path] | None = None) -> int:
    """Remove outputs, execution counts and run metadata from notebooks (they are committed clean)."""
    import nbformat

    files = [Path(p) for p in paths] if paths else sorted((ROOT / "notebooks").rglob("*.ipynb"))
    for path in files:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
            cell.metadata.pop("execution", None)
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, path)
    print(f"stripped {len(files)} notebook(s)")
    return 0
