"""Widget controls a student touches: the λ slider follows the "use L2" box."""

import numpy as np

from helpers.widgets import regularization_explorer


def test_unticking_l2_disables_the_lambda_slider():
    X, y = np.zeros((4, 3), dtype=np.float32), np.array([0, 1, 0, 1])
    ex = regularization_explorer(X, y, X, y, l2=0.1, p=0.0)
    ex._busy = True  # change the controls without retraining
    assert not ex.l2_slider.disabled
    ex.l2_on.value = False
    assert ex.l2_slider.disabled
    ex.l2_on.value = True
    assert not ex.l2_slider.disabled
    assert regularization_explorer(X, y, X, y, l2=0.0).l2_slider.disabled


def test_closed_progress_bars_leave_text_not_widgets(tmp_path):
    """In a kernel, a finished bar's output is text (its final line, or nothing when not kept): no widget view
    that a reloaded notebook could not find."""
    import nbformat
    from nbclient import NotebookClient

    from helpers.config import ROOT

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from helpers.progress import tqdm\n"
        "for _ in tqdm(range(3), desc='kept', leave=True): pass\n"
        "for _ in tqdm(range(3), desc='dropped', leave=False): pass\n"
        "print('done')")])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), outputs
    texts = [o["data"]["text/plain"] for o in outputs if o.get("output_type") == "display_data"]
    assert len(texts) == 2 and texts[0].startswith("kept: 100%") and "3/3" in texts[0] and texts[1] == ""
