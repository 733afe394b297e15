"""Claims: every sentence that interprets a result is checked on the run's own numbers.

A notebook does not type "the constrained head halves the gap" into markdown. It states the claim in a code cell::

    claim(NB, "constrained_gap_below_unconstrained",
          held=dp_con + half_width < dp_unc,
          says="The constraint lowers the test DP gap by more than the test set's measurement noise.",
          instead=f"In this run the gaps ({dp_unc:.3f} vs {dp_con:.3f}) differ by less than the noise "
                  f"(± {half_width:.3f}): too few test rows to tell them apart. Try gpu mode.",
          evidence={"dp_unc": dp_unc, "dp_con": dp_con, "half_width": half_width})

Where the claim holds, the student reads ``says`` (marked as checked on this run); where it fails, a visible
box says what the run showed instead (``instead``: what, why, what to change). Both go to ``results.json`` under
the notebook's section as ``claim.<name>`` with the evidence, so ``python -m helpers run`` can list every claim
held or failed, and CI can fail a cpu-mode run on a failed claim. Smoke mode records claims but never enforces
them (its numbers mean nothing).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from .config import get_mode
from .results import load_results, record

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

#: Prefix of every claim's key in ``results.json``.
PREFIX = "claim."


@dataclass(frozen=True)
class Claim:
    """One checked claim: its name, whether it held, the sentence shown, and the numbers it rests on."""

    notebook: str
    name: str
    held: bool
    says: str
    instead: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        """What the student reads: the interpretation, or a box saying what this run showed instead."""
        if self.held:
            return f"**Checked on this run** ✓ {self.says}"
        return f"> **What this run showed instead**\n>\n> {self.instead}"

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def _ipython_display_(self) -> None:
        """:func:`claim` already showed it: a cell that ends with a claim does not show it a second time."""

    def __repr__(self) -> str:  # plain-text front ends (a terminal, nbconvert to text)
        return ("[checked] " + self.says) if self.held else ("[this run showed instead] " + self.instead)


def claim(notebook: str, name: str, held: Any, *, says: str, instead: str,
          evidence: dict[str, Any] | None = None, show: bool = True) -> Claim:
    """Check one claim on this run's numbers, record it, and display what the student should read.

    Args:
        notebook: the notebook's section in ``results.json`` (the ``NB`` of its setup cell).
        name: a short identifier, letters, digits, ``_``, ``.`` and ``-`` (``"each_group_selected"``).
        held: the check itself, a bool computed from the run's numbers (numpy bools are accepted).
        says: the interpretation shown when the claim holds.
        instead: what the run showed when it does not hold, why, and what to change; shown in a box.
        evidence: the numbers the check used (recorded beside the verdict).
        show: display the result (a notebook cell); ``False`` only records it.

    Returns the :class:`Claim` (shown once, by this call, also when it ends a cell).
    Raises ``ValueError`` for an empty notebook, a malformed name, or a ``held`` that is not a single bool.
    """
    held = _check_claim(notebook, name, held, says, instead)
    result = Claim(notebook, name, held, says, instead, dict(evidence or {}))
    record(notebook, PREFIX + name, {"held": held, "mode": get_mode(), "run": os.environ.get("WORKBOOK_RUN_ID"),
                                     "evidence": result.evidence})
    if show:
        _show(result)
    return result


def _check_claim(notebook: str, name: str, held: Any, says: str, instead: str) -> bool:
    """:func:`claim`'s argument checks; returns ``held`` as a Python bool (numpy bools accepted)."""
    if not notebook:
        raise ValueError("claim() needs the notebook's name (the NB of its setup cell).")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"claim name must be letters, digits, '_', '.' or '-' (got {name!r}).")
    if not says or not instead:
        raise ValueError("claim() needs both says= (shown when it holds) and instead= (shown when it fails).")
    if hasattr(held, "item") and getattr(held, "size", 1) == 1:
        held = held.item()
    if not isinstance(held, bool):
        raise ValueError(f"claim {name!r}: held must be one bool computed from the run (got {type(held).__name__}).")
    return held


def _show(result: "Claim") -> None:
    """Display a claim as Markdown in a notebook (its repr elsewhere)."""
    try:
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython comes with every notebook kernel
        print(repr(result))
    else:
        display(Markdown(result.markdown()))


def collect(results: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every recorded claim as rows ``{notebook, name, held, mode, evidence}``, in notebook order."""
    results = load_results() if results is None else results
    rows = []
    for nb in sorted(k for k in results if not k.startswith("_")):
        for key, value in results[nb].items():
            if key.startswith(PREFIX) and isinstance(value, dict) and "held" in value:
                rows.append({"notebook": nb, "name": key[len(PREFIX):], "held": bool(value["held"]),
                             "mode": value.get("mode"), "run": value.get("run"), "evidence": value.get("evidence", {})})
    return rows


def failed(results: dict[str, dict[str, Any]] | None = None, *, run: str | None = None) -> list[dict]:
    """The recorded claims that failed in an enforcing mode (cpu or gpu); with ``run``, only that run's claims
    (``$WORKBOOK_RUN_ID``, set by ``python -m helpers run``), so a claim left from an earlier run does not count."""
    return [r for r in collect(results) if not r["held"] and r["mode"] != "smoke"
            and (run is None or r["run"] == run)]


def enforced() -> bool:
    """Whether a failed claim fails the run: ``$WORKBOOK_ENFORCE_CLAIMS`` is ``1`` (CI sets it)."""
    return os.environ.get("WORKBOOK_ENFORCE_CLAIMS", "").strip() in ("1", "true", "yes")


def table(results: dict[str, dict[str, Any]] | None = None, *, run: str | None = None) -> str:
    """A plain-text table: per notebook, claims held / recorded, and the names of those that failed."""
    rows = [r for r in collect(results) if run is None or r["run"] == run]
    if not rows:
        return "No claims recorded."
    lines = [f"{'notebook':42s} {'held':>6s}  failed"]
    for nb in dict.fromkeys(r["notebook"] for r in rows):
        lines.append(_table_line(nb, [r for r in rows if r["notebook"] == nb]))
    return "\n".join(lines)


def _table_line(nb: str, mine: list[dict[str, Any]]) -> str:
    """One notebook's line of :func:`table`: held / recorded and the failed names."""
    bad = [r["name"] for r in mine if not r["held"]]
    return f"{nb:42s} {sum(r['held'] for r in mine):>2d}/{len(mine):<3d}  {', '.join(bad) or '-'}"
