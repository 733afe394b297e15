#!/usr/bin/env bash
# What a student sees in JupyterLab: open each notebook in a headless Chromium, wait for the kernel, Run All, wait
# for every code cell, then move the first slider of each widget panel (does its output follow?), save, reload the
# page and look again. Reports error text in outputs ("Error displaying widget", tracebacks), maths typeset inside
# outputs (a "$" in a sentence read as TeX), replacement characters and browser console errors; saves a screenshot
# of every cell with output (.run), of each widget before/after the slider moves (.widget) and of any cell with a
# problem after the reload (.reload).
#   scripts/check_browser.sh [--mode smoke|cpu] [--out DIR] 05 06 ...   (notebook numbers or paths; default smoke)
# Runs copies (notebooks/browser_check_*.ipynb, removed at the end), so the notebooks themselves are never saved
# with outputs. Needs Debian's chromium and chromium-driver (installed with apt-get when missing) and selenium
# (installed into ~/.cache/nb-browser-venv when missing); JupyterLab runs on this repository's python3 ($PY).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}; mode=smoke; out=build/browser
while [ $# -gt 0 ]; do case "$1" in --mode) mode=$2; shift 2;; --out) out=$2; shift 2;; *) break;; esac; done
[ $# -gt 0 ] || { echo "usage: $0 [--mode smoke|cpu] [--out DIR] NN|notebooks/NN_x.ipynb ..."; exit 2; }
command -v chromium >/dev/null && command -v chromedriver >/dev/null || {
  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 || { echo "could not install chromium"; exit 1; }; }
V="$HOME/.cache/nb-browser-venv"
[ -x "$V/bin/python" ] && "$V/bin/python" -c "import selenium" 2>/dev/null || { python3 -m venv "$V" && "$V/bin/pip" install -q selenium; }
copies=()
for nb in "$@"; do
  case "$nb" in *.ipynb) src=$nb;; *) src=$(ls notebooks/"$nb"_*.ipynb | head -1);; esac
  copy=notebooks/browser_check_$(basename "$src"); cp "$src" "$copy"; copies+=("$(basename "$copy")")
done
mkdir -p "$out"; out=$(cd "$out" && pwd); settings=$(mktemp -d)
mkdir -p "$settings/@jupyterlab/apputils-extension" "$settings/@jupyterlab/notebook-extension"
echo '{"fetchNews": "false", "checkForUpdates": false}' > "$settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
echo '{"windowingMode": "none"}' > "$settings/@jupyterlab/notebook-extension/tracker.jupyterlab-settings"  # every cell in the page
port=$("$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
(cd notebooks && WORKBOOK_MODE=$mode exec "$PY" -m jupyter lab --allow-root --no-browser --port "$port" \
   --IdentityProvider.token=t --LabApp.user_settings_dir="$settings" >"$out/jupyter.log" 2>&1) & jpid=$!
trap 'kill $jpid 2>/dev/null || true; for c in "${copies[@]}"; do rm -f "notebooks/$c"; done; rm -rf "$settings"' EXIT
for _ in $(seq 90); do curl -s "http://127.0.0.1:$port/api?token=t" >/dev/null && break; sleep 1; done
"$V/bin/python" - "$port" "$out" "${copies[@]}" <<'PY'
import functools, pathlib, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
print = functools.partial(print, flush=True)
port, out, nbs = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3:]
o = webdriver.ChromeOptions(); o.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--window-size=1600,1000", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
    o.add_argument(a)
o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o); bad = 0
STATE = """const p=document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)'); if(!p) return null;
  const i=p.querySelector('.jp-Notebook-ExecutionIndicator');
  const pr=[...p.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(e=>e.textContent);
  return {status: i&&i.getAttribute('data-status'), busy: pr.some(t=>t.includes('*')),
          done: pr.filter(t=>/\\d/.test(t)).length, total: pr.length};"""
NEEDLES = ("Error displaying widget", "model not found", "Traceback", "Error:", "Loading widget", "\ufffd")

def menu(top, cmd):
    [e for e in d.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item") if e.text.strip() == top][0].click(); time.sleep(0.7)
    d.find_element(By.CSS_SELECTOR, f'.lm-Menu-item[data-command="{cmd}"]').click()

def cells():
    return d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")

def text(cell):
    return " ".join(x.text for x in cell.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output"))

def scan(name, tag):
    problems = []
    for k, c in enumerate(cells()):
        if not c.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output"):
            continue
        d.execute_script("arguments[0].scrollIntoView({block:'start'})", c); time.sleep(0.3)
        txt = text(c); hit = [f"{n!r}: {txt[txt.find(n):][:160]!r}" for n in NEEDLES if n in txt]
        maths = c.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output mjx-container")
        if maths:
            hit.append("maths in an output (intended?): " + " | ".join(m.text for m in maths[:3])[:120])
        if tag == "run" or hit:
            try: c.screenshot(str(out / f"{name}.{tag}.cell{k:02d}.png"))
            except Exception: pass
        problems += [f"cell {k}: {h}" for h in hit]
    console = [entry["message"][:200] for entry in d.get_log("browser")
               if entry["level"] == "SEVERE" and "badge" not in entry["message"]]
    return problems + console

def sliders(name):
    for k, c in enumerate(cells()):
        handles = c.find_elements(By.CSS_SELECTOR, ".jupyter-widgets .noUi-handle")
        if not handles:
            continue
        d.execute_script("arguments[0].scrollIntoView({block:'start'})", c); time.sleep(0.5)
        before = text(c); c.screenshot(str(out / f"{name}.widget.cell{k:02d}.before.png"))
        handles[0].click(); time.sleep(0.3)
        for _ in range(2):
            handles[0].send_keys(Keys.ARROW_RIGHT); time.sleep(0.3)
        t0 = time.time()
        while time.time() - t0 < 60 and text(c) == before:
            time.sleep(1)
        time.sleep(3); c.screenshot(str(out / f"{name}.widget.cell{k:02d}.after.png"))
        changed = text(c) != before
        print(f"   widget in cell {k}: its output {'follows' if changed else 'did NOT follow'} the first slider")
        yield not changed

try:
    for nb in nbs:
        name = pathlib.Path(nb).stem.removeprefix("browser_check_"); t0 = time.time()
        d.get(f"http://127.0.0.1:{port}/lab/tree/{nb}?reset&token=t")
        while time.time() - t0 < 180:  # the kernel must be idle before Run All, or Run All runs nothing
            st = d.execute_script(STATE)
            if st and st["status"] == "idle":
                break
            time.sleep(2)
        time.sleep(2); menu("Run", "runmenu:run-all"); t1 = time.time(); quiet = 0; seen_busy = False
        while time.time() - t1 < 1800:
            time.sleep(3); st = d.execute_script(STATE)
            seen_busy = seen_busy or st["busy"] or st["status"] == "busy"
            if seen_busy and st["done"] == st["total"] and not st["busy"]:
                break
            quiet = quiet + 1 if seen_busy and not st["busy"] and st["status"] == "idle" else 0
            if quiet >= 20:  # idle with cells left: a cell failed and Run All stopped
                break
        problems = scan(name, "run")
        print(f"{name}: Run All {time.time() - t1:.0f} s, {st['done']}/{st['total']} code cells ran; "
              f"problems {len(problems)}")
        for p in problems: print("   ", p)
        stale = sum(sliders(name))
        menu("File", "docmanager:save"); time.sleep(5)
        try:
            d.refresh()
        except Exception:  # a "leave page?" dialog
            try: d.switch_to.alert.accept()
            except Exception: pass
        time.sleep(20)
        after = scan(name, "reload")
        print(f"{name} after a page reload: problems {len(after)}")
        for p in after: print("   ", p)
        bad += len(problems) + len(after) + stale + (st["done"] != st["total"])
finally:
    d.quit()
print(f"screenshots in {out}/"); sys.exit(1 if bad else 0)
PY
