"""Which of requirements.txt's packages are missing or outside their declared range (standard library at import).

Used by ``python -m helpers install --colab`` (install only those) and by every notebook's setup cell
(:func:`helpers.config.start` names the out-of-range ones before they fail somewhere less readable).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Left as Colab ships them: its Jupyter stack (upgrading ipykernel pulls jupyter-client and tornado, which Colab
#: warns can crash the runtime), its ipywidgets 7 (its renderer) and the tools only a headless run needs.
COLAB_KEEP = ("jupyterlab", "ipykernel", "ipywidgets", "nbclient", "nbconvert", "nbformat", "pytest")


def requirements_to_install(req: Path | None = None, *, skip: tuple[str, ...] = ()) -> list[str]:
    """Lines of requirements.txt whose package is not installed, or installed outside the declared range.

    Version ranges are checked with ``packaging`` where it is importable (it is on Colab); without it, any
    installed version counts as fine.
    """
    return [spec for spec, _, installed, ok in _check(req, skip) if installed is None or not ok]


def version_problems(req: Path | None = None, *, skip: tuple[str, ...] = ()) -> list[str]:
    """One line per installed package outside its declared range, naming it, its version and the range, e.g.
    ``pandas 1.5.3 (the workbook needs pandas>=2.0,<4)``. Missing packages are not listed (importing them fails
    with their name already)."""
    return [f"{name} {installed} (the workbook needs {spec})" for spec, name, installed, ok in _check(req, skip)
            if installed is not None and not ok]


def _check(req: Path | None, skip: tuple[str, ...]) -> list[tuple[str, str, str | None, bool]]:
    """(requirement, package, installed version or None, whether it is in range) per line of requirements.txt."""
    from importlib import metadata

    try:
        from packaging.specifiers import SpecifierSet
        from packaging.version import InvalidVersion, Version
    except ImportError:  # pragma: no cover - pip vendors it, but not importably
        SpecifierSet = None  # noqa: N806
    rows = []
    for line in (req or ROOT / "requirements.txt").read_text().splitlines():
        spec = line.split("#")[0].strip()
        if not spec:
            continue
        name = re.split(r"[<>=!~ \[]", spec)[0]
        if name.lower() in skip:
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            rows.append((spec, name, None, False))
            continue
        ok = True
        if SpecifierSet is not None:
            try:
                ok = SpecifierSet(spec[len(name):].strip()).contains(Version(installed), prereleases=True)
            except InvalidVersion:  # a local build with an odd version string: nothing to compare
                ok = True
        rows.append((spec, name, installed, ok))
    return rows
