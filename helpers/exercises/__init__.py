"""Exercises with self-checks and staged feedback.

A notebook's exercise cell holds a stub the student completes and one call::

    def masked_fraction(labels):
        ...  # YOUR CODE HERE
    check("01.1", masked_fraction)

:func:`check` runs the exercise's checker and prints a verdict in three stages:

1. a stub that was never attempted gets only "not attempted yet";
2. a wrong answer gets a *nudge*: what the check saw (the symptom), never how to fix it;
3. the stronger hint comes on request (``hint("01.1")``) or with the second failure of the same exercise
   in this session.

A check never prints the solution, never shows a raw traceback and never raises, so a notebook with
unfinished exercises still runs top to bottom. Verdicts start with ✓ (U+2713) or ✗ (U+2717), which
DejaVu Sans (Debian's default font) and every common monospace font draw. Graders call :func:`run`,
which returns ``(passed, message)``.

Three kinds of exercise share this machinery:

- *code* (from scratch or spot-the-bug): the answer is a function. A from-scratch exercise names the
  helpers it re-implements (``forbid=``); while the student's function runs they raise a friendly
  :class:`UsesHelper` (patching, not grepping the source, so an alias or a module attribute is caught too);
- *interpretation*: the answer is the letter of one option (:func:`choice`);
- *experiment*: the student records a prediction with :func:`predict` before running the experiment cell, then
  answers which option explains what the run showed; ``check(id, answer, run=...)`` passes the run's result
  (:func:`experiment`).

Checkers live in ``helpers/exercises/nbNN.py`` (one module per notebook); reference solutions live in
``notebooks/solutions/nbNN.py``; ``tests/test_exercises.py`` proves every check passes with its solution and
fails on a stub and on at least three known-wrong answers.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

PASS, FAIL = "✓", "✗"  # U+2713 CHECK MARK, U+2717 BALLOT X: both in DejaVu Sans and DejaVu Sans Mono


class CheckFailed(Exception):
    """Raised by a checker with a message for the student: what the check saw, not how to fix it."""


class NotAttempted(Exception):
    """The answer is still the stub."""


class UsesHelper(CheckFailed):
    """The student's function called a helper that the exercise asks them to write themselves."""


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    hint: str
    checker: Callable[..., Any]
    kind: str = "from-scratch"
    forbid: tuple[str, ...] = field(default=())


_REGISTRY: dict[str, Exercise] = {}
_FAILURES: dict[str, int] = {}
_PREDICTIONS: dict[str, Any] = {}
_IN_STUDENT_CODE = [0]  # > 0 while call() runs the student's function
KINDS = ("from-scratch", "spot-the-bug", "experiment", "interpretation")


def exercise(id: str, title: str, hint: str, *, kind: str = "from-scratch",
             forbid: Sequence[str] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers ``checker(answer, **run)`` under ``id`` ("NN.k").

    ``hint`` is the stronger hint (shown on request or after a second failure): it guides, never gives the
    code. ``forbid`` lists dotted paths of the helpers a from-scratch answer must not call.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY[id] = Exercise(id, title, hint, fn, kind, tuple(forbid))
        return fn

    return wrap


def _load(id: str) -> Exercise:
    if id not in _REGISTRY:
        nb = str(id).split(".")[0]
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(f"{__name__}.nb{nb}")
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


def get(id: str) -> Exercise:
    """The registered exercise ``id``."""
    return _load(id)


def reset() -> None:
    """Forget this session's failures and predictions (tests; a fresh start)."""
    _FAILURES.clear()
    _PREDICTIONS.clear()


def expect(condition: bool, message: str) -> None:
    """Fail the check with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the student's function; a stub's ``NotImplementedError``/``None`` means not attempted.

    While it runs, the exercise's forbidden helpers raise :class:`UsesHelper`.
    """
    if not callable(fn):
        raise CheckFailed(f"expected a function, got {type(fn).__name__}.")
    _IN_STUDENT_CODE[0] += 1
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise NotAttempted from exc
    finally:
        _IN_STUDENT_CODE[0] -= 1
    if out is None:
        raise NotAttempted
    return out


def call_in_place(fn: Any, *args: Any, **kwargs: Any) -> None:
    """Call a student's function that works in place (returns nothing); a stub's ``NotImplementedError`` means not
    attempted. Forbidden helpers raise while it runs, as in :func:`call`."""
    if not callable(fn):
        raise CheckFailed(f"expected a function, got {type(fn).__name__}.")
    _IN_STUDENT_CODE[0] += 1
    try:
        fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise NotAttempted from exc
    finally:
        _IN_STUDENT_CODE[0] -= 1


def _resolve(path: str) -> tuple[Any, str, Any]:
    """``(owner, attribute, object)`` for a dotted path such as ``pkg.module.Class.method``."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:-1]:
            owner = getattr(owner, name)
        return owner, parts[-1], getattr(owner, parts[-1])
    raise ValueError(f"cannot import {path!r}")


def _guard(path: str, original: Callable) -> Callable:
    short = path.replace("helpers.", "", 1) if path.startswith("helpers.") else path

    def guarded(*args: Any, **kwargs: Any) -> Any:
        if _IN_STUDENT_CODE[0]:
            raise UsesHelper(f"your function calls {short}, which is what this exercise asks you to write "
                             "yourself (the check grades you against it). Use NumPy, pandas or torch instead.")
        return original(*args, **kwargs)

    guarded.__wrapped__ = original  # type: ignore[attr-defined]
    guarded.__name__ = getattr(original, "__name__", "guarded")
    return guarded


@contextlib.contextmanager
def forbidding(paths: Sequence[str], answer: Any = None) -> Iterator[None]:
    """Replace each helper in ``paths`` by a guard wherever it is bound: its module, the other loaded modules
    of the same package that import it, and the student's own namespace (``answer.__globals__``)."""
    patches: list[tuple[Any, str, Any]] = []
    try:
        for path in paths:
            owner, attr, original = _resolve(path)
            guard = _guard(path, original)
            for space in _package_modules(owner, path.split(".")[0]):
                patches += _patch_module(space, owner, attr, original, guard)
            patches += _patch_globals(getattr(answer, "__globals__", None), original, guard)
        yield
    finally:
        for space, name, value in reversed(patches):
            if isinstance(space, dict):
                space[name] = value
            else:
                setattr(space, name, value)


def _package_modules(owner: Any, root: str) -> list[Any]:
    """``owner`` and every other loaded module of package ``root``."""
    others = [m for name, m in list(sys.modules.items())
              if m is not None and m is not owner and (name == root or name.startswith(root + "."))]
    return [owner, *others]


def _patch_module(space: Any, owner: Any, attr: str, original: Any, guard: Any) -> list[tuple[Any, str, Any]]:
    """Bind ``guard`` wherever ``space`` binds ``original`` (dunder names only in the owner or under ``attr``)."""
    d = space if isinstance(space, dict) else getattr(space, "__dict__", {})
    patches = []
    for name, value in list(d.items()) if isinstance(d, dict) else []:
        if value is original and (space is owner or name == attr or not name.startswith("__")):
            patches.append((space, name, value))
            setattr(space, name, guard)
    return patches


def _patch_globals(student_globals: Any, original: Any, guard: Any) -> list[tuple[Any, str, Any]]:
    """Bind ``guard`` wherever the student's namespace binds ``original``."""
    if not isinstance(student_globals, dict):
        return []
    patches = []
    for name, value in list(student_globals.items()):
        if value is original:
            patches.append((student_globals, name, value))
            student_globals[name] = guard
    return patches


def _verdict(ex: Exercise, text: str, *, failed: bool) -> str:
    head = f"Exercise {ex.id} ({ex.title}): "
    if not failed:
        return head + text
    _FAILURES[ex.id] = _FAILURES.get(ex.id, 0) + 1
    if _FAILURES[ex.id] >= 2:
        return head + f"not yet - {text} Hint: {ex.hint}"
    return head + f'not yet - {text} (For a hint: hint("{ex.id}").)'


def run(id: str, answer: Any, **run_info: Any) -> tuple[bool, str]:
    """Run a check; return ``(passed, message)`` without printing (graders, tests)."""
    ex = _load(id)
    if answer is None or answer is ...:
        return False, f"Exercise {id} ({ex.title}): not attempted yet."
    try:
        with forbidding(ex.forbid, answer):
            extra = ex.checker(answer, **run_info)
    except NotAttempted:
        return False, f"Exercise {id} ({ex.title}): not attempted yet."
    except CheckFailed as exc:
        return False, _verdict(ex, str(exc), failed=True)
    except Exception as exc:  # noqa: BLE001 - a student's bug: summarise it, no traceback
        where = ""
        tb = exc.__traceback__
        while tb is not None:
            name = tb.tb_frame.f_code.co_filename
            if name.startswith("<ipython") or "ipykernel" in name:
                where = f" (line {tb.tb_lineno} of your cell)"
            tb = tb.tb_next
        return False, _verdict(ex, f"your code raised {type(exc).__name__}: {exc}{where}.", failed=True)
    _FAILURES.pop(id, None)
    return True, _verdict(ex, "correct - well done!" + (f" {extra}" if isinstance(extra, str) else ""), failed=False)


def check(id: str, answer: Any, **run_info: Any) -> None:
    """Check ``answer`` for exercise ``id`` and print a verdict (✓ or ✗ and what the check saw).

    ``run_info`` carries an experiment's result (``run=...``). Returns nothing, so the notebook shows only the
    verdict; graders use :func:`run` for a bool.
    """
    passed, message = run(id, answer, **run_info)
    print(f"{PASS if passed else FAIL} {message}")


def hint(id: str) -> None:
    """Print the stronger hint of exercise ``id`` (it guides; it does not give the code)."""
    ex = _load(id)
    print(f"Hint for {id} ({ex.title}): {ex.hint}")


def source_of(fn: Callable) -> str:
    """Source of a student's function (for checks that look at how, not just what)."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


# ---- interpretation and experiment exercises -------------------------------------------------------------

def _letter(answer: Any, options: Mapping[str, str]) -> str:
    letter = str(answer).strip().lower().rstrip(")").strip("()")
    expect(letter in options, f"answer with one letter of {', '.join(sorted(options))} (you gave {answer!r}).")
    return letter


def choice(id: str, title: str, *, options: Mapping[str, str], correct: str, nudges: Mapping[str, str],
           hint: str) -> None:
    """Register a multiple-choice interpretation exercise: the answer is one letter of ``options``.

    ``nudges[letter]`` says what is wrong with a wrong option (shown when it is chosen); ``correct`` is never
    printed.
    """
    if correct not in options or set(nudges) != set(options) - {correct}:
        raise ValueError(f"{id}: give a nudge for every wrong option and one correct option")

    @exercise(id, title=title, hint=hint, kind="interpretation")
    def _check(answer: Any) -> None:
        letter = _letter(answer, options)
        expect(letter == correct, f"({letter}) {nudges.get(letter, '')}")

    _check.options = dict(options)  # type: ignore[attr-defined]


def predict(id: str, prediction: Any) -> None:
    """Record your prediction for experiment ``id`` before you run the experiment (prints what was recorded)."""
    ex = _load(id)
    outcomes = getattr(ex.checker, "outcomes", None)
    if outcomes is None:
        raise ValueError(f"Exercise {id} is not an experiment: there is nothing to predict.")
    if prediction is None or prediction is ...:
        print(f"{FAIL} Exercise {id} ({ex.title}): no prediction recorded yet (choose one of {list(outcomes)}).")
        return
    if prediction not in outcomes:
        print(f"{FAIL} Exercise {id}: predict one of {list(outcomes)}; {prediction!r} is not one of them.")
        return
    _PREDICTIONS[id] = prediction
    print(f"Prediction for {id} recorded: {prediction!r}. Now run the experiment.")


def experiment(id: str, title: str, *, outcomes: Sequence[str], observe: Callable[[Any], str],
               reasons: Mapping[str, str], correct: Callable[..., str], nudges: Mapping[str, str],
               hint: str) -> None:
    """Register a predict-run-explain exercise.

    ``predict(id, outcome)`` records the prediction (one of ``outcomes``); the experiment cell then calls
    ``check(id, letter, run=result)``: ``observe(result)`` names the outcome this run showed, and the
    answer must be a letter of ``reasons`` that explains it: one of the letters ``correct(observed)`` returns, or
    ``correct(observed, result)`` when the explanation also depends on the run's numbers (its noise, its gap)
    and more than one reason can be true of the run.
    ``nudges[letter]`` says what is wrong with a wrong reason.
    """

    @exercise(id, title=title, hint=hint, kind="experiment")
    def _check(answer: Any, run: Any = None) -> str:
        expect(id in _PREDICTIONS, f'no prediction was recorded: call predict("{id}", ...) with one of '
                                   f"{list(outcomes)} before you run the experiment.")
        expect(run is not None, f'pass the experiment\'s result: check("{id}", answer, run=...).')
        observed = observe(run)
        letter = _letter(answer, reasons)
        said = f"You predicted {_PREDICTIONS[id]!r}; this run shows {observed!r}."
        accepted = correct(observed, run) if len(inspect.signature(correct).parameters) == 2 else correct(observed)
        expect(letter in accepted, f"{said} ({letter}) {nudges.get(letter, 'does not explain that.')}")
        return said

    _check.outcomes = tuple(outcomes)  # type: ignore[attr-defined]
