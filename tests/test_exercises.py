"""Every exercise check is passable (its reference solution passes) and not trivially passed by a stub."""

import importlib

import pytest

from helpers import exercises

IDS = exercises.all_ids()


def _solution(ex_id: str):
    nb, k = ex_id.split(".")
    module = importlib.import_module(f"nb{nb}")  # notebooks/solutions/ is on sys.path (conftest)
    return getattr(module, f"solution_{nb}_{k}")()


def test_there_are_exercises_for_every_notebook():
    from helpers.workbook import notebooks

    for nb in notebooks():
        number = nb.stem.split("_")[0]
        if not number.isdigit():
            continue  # an optional notebook (04b) ends with homework, not checked exercises
        assert len(exercises.all_ids(number)) >= 3, f"notebook {nb.name} needs at least 3 exercises with checks"


@pytest.mark.parametrize("ex_id", IDS)
def test_solution_passes(ex_id):
    passed, message = exercises.run(ex_id, _solution(ex_id))
    assert passed, message


@pytest.mark.parametrize("ex_id", IDS)
def test_stub_does_not_pass(ex_id):
    def stub(*args, **kwargs):
        raise NotImplementedError

    passed, message = exercises.run(ex_id, stub)
    assert not passed and ("not attempted" in message or "not yet" in message)


def test_check_prints_verdict_without_traceback(capsys):
    exercises.check("00.1", lambda df: 1 / 0)
    out = capsys.readouterr().out
    assert out.startswith("❌") and "ZeroDivisionError" in out and "Traceback" not in out
    exercises.check("00.1", lambda df: df["label"].mean())
    assert capsys.readouterr().out.startswith("✅")


def test_unknown_exercise():
    with pytest.raises(ValueError, match="no exercise"):
        exercises.run("99.9", 1)


def test_every_notebook_checks_its_exercises():
    """Each notebook calls check() for every registered exercise of that notebook."""
    import nbformat

    from helpers.workbook import notebooks

    for nb_path in notebooks():
        src = "\n".join(c.source for c in nbformat.read(nb_path, as_version=4).cells if c.cell_type == "code")
        for ex_id in exercises.all_ids(nb_path.stem.split("_")[0]):
            assert f'check("{ex_id}"' in src, f"{nb_path.name} never checks exercise {ex_id}"
