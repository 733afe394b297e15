"""Every exercise check passes its reference solution, fails a stub with "not attempted yet" only, and fails at
least three known-wrong answers (a constant, a call to the helper being taught, the classic mistake).
Feedback is staged: a nudge first, the hint on request or on the second failure, never the solution."""

from __future__ import annotations

import importlib

import pytest
from solution_leaks import key_lines, leaks
from wrong_answers import HELPER_CALLS, RUNS, WRONG, _masker

from helpers import exercises

IDS = exercises.all_ids()


@pytest.fixture(autouse=True)
def _fresh_session():
    exercises.reset()
    yield
    exercises.reset()


def _solution(ex_id: str):
    nb, k = ex_id.split(".")
    module = importlib.import_module(f"nb{nb}")  # notebooks/solutions/ is on sys.path (conftest)
    return getattr(module, f"solution_{nb}_{k}")()


def _run(ex_id: str, answer):
    """Run a check as the notebook does: an experiment gets a recorded prediction and its run's result."""
    ex = exercises.get(ex_id)
    if ex.kind == "experiment":
        exercises._PREDICTIONS[ex_id] = ex.checker.outcomes[0]
        return exercises.run(ex_id, answer, run=RUNS[ex_id])
    return exercises.run(ex_id, answer)


def _wrong_answers(ex_id: str) -> list:
    ex = exercises.get(ex_id)
    if ex.kind == "experiment" or hasattr(ex.checker, "options"):
        right = _solution(ex_id)
        letters = "abcdefgh"[:4]
        return [x for x in letters if x != right] + WRONG.get(ex_id, [])
    return WRONG[ex_id]


def test_there_are_exercises_for_every_notebook():
    from helpers.workbook import notebooks

    for nb in notebooks():
        number = nb.stem.split("_")[0]
        if not number.isdigit():
            continue  # an optional notebook (04b) ends with homework, not checked exercises
        ids = exercises.all_ids(number)
        assert len(ids) >= 3, f"notebook {nb.name} needs at least 3 exercises with checks"
        thinking = [i for i in ids if exercises.get(i).kind in ("experiment", "interpretation")]
        assert len(thinking) >= 2, f"notebook {nb.name} needs at least 2 experiment/interpretation exercises"


def test_the_spot_the_bug_set_exists():
    kinds = {i: exercises.get(i).kind for i in IDS}
    for ex_id in ("01.2", "02.1", "03.5", "03.6", "04.2", "04.5", "05.6", "07.7"):
        assert kinds[ex_id] == "spot-the-bug", ex_id


@pytest.mark.parametrize("ex_id", IDS)
def test_solution_passes(ex_id):
    passed, message = _run(ex_id, _solution(ex_id))
    assert passed, message


@pytest.mark.parametrize("ex_id", IDS)
def test_stub_says_only_not_attempted(ex_id):
    def stub(*args, **kwargs):
        raise NotImplementedError

    ex = exercises.get(ex_id)
    letters = ex.kind == "experiment" or hasattr(ex.checker, "options")
    in_place = ex_id in ("05.4",)  # works in place: returning None is normal there
    for answer in ((None, ...) if letters else (stub, None) if in_place else (stub, None, lambda *a, **k: None)):
        passed, message = _run(ex_id, answer)
        assert not passed and message.endswith("not attempted yet."), message
        assert "Hint" not in message and "hint" not in message


def test_untouched_spot_the_bug_says_not_attempted():
    passed, message = _run("01.2", _masker())  # the masking code exactly as the notebook prints it
    assert not passed and message.endswith("not attempted yet."), message
    assert "special" not in message


def test_untouched_03_spot_the_bugs_say_not_attempted():
    """03.5 and 03.6 as the notebook prints them are stubs: "not attempted yet", no nudge."""
    from wrong_answers import _evaluate, _loop

    for ex_id, printed in (("03.5", _loop()), ("03.6", _evaluate("slice"))):
        passed, message = _run(ex_id, printed)
        assert not passed and message.endswith("not attempted yet."), message
        assert "differ" not in message and "accuracy is" not in message


@pytest.mark.parametrize("ex_id", IDS)
def test_wrong_answers_fail(ex_id):
    wrong = _wrong_answers(ex_id)
    assert len(wrong) >= 3, f"{ex_id} needs at least 3 known-wrong answers"
    for i, answer in enumerate(wrong):
        exercises.reset()
        passed, message = _run(ex_id, answer)
        assert not passed, f"{ex_id}: wrong answer #{i} passes: {message}"
        assert "not yet" in message and "not attempted" not in message, message
        assert "Hint:" not in message, f"{ex_id}: the first failure must show a nudge only: {message}"
        passed, message = _run(ex_id, answer)  # second failure: the stronger hint, still no solution
        assert "Hint:" in message
        solution_lines = key_lines(ex_id[:2])
        assert not [k for k in solution_lines if k in " ".join(message.split())], message


@pytest.mark.parametrize("ex_id", sorted(HELPER_CALLS))
def test_calling_the_taught_helper_fails_with_a_friendly_message(ex_id):
    assert exercises.get(ex_id).forbid, ex_id
    passed, message = _run(ex_id, HELPER_CALLS[ex_id])
    assert not passed and "what this exercise asks you to write yourself" in message, message
    # the helper works again after the check
    passed, _ = _run(ex_id, _solution(ex_id))
    assert passed


def test_every_from_scratch_exercise_with_a_helper_forbids_it():
    for ex_id in IDS:
        if exercises.get(ex_id).forbid:
            assert ex_id in HELPER_CALLS, f"{ex_id} forbids helpers but no test calls one"


def test_feedback_is_staged(capsys):
    exercises.check("00.1", None)
    first = capsys.readouterr().out
    assert first.startswith(exercises.FAIL) and first.strip().endswith("not attempted yet.")
    exercises.check("00.1", lambda df: 0.375)
    nudge = capsys.readouterr().out
    assert "not yet" in nudge and "Hint:" not in nudge and 'hint("00.1")' in nudge
    exercises.check("00.1", lambda df: 0.375)
    second = capsys.readouterr().out
    assert "Hint:" in second and exercises.get("00.1").hint in second
    exercises.hint("00.2")
    assert exercises.get("00.2").hint in capsys.readouterr().out
    exercises.check("00.1", lambda df: df["label"].mean())
    assert capsys.readouterr().out.startswith(exercises.PASS + " ")


def test_check_prints_verdict_without_traceback(capsys):
    exercises.check("00.1", lambda df: 1 / 0)
    out = capsys.readouterr().out
    assert out.startswith(exercises.FAIL) and "ZeroDivisionError" in out and "Traceback" not in out


def test_verdict_symbols_are_in_dejavu():
    """✓ U+2713 and ✗ U+2717 are drawn by DejaVu Sans (Debian's default font); the old emoji were not."""
    assert (exercises.PASS, exercises.FAIL) == ("\u2713", "\u2717")


def test_experiment_needs_a_prediction_before_the_check(capsys):
    ex_id = next(i for i in IDS if exercises.get(i).kind == "experiment")
    passed, message = exercises.run(ex_id, _solution(ex_id), run=RUNS[ex_id])
    assert not passed and "no prediction was recorded" in message
    exercises.predict(ex_id, "not an outcome")
    assert "is not one of them" in capsys.readouterr().out
    exercises.predict(ex_id, None)
    assert "no prediction recorded yet" in capsys.readouterr().out
    outcome = exercises.get(ex_id).checker.outcomes[-1]
    exercises.predict(ex_id, outcome)
    assert "recorded" in capsys.readouterr().out
    passed, message = exercises.run(ex_id, _solution(ex_id), run=RUNS[ex_id])
    assert passed and f"You predicted {outcome!r}" in message


def test_experiment_explanation_follows_the_run():
    """01.5's right explanation depends on the run: rare occupations fit worse -> (a), otherwise -> (c);
    amplification (b) and the tokenizer (d) never explain it."""
    import pandas as pd

    corpus, n = [0.1, 0.3, 0.6, 0.0, 0.9], [1000, 1000, 1000, 10, 10]  # 2 % of 3020 = 60.4: the last two are rare
    exercises._PREDICTIONS["01.5"] = "about the same"
    cases = (([0.12, 0.28, 0.58, 0.45, 0.5], "rare further", "a"),   # rare gaps 0.45, 0.40 vs 0.02
             ([0.12, 0.28, 0.58, 0.02, 0.88], "about the same", "c"),  # every gap 0.02
             ([0.3, 0.5, 0.4, 0.0, 0.9], "rare closer", "c"),         # frequent gaps 0.2, rare 0
             ([0.0, 0.2, 0.7, 0.05, 0.99], "about the same", "c"))   # wider spread than the corpus: not (b)
    for model, shown, letter in cases:
        table = pd.DataFrame({"corpus_she_rate": corpus, "model_she_ratio": model, "n": n})
        passed, message = exercises.run("01.5", letter, run=table)
        assert passed and f"this run shows {shown!r}" in message
        for wrong in sorted(set("abcd") - {letter}):
            assert not exercises.run("01.5", wrong, run=table)[0]
    passed, message = exercises.run("01.5", "a", run=pd.DataFrame({"corpus_she_rate": [0.1, 0.5, 0.9],
                                                                   "model_she_ratio": [0.5, 0.5, 0.5],
                                                                   "n": [10, 10, 10]}))
    assert not passed and "frequent and rare" in message


def test_unknown_exercise():
    with pytest.raises(ValueError, match="no exercise"):
        exercises.run("99.9", 1)


def test_every_notebook_checks_its_exercises():
    """Each notebook calls check() for every registered exercise of that notebook, and predict() before every
    experiment."""
    import nbformat

    from helpers.workbook import notebooks

    for nb_path in notebooks():
        src = "\n".join(c.source for c in nbformat.read(nb_path, as_version=4).cells if c.cell_type == "code")
        number = nb_path.stem.split("_")[0]
        if not number.isdigit():
            continue
        for ex_id in exercises.all_ids(number):
            assert f'check("{ex_id}"' in src, f"{nb_path.name} never checks exercise {ex_id}"
            if exercises.get(ex_id).kind == "experiment":
                assert src.index(f'predict("{ex_id}"') < src.index(f'check("{ex_id}"'), ex_id


def test_leak_search_finds_a_printed_solution_line():
    import nbformat

    line = next(k for k in key_lines("07") if "np.where" in k)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="ok\n")]
    assert leaks(nb, "07") == []
    nb.cells[0].outputs.append(nbformat.v4.new_output("stream", name="stdout", text="  " + line + "\n"))
    assert leaks(nb, "07") == [line]
    assert all(key_lines(f"0{i}") for i in range(8))


def test_exercises_are_numbered_in_page_order():
    """A student meets 02.1, 02.2, ... in that order: each notebook's exercises are checked in increasing number."""
    import re

    import nbformat

    from helpers.workbook import notebooks

    for nb_path in notebooks():
        src = "\n".join(c.source for c in nbformat.read(nb_path, as_version=4).cells if c.cell_type == "code")
        seen = list(dict.fromkeys(re.findall(r'check\("(\d+b?\.\d+)"', src)))
        numbers = [int(ex_id.split(".")[1]) for ex_id in seen]
        assert numbers == sorted(numbers), f"{nb_path.name}: exercises appear in the order {seen}"


@pytest.mark.parametrize("ex_id, runs", [
    ("05.7", [({"before": 0.17, "after": 0.02, "noise": 0.066}, "smaller", "a"),
              ({"before": 0.17, "after": 0.15, "noise": 0.066}, "about the same", "de"),   # still overfits
              ({"before": 0.03, "after": 0.02, "noise": 0.066}, "about the same", "dc"),   # never overfitted
              ({"before": 0.10, "after": 0.20, "noise": 0.066}, "larger", "e"),
              ({"before": -0.08, "after": 0.01, "noise": 0.066}, "larger", "f")]),  # rose from below 0: not (d)
    ("07.8", [({"before": {"auc": 0.68, "accuracy_gap": 0.23}, "after": {"auc": 0.55, "accuracy_gap": 0.05},
                "members": 400}, "lower", "a"),
              # AUC barely moves; the accuracy gap stays beyond 2 sqrt(0.5/400) = 0.071: (c) is false here
              ({"before": {"auc": 0.606, "accuracy_gap": 0.230}, "after": {"auc": 0.607, "accuracy_gap": 0.228},
                "members": 400}, "about the same", "de"),
              ({"before": {"auc": 0.52, "accuracy_gap": 0.02}, "after": {"auc": 0.51, "accuracy_gap": 0.01},
                "members": 400}, "about the same", "dc"),
              ({"before": {"auc": 0.55, "accuracy_gap": 0.10}, "after": {"auc": 0.65, "accuracy_gap": 0.20},
                "members": 400}, "higher", "e"),
              ({"before": {"auc": 0.55, "accuracy_gap": 0.03}, "after": {"auc": 0.65, "accuracy_gap": 0.04},
                "members": 400}, "higher", "f")]),  # AUC up beyond the noise, accuracy gap within it: not (d)
])
def test_experiment_accepts_only_the_reasons_true_of_the_run(ex_id, runs):
    """The outcome is judged by the run's own noise (0.066 for a gap; 2 sqrt 2 no-leak SEs = 0.058 for two AUCs on
    400 + 400 records), and a reason is accepted only when the run's numbers make it true."""
    exercises._PREDICTIONS[ex_id] = "about the same"
    for run, outcome, right in runs:
        for letter in "abcdef":
            passed, message = exercises.run(ex_id, letter, run=run)
            assert f"this run shows {outcome!r}" in message
            assert passed == (letter in right), (ex_id, run, letter)


def test_gap_noise_is_two_binomial_standard_errors_at_worst():
    """A hand example: 100 and 400 units give 2 sqrt(0.25/100 + 0.25/400) = 2 sqrt(0.003125) = 0.1118."""
    from helpers.stats import gap_noise

    assert gap_noise(100, 400) == pytest.approx(0.111803, abs=1e-6)
    assert gap_noise(400, 400) == pytest.approx(2 * (0.5 * 0.5 / 400 * 2) ** 0.5)
    with pytest.raises(ValueError, match="positive whole number"):
        gap_noise(0, 10)
