"""Faults a user meets end in one line naming the file, never a traceback or a bare signal: damaged or
empty images (also in DataLoader workers), a full disk, a read-only work dir, damaged records and scores.

The full-disk and read-only cases run the CLI in a user + mount namespace (``unshare``) on a small tmpfs
or a read-only bind mount: real ENOSPC and EROFS, no root needed; skipped where namespaces are not allowed.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.records import save_scores
from bench.testing import namespaces_allowed


def _one_line_error(capfd, argv) -> str:
    """Run the CLI; assert exit 2 and exactly one line on stderr (fd level: DataLoader workers included)."""
    capfd.readouterr()
    assert main(argv) == 2
    err = capfd.readouterr().err.strip()
    assert err.startswith("bench: error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def coco(tmp_path, tiny_coco):
    root = tmp_path / "coco"
    shutil.copytree(tiny_coco[0], root)
    return root


@pytest.mark.parametrize("workers", [0, 2])
def test_empty_and_corrupt_images_name_file_and_split(tmp_path, tiny_config, coco, capfd, workers):
    run = ["run", "--dataset", str(tiny_config), "--work-dir", str(tmp_path / "w"), "--quiet", "--data-root",
           str(coco), "--methods", "zsclip", "--cfg-options", f"features.num_workers={workers}"]
    empty = sorted((coco / "val2014").iterdir())[5]
    empty.write_bytes(b"")
    assert _one_line_error(capfd, run) == (f"bench: error: empty image file (0 bytes): {empty} (in coco2014/test); "
                                           "replace it or drop it from the annotations")
    truncated = sorted((coco / "val2014").iterdir())[1]
    Image.open(truncated).save(empty)  # repaired; another one cut short
    truncated.write_bytes(truncated.read_bytes()[:300])
    err = _one_line_error(capfd, run)
    assert err.startswith(f"bench: error: corrupt image {truncated} (in coco2014/test): OSError: ")


needs_namespaces = pytest.mark.skipif(not namespaces_allowed(), reason="user/mount namespaces not allowed here")


def _in_namespace(script: str) -> subprocess.CompletedProcess:
    """``script`` (sh) as root of a new user + mount namespace: mounts there are private to it."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script], env=env,
                          capture_output=True, text=True, timeout=300)


def _bench(*args) -> str:
    return " ".join([sys.executable, "-m", "bench.cli", *map(str, args)])


@needs_namespaces
def test_full_disk_is_one_line_not_a_bus_error(tmp_path, tiny_config, coco):
    cache = tmp_path / "cache"
    cache.mkdir()
    other = tmp_path / "coco2"  # the same dataset with one test image replaced: one new feature entry
    shutil.copytree(coco, other)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(sorted((other / "val2014").iterdir())[0])
    fill = ("import os, sys; c = sys.argv[1]; s = os.statvfs(c); "
            "open(os.path.join(c, 'filler'), 'wb').write(bytes(s.f_bavail * s.f_frsize - 8192))")
    run = ["run", "--methods", "zsclip", "--dataset", tiny_config, "--quiet", "--cfg-options",
           f"runtime.cache_dir={cache}"]
    # a 512 KiB disk for the cache: a first run fills it in part, the rest is taken but two pages (the new
    # entry's lock and layout files fit, its data file does not)
    out = _in_namespace(f"mount -t tmpfs -o size=512k tmpfs {cache} && {_bench(*run, '--work-dir', tmp_path / 'a')} "
                        f"> /dev/null && {sys.executable} -c \"{fill}\" {cache} && "
                        f"{_bench(*run, '--work-dir', tmp_path / 'b', '--data-root', other)}")
    assert out.returncode == 2, out.stderr[-3000:]
    [line] = [ln for ln in out.stderr.splitlines() if not ln.startswith("WARNING:root:No pretrained")]
    assert line.startswith("bench: error: No space left on device (a feature cache entry needs 0.6 KB): cannot "
                           f"write {cache}/features/") and "Traceback" not in out.stderr
    assert line.endswith("/data.npy in " + line.split("/data.npy in ")[1]) and "free space there" in line


@needs_namespaces
def test_read_only_work_dir(tmp_path, tiny_config):
    work = tmp_path / "w"
    run = ["run", "--methods", "zsclip", "--dataset", tiny_config, "--work-dir", work, "--quiet"]
    assert main([str(a) for a in run]) == 0
    files = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in work.rglob("*")}
    read_only = f"mount --bind {work} {work} && mount -o remount,ro,bind {work} {work} && "
    # nothing left to compute: the rerun succeeds and writes nothing
    out = _in_namespace(read_only + _bench(*run))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "1 cells done, 0 failed" in out.stdout and "Traceback" not in out.stderr
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in work.rglob("*")} == files
    # something to compute (another prompt template): one line naming where it cannot write
    out = _in_namespace(read_only + _bench(*run, "--cfg-options", "'zsclip.templates=[a picture of a {}.]'"))
    assert out.returncode == 2, out.stderr[-3000:]
    [line] = [ln for ln in out.stderr.splitlines() if not ln.startswith("WARNING:root:No pretrained")
              and "stale: config changed" not in ln]
    config = work / "tiny" / "config.py"  # the first write: the run's config, changed
    assert line == (f"bench: error: Read-only file system: cannot write {config} in {config.parent}; make it "
                    "writable, or pass another --work-dir (and runtime.cache_dir for the feature cache)")


def _record(folder, method, mAP, scores):
    path = folder / f"{method}__zero-shot__s1.json"
    labels = np.array([[1, -1], [-1, 1], [1, 1], [-1, -1]], np.int8)
    test = type("Test", (), {"labels": labels, "image_ids": [1, 2, 3, 4]})
    save_scores(path, {"score": scores}, test)
    path.write_text(json.dumps({
        "status": "ok", "method": method, "dataset": "coco2014", "setting": "zero-shot", "label_ratio": None,
        "seed": 1, "config_hash": f"h-{method}", "config": {"eval_split": "test"}, "mAP": mAP,
        "per_class_AP": {"a": mAP, "b": mAP}, "backbone": {"spec": {"model": "RN50", "pretrained": "openai"}}}))
    return path


def test_report_names_and_lists_damaged_record_and_scores(tmp_path, capfd):
    folder = tmp_path / "work" / "run" / "records" / "coco2014"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    _record(folder, "alpha", 61.25, rng.random((4, 2)))
    beta = _record(folder, "beta", 55.5, rng.random((4, 2)))
    gamma = _record(folder, "gamma", 40.0, rng.random((4, 2)))
    gamma.write_text(gamma.read_text()[:40])  # cut short
    beta_scores = beta.with_suffix(".scores.npz")
    beta_scores.write_bytes(beta_scores.read_bytes()[:100])
    capfd.readouterr()
    assert main(["report", "--work-dir", str(tmp_path / "work"), "--out", str(tmp_path / "rep"), "--format", "md",
                 "--n-boot", "50"]) == 1
    out, err = capfd.readouterr()
    assert "Traceback" not in err
    assert err.splitlines() == [
        f"bench: warning: left out {beta_scores} (scores file unreadable (BadZipFile: File is not a zip file))",
        f"bench: warning: left out {gamma} (malformed record: JSONDecodeError: Unterminated string starting at: "
        "line 1 column 37 (char 36))"]
    assert "2 unreadable files left out, listed there" in out
    results = (tmp_path / "rep" / "results.md").read_text()
    assert "61.25" in results and "55.50" in results and "gamma" not in results  # the rest is reported
    index = (tmp_path / "rep" / "README.md").read_text()
    assert "## Unreadable files (left out of every table above)" in index
    assert f"- `{gamma}`: malformed record: JSONDecodeError" in index
    assert f"- `{beta_scores}`: scores file unreadable (BadZipFile" in index


def test_failed_atomic_write_names_its_target(tmp_path):
    import errno

    from bench.cli import write_fault
    from bench.io import atomic_path

    target = tmp_path / "records" / "x.scores.npz"
    with pytest.raises(OSError) as info, atomic_path(target, suffix=".npz") as tmp:
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")  # as a write on a full disk: no file named
    assert info.value.filename == str(target) and not list(target.parent.iterdir())  # the temp file is gone
    assert write_fault(info.value) == (f"No space left on device: cannot write {target} in {target.parent}; free "
                                       "space there, or put the work dir (--work-dir) or the feature cache "
                                       "(runtime.cache_dir) on another disk")
