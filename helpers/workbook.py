"""Run the workbook headless: execute notebooks, export HTML, time each against its expectation.

Used by ``python -m helpers run`` (the README's first Quickstart command) and by the tests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Iterable

from .config import EXPECTED_MINUTES, MODES, ROOT, build_dir, get_mode

NOTEBOOK_DIR = ROOT / "notebooks"


def notebooks(include_solutions: bool = False) -> list[Path]:
    """The lesson notebooks ``notebooks/NN_topic.ipynb`` in order (and solution notebooks)."""
    found = sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if include_solutions:
        found += sorted((NOTEBOOK_DIR / "solutions").glob("*.ipynb"))
    return found


def find_notebook(name: str | Path) -> Path:
    """A notebook path from a path, a name (``04_fairness_constrained_training``) or its number (``04`` or ``4``)."""
    path = Path(name)
    if path.exists():
        return path
    stem = path.name.removesuffix(".ipynb")
    if stem.isdigit():  # "4" means 04
        stem = f"{int(stem):02d}"
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


class Interrupted(Exception):
    """The run was stopped by Ctrl-C (SIGINT) or SIGTERM; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _StopOnSignal:
    """While active, SIGINT/SIGTERM only set ``signum``; :func:`execute`, which runs the notebook client in a
    worker thread (so nbclient installs no handlers of its own), then stops the kernel's whole process group
    and ends the notebook as ``"interrupted"``. A second signal kills the kernel without waiting.
    """

    def __init__(self):
        self.signum: int | None = None
        self.count = 0
        self._old: dict[int, object] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False

    def _handle(self, signum, frame):  # noqa: ARG002 - the signal-handler signature
        self.signum = self.signum or signum
        self.count += 1
        if self.count == 1:
            print(f"\n{signal.Signals(signum).name}: stopping the run ...", flush=True)


def _execute_stoppable(client, stop: _StopOnSignal) -> None:
    """``client.execute()`` in a worker thread; on a signal, terminate the kernel's process group (it leads its
    own session, as jupyter_client starts it) and, on a second signal, kill it."""
    failure: list[BaseException] = []

    def work():
        try:
            client.execute()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            failure.append(exc)

    worker = threading.Thread(target=work, name="notebook-client", daemon=True)
    worker.start()
    sent = 0
    while worker.is_alive():
        worker.join(0.2)
        pid = _kernel_pid(client)
        if stop.count > sent and pid is not None:
            logging.getLogger("traitlets").setLevel(logging.CRITICAL)  # no "Kernel died" log lines
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM if sent == 0 else signal.SIGKILL)
            client._workbook_stopped = True
            sent = stop.count
    if failure:
        raise failure[0]


def _kernel_was_stopped(client) -> bool:
    return bool(getattr(client, "_workbook_stopped", False))


def _kernel_pid(client) -> int | None:
    km = getattr(client, "km", None)
    provisioner = getattr(km, "provisioner", None)
    pid = getattr(provisioner, "pid", None)
    return pid if isinstance(pid, int) and pid > 0 else None


def execute(path: str | Path, *, mode: str | None = None, out_dir: str | Path | None = None,
            timeout: int = 1800, save: bool = True, html: bool = True,
            _stop: _StopOnSignal | None = None) -> tuple["nbformat.NotebookNode", float]:  # noqa: F821
    """Execute one notebook in its own folder with ``WORKBOOK_MODE=mode``; return (notebook, seconds).

    With ``save`` the executed notebook goes to ``build/<mode>/notebooks/`` and (``html``) an HTML export
    to ``build/<mode>/html/``. Raises ``nbclient.exceptions.CellExecutionError`` on the first failing cell,
    and :class:`Interrupted` (after saving what ran, marked ``"interrupted"``) when stopped by a signal.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    mode = get_mode(mode)
    build = Path(out_dir) if out_dir else build_dir(mode)
    nb = nbformat.read(path, as_version=4)
    # A last, hidden cell reports the kernel's peak memory (removed again before saving).
    probe = nbformat.v4.new_code_cell(_PEAK_RSS_PROBE)
    nb.cells.append(probe)
    env_backup = {k: os.environ.get(k) for k in ("WORKBOOK_MODE", "WORKBOOK_BUILD_DIR")}
    os.environ["WORKBOOK_MODE"] = mode
    os.environ["WORKBOOK_BUILD_DIR"] = str(build.resolve())
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    status, seconds, t0 = "ok", float("nan"), time.perf_counter()
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no kernel start-up chatter
                                resources={"metadata": {"path": str(path.parent)}})
        if _stop is None:
            client.execute()
        else:
            _execute_stoppable(client, _stop)
        if _stop is not None and _stop.signum is not None and _kernel_was_stopped(client):
            status = "interrupted"
        seconds = time.perf_counter() - t0
    except Exception:  # DeadKernelError after the kernel was stopped by a signal
        if _stop is None or _stop.signum is None:
            raise
        status = "interrupted"
    finally:
        nb.cells.remove(probe)
        for k, v in env_backup.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    nb.metadata["workbook"] = {"mode": mode, "seconds": round(seconds, 1), "peak_rss_mb": _peak_mb(probe),
                               "status": status}
    if save:
        (build / "notebooks").mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, build / "notebooks" / path.name)
        if html and status == "ok":
            export_html(nb, build / "html" / path.with_suffix(".html").name)
    if status == "interrupted":
        raise Interrupted(_stop.signum)
    return nb, seconds


def export_html(nb, target: Path) -> Path | None:
    """Write an HTML export of an executed notebook (``None`` where nbconvert is not installed)."""
    try:
        from nbconvert import HTMLExporter
    except ImportError:  # a minimal environment (e.g. a GPU box without Jupyter): notebooks only
        print(f"  (nbconvert is not installed: no HTML export of {target.stem})", flush=True)
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    body, _ = HTMLExporter().from_notebook_node(nb)
    target.write_text(body, encoding="utf-8")
    return target


def run_all(paths: Iterable[str | Path] | None = None, *, mode: str | None = None) -> int:
    """Execute notebooks in order, print measured vs expected minutes, record timings.

    Returns 0 if all ran, 1 if any failed, and 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)
    when stopped by a signal: the running notebook's kernel is shut down, the notebook is saved as far as it
    ran (marked ``"interrupted"``) and the remaining notebooks are skipped.
    """
    from .results import record

    mode = get_mode(mode)
    paths = [find_notebook(p) for p in paths] if paths else notebooks()
    build = build_dir(mode)
    results = build / "results.json"
    failures = 0
    print(f"Running {len(paths)} notebook(s) in {mode} mode; outputs go to {build}/ (Ctrl-C stops the run)")
    print(f"{'notebook':42s} {'measured':>9s} {'expected':>9s}  status", flush=True)
    with _StopOnSignal() as stop:
        for p in paths:
            name = p.stem
            expected = EXPECTED_MINUTES.get(name, (float("nan"),) * 3)[MODES.index(mode)]
            t0 = time.perf_counter()
            try:
                nb, seconds = execute(p, mode=mode, out_dir=build, _stop=stop)
                peak = nb.metadata["workbook"]["peak_rss_mb"]
                status = f"ok, peak memory {peak:.0f} MB" if peak else "ok"
                record("_timing", f"{name}.{mode}.seconds", round(seconds, 1), path=results)
                record("_timing", f"{name}.{mode}.peak_rss_mb", peak, path=results)
            except Interrupted as exc:
                minutes = (time.perf_counter() - t0) / 60
                print(f"{name:42s} {minutes:8.2f}m {expected:8.1f}m  interrupted ({exc}); kernel shut down, "
                      f"partial notebook in {build / 'notebooks'}", flush=True)
                print(f"Stopped: {len(paths) - paths.index(p) - 1} notebook(s) not run.")
                return 128 + exc.signum
            except Exception as exc:  # noqa: BLE001 - report every notebook, then fail
                last = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else ""
                seconds, status = float("nan"), f"FAILED: {type(exc).__name__}: {last}"
                failures += 1
            print(f"{name:42s} {seconds / 60:8.2f}m {expected:8.1f}m  {status}", flush=True)
            if stop.signum is not None:  # the signal came between two notebooks
                print(f"Stopped ({signal.Signals(stop.signum).name}): {len(paths) - paths.index(p) - 1} "
                      "notebook(s) not run.")
                return 128 + stop.signum
    print(f"Executed notebooks: {build / 'notebooks'}; HTML: {build / 'html'}; figures: {results}")
    return 1 if failures else 0
