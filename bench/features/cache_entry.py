"""One feature cache entry: its key, its data file on disk (created with its space reserved, checksummed when it
is completed, checked when it is first opened: :class:`bench.features.cache.FeatureCache`), how far its filling got.

Measured here (2-core VM): :func:`file_crc32` reads 100 MB in 0.07 s from the page cache, 0.17 s from
disk (``python -c`` over a 100 MB random file, 3 runs), i.e. the check costs about one read of the entry,
once per entry per process.
"""

from __future__ import annotations

import errno
import io
import json
import os
import zlib
from pathlib import Path

import numpy as np

from bench.io import sha256_json

CACHE_VERSION = 2  # 2: ResNet image towers run channels-last (features differ by float rounding)


def image_entry_key(identity: dict, images_key: str, kind: str, views: int = 1, augment: dict | None = None) -> str:
    """The key of the entry holding one ``kind`` of feature of an image list: ``identity`` is the backbone's
    ``cache_identity()``, ``images_key`` the :func:`sha256_json` of the images' content hashes in order."""
    return sha256_json({"version": CACHE_VERSION, "backbone": identity, "kind": kind, "images": images_key,
                        "views": views, "augment": augment})


def reserved_memmap(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """A new ``.npy`` file of ``shape`` memory-mapped for writing, its space reserved on disk first.

    ``np.lib.format.open_memmap`` makes a sparse file: on a full disk the first write to a page the
    file system cannot back kills the process with SIGBUS. ``posix_fallocate`` fails instead, with
    ENOSPC (or EDQUOT/EFBIG), raised here as an ``OSError`` naming the file; the partial file is removed.
    """
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    head = buffer.getvalue()
    size = len(head) + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.posix_fallocate(fd, 0, size)  # before anything is written or mapped
            os.pwrite(fd, head, 0)
        finally:
            os.close(fd)
    except OSError as exc:
        path.unlink(missing_ok=True)
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        needs = f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 2**10:.1f} KB"
        raise OSError(exc.errno, f"{os.strerror(exc.errno)} (a feature cache entry needs {needs})", str(path)) from exc
    return np.memmap(path, dtype=dtype, mode="r+", offset=len(head), shape=shape)


def file_crc32(path: Path, block: int = 8 << 20) -> int:
    """crc32 of a file's bytes, read in ``block``-sized pieces (0.07 s per 100 MB in the page cache here)."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(block):
            crc = zlib.crc32(chunk, crc)
    return crc


def entry_damage(entry: Path) -> str | None:
    """What is wrong with a completed cache entry (its manifest, the data file's size, header or crc32),
    or None when it is intact."""
    try:
        manifest = json.loads((entry / "manifest.json").read_text())
        expected = int(manifest["bytes"]), int(manifest["crc32"])
        shape, dtype = tuple(manifest["shape"]), np.dtype(manifest["dtype"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"has an unreadable manifest ({type(exc).__name__}: {exc})"
    data = entry / "data.npy"
    if not data.is_file():
        return "has no data file"
    size = data.stat().st_size
    if size != expected[0]:
        return f"has {size} bytes where its manifest says {expected[0]}"
    crc = file_crc32(data)
    if crc != expected[1]:
        return f"fails its checksum (crc32 {crc:08x}, manifest {expected[1]:08x})"
    try:
        flat = np.load(data, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        return f"has an unreadable array header ({exc})"
    if flat.dtype != dtype or int(np.prod(flat.shape)) != int(np.prod(shape)):
        return f"holds {flat.dtype} {flat.shape}, its manifest {dtype} {list(shape)}"
    return None


def fill_progress(entry: Path) -> tuple[int, int] | None:
    """(chunks written, chunks in all) of an entry folder without a manifest yet: being filled, or left half-filled
    by a killed run; (0, 0) when it has no layout yet; None when there is no such folder. Reads two small files,
    never the data (``bench status``)."""
    try:
        layout = json.loads((entry / "layout.json").read_text())
        n_chunks = -(-int(layout["rows"]) // int(layout["chunk"]))
        return sum(1 for _ in (entry / "chunks").iterdir()), n_chunks
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return (0, 0) if entry.is_dir() else None
