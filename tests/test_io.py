"""bench.io: atomic writes leave the old file or the whole new one; JSON in/out; canonical hashes."""

import hashlib
import json

import pytest

from bench.io import atomic_path, read_json, sha256_json, write_json


def test_write_json_round_trip_and_no_temp_left(tmp_path):
    path = tmp_path / "sub" / "record.json"
    write_json(path, {"b": 1, "a": [1.5, None], "p": tmp_path})
    assert read_json(path) == {"b": 1, "a": [1.5, None], "p": str(tmp_path)}  # non-JSON values by str
    assert path.read_text() == json.dumps({"b": 1, "a": [1.5, None], "p": str(tmp_path)}, indent=1)
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]


def test_atomic_path_keeps_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "scores.npz"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(path, suffix=".npz") as tmp:
        assert tmp.name.startswith(".scores.npz.") and tmp.name.endswith(".tmp.npz")
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.npz"]  # the temp file is gone


def test_sha256_json_is_canonical():
    assert sha256_json({"b": 2, "a": 1}) == sha256_json({"a": 1, "b": 2})
    assert sha256_json([1, "x"]) == hashlib.sha256(b'[1, "x"]').hexdigest()
