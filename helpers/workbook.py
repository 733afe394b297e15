"""Run the workbook headless: execute notebooks, export HTML, time each against its expectation.

Used by ``python -m helpers run`` (the README's first Quickstart command) and by the tests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import threading
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
    env_backup = _set_run_env(mode, build)
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no kernel start-up chatter
                                resources={"metadata": {"path": str(path.parent)}})
        status, seconds = _run_client(client, _stop)
    finally:
        nb.cells.remove(probe)
        _restore_env(env_backup)
    nb.metadata["workbook"] = {"mode": mode, "seconds": round(seconds, 1), "peak_rss_mb": _peak_mb(probe),
                               "status": status}
    if save:
        _save_executed(nb, build, path, html=html and status == "ok")
    if status == "interrupted":
        raise Interrupted(_stop.signum)
    return nb, seconds


def _run_client(client, stop: "_StopOnSignal | None") -> tuple[str, float]:
    """Execute the client's notebook: ``("ok" | "interrupted", seconds)`` (NaN seconds when the kernel died on a
    stop signal); any other failure is raised."""
    t0 = time.perf_counter()
    stoppable = stop is not None
    try:
        _execute_stoppable(client, stop) if stoppable else client.execute()
        stopped = stoppable and stop.signum is not None and _kernel_was_stopped(client)
        return ("interrupted" if stopped else "ok"), time.perf_counter() - t0
    except Exception:  # DeadKernelError after the kernel was stopped by a signal
        if not stoppable or stop.signum is None:
            raise
        return "interrupted", float("nan")


def _set_run_env(mode: str, build: Path) -> dict[str, str | None]:
    """Point ``WORKBOOK_MODE`` and ``WORKBOOK_BUILD_DIR`` at this run (the kernel inherits them); returns the old values."""
    backup = {k: os.environ.get(k) for k in ("WORKBOOK_MODE", "WORKBOOK_BUILD_DIR")}
    os.environ["WORKBOOK_MODE"] = mode
    os.environ["WORKBOOK_BUILD_DIR"] = str(build.resolve())
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return backup


def _restore_env(backup: dict[str, str | None]) -> None:
    for k, v in backup.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _save_executed(nb, build: Path, path: Path, *, html: bool) -> None:
    """The executed notebook to ``build/notebooks/`` and, with ``html``, its HTML export to ``build/html/``."""
    import nbformat

    (build / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, build / "notebooks" / path.name)
    if html:
        export_html(nb, build / "html" / path.with_suffix(".html").name)


#: MathJax 2 as the Jupyter project ships it on PyPI (jupyter-server-mathjax): copied beside the HTML exports so
#: their maths renders without a network.
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
#: That package ships only MathJax's STIX-Web fonts, not its default TeX fonts, without which maths falls back to
#: system fonts (a calligraphic L shows as a plain L): set before MathJax.js loads, as the classic notebook did.
MATHJAX_FONTS = ('<script>window.MathJax = {"HTML-CSS": {availableFonts: [], preferredFont: null, '
                 'webFont: "STIX-Web", imageFont: null}, SVG: {font: "STIX-Web"}};</script>\n')
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def export_html(nb, target: Path) -> Path | None:
    """Write an HTML export of an executed notebook that renders offline; ``None`` without nbconvert.

    Maths: MathJax from the pip package ``jupyter-server-mathjax``, copied to ``mathjax/`` beside the file and set
    to the STIX-Web fonts that package ships (without the package, nbconvert's CDN link). Widgets: each widget
    output becomes a static snapshot of its last state (text of its controls, its HTML, its output area), as the
    widget renderer needs a CDN.
    """
    import copy

    try:
        from nbconvert import HTMLExporter
    except ImportError:  # a minimal environment (e.g. a GPU box without Jupyter): notebooks only
        print(f"  (nbconvert is not installed: no HTML export of {target.stem})", flush=True)
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter()
    local = _local_mathjax(target.parent)
    if local:
        exporter.mathjax_url = f"{local}?config={MATHJAX_CONFIG}"
    nb = copy.deepcopy(nb)
    state = nb.metadata.pop("widgets", {}).get(_WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(_WIDGET_VIEW)
            if view:
                del out["data"][_WIDGET_VIEW]
                snapshot = _widget_html(state, view.get("model_id"))
                if snapshot:
                    out["data"]["text/html"] = ("<div style='border:1px dashed #aaa;padding:4px'>"
                                                "<div style='font-size:11px;color:#777'>interactive widget: a "
                                                "snapshot of its last state (open the notebook in Jupyter to use "
                                                f"it)</div>{snapshot}</div>")
    body, _ = exporter.from_notebook_node(nb)
    # require.js only serves the widget renderer, which the snapshots replace: no request to a CDN
    body = body.replace(f'<script src="{exporter.require_js_url}"></script>', "")
    if local:
        body = body.replace(f'<script src="{local}', f'{MATHJAX_FONTS}<script src="{local}', 1)
    target.write_text(body, encoding="utf-8")
    return target


def _local_mathjax(html_dir: Path) -> str | None:
    """Copy jupyter-server-mathjax's MathJax into ``html_dir/mathjax`` (once); its relative URL, or ``None``."""
    import shutil

    try:
        import jupyter_server_mathjax
    except ImportError:
        return None
    dest = html_dir / "mathjax"
    if not (dest / "MathJax.js").exists():
        shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", dest, dirs_exist_ok=True)
    return "mathjax/MathJax.js"


def _widget_html(state: dict, model_id: str | None, depth: int = 0) -> str:
    """Static HTML for one widget from the notebook's saved widget state (boxes, controls, HTML, output areas)."""
    model = state.get(model_id or "", {})
    name, st = model.get("model_name", ""), model.get("state", {})
    if not model or depth > 20:
        return ""
    children = [c.removeprefix("IPY_MODEL_") for c in st.get("children", [])]
    if children:
        flex = "row" if name == "HBoxModel" else "column"
        inner = "".join(_widget_html(state, c, depth + 1) for c in children)
        return f"<div style='display:flex;flex-direction:{flex};gap:12px;flex-wrap:wrap'>{inner}</div>"
    return _leaf_html(name, st)


def _leaf_html(name: str, st: dict) -> str:
    """Static HTML for a widget without children: HTML, output area, checkbox, selection or a valued control."""
    import html

    label = html.escape(str(st.get("description", "")))
    if name == "HTMLModel":
        return f"<div>{st.get('value', '')}</div>"
    if name == "OutputModel":
        return "".join(_output_html(o) for o in st.get("outputs", []))
    if name == "CheckboxModel":
        return f"<span>{'☑' if st.get('value') else '☐'} {label}</span>"
    if "index" in st and "_options_labels" in st:  # Dropdown and other selections
        return f"<span>{label}: {html.escape(_selected(st['_options_labels'], st.get('index')))}</span>"
    if "value" in st:
        value = st["value"]
        return f"<span>{label} = {html.escape(f'{value:.3g}' if isinstance(value, float) else str(value))}</span>"
    return ""


def _selected(options: list, i: int | None) -> str:
    return str(options[i]) if i is not None and i < len(options) else ""


def _output_html(out: dict) -> str:
    import html

    if out.get("output_type") == "stream":
        return f"<pre>{html.escape(out.get('text', ''))}</pre>"
    data = out.get("data", {})
    if "image/png" in data:
        return f"<img src='data:image/png;base64,{data['image/png']}'/>"
    if "text/html" in data:
        return data["text/html"]
    return f"<pre>{html.escape(data.get('text/plain', ''))}</pre>"


#: A cpu-mode notebook over these is reported, and fails an enforced run (``$WORKBOOK_ENFORCE_CLAIMS``, as CI sets):
#: peak memory (a margin under Binder's 2 GB) and measured time as a multiple of its ``EXPECTED_MINUTES``
#: (a shared CI machine is noisy; the 5-minute goal itself is read from the run table, not enforced).
CPU_PEAK_LIMIT_MB: float = 1800.0
CPU_TIME_FACTOR: float = 2.0


def over_budget(name: str, mode: str, seconds: float, peak_mb: float | None) -> list[str]:
    """Why a notebook's run breaks the cpu-mode budget (empty list: within it; other modes have none)."""
    if mode != "cpu":
        return []
    problems = []
    if peak_mb is not None and peak_mb > CPU_PEAK_LIMIT_MB:
        problems.append(f"peak memory {peak_mb:.0f} MB > {CPU_PEAK_LIMIT_MB:.0f} MB")
    expected = EXPECTED_MINUTES.get(name, (float("nan"),) * 3)[MODES.index(mode)]
    if seconds / 60 > CPU_TIME_FACTOR * expected:  # False for an unknown notebook (NaN)
        problems.append(f"{seconds / 60:.1f} min > {CPU_TIME_FACTOR:g} x the expected {expected:g} min")
    return problems


def _minutes(expected: float) -> str:
    """The expected-minutes column: ``-`` for a notebook without a budget (not ``nan``)."""
    return f"{expected:8.1f}m" if expected == expected else f"{'-':>9s}"


def run_all(paths: Iterable[str | Path] | None = None, *, mode: str | None = None) -> int:
    """Execute notebooks in order, print measured vs expected minutes, record timings.

    Returns 0 if all ran, 1 if any failed, and 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)
    when stopped by a signal: the running notebook's kernel is shut down, the notebook is saved as far as it
    ran (marked ``"interrupted"``) and the remaining notebooks are skipped. With ``$WORKBOOK_ENFORCE_CLAIMS`` set,
    a failed claim, or a cpu-mode notebook over :func:`over_budget`'s limits, also fails the run.
    """
    mode = get_mode(mode)
    paths = [find_notebook(p) for p in paths] if paths else notebooks()
    build = build_dir(mode)
    results = build / "results.json"
    failures = 0
    run_id = os.environ["WORKBOOK_RUN_ID"] = f"{mode}-{os.getpid()}-{time.time():.0f}"  # the kernels inherit it
    print(f"Running {len(paths)} notebook(s) in {mode} mode; outputs go to {build}/ (Ctrl-C stops the run)")
    print(f"{'notebook':42s} {'measured':>9s} {'expected':>9s}  status", flush=True)
    with _StopOnSignal() as stop:
        for p in paths:
            name = p.stem
            expected = EXPECTED_MINUTES.get(name, (float("nan"),) * 3)[MODES.index(mode)]
            t0 = time.perf_counter()
            try:
                seconds, status, failed = _run_one(p, mode, build, stop, results)
                failures += failed
            except Interrupted as exc:
                minutes = (time.perf_counter() - t0) / 60
                print(f"{name:42s} {minutes:8.2f}m {_minutes(expected)}  interrupted ({exc}); kernel shut down, "
                      f"partial notebook in {build / 'notebooks'}", flush=True)
                print(f"Stopped: {len(paths) - paths.index(p) - 1} notebook(s) not run.")
                return 128 + exc.signum
            except Exception as exc:  # noqa: BLE001 - report every notebook, then fail
                text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # the kernel's traceback comes with ANSI colours
                lines = [ln for ln in text.strip().splitlines() if any(ch.isalnum() for ch in ln)]
                # a timeout says what happened on its first line; an error in a cell on its last (the exception)
                last = (lines[0] if "Timeout" in type(exc).__name__ else lines[-1])[:200] if lines else ""
                seconds, status = time.perf_counter() - t0, f"FAILED: {type(exc).__name__}: {last}"
                failures += 1
            print(f"{name:42s} {seconds / 60:8.2f}m {_minutes(expected)}  {status}", flush=True)
            if stop.signum is not None:  # the signal came between two notebooks
                print(f"Stopped ({signal.Signals(stop.signum).name}): {len(paths) - paths.index(p) - 1} "
                      "notebook(s) not run.")
                return 128 + stop.signum
    print(f"Executed notebooks: {build / 'notebooks'}; HTML: {build / 'html'}; figures: {results}")
    claims_ok = _report_claims(run_id, results)  # also when a notebook failed: the claims it reached count
    return 1 if failures or not claims_ok else 0


def _run_one(p: Path, mode: str, build: Path, stop: "_StopOnSignal", results: Path) -> tuple[float, str, int]:
    """Execute one notebook of :func:`run_all` and record its time and peak memory: ``(seconds, status, failures)``,
    where an over-budget cpu run counts as a failure under ``$WORKBOOK_ENFORCE_CLAIMS``."""
    from .claims import enforced
    from .results import record

    name = p.stem
    nb, seconds = execute(p, mode=mode, out_dir=build, _stop=stop)
    peak = nb.metadata["workbook"]["peak_rss_mb"]
    status = f"ok, peak memory {peak:.0f} MB" if peak else "ok"
    problems = over_budget(name, mode, seconds, peak)
    failed = 0
    if problems:
        status += "; OVER BUDGET: " + "; ".join(problems)
        failed = int(enforced())
    record("_timing", f"{name}.{mode}.seconds", round(seconds, 1), path=results)
    record("_timing", f"{name}.{mode}.peak_rss_mb", peak, path=results)
    return seconds, status, failed


def _report_claims(run_id: str, results: Path) -> bool:
    """Print this run's claims table; False when a claim failed and ``$WORKBOOK_ENFORCE_CLAIMS`` is set."""
    from . import claims
    from .results import load_results

    recorded = load_results(results)
    print("\nClaims checked on this run's numbers (held / recorded):")
    print(claims.table(recorded, run=run_id))
    bad = claims.failed(recorded, run=run_id)
    for r in bad:
        print(f"  FAILED claim {r['notebook']}: {r['name']} (evidence: {r['evidence']})")
    if bad and claims.enforced():
        print(f"{len(bad)} claim(s) failed and WORKBOOK_ENFORCE_CLAIMS is set: the run fails.")
        return False
    return True
