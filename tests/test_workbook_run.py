"""The headless runner as a student meets it: Ctrl-C and SIGTERM stop the whole run cleanly; outputs per mode."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from helpers import config

ROOT = Path(__file__).resolve().parent.parent


def _sleepy_notebooks(folder: Path, pid_file: Path) -> list[Path]:
    first = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("print('first cell ran')"),
        nbformat.v4.new_code_cell(f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                                  "time.sleep(120)"),
        nbformat.v4.new_code_cell("print('never reached')")])
    second = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('second notebook')")])
    paths = [folder / "91_sleepy.ipynb", folder / "92_after.ipynb"]
    for nb, path in zip((first, second), paths):
        nbformat.write(nb, path)
    return paths


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_whole_run(tmp_path, signum):
    """SIGINT to the process group (Ctrl-C) or SIGTERM: exit 128 + signal, kernel gone, notebook marked, no traceback."""
    pid_file = tmp_path / "kernel.pid"
    paths = _sleepy_notebooks(tmp_path, pid_file)
    env = {**os.environ, "WORKBOOK_BUILD_DIR": str(tmp_path / "build"), "PYTHONPATH": str(ROOT)}
    code = f"import sys; from helpers.workbook import run_all; sys.exit(run_all({[str(p) for p in paths]!r}, mode='smoke'))"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert pid_file.exists(), "the kernel never reached the sleeping cell"
    kernel_pid = int(pid_file.read_text())
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    else:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, (out, err)
    assert "Traceback" not in err and "Traceback" not in out, err
    assert "interrupted" in out and "92_after" not in out, out
    saved = nbformat.read(tmp_path / "build" / "notebooks" / paths[0].name, as_version=4)
    assert saved.metadata["workbook"]["status"] == "interrupted"
    assert "first cell ran" in saved.cells[0].outputs[0]["text"]
    time.sleep(1)
    with pytest.raises(ProcessLookupError):
        os.kill(kernel_pid, 0)


def test_a_failing_notebook_is_reported_with_its_time_and_error(tmp_path, capsys, monkeypatch):
    from helpers.workbook import run_all

    path = tmp_path / "93_broken.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("raise ValueError('the column age is missing')")]), path)
    monkeypatch.setenv("WORKBOOK_BUILD_DIR", str(tmp_path / "build"))
    assert run_all([path], mode="smoke") == 1
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("93_broken"))
    assert "nan" not in line and re.search(r"\s\d+\.\d\dm\s", line), line  # elapsed minutes; no budget: "-"
    assert "FAILED: CellExecutionError" in line and "ValueError: the column age is missing" in line, line


def test_each_mode_has_its_own_build_folder(monkeypatch, tmp_path):
    """A smoke run writes build/smoke/, never over the cpu run's figures; WORKBOOK_BUILD_DIR still overrides."""
    from helpers.results import record, results_path

    monkeypatch.delenv("WORKBOOK_BUILD_DIR", raising=False)
    monkeypatch.setattr(config, "BUILD_DIR", tmp_path / "build")
    with config.mode("cpu"):
        record("03_x", "accuracy", 0.8)
        assert results_path() == tmp_path / "build" / "cpu" / "results.json"
    with config.mode("smoke"):
        record("03_x", "accuracy", 0.1)
    assert json.loads((tmp_path / "build" / "cpu" / "results.json").read_text())["03_x"]["accuracy"] == 0.8
    assert config.build_dir("gpu") == tmp_path / "build" / "gpu"
    monkeypatch.setenv("WORKBOOK_BUILD_DIR", str(tmp_path / "elsewhere"))
    assert config.build_dir("cpu") == tmp_path / "elsewhere"


def test_model_card_names_mode_and_seed(monkeypatch, tmp_path):
    from helpers.governance import model_card
    from helpers.results import load_results, record

    monkeypatch.setenv("WORKBOOK_BUILD_DIR", str(tmp_path))
    config.seed_everything(2)
    with config.mode("cpu"):
        record("03_finetuning_and_fairness_metrics", "frozen.accuracy", 0.8)
    card = model_card(load_results())
    assert "Run mode(s) of the recorded figures: `cpu`" in card
    assert "Seed(s) of the recorded figures: 2" in card


def test_cpu_torch_only_where_torch_is_missing_and_no_nvidia_gpu(monkeypatch):
    """Without torch and nvidia-smi on Linux: the CPU wheel index with requirements.txt's range; else no change."""
    import importlib.util

    import helpers.__main__ as cli

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(cli.sys, "platform", "linux")
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name: None if name == "torch" else real_find_spec(name))
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    cmd = cli.cpu_torch_command()
    assert cmd[-2:] == ["--index-url", "https://download.pytorch.org/whl/cpu"]
    torch_line = next(ln for ln in (ROOT / "requirements.txt").read_text().splitlines() if ln.startswith("torch"))
    assert cmd[-3] == torch_line.split("#")[0].replace(" ", "")
    monkeypatch.setattr(cli, "nvidia_gpu_present", lambda: True)
    assert cli.cpu_torch_command() is None  # a GPU machine gets PyPI's CUDA build
    monkeypatch.setattr(cli, "nvidia_gpu_present", lambda: False)
    monkeypatch.setattr(cli.importlib.util, "find_spec", real_find_spec)
    assert cli.cpu_torch_command() is None  # torch already there (Colab's own): kept


def test_readme_cpu_command_uses_the_declared_torch_range():
    import helpers.__main__ as cli

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f'pip install "{cli.torch_requirement()}" --index-url {cli.CPU_TORCH_INDEX}' in readme


def test_help_describes_modes_and_notebooks(capsys):
    import helpers.__main__ as cli

    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = capsys.readouterr().out
    assert all(m in text for m in ("smoke", "cpu", "gpu", "build/<mode>/", "04", "python3 -m helpers run 4"))


def test_colab_install_lists_only_missing_or_out_of_range(tmp_path):
    """Installed and in range: left alone; missing or out of range: installed; Colab's Jupyter stack: never."""
    import helpers.__main__ as cli

    req = tmp_path / "requirements.txt"
    req.write_text("numpy>=1.0,<99   # in range\nnumpy>=99\nno-such-package-xyz>=1.0\nipykernel>=99\n")
    assert cli.requirements_to_install(req, skip=cli.COLAB_KEEP) == ["numpy>=99", "no-such-package-xyz>=1.0"]


def test_html_export_renders_offline(tmp_path):
    """Maths from a local MathJax copy; a widget becomes a static snapshot of its last state, with no CDN script."""
    from nbclient import NotebookClient

    from helpers.workbook import export_html

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("The gap $\\max_a P(\\hat Y=1|A=a)$."),
        nbformat.v4.new_code_cell(
            "import ipywidgets as w\nfrom IPython.display import display\n"
            "s = w.FloatSlider(value=2.0, description='lam'); h = w.HTML('<b>accuracy 0.812</b>'); o = w.Output()\n"
            "o.append_stdout('retrained\\n')\ndisplay(w.VBox([s, h, o]))")])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    page = export_html(nb, tmp_path / "html" / "x.html").read_text()
    assert (tmp_path / "html" / "mathjax" / "MathJax.js").exists()
    assert 'src="mathjax/MathJax.js?config=' in page and '<script src="http' not in page
    # the fonts MathJax is told to use are in the local copy (its default TeX fonts are not: system-font fallback)
    fonts = re.search(r'window\.MathJax = .*webFont: "([\w-]+)"', page.split('src="mathjax/MathJax.js')[0])
    assert fonts, "no font configuration before MathJax loads"
    local = tmp_path / "html" / "mathjax"
    assert (local / "jax" / "output" / "HTML-CSS" / "fonts" / fonts.group(1) / "fontdata.js").exists()
    assert (local / "fonts" / "HTML-CSS" / fonts.group(1)).is_dir()
    assert "unpkg.com" not in page and "widget-view+json" not in page
    assert "lam = 2" in page and "<b>accuracy 0.812</b>" in page and "retrained" in page
