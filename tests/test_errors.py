"""Every exception class selfpose defines is a user error (SelfposeError), except a short list of contracts.

The CLI prints a SelfposeError as one line and exits 2, and lets everything
else through with its traceback. A new error class that a user can cause but
that forgets the base class would turn a config typo into a traceback; this
test names it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import selfpose
from selfpose.errors import DiskFullError, SelfposeError, disk_full

# Not user errors: violated internal contracts (shapes handed between our own
# functions), where a traceback is what a developer needs, and Ctrl-C.
NOT_USER_ERRORS = {
    "LossInputError",       # loss inputs of the wrong shape: a bug in the caller
    "PoseShapeError",       # pose arrays of the wrong shape: a bug in the caller
    "STNError",             # theta/crop shapes: a bug in the model code
    "VizError",             # drawing inputs of the wrong shape: a bug in the caller
    "MetricError",          # bad metric arguments from our own code
    "TrainingInterrupted",  # a KeyboardInterrupt: Ctrl-C, exit 130
}


def _error_classes():
    for info in pkgutil.walk_packages(selfpose.__path__, "selfpose."):
        if info.name == "selfpose.__main__":   # `python -m selfpose`: running it is its job
            continue
        mod = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(mod, inspect.isclass):
            if (issubclass(obj, BaseException) and not issubclass(obj, Warning) and obj.__module__ == mod.__name__
                    and obj.__module__.startswith("selfpose.")):
                yield obj.__qualname__, obj


def test_every_error_class_is_a_user_error_or_a_listed_contract():
    found = dict(_error_classes())
    assert len(found) > 20   # the walk really saw the package
    stray = sorted(name for name, cls in found.items()
                   if not issubclass(cls, SelfposeError) and name not in NOT_USER_ERRORS)
    assert not stray, f"error classes that are neither SelfposeError nor listed contracts: {stray}"
    stale = sorted(n for n in NOT_USER_ERRORS if n not in found)
    assert not stale, f"listed contract classes that no longer exist: {stale}"


def test_disk_full_names_the_folder_and_ignores_other_errors(tmp_path):
    import errno

    e = disk_full(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "out", needed_bytes=3 * 2**20)
    assert isinstance(e, DiskFullError) and isinstance(e, SelfposeError)
    assert str(tmp_path / "out") in str(e) and "3 MiB" in str(e) and "\n" not in str(e)
    assert disk_full(OSError(errno.EACCES, "denied"), tmp_path) is None
    assert disk_full(ValueError("x"), tmp_path) is None


def test_cli_prints_one_line_and_exits_2_for_any_selfpose_error(capsys):
    import pytest
    import typer

    from selfpose.cli import _run

    def boom():
        raise SelfposeError("something went wrong\n   on two lines; do this")

    with pytest.raises(typer.Exit) as ex:
        _run(boom)
    assert ex.value.exit_code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: something went wrong on two lines; do this"
