"""Exclusive file locks between processes sharing a work dir or a feature cache (``fcntl.flock``).

A lock is released when its file is closed, also when the process dies (SIGKILL included), so a killed
run never leaves a cell or a cache entry locked. The holder's pid is written into the lock file, to be
named by whoever waits. ``flock`` locks are advisory and local to one machine's kernel (and to NFS
servers that support them): processes on several hosts sharing one work dir over a file system without
lock support are not kept apart.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("bench")


@contextmanager
def exclusive(path: Path, what: str, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` for the block; yields True once held.

    When another process holds it: with ``wait`` say so in one line (naming ``what`` and the holder's
    pid) and wait for it; without, yield False at once (the caller skips ``what``; nothing is held).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b", buffering=0) as f:  # unbuffered: nothing left to flush (and fail) on close
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            log.warning("%s is locked by another process (pid %s); waiting for it", what, holder(path))
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            os.ftruncate(f.fileno(), 0)
            os.pwrite(f.fileno(), str(os.getpid()).encode(), 0)
        except OSError as exc:  # a full disk: name the file, as a failed open would
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        yield True


def holder(path: Path) -> str:
    """The pid written in a lock file ('?' when none)."""
    try:
        return Path(path).read_text().strip() or "?"
    except OSError:
        return "?"


def is_held(path: Path) -> bool:
    """Whether some process holds the lock on ``path`` now (``bench status``: a running cell). Asks for a shared
    lock without waiting and gives it back at once, so it never blocks a runner for longer than the call; a
    missing lock file is not held. Seen only where the locks are (this machine, or an NFS server with locks)."""
    try:
        f = open(path, "rb", buffering=0)
    except OSError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False
