"""One base class for every error bench raises for its user (bench/errors.py), and the CLI's one line for it."""

import ast
import importlib
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import BenchError, CellFailed, DataError, ScoresError, UnknownNameError, UsageError

ROOT = Path(__file__).resolve().parents[1]


def _exception_classes() -> list[tuple[str, str]]:
    """(module, class name) of every class defined in bench/ and methods/ whose bases name an exception."""
    found = []
    for folder, package in (("bench", "bench"), ("methods", "bench.methods")):
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [package, *path.relative_to(ROOT / folder).with_suffix("").parts]
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and any(
                        getattr(b, "id", getattr(b, "attr", "")).endswith(("Error", "Exception", "Loss", "Failed"))
                        for b in node.bases):
                    found.append((module, node.name))
    return found


def test_every_exception_class_derives_from_the_base():
    classes = _exception_classes()
    assert ("bench.errors", "DataError") in classes and ("bench.errors", "NonFiniteLoss") in classes
    strays = [f"{m}.{name}" for m, name in classes
              if not issubclass(getattr(importlib.import_module(m), name), BenchError)]
    assert strays == [], f"exception classes outside bench.errors.BenchError: {strays}"


def test_old_homes_and_builtin_bases_still_catch_them():
    from bench.data.base import DataError as data_error
    from bench.features.spec import BackboneError
    from bench.generation.generators import GeneratorError
    from bench.grid.jobs import JobError
    from bench.records import ScoresError as scores_error
    from bench.registry import PluginError

    assert data_error is DataError and scores_error is ScoresError
    for cls, builtin in ((DataError, ValueError), (UsageError, ValueError), (UnknownNameError, KeyError),
                         (BackboneError, RuntimeError), (GeneratorError, RuntimeError), (PluginError, RuntimeError),
                         (JobError, RuntimeError)):
        assert issubclass(cls, BenchError) and issubclass(cls, builtin)
    assert str(UnknownNameError("unknown method 'x'")) == "unknown method 'x'"  # not KeyError's quoted repr


def test_errors_survive_pickling_across_processes():
    import pickle

    scores = pickle.loads(pickle.dumps(ScoresError("/w/a.scores.npz", "missing")))
    assert (str(scores), scores.path, scores.reason) == ("scores file /w/a.scores.npz is missing",
                                                         "/w/a.scores.npz", "missing")
    failed = pickle.loads(pickle.dumps(CellFailed("GeneratorError: no pipeline", "/w/r.json")))
    assert (str(failed), failed.record, failed.exit_code) == ("GeneratorError: no pipeline", "/w/r.json", 1)


def test_cli_turns_a_new_subclass_into_one_line(monkeypatch, capsys):
    """A module that defines its own error class gets the one line without the CLI naming it."""

    class BrandNewError(BenchError):
        pass

    def boom(args):
        raise BrandNewError("something/in/a/file.json: what is wrong; how to fix it")

    monkeypatch.setattr("bench.cli.listing.cmd_list", boom)
    assert main(["list"]) == 2
    out, err = capsys.readouterr()
    assert err == "bench: error: something/in/a/file.json: what is wrong; how to fix it\n" and "Traceback" not in out


@pytest.mark.parametrize("show", ["", "1"])
def test_an_unexpected_exception_is_one_line_saying_so(monkeypatch, capsys, show):
    def bug(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("bench.cli.listing.cmd_list", bug)
    monkeypatch.setenv("BENCH_TRACEBACK", show)
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    last = "bench: error: unexpected ZeroDivisionError: division by zero (a bug in bench or a plug-in, or an input " \
           "it does not check yet; rerun with BENCH_TRACEBACK=1 to see where)"
    assert err.splitlines()[-1] == last
    assert ("Traceback" in err) == bool(show) and (len(err.splitlines()) == 1) != bool(show)
