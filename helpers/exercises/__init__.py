"""Exercises with self-checks.

A notebook's exercise cell holds a stub the student completes and one call::

    def masked_fraction(labels):
        ...  # YOUR CODE HERE
    check("01.1", masked_fraction)

:func:`check` runs the exercise's checker on the answer and prints a friendly verdict: a tick,
or a cross with a hint. It never shows a raw traceback and never raises, so a notebook with
unfinished exercises still runs top to bottom. Graders call :func:`run`, which returns ``(passed, message)``.

Checkers live in ``helpers/exercises/nbNN.py`` (one module per notebook); reference solutions live
in ``notebooks/solutions/nbNN.py`` and ``tests/test_exercises.py`` proves every check passes with
its solution and fails on an empty stub.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable


class CheckFailed(Exception):
    """Raised by a checker with a message for the student (what is wrong, not how to fix it)."""


class NotAttempted(Exception):
    """The answer is still the stub."""


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    hint: str
    checker: Callable[[Any], None]


_REGISTRY: dict[str, Exercise] = {}


def exercise(id: str, title: str, hint: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Decorator that registers ``checker(answer)`` under ``id`` ("NN.k")."""

    def wrap(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        _REGISTRY[id] = Exercise(id, title, hint, fn)
        return fn

    return wrap


def _load(id: str) -> Exercise:
    if id not in _REGISTRY:
        nb = id.split(".")[0]
        try:
            importlib.import_module(f"{__name__}.nb{nb}")
        except ModuleNotFoundError:
            pass
    if id not in _REGISTRY:
        raise ValueError(f"There is no exercise {id!r}.")
    return _REGISTRY[id]


def all_ids(notebook: str | None = None) -> list[str]:
    """Every exercise id (of one notebook, e.g. ``"01"``), importing the checker modules."""
    import pkgutil

    for m in pkgutil.iter_modules(__path__):
        if m.name.startswith("nb") and (notebook is None or m.name == f"nb{notebook}"):
            importlib.import_module(f"{__name__}.{m.name}")
    return sorted(i for i in _REGISTRY if notebook is None or i.split(".")[0] == notebook)


def expect(condition: bool, message: str) -> None:
    """Fail the check with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the student's function; a stub's ``NotImplementedError``/``None`` means not attempted."""
    if not callable(fn):
        raise CheckFailed(f"Expected a function, got {type(fn).__name__}.")
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise NotAttempted from exc
    if out is None:
        raise NotAttempted
    return out


def run(id: str, answer: Any) -> tuple[bool, str]:
    """Run a check; return ``(passed, message)`` without printing (used by graders and tests)."""
    ex = _load(id)
    if answer is None or answer is ...:
        return False, f"Exercise {id} ({ex.title}): not attempted yet. Hint: {ex.hint}"
    try:
        ex.checker(answer)
    except NotAttempted:
        return False, f"Exercise {id} ({ex.title}): not attempted yet. Hint: {ex.hint}"
    except CheckFailed as exc:
        return False, f"Exercise {id} ({ex.title}): not yet - {exc} Hint: {ex.hint}"
    except Exception as exc:  # noqa: BLE001 - a student's bug: summarise it, no traceback
        where = ""
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename.startswith("<ipython") or "ipykernel" in tb.tb_frame.f_code.co_filename:
                where = f" (line {tb.tb_lineno} of your cell)"
            tb = tb.tb_next
        return False, (f"Exercise {id} ({ex.title}): your code raised {type(exc).__name__}: {exc}{where}. "
                       f"Hint: {ex.hint}")
    return True, f"Exercise {id} ({ex.title}): correct - well done!"


def check(id: str, answer: Any) -> None:
    """Check ``answer`` for exercise ``id`` and print a verdict with a hint.

    Returns nothing (so the notebook shows only the verdict); graders use :func:`run` for a bool.
    """
    passed, message = run(id, answer)
    print(("✅ " if passed else "❌ ") + message)


def source_of(fn: Callable) -> str:
    """Source of a student's function (for checks that look at how, not just what)."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""
