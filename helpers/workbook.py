"""Run the workbook headless: execute notebooks, export HTML, time each against its expectation.

Used by ``python -m helpers run`` (the README's first Quickstart command) and by the tests.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable

from .config import EXPECTED_MINUTES, MODES, ROOT, build_dir, get_mode

NOTEBOOK_DIR = ROOT / "notebooks"


def notebooks(include_solutions: bool = False) -> list[Path]:
    """The lesson notebooks ``notebooks/NN_topic.ipynb`` and optional ones ``NNb_topic.ipynb`` in order (and solution
    notebooks); ``04b`` sorts after ``04``."""
    found = sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]*_*.ipynb") if p.stem.split("_")[0][:2].isdigit())
    if include_solutions:
        found += sorted((NOTEBOOK_DIR / "solutions").glob("*.ipynb"))
    return found


def find_notebook(name: str | Path) -> Path:
    """A notebook path from a path, a name (``04_fairness_constrained_training``) or its number (``04``)."""
    path = Path(name)
    if path.exists():
        return path
    stem = path.name.removesuffix(".ipynb")
    matches = [p for p in notebooks(include_solutions=True) if p.stem == stem or p.stem.split("_")[0] == stem]
    if len(matches) != 1:
        names = ", ".join(p.stem for p in notebooks())
        raise ValueError(f"No single notebook called {str(name)!r} ({len(matches)} match); use a path, a name or a "
                         f"number of: {names}.")
    return matches[0]


_PEAK_RSS_PROBE = """
import resource, sys
_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("PEAK_RSS_MB", round(_kb / (1024 * 1024 if sys.platform == "darwin" else 1024)))
"""


def _peak_mb(cell) -> float | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and "PEAK_RSS_MB" in out.get("text", ""):
            return float(out["text"].split("PEAK_RSS_MB")[1].split()[0])
    return None


def execute(path: str | Path, *, mode: str | None = None, out_dir: str | Path | None = None,
            timeout: int = 1800, save: bool = True, html: bool = True) -> tuple["nbformat.NotebookNode", float]:  # noqa: F821
    """Execute one notebook in its own folder with ``WORKBOOK_MODE=mode``; return (notebook, seconds).

    With ``save`` the executed notebook goes to ``build/notebooks/`` and (``html``) an HTML export
    to ``build/html/``. Raises ``nbclient.exceptions.CellExecutionError`` on the first failing cell.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    mode = get_mode(mode)
    build = Path(out_dir) if out_dir else build_dir()
    nb = nbformat.read(path, as_version=4)
    # A last, hidden cell reports the kernel's peak memory (removed again before saving).
    probe = nbformat.v4.new_code_cell(_PEAK_RSS_PROBE)
    nb.cells.append(probe)
    env_backup = {k: os.environ.get(k) for k in ("WORKBOOK_MODE", "WORKBOOK_BUILD_DIR")}
    os.environ["WORKBOOK_MODE"] = mode
    os.environ["WORKBOOK_BUILD_DIR"] = str(build.resolve())
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no kernel start-up chatter
                                resources={"metadata": {"path": str(path.parent)}})
        t0 = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - t0
    finally:
        nb.cells.remove(probe)
        for k, v in env_backup.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    nb.metadata["workbook"] = {"mode": mode, "seconds": round(seconds, 1), "peak_rss_mb": _peak_mb(probe)}
    if save:
        (build / "notebooks").mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, build / "notebooks" / path.name)
        if html:
            try:
                from nbconvert import HTMLExporter
            except ImportError:  # a minimal environment (e.g. a GPU box without Jupyter): notebooks only
                print(f"  (nbconvert is not installed: no HTML export of {path.name})", flush=True)
            else:
                (build / "html").mkdir(parents=True, exist_ok=True)
                body, _ = HTMLExporter().from_notebook_node(nb)
                (build / "html" / path.with_suffix(".html").name).write_text(body, encoding="utf-8")
    return nb, seconds


def run_all(paths: Iterable[str | Path] | None = None, *, mode: str | None = None) -> int:
    """Execute notebooks in order, print measured vs expected minutes, record timings; 0 if all ran."""
    from .results import record

    mode = get_mode(mode)
    paths = [find_notebook(p) for p in paths] if paths else notebooks()
    failures = 0
    run_id = os.environ["WORKBOOK_RUN_ID"] = f"{mode}-{os.getpid()}-{time.time():.0f}"  # the kernels inherit it
    print(f"Running {len(paths)} notebook(s) in {mode} mode; outputs go to {build_dir()}/")
    print(f"{'notebook':42s} {'measured':>9s} {'expected':>9s}  status")
    for p in paths:
        name = p.stem
        expected = EXPECTED_MINUTES.get(name, (float("nan"),) * 3)[MODES.index(mode)]
        try:
            nb, seconds = execute(p, mode=mode)
            peak = nb.metadata["workbook"]["peak_rss_mb"]
            status = f"ok, peak memory {peak:.0f} MB" if peak else "ok"
            record("_timing", f"{name}.{mode}.seconds", round(seconds, 1))
            record("_timing", f"{name}.{mode}.peak_rss_mb", peak)
        except Exception as exc:  # noqa: BLE001 - report every notebook, then fail
            seconds, status = float("nan"), f"FAILED: {type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else ''}"
            failures += 1
        print(f"{name:42s} {seconds / 60:8.2f}m {expected:8.1f}m  {status}", flush=True)
    print(f"Executed notebooks: {build_dir() / 'notebooks'}; HTML: {build_dir() / 'html'}; figures: {build_dir() / 'results.json'}")
    return 1 if failures or not _report_claims(run_id) else 0


def _report_claims(run_id: str) -> bool:
    """Print this run's claims table; False when a claim failed and ``$WORKBOOK_ENFORCE_CLAIMS`` is set."""
    from . import claims

    print("\nClaims checked on this run's numbers (held / recorded):")
    print(claims.table(run=run_id))
    bad = claims.failed(run=run_id)
    for r in bad:
        print(f"  FAILED claim {r['notebook']}: {r['name']} (evidence: {r['evidence']})")
    if bad and claims.enforced():
        print(f"{len(bad)} claim(s) failed and WORKBOOK_ENFORCE_CLAIMS is set: the run fails.")
        return False
    return True
