"""Plots for notebook 06 (LIME and SHAP): static renderings that show in JupyterLab, Colab and exported HTML.

Also reachable as ``helpers.plots.<name>``.
"""

from __future__ import annotations

from .plots import _ax


def plot_attribution_bars(attr, *, top: int = 12, ax=None, title: str | None = None):
    """LIME-style horizontal bars of the ``top`` words by |weight| (an :class:`helpers.explain.Attribution`).

    Orange bars push the explained class up, blue bars push it down.
    """
    import numpy as np

    ax = _ax(ax, figsize=(6.4, 0.28 * min(top, len(attr.tokens)) + 1.3))
    idx = np.argsort(-np.abs(attr.weights), kind="stable")[:top][::-1]
    w = attr.weights[idx]
    labels = [f"{attr.tokens[i]} (#{i})" for i in idx]
    ax.barh(range(len(idx)), w, color=["tab:orange" if v > 0 else "tab:blue" for v in w])
    ax.set_yticks(range(len(idx)), labels, fontsize=8)
    ax.axvline(0, c="k", lw=0.8)
    ax.set_xlabel(f"attribution to P({attr.label}) (probability units)")
    ax.set_ylabel("word (position)")
    ax.set_title(title or f"{attr.method}: P({attr.label}) = {attr.prediction:.3f}")
    return ax


def attribution_html(attr, *, max_abs: float | None = None) -> str:
    """The sentence as plain HTML, each word shaded by its weight (red = for, blue = against).

    Static HTML (no JavaScript), so it renders in JupyterLab, on Colab and in nbconvert's HTML,
    where shap's JavaScript text plot may come out blank. Show it with ``IPython.display.HTML``.
    """
    import html

    import numpy as np

    scale = max_abs or (float(np.abs(attr.weights).max()) or 1.0)
    spans = attr.spans or []
    pieces, last = [], 0
    for j, (tok, w) in enumerate(zip(attr.tokens, attr.weights)):
        a = min(1.0, abs(float(w)) / scale)
        color = f"rgba(255,13,87,{a:.2f})" if w > 0 else f"rgba(30,136,229,{a:.2f})"
        cell = (f'<span title="{float(w):+.4f}" style="background:{color};padding:1px 2px;border-radius:3px">'
                f"{html.escape(tok)}</span>")
        if spans:
            s, e = spans[j]
            pieces.append(html.escape(attr.text[last:s]))
            last = e
        else:
            pieces.append(" " if j else "")
        pieces.append(cell)
    if spans:
        pieces.append(html.escape(attr.text[last:]))
    head = (f"<div style='font-size:11px;color:#555'>{html.escape(attr.method)} - P({html.escape(attr.label)}) = "
            f"{attr.prediction:.3f}, base {attr.base_value:.3f}; red raises it, blue lowers it "
            f"(full colour = |weight| {scale:.3g})</div>")
    # tex2jax_ignore: MathJax (JupyterLab, nbconvert's HTML) would read "$0 ... $2,392" in a sentence as maths
    return ("<div class='tex2jax_ignore'>" + head + "<div style='line-height:1.9;font-family:sans-serif'>"
            + "".join(pieces) + "</div></div>")


def shap_text_html(explanation) -> str:
    """shap's own text plot (``shap.plots.text``) as HTML that renders with NumPy 2; show it with ``HTML``.

    shap (up to 0.51 at least) writes its colours as ``rgb(np.float64(255.0), ...)`` under NumPy 2, which
    browsers reject (black bars, uncoloured words); the numbers are unwrapped here. The plot is kept away from
    MathJax, which would read dollar amounts as maths.
    """
    import re

    import shap

    html = shap.plots.text(explanation, display=False)
    html = re.sub(r"np\.(?:float|int)(?:16|32|64)\(([^()]*)\)", r"\1", html)
    return f"<div class='tex2jax_ignore'>{html}</div>"


def plot_deletion_curves(curves: dict, *, ax=None, title: str = "Deletion curves: hide the most important words first"):
    """Score against the number of words hidden, one line per ordering (``{name: curve}``)."""
    ax = _ax(ax)
    for name, curve in curves.items():
        ax.plot(range(len(curve)), curve, marker="o", ms=3, label=name, ls="--" if "random" in name else "-")
    ax.set_xlabel("words hidden (count)")
    ax.set_ylabel("probability of the explained class")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_token_importance(tables: dict, *, ax=None, title: str = "Mean |attribution| of sex and household-role words"):
    """Grouped bars: mean |attribution| per word (rows) for each model (``{model name: token_importance table}``)."""
    import pandas as pd

    df = pd.concat({name: t.set_index("word")["mean_abs"] for name, t in tables.items()}, axis=1).fillna(0.0)
    ax = _ax(ax, figsize=(6.4, 0.4 * len(df) * max(1, df.shape[1]) + 1.2))
    df.sort_values(df.columns[0]).plot.barh(ax=ax, width=0.8)
    ax.set_xlabel("mean |SHAP value| (probability units)")
    ax.set_ylabel("word")
    ax.set_title(title)
    ax.legend(fontsize=8, title="model")
    return ax


