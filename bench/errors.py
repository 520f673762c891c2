"""Every error bench raises for its user, under one base class.

A :class:`BenchError`'s message is one line that says what is wrong, where (the file, option or config key)
and how to fix it; ``bench`` prints it as ``bench: error: <message>`` and exits with its ``exit_code`` (2:
bad input, a missing resource, a fault on the user's side). A new error class derives from one of these, so
the CLI turns it into one line without being told about it (tests/test_errors.py checks that every
exception class of bench and its methods does). Each class also derives from the built-in exception that
its callers and plug-ins caught before (ValueError, KeyError, RuntimeError), so ``except ValueError`` still
catches a bad config value.

Standard library only: every layer may import it (the report and the analysis included).
"""

from __future__ import annotations


class BenchError(Exception):
    """An error whose message is meant for the user: one line, naming the input and the fix."""

    exit_code = 2

    def __str__(self) -> str:  # KeyError's own __str__ would quote the message
        return str(self.args[0]) if self.args else ""


class UsageError(BenchError, ValueError):
    """A command-line option or a config value that bench does not accept; the message names it."""


class UnknownNameError(BenchError, KeyError):
    """An unknown method, dataset, generator or config name; the message lists the valid names."""


class ConfigError(UsageError):
    """A config key or value the code does not accept; the message names the key path."""


class DataError(BenchError, ValueError):
    """Bad or missing dataset input; the message names the file and how to fix it.

    Raised in a DataLoader worker, torch re-raises it in the main process as ``DataError("Caught
    DataError in DataLoader worker process 0.\\nOriginal Traceback ...")`` (``torch._utils.ExceptionWrapper``);
    such a message is cut back to the original one-line message, its last line.
    """

    def __init__(self, message: str = ""):
        if isinstance(message, str) and message.startswith("Caught ") and "\nOriginal Traceback" in message:
            last = message.rstrip().splitlines()[-1]  # "bench.errors.DataError: <message>"
            message = last.split(": ", 1)[1] if ": " in last else last
        super().__init__(message)


class MissingResourcesError(BenchError):
    """External resources the planned cells need (weights, pipelines, corpora, word lists, split files) are
    missing; the message lists each with the config key or command that supplies it."""


class BackboneError(BenchError, RuntimeError):
    """The backbone cannot be built or its weights cannot be loaded; the message says how to fix it."""


class SharedBackboneError(BackboneError):
    """The run's own backbone (the config's ``backbone``, which every cell reads) cannot be loaded: the run stops,
    rather than every cell failing alike."""


class GeneratorError(BenchError, RuntimeError):
    """A generator cannot be loaded; the message says how to supply it."""


class PluginError(BenchError, RuntimeError):
    """An external plug-in could not be loaded or clashes with a registered name."""


class JobError(BenchError, RuntimeError):
    """A worker process died (killed, out of memory, crashed) while running a task."""


class RecordError(BenchError, ValueError):
    """A record file that cannot be read or does not follow the record schema; the message names it."""


class ScoresError(BenchError, ValueError):
    """A scores file that is missing, damaged or lacks an array; the message names it (``path``, ``reason``)."""

    def __init__(self, path, reason: str):
        super().__init__(f"scores file {path} is {reason}")
        self.path, self.reason = str(path), reason

    def __reduce__(self):  # (path, reason) rebuild it in another process (bench run --jobs)
        return type(self), (self.path, self.reason)


class CheckpointError(BenchError, RuntimeError):
    """A checkpoint that bench will not load (damaged, or holding Python objects beyond tensors and plain data)."""


class NonFiniteLoss(BenchError, FloatingPointError):
    """A training loss became NaN or inf."""


class CellFailed(BenchError):
    """A cell failed at run time; its failed record is written (``record``) and the sweep goes on with the others.
    The message is the record's one-line ``error``."""

    exit_code = 1

    def __init__(self, message: str, record: str | None = None):
        super().__init__(message)
        self.record = record

    def __reduce__(self):
        return type(self), (self.args[0], self.record)
