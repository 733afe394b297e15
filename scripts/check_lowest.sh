#!/usr/bin/env bash
# Are requirements.txt's lower bounds true? Install every package at its lowest declared version (">=X" -> "==X")
# in a fresh virtual environment under /tmp (CPU build of torch) and run the tests in smoke mode there.
# Takes 10-30 minutes and ~2 GB of disk; the environment is removed at the end unless KEEP=1.
#   scripts/check_lowest.sh                 # all tests (every notebook in smoke mode)
#   scripts/check_lowest.sh tests/test_models.py -x   # only these (arguments go to pytest)
# PY chooses the interpreter (default python3; numpy 1.26, the lowest numpy, has wheels up to Python 3.12).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
VENV=${VENV:-$(mktemp -d /tmp/workbook-lowest.XXXXXX)}
LOWEST="$VENV/lowest.txt"
trap '[ "${KEEP:-0}" = 1 ] || rm -rf "$VENV"' EXIT
"$PY" -m venv "$VENV"
"$PY" - requirements.txt > "$LOWEST" <<'PYEOF'
import re, sys
for line in open(sys.argv[1]):
    spec = line.split("#")[0].strip()
    if not spec:
        continue
    name = re.split(r"[<>=!~ \[]", spec)[0]
    low = re.search(r"(?:>=|==)\s*([^,\s]+)", spec)
    print(f"{name}=={low.group(1)}" if low else name)
PYEOF
echo "Lowest declared versions:"; sed 's/^/  /' "$LOWEST"
"$VENV/bin/python" -m pip install -q --upgrade pip
TORCH=$(grep '^torch==' "$LOWEST")
# PyTorch's CPU index keeps the environment small; where it cannot be reached, PyPI's build (with CUDA libraries,
# a few GB more) runs the same tests on a CPU.
"$VENV/bin/python" -m pip install -q "$TORCH" --index-url https://download.pytorch.org/whl/cpu 2>/dev/null \
  || { echo "download.pytorch.org unreachable: $TORCH from PyPI (CUDA build)"; "$VENV/bin/python" -m pip install -q "$TORCH"; }
"$VENV/bin/python" -m pip install -q -r "$LOWEST"
"$VENV/bin/python" -m pip freeze > "$VENV/freeze.txt"
du -sh "$VENV"
WORKBOOK_MODE=smoke HF_HUB_OFFLINE=1 MPLBACKEND=Agg "$VENV/bin/python" -m pytest -q "${@:-tests}"
echo "Lowest declared versions pass."
