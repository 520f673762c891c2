"""Content-addressed cache of frozen CLIP features, fp16 and memory-mapped.

An entry is a folder ``<root>/features/<key[:2]>/<key>/`` holding ``data.npy`` (read with
``mmap_mode='r'``, so memory is bounded by the batch, not the dataset) and ``manifest.json``.
The key is a sha256 of everything that changes the bytes: the backbone (spec, weights hash,
preprocessing), the feature kind, the content hashes of the images (or the caption texts), the
views/augmentation and the cache format version. The manifest is written last, by atomic
rename; an entry without one is never read. Rows are filled in fixed-size chunks, each marked
done after its rows are flushed, so an interrupted extraction resumes where it stopped, and
ranks of a distributed job can fill disjoint chunks of the same entries.

Verified when read: the manifest holds the size and crc32 of ``data.npy`` (one streaming pass over
the finished file when the entry is completed). The first time a process opens an entry it checks
both (about one read of the file: 0.07 s per 100 MB here, see :mod:`bench.features.cache_entry`); a damaged
entry (manifest, size, header or checksum) is deleted and rebuilt, with a one-line warning.
``FeatureCache(rebuild=True)`` (``bench run --rebuild-features``) rebuilds every entry the process
opens, once. The sqlite index of image hashes is a memo: an unreadable one is recreated, with a
warning. The data file's space is reserved before it is memory-mapped, so a full disk ends in an
``OSError(ENOSPC)`` naming the file, not a SIGBUS.

Why not an existing cache library: we need resumable, chunked, rank-sharded writes into one
memory-mappable array per entry, and keys derived from file content; joblib/diskcache store
whole pickled values instead.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from bench.errors import UsageError
from bench.features.augment import ImageRows, augmentation
from bench.features.cache_entry import CACHE_VERSION, entry_damage, file_crc32, image_entry_key, reserved_memmap
from bench.features.cache_rows import RowIndex, RowSource, family_key
from bench.features.hashes import FileHashes
from bench.io import read_json, sha256_json, write_json
from bench.locking import exclusive
from bench.phases import timed

DEFAULT_CHUNK = 256
log = logging.getLogger("bench")


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


class FeatureCache:
    """Frozen image and caption features, computed once and reused by every method, ratio and seed."""

    def __init__(self, root: str | Path, chunk_size: int = DEFAULT_CHUNK, progress: bool = True,
                 rebuild: bool = False):
        self.root = Path(root).expanduser()
        self.chunk_size = chunk_size
        self.progress = progress
        self._tokens: dict[tuple, torch.Tensor] = {}  # (tokenizer, captions key) -> token ids, this process
        self.rebuild = rebuild  # rebuild every entry this process opens, once (bench run --rebuild-features)
        self._verified: set[str] = set()  # keys checked (or written) by this process
        # True while every rank of a torch.distributed job makes the same calls (the sweep's prepare
        # phase): chunks are then split across ranks, with barriers. False inside cells, which ranks
        # run independently.
        self.sharded = False
        self._hashes: FileHashes | None = None
        self._rows: RowIndex | None = None

    def shard(self) -> tuple[int, int]:
        """(rank, world size) to split work across: the job's while ``sharded``, else (0, 1)."""
        if self.sharded and _distributed():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    # ----- keys -------------------------------------------------------------------------------
    def file_hashes(self, paths: list[str]) -> list[str]:
        if self._hashes is None:
            self._hashes = FileHashes(self.root / "file_hashes.sqlite")
        with timed("image content hashes"):
            return self._hashes(paths, self.progress)

    def rows(self) -> RowIndex:
        """The index of which entry holds which image's features (row reuse across overlapping sets)."""
        if self._rows is None:
            self._rows = RowIndex(self.root / "feature_rows.sqlite")
        return self._rows

    def entry_dir(self, key: str) -> Path:
        return self.root / "features" / key[:2] / key

    def is_complete(self, key: str) -> bool:
        return (self.entry_dir(key) / "manifest.json").is_file()

    def is_valid(self, key: str) -> bool:
        """Whether the entry is complete and intact (size and crc32 as its manifest says), checked once per
        process. A damaged entry is deleted, with a one-line warning, so the caller fills it again; so is
        every entry, the first time this process opens it, when ``rebuild`` is set."""
        if key in self._verified:
            return True
        entry = self.entry_dir(key)
        if not (entry / "manifest.json").is_file():
            return False
        if self.rebuild:
            log.info("rebuilding feature cache entry %s (--rebuild-features)", entry)
            reason = None
        else:
            reason = entry_damage(entry)
            if reason is None:
                self._verified.add(key)
                return True
            log.warning("feature cache entry %s %s; rebuilding it", entry, reason)
        shutil.rmtree(entry)
        return False

    def holds(self, key: str) -> bool:
        """Whether a complete, intact entry ``key`` is on disk now (a donor of rows for another entry)."""
        return self.is_complete(key) and self.is_valid(key)

    def read(self, key: str) -> np.ndarray:
        """A completed entry's array, memory-mapped read-only, in its manifest's shape."""
        entry = self.entry_dir(key)
        if not (entry / "manifest.json").is_file():
            raise KeyError(f"feature cache entry {key} is not complete")
        shape = read_json(entry / "manifest.json")["shape"]
        return np.load(entry / "data.npy", mmap_mode="r", allow_pickle=False).reshape(shape)  # a view: no copy

    # ----- public API -------------------------------------------------------------------------
    def image_features(self, backbone, paths: list[str], kinds, *, also=(), views: int = 1,
                       augment: dict | None = None, batch_size: int = 64, num_workers: int = 0, desc: str = "",
                       where: str = "") -> dict[str, np.ndarray]:
        """Features of ``kinds`` for every image, as read-only memmaps [views, N, ...] (fp16).

        ``views=1, augment=None``: the backbone's test transform. ``augment=dict(scale=..., flip=...)``:
        ``views`` augmented views per image (the ``cached`` protocol with K views). ``where`` (e.g.
        ``coco2014/test``) is named in the error for a missing or corrupt image.
        ``also``: more kinds to store from the same encoder pass when these images have to be encoded
        anyway (what other consumers of the same images will ask for: one pass serves them all);
        only ``kinds`` are returned. With one plain view, rows another entry of the same backbone and
        kind already holds (same image content) are copied, not encoded (bench/features/cache_rows.py).
        """
        if views < 1 or (views > 1 and augment is None):
            raise UsageError("views must be >= 1, and views > 1 needs an augment setting")
        hashes = self.file_hashes(list(paths))
        images_key = sha256_json(hashes)
        keys = {kind: image_entry_key(backbone.cache_identity(), images_key, kind, views, augment)
                for kind in dict.fromkeys([*kinds, *also])}
        missing = {kind: key for kind, key in keys.items() if not self.is_valid(key)}
        if missing:
            shareable = views == 1 and augment is None
            families = {kind: family_key(CACHE_VERSION, backbone.cache_identity(), kind) for kind in missing}
            source = RowSource(hashes, {kind: self.rows().find(families[kind], hashes, self.holds)
                                        for kind in missing} if shareable else {}, self.read)
            aug = augmentation(backbone, **augment) if augment is not None else None
            rows_dataset = ImageRows(list(paths), np.arange(views * len(paths)), len(paths), backbone.preprocess, aug,
                                     where=where)

            def produce(chunks: list[np.ndarray]):
                encode = [rows[~source.copy[rows % len(paths)]] for rows in chunks]
                # one loader over every pending chunk's rows to encode, so workers start once and prefetch
                loader = iter(DataLoader(rows_dataset, batch_sampler=[r for r in encode if len(r)],
                                         num_workers=num_workers, pin_memory=backbone.device.type == "cuda"))
                for rows, encoded_rows in zip(chunks, encode, strict=True):
                    feats = backbone.encode_images(next(loader), tuple(missing)) if len(encoded_rows) else {}
                    copied = rows[source.copy[rows % len(paths)]]
                    if not len(copied):
                        yield {kind: feats[kind].cpu().numpy() for kind in missing}
                        continue
                    out = {}
                    for kind in missing:
                        donated = source.values(kind, copied)
                        out[kind] = np.empty((len(rows), *donated.shape[1:]), np.float32)
                        out[kind][source.copy[rows % len(paths)]] = donated
                        if len(encoded_rows):
                            out[kind][~source.copy[rows % len(paths)]] = feats[kind].cpu().numpy()
                    yield out

            with timed("image features: extract and write"):
                self._fill(missing, views * len(paths), produce, batch_size, meta={
                    "what": "image features", "n_images": len(paths), "views": views, "augment": augment,
                    "n_copied": int(source.copy.sum()), "backbone": backbone.cache_identity(), "desc": desc},
                    lead_shape=(views, len(paths)))
            if shareable:
                for kind, key in missing.items():
                    self.rows().add(families[kind], key, hashes)
        return {kind: self.read(keys[kind]) for kind in kinds}

    def caption_features(self, backbone, captions: list[str], *, batch_size: int = 256,
                         desc: str = "") -> dict[str, np.ndarray]:
        """Texts as images (TaI-DPT): ``global`` [N, D] (EOT), ``dense`` [N, L, D] (every token),
        ``dense_mask`` [N, L] (False at padding); L = the longest caption's token count."""
        text_key = sha256_json([hashlib.sha1(c.encode()).hexdigest() for c in captions])
        memo = (backbone.spec.model, text_key)  # tokenizing ~2k captions takes ~0.3 s; cells ask again and again
        if memo not in self._tokens:
            self._tokens[memo] = backbone.tokenize(captions).cpu()
        ids = self._tokens[memo]
        length = int((ids != 0).sum(1).max()) if len(captions) else 1
        keys = {kind: sha256_json({"version": CACHE_VERSION, "backbone": backbone.cache_identity(), "kind": kind,
                                   "captions": text_key, "length": length})
                for kind in ("global", "dense", "dense_mask")}
        missing = {kind: key for kind, key in keys.items() if not self.is_valid(key)}
        if missing:
            def produce(chunks: list[np.ndarray]):
                for rows in chunks:
                    batch = ids[rows][:, :length]  # every caption's EOT lies within the first `length` tokens
                    eot, tokens = backbone.encode_text_tokens(batch)
                    out = {"global": eot.cpu().numpy(), "dense": tokens.cpu().numpy(),
                           "dense_mask": (batch != 0).numpy()}
                    yield {kind: out[kind] for kind in missing}

            with timed("caption features: extract and write"):
                self._fill(missing, len(captions), produce, batch_size,
                           meta={"what": "caption features", "n_captions": len(captions),
                                 "backbone": backbone.cache_identity(), "desc": desc}, lead_shape=(len(captions),))
        return {kind: self.read(key) for kind, key in keys.items()}

    # ----- the resumable writer ----------------------------------------------------------------
    def _fill(self, keys: dict[str, str], n_rows: int,
              produce: Callable[[list[np.ndarray]], Iterator[dict[str, np.ndarray]]],
              batch_size: int, meta: dict, lead_shape: tuple[int, ...]) -> None:
        """Fill the entries ``keys`` (name -> key) chunk by chunk; resumable and rank-sharded.

        ``produce(chunks)`` yields, for each array of row indices in ``chunks``, the values of
        those rows for every entry. Rows are stored flat ([rows, ...]); ``lead_shape`` is the
        shape the flat row axis has when read back.

        Independent processes sharing the cache (Slurm array tasks, ranks running different cells)
        take an exclusive file lock on these entries first, so one fills them while the others wait
        and then read them; ranks in the sharded prepare phase cooperate instead.
        """
        if self.sharded and _distributed():
            self._fill_entries(keys, n_rows, produce, batch_size, meta, lead_shape, sharded=True)
            return
        lock_path = self.root / "locks" / f"{sha256_json(sorted(keys.values()))[:32]}.lock"
        with exclusive(lock_path, f"the feature cache entries of {meta.get('desc') or meta['what']}"):
            keys = {name: key for name, key in keys.items() if not self.is_valid(key)}
            if keys:
                self._fill_entries(keys, n_rows, produce, batch_size, meta, lead_shape, sharded=False)

    def _fill_entries(self, keys, n_rows, produce, batch_size, meta, lead_shape, sharded: bool) -> None:
        from tqdm import tqdm

        rank, world = self.shard() if sharded else (0, 1)
        chunk = batch_size or self.chunk_size
        n_chunks = (n_rows + chunk - 1) // chunk
        dirs = {name: self.entry_dir(key) for name, key in keys.items()}
        for d in dirs.values():
            (d / "chunks").mkdir(parents=True, exist_ok=True)
        # a chunk size other than the one an interrupted run used would misalign the markers
        for d in dirs.values():
            layout = d / "layout.json"
            if layout.is_file() and read_json(layout)["chunk"] != chunk:
                for marker in (d / "chunks").iterdir():
                    marker.unlink()
            write_json(layout, {"chunk": chunk, "rows": n_rows}, indent=None)
        pending = [c for c in range(n_chunks) if c % world == rank
                   and not all((d / "chunks" / str(c)).exists() for d in dirs.values())]
        arrays: dict[str, np.ndarray] = {}
        chunk_rows = [np.arange(c * chunk, min((c + 1) * chunk, n_rows)) for c in pending]
        bar = tqdm(total=len(pending), desc=meta.get("desc") or meta["what"], unit="batch",
                   disable=not self.progress, leave=False)
        for c, rows, values in zip(pending, chunk_rows, produce(chunk_rows)):
            for name, value in values.items():
                if name not in dirs:  # completed by another process while this one waited for the lock
                    continue
                if name not in arrays:
                    arrays[name] = self._open_array(dirs[name], value, n_rows)
                arrays[name][rows] = value
            for name in arrays:
                arrays[name].flush()
                (dirs[name] / "chunks" / str(c)).touch()
            bar.update(1)
        bar.close()
        if sharded:
            torch.distributed.barrier()
        if rank != 0:
            torch.distributed.barrier()  # wait for rank 0's manifests
            return
        for name, d in dirs.items():
            if (d / "manifest.json").is_file():
                continue
            done = sum((d / "chunks" / str(c)).exists() for c in range(n_chunks))
            if done != n_chunks:
                raise RuntimeError(f"feature cache entry {d} has {done}/{n_chunks} chunks after extraction")
            flat = np.load(d / "data.npy", mmap_mode="r", allow_pickle=False)
            shape = list(lead_shape) + list(flat.shape[1:])
            manifest = dict(meta, key=keys[name], kind=name, shape=shape, dtype=str(flat.dtype), version=CACHE_VERSION,
                            bytes=(d / "data.npy").stat().st_size, crc32=file_crc32(d / "data.npy"))
            for marker in (d / "chunks").iterdir():
                marker.unlink()
            (d / "chunks").rmdir()
            write_json(d / "manifest.json", manifest)
            self._verified.add(keys[name])
        if sharded:
            torch.distributed.barrier()

    @staticmethod
    def _open_array(entry: Path, value: np.ndarray, n_rows: int) -> np.ndarray:
        path = entry / "data.npy"
        dtype = np.dtype(np.bool_ if value.dtype == np.bool_ else np.float16)
        shape = (n_rows, *value.shape[1:])
        if path.is_file():
            try:
                existing = np.load(path, mmap_mode="r+", allow_pickle=False)
            except (ValueError, OSError):  # killed while the file was being created: start it again
                existing = None
            if existing is not None and existing.shape == shape and existing.dtype == dtype:
                return existing
        return reserved_memmap(path, dtype, shape)

