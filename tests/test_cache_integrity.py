"""Feature cache integrity: checksums verified when an entry is opened, damaged entries and a damaged
index rebuilt with a warning, --rebuild-features, space reserved before mapping, image errors in workers."""

import errno
import json
import logging

import numpy as np
import pytest

from bench.data.base import DataError
from bench.data.coco import COCO2014
from bench.features.cache import FeatureCache
from bench.features.cache_entry import entry_damage, file_crc32, reserved_memmap


class Counter:
    """Counts backbone.encode_images calls."""

    def __init__(self, backbone):
        self.inner, self.calls = backbone.encode_images, 0

    def __call__(self, pixels, kinds):
        self.calls += 1
        return self.inner(pixels, kinds)


@pytest.fixture
def images(tiny_coco):
    return COCO2014(str(tiny_coco[0])).load("train").image_paths  # 12 images


@pytest.fixture
def counted(tiny_rn, monkeypatch):
    counter = Counter(tiny_rn)
    monkeypatch.setattr(tiny_rn, "encode_images", counter)
    return counter


def _entry(root):
    [entry] = (root / "features").glob("*/*")
    return entry


def _damage(path, offset_from_end=100, n=8):
    data = bytearray(path.read_bytes())
    data[-offset_from_end:-offset_from_end + n] = bytes(255 - b for b in data[-offset_from_end:-offset_from_end + n])
    path.write_bytes(bytes(data))


def test_manifest_holds_size_and_crc32(tmp_path, tiny_rn, images):
    FeatureCache(tmp_path, progress=False).image_features(tiny_rn, images, ["global"], batch_size=5)
    entry = _entry(tmp_path)
    manifest = json.loads((entry / "manifest.json").read_text())
    import zlib

    raw = (entry / "data.npy").read_bytes()
    assert manifest["bytes"] == len(raw) and manifest["crc32"] == zlib.crc32(raw) == file_crc32(entry / "data.npy")
    assert entry_damage(entry) is None


def test_damaged_bytes_rebuilt_with_a_warning(tmp_path, tiny_rn, images, counted, caplog):
    clean = np.array(FeatureCache(tmp_path, progress=False).image_features(tiny_rn, images, ["global"],
                                                                            batch_size=5)["global"])
    assert counted.calls == 3
    entry = _entry(tmp_path)
    _damage(entry / "data.npy")
    damaged = np.load(entry / "data.npy")
    assert not np.array_equal(damaged.reshape(clean.shape), clean)  # what a reader would have used before
    assert "fails its checksum" in entry_damage(entry)
    with caplog.at_level(logging.WARNING, logger="bench"):
        again = FeatureCache(tmp_path, progress=False).image_features(tiny_rn, images, ["global"], batch_size=5)
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"feature cache entry {entry} fails its checksum (crc32 ") and "rebuilding it" in warning
    assert counted.calls == 6  # rebuilt: the three chunks again
    np.testing.assert_array_equal(again["global"], clean)
    caplog.clear()
    cache = FeatureCache(tmp_path, progress=False)  # intact now: read, verified once per process
    cache.image_features(tiny_rn, images, ["global"], batch_size=5)
    cache.image_features(tiny_rn, images, ["global"], batch_size=5)
    assert counted.calls == 6 and not caplog.records


@pytest.mark.parametrize("damage, reason", [
    (lambda e: (e / "manifest.json").write_text('{"shape": [1, 12'), "has an unreadable manifest"),
    (lambda e: (e / "manifest.json").write_text(json.dumps({"shape": [1, 12, 32], "dtype": "float16"})),
     "has an unreadable manifest (KeyError: 'bytes')"),
    (lambda e: (e / "data.npy").write_bytes((e / "data.npy").read_bytes()[:-64]), "bytes where its manifest says"),
    (lambda e: (e / "data.npy").unlink(), "has no data file"),
])
def test_damaged_manifest_or_data_file_rebuilt(tmp_path, tiny_rn, images, counted, caplog, damage, reason):
    clean = np.array(FeatureCache(tmp_path, progress=False).image_features(tiny_rn, images[:4], ["global"])["global"])
    damage(_entry(tmp_path))
    with caplog.at_level(logging.WARNING, logger="bench"):
        again = FeatureCache(tmp_path, progress=False).image_features(tiny_rn, images[:4], ["global"])
    assert reason in caplog.text and counted.calls == 2
    np.testing.assert_array_equal(again["global"], clean)


def test_corrupt_index_recreated(tmp_path, tiny_rn, images, counted, caplog):
    clean = np.array(FeatureCache(tmp_path, progress=False).image_features(tiny_rn, images[:4], ["global"])["global"])
    index = tmp_path / "file_hashes.sqlite"
    index.write_bytes(b"this is not an sqlite database" * 100)
    with caplog.at_level(logging.WARNING, logger="bench"):
        again = FeatureCache(tmp_path, progress=False).image_features(tiny_rn, images[:4], ["global"])
    assert f"feature cache index {index} is unreadable (file is not a database); recreating it" in caplog.text
    assert counted.calls == 1  # image hashes recomputed, same key: the features are read, not re-extracted
    np.testing.assert_array_equal(again["global"], clean)


def test_rebuild_recomputes_each_entry_once(tmp_path, tiny_rn, images, counted):
    FeatureCache(tmp_path, progress=False).image_features(tiny_rn, images[:4], ["global"])
    cache = FeatureCache(tmp_path, progress=False, rebuild=True)
    cache.image_features(tiny_rn, images[:4], ["global"])
    cache.image_features(tiny_rn, images[:4], ["global"])  # the same process: rebuilt once only
    assert counted.calls == 2


def test_space_reserved_before_mapping(tmp_path, monkeypatch):
    path = tmp_path / "data.npy"
    array = reserved_memmap(path, np.dtype(np.float16), (10, 3))
    assert path.stat().st_blocks * 512 >= path.stat().st_size  # allocated, not sparse
    array[:] = 1.5
    array.flush()
    np.testing.assert_array_equal(np.load(path), np.full((10, 3), 1.5, np.float16))

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.posix_fallocate", full)
    with pytest.raises(OSError) as info:
        reserved_memmap(tmp_path / "big.npy", np.dtype(np.float16), (1000, 1000))
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "big.npy")
    assert "needs 1.9 MB" in info.value.strerror and not (tmp_path / "big.npy").exists()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # torch worker teardown
@pytest.mark.parametrize("workers", [0, 2])
def test_zero_byte_and_corrupt_images_named_with_split(tmp_path, tiny_rn, images, workers):
    empty, bad = tmp_path / "empty.jpg", tmp_path / "bad.jpg"
    empty.write_bytes(b"")
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    cache = FeatureCache(tmp_path / "c", progress=False)
    with pytest.raises(DataError) as info:
        cache.image_features(tiny_rn, [images[0], str(empty)], ["global"], num_workers=workers, where="coco2014/test")
    assert str(info.value) == (f"empty image file (0 bytes): {empty} (in coco2014/test); replace it or drop it "
                               "from the annotations")
    with pytest.raises(DataError) as info:
        cache.image_features(tiny_rn, [images[0], str(bad)], ["global"], num_workers=workers, where="coco2014/train")
    assert str(info.value) == f"corrupt image {bad} (in coco2014/train): OSError: Truncated File Read"
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


def _zsclip(config, work, *extra):
    from bench.cli import main

    assert main(["run", "--methods", "zsclip", "--dataset", str(config), "--work-dir", str(work), "--quiet",
                 *extra]) == 0
    return json.loads((work / "tiny" / "records" / "coco2014" / "zsclip__zero-shot__s1.json").read_text())


def _test_features(cache):
    """The entry of the test split's global features (what zsclip reads; diagnostics write others)."""
    manifests = {e: json.loads((e / "manifest.json").read_text()) for e in (cache / "features").glob("*/*")}
    [entry] = [e for e, m in manifests.items() if m["desc"] == "coco2014/test features" and m["kind"] == "global"]
    return entry


def test_damaged_entry_rebuilt_by_the_cli_with_the_clean_map(tmp_path, tiny_config, caplog):
    work = tmp_path / "w"
    clean = _zsclip(tiny_config, work)
    entry = _test_features(work / "cache")
    _damage(entry / "data.npy", offset_from_end=200, n=64)
    with caplog.at_level(logging.WARNING, logger="bench"):
        again = _zsclip(tiny_config, work, "--force")
    assert [m for m in caplog.messages if "feature cache" in m] == [
        m for m in caplog.messages if m.startswith(f"feature cache entry {entry} fails its checksum")]
    assert len(caplog.messages) == 1 and "rebuilding it" in caplog.messages[0]
    assert entry_damage(entry) is None
    assert again["mAP"] == clean["mAP"] and again["per_class_AP"] == clean["per_class_AP"]


def test_rebuild_features_flag(tmp_path, tiny_config):
    work = tmp_path / "w"
    clean = _zsclip(tiny_config, work)
    entry = _test_features(work / "cache")
    written = (entry / "manifest.json").stat().st_mtime_ns
    again = _zsclip(tiny_config, work, "--rebuild-features")  # implies --force
    assert (entry / "manifest.json").stat().st_mtime_ns != written and entry_damage(entry) is None
    assert again["mAP"] == clean["mAP"]
    record = work / "tiny" / "records" / "coco2014" / "zsclip__zero-shot__s1.json"
    assert json.loads(record.read_text())["seconds"] != clean["seconds"]  # the cell was recomputed too
