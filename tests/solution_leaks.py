"""The key lines of the reference solutions, and a search for them in an executed notebook's outputs.

A key line is a statement inside a ``solution_NN_k`` function (not its docstring) that is long enough to be
specific, e.g. ``p_wrong = np.where(y == 1, 1 - p, p)``. Model answers (a letter) are not key lines: the options
are printed in the notebook on purpose.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SOLUTIONS = Path(__file__).resolve().parent.parent / "notebooks" / "solutions"
MIN_LENGTH = 24


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def key_lines(notebook: str) -> list[str]:
    """Normalised source lines of every statement inside the solution functions of notebook ``notebook``."""
    path = SOLUTIONS / f"nb{notebook}.py"
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    helpers = {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("solution_")}
    lines: set[str] = set()
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef) or not (fn.name.startswith("solution_") or fn.name in helpers):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.stmt) and not isinstance(node, (ast.FunctionDef, ast.For, ast.If, ast.With)):
                if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                    continue  # a docstring
                text = _normalise(ast.get_source_segment(source, node) or "")
                if len(text) >= MIN_LENGTH and not text.startswith(("import ", "from ")):
                    lines.add(text)
            elif isinstance(node, ast.Lambda):
                text = _normalise(ast.get_source_segment(source, node) or "")
                if len(text) >= MIN_LENGTH:
                    lines.add(text)
    return sorted(lines)


def output_text(nb) -> str:
    """Everything a notebook printed or displayed (streams, plain text, Markdown, HTML), whitespace normalised."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            for mime in ("text/plain", "text/markdown", "text/html"):
                value = out.get("data", {}).get(mime)
                if value:
                    parts.append(value if isinstance(value, str) else "".join(value))
    return _normalise("\n".join(parts))


def leaks(nb, notebook: str) -> list[str]:
    """The solution key lines of ``notebook`` that appear in the executed notebook's outputs."""
    text = output_text(nb)
    return [line for line in key_lines(notebook) if line in text]
