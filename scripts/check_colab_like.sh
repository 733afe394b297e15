#!/usr/bin/env bash
# Does the workbook work on Colab's own packages? In a fresh virtual environment under /tmp, install a Colab-like
# set (the versions of its preinstalled packages below: its torch and transformers, numpy 2.0, pandas 2.2,
# scikit-learn, matplotlib, ipywidgets 7, ipykernel 6 with IPython 7 and its Jupyter stack), then run what the
# notebooks' setup cell runs on Colab (`python -m helpers install --colab`) and check that it installed only what
# was missing and left every preinstalled version alone; then notebook 02 in smoke mode (pandas 2.2 with category
# columns) and the smoke tests.
#   scripts/check_colab_like.sh                                 # notebook 02 + every test
#   scripts/check_colab_like.sh tests/test_privacy.py -x        # notebook 02 + only these (arguments go to pytest)
# COLAB_SET=file replaces the list below (one requirement a line, e.g. `pip list --format=freeze` from a Colab
# runtime, trimmed to the packages requirements.txt names plus the Jupyter stack). PY chooses the interpreter
# (Colab runs Python 3.12). The environment is removed at the end unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
VENV=${VENV:-$(mktemp -d /tmp/workbook-colab.XXXXXX)}
trap '[ "${KEEP:-0}" = 1 ] || rm -rf "$VENV"' EXIT
# Colab's preinstalled versions (late 2025 runtime); PyPI's torch is the CUDA build, like Colab's.
DEFAULT_SET="torch==2.9.0 transformers==4.57.1 tokenizers==0.22.1 safetensors==0.6.2 sentence-transformers==5.1.2
peft==0.17.1 tensorboard==2.19.0 shap==0.50.0 scikit-learn==1.6.1 imbalanced-learn==0.14.0 scipy==1.16.3
pandas==2.2.2 numpy==2.0.2 matplotlib==3.10.0 tqdm==4.67.1 ipywidgets==7.7.1 ipykernel==6.17.1 ipython==7.34.0
jupyter-client==7.4.9 jupyter-server==2.14.0 tornado==6.5.1 notebook==6.5.7 nbformat==5.10.4 nbconvert==7.16.6
nbclient==0.10.2 pytest==8.4.2"
mkdir -p "$VENV"
SET="$VENV/colab_set.txt"
if [ -n "${COLAB_SET:-}" ]; then cp "$COLAB_SET" "$SET"; else echo "$DEFAULT_SET" | tr ' ' '\n' | sed '/^$/d' > "$SET"; fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
echo "Colab-like preinstalled set:"; sed 's/^/  /' "$SET"
"$VENV/bin/python" -m pip install -q -r "$SET"
"$VENV/bin/python" -m pip freeze > "$VENV/before.txt"
echo "== python -m helpers install --colab (what the setup cell runs on Colab)"
"$VENV/bin/python" -m helpers install --colab
"$VENV/bin/python" -m pip freeze > "$VENV/after.txt"
echo "== versions the setup cell changed or added:"
diff "$VENV/before.txt" "$VENV/after.txt" | sed -n 's/^[<>] /  /p' || true
"$VENV/bin/python" - "$SET" "$VENV/before.txt" "$VENV/after.txt" <<'PYEOF'
import re, sys
def versions(path):
    out = {}
    for line in open(path):
        m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out
preinstalled, before, after = (versions(p) for p in sys.argv[1:])
changed = [f"{n} {before.get(n)} -> {after.get(n)}" for n in preinstalled if before.get(n) != after.get(n)]
added = sorted(set(after) - set(before))
print(f"setup cell added {len(added)} packages; preinstalled packages changed: {', '.join(changed) or 'none'}")
sys.exit(1 if changed else 0)
PYEOF
du -sh "$VENV"
export WORKBOOK_MODE=smoke HF_HUB_OFFLINE=1 MPLBACKEND=Agg WORKBOOK_BUILD_DIR="$VENV/build"
echo "== notebook 02 in smoke mode on pandas $("$VENV/bin/python" -c 'import pandas; print(pandas.__version__)')"
"$VENV/bin/python" -m helpers run --mode smoke 02
echo "== smoke tests"
"$VENV/bin/python" -m pytest -q "${@:-tests}"
echo "Colab-like set passes."
