"""A cell's epoch checkpoints: written atomically through bench's own writer, holding only plain data, and
read back with ``torch.load(weights_only=True)`` -- so a checkpoint file in a work dir can never run code.

mmengine's Runner saves ``meta``, the model's ``state_dict``, the optimizer and scheduler states, and the
``message_hub``. All of it is tensors and plain Python values except the message hub: its ``log_scalars``
are mmengine ``HistoryBuffer`` objects (numpy arrays inside) and its ``runtime_info`` holds numpy scalars
(``eta``). ``torch.load(weights_only=True)`` refuses those (``torch.serialization.get_unsafe_globals_in_checkpoint``
lists ``HistoryBuffer``, ``numpy.ndarray``, ``numpy.dtype``, ``numpy._core.multiarray.scalar``,
``numpy._core.multiarray._reconstruct`` and ``builtins.getattr``), and allowing them would allow ``getattr``
-- any attribute of any allowed object. So :class:`PlainCheckpointHook` turns them into plain lists and
numbers before each save and back into ``HistoryBuffer`` objects after each load, and nothing needs
allowing: no process-wide switch in the environment, no ``safe_globals`` scope.

Loading goes through the ``bench-safe://`` scheme registered with mmengine's ``CheckpointLoader``, which
passes ``weights_only=True`` explicitly (torch's default can be turned off from the environment). Saving goes
through the ``bench_atomic`` file backend: a temp file and a rename (:func:`bench.io.atomic_path`), so a kill
or a full disk never leaves half a checkpoint, and a write that fails names the checkpoint file (the CLI's
one line for a full disk or a read-only folder).
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

from bench.errors import CheckpointError
from bench.features.weights import refused_globals
from bench.io import atomic_path, atomic_write_text

log = logging.getLogger("bench")
SCHEME = "bench-safe://"
BACKEND = "bench_atomic"
_BUFFER = "__bench_history_buffer__"  # marks a HistoryBuffer written as plain data


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """A checkpoint's contents, unpickled with ``weights_only=True`` (tensors and plain data only).
    :class:`CheckpointError` naming the file when it is damaged or holds anything else."""
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as exc:
        refused = refused_globals(exc)
        why = f"it would unpickle {refused}, which could run code" if refused else \
            f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"
        raise CheckpointError(f"checkpoint {path} is not a plain checkpoint bench can load safely ({why})") from exc
    if not (isinstance(checkpoint, dict) and isinstance(checkpoint.get("meta"), dict)
            and isinstance(checkpoint.get("message_hub"), dict) and "state_dict" in checkpoint):
        raise CheckpointError(f"checkpoint {path} is not a checkpoint of a cell (no meta, message_hub and state_dict)")
    return checkpoint


def _load_from_scheme(filename: str, map_location=None) -> dict:
    return load_checkpoint(filename[len(SCHEME):], map_location=map_location)


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic writes (temp file + rename) that name their target on failure."""

    def put(self, obj: bytes, filepath) -> None:
        with atomic_path(Path(filepath)) as tmp, open(tmp, "wb") as f:
            f.write(obj)

    def put_text(self, obj: str, filepath, encoding: str = "utf-8") -> None:
        atomic_write_text(Path(filepath), obj)


CheckpointLoader.register_scheme(SCHEME, _load_from_scheme, force=True)
register_backend(BACKEND, AtomicLocalBackend, force=True)


def to_plain(value):
    """numpy arrays and scalars -> lists and numbers, HistoryBuffers -> marked dicts, at any depth."""
    if isinstance(value, HistoryBuffer):
        logs, counts = value.data
        return {_BUFFER: True, "log": np.asarray(logs).tolist(), "count": np.asarray(counts).tolist(),
                "max_length": int(value.max_length)}
    if isinstance(value, dict):
        return type(value)((k, to_plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(v) for v in value)
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


def from_plain(value):
    """The inverse of :func:`to_plain` for what mmengine reads back: marked dicts -> HistoryBuffers."""
    if isinstance(value, dict):
        if value.get(_BUFFER):
            return HistoryBuffer(value["log"], value["count"], value["max_length"])
        return type(value)((k, from_plain(v)) for k, v in value.items())
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    return value


class PlainCheckpointHook(Hook):
    """Keeps mmengine's checkpoints plain data (see the module docstring): the message hub is converted on
    save and restored on load; the rest of a checkpoint is plain already."""

    priority = "VERY_HIGH"

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint["message_hub"] = to_plain(checkpoint["message_hub"])
        checkpoint["meta"] = to_plain(checkpoint["meta"])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint["message_hub"] = from_plain(checkpoint["message_hub"])
        # mmengine's resume runs meta["config"] as a Python config file (Config.fromstring): plain data that is
        # code. bench never writes it, so one that is there was planted: it is dropped unread
        checkpoint["meta"].pop("config", None)


def clear_checkpoints(cell_dir: Path) -> None:
    """Delete a cell's epoch checkpoints and mmengine's pointer to the last one."""
    for path in [*cell_dir.glob("*.pth"), cell_dir / "last_checkpoint"]:
        path.unlink(missing_ok=True)


def latest_checkpoint(cell_dir: Path) -> str | None:
    """The newest epoch checkpoint that loads completely with ``weights_only=True``, as a ``bench-safe://`` path
    for mmengine's resume; one that does not (cut short, damaged, or holding Python objects: it is never
    unpickled) is skipped with a one-line warning naming it, and training resumes from the one before."""
    epochs = sorted((p for p in cell_dir.glob("epoch_*.pth") if p.stem[6:].isdigit()), key=lambda p: int(p.stem[6:]),
                    reverse=True)
    for path in epochs:
        try:
            load_checkpoint(path)
            return SCHEME + str(path)
        except CheckpointError as exc:
            log.warning("ignoring %s; resuming from an earlier epoch or from the start", exc)
    return None
