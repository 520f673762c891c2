"""``bench report`` over a full three-dataset grid at the real test sizes: how long the first report takes, and a
second one with nothing new.

    python benchmarks/bench_report_scale.py [--scratch DIR] [--workers 2] [--datasets coco,voc2007,nuswide]
        [--distinct K]

1. SYNTHETIC records of every default cell of COCO 2014, VOC2007 and NUS-WIDE (1,155: the cells of
   ``bench run --methods all --dataset D --dry-run``; ``benchmarks/bench_report_page.py`` writes each one), each
   with a score matrix on the dataset's real test set size (COCO 40,137 x 80, VOC2007 4,952 x 20, NUS-WIDE
   107,859 x 81 listed images; labels drawn with ``bench.data.synthetic``'s profiles). As a finished cell does,
   writing each record's scores also computes and stores its bootstrap resamples (1,000): that per-record
   cost is printed as what a cell pays when it finishes. Every record says it is synthetic. With
   ``--distinct K`` a dataset's records share K score matrices: the first record of each computes its own,
   the others get a byte copy of its scores file and its resamples (``bench.records.store_resamples``: the
   resamples of the same content, stamped for the copy), so the grid is written in minutes; the report reads
   every record's own files either way (NUS-WIDE's 385 records at about 60-120 s each would take hours).
2. ``bench report`` (every format, 1,000 resamples: the defaults) in a fresh process, timed with its phases and
   peak anonymous memory; then again with nothing new (it says so and stops); then with ``--force`` (every
   output made again from the stored resamples: what a report after one new record costs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_report_page import DATASETS, class_names, grid_cells, write_record  # noqa: E402
from bench_scale import run_measured  # noqa: E402

TEST_SIZES = {"coco": 40_137, "voc2007": 4_952, "nuswide": 107_859}
PROFILE = {"coco": "coco", "voc2007": "voc2007", "nuswide": "nuswide"}


SCALE = [1.0]  # --scale: a share of the real test sizes (a quick check of this script)


def test_labels(dataset: str, n_classes: int) -> np.ndarray:
    """[N, C] in {1, -1} at the dataset's real test size, with its label profile (bench.data.synthetic)."""
    from bench.data.synthetic import PROFILES, sample_labels, zipf_frequencies

    rng = np.random.default_rng(zlib.crc32(dataset.encode()))
    n = max(8, round(TEST_SIZES[dataset] * SCALE[0]))
    freqs = zipf_frequencies(n_classes, *PROFILES[PROFILE[dataset]])[rng.permutation(n_classes)]
    labels = np.where(sample_labels(rng, n, n, freqs), 1, -1).astype(np.int8)
    labels[0] = 1  # no empty class
    return labels


def _write(job: tuple) -> list[float]:
    """Seconds per record of a group of cells that share one score matrix (the first computes it)."""
    cells, classes, labels_path, folder, bases = job
    labels, folder, seconds = np.load(labels_path), Path(folder), []
    source = folder / f"{cells[0]['name']}.json"
    for cell, base in zip(cells, bases):
        path = folder / f"{cell['name']}.json"
        if path.is_file():
            continue
        start = time.perf_counter()
        write_record(cell, classes, labels, folder, base, scores_of=None if path == source else source)
        seconds.append(time.perf_counter() - start)
    return seconds


def make_records(work: Path, datasets: list[str], workers: int, distinct: int) -> dict:
    """Every cell's synthetic record; returns seconds per record per dataset: for a record with its own score
    matrix (what a finishing cell pays: metrics, scores file, resamples) and for one that copies another's."""
    from bench.config import load_config, variant_base

    out = {}
    for dataset in datasets:
        name, synonyms = DATASETS[dataset]
        classes = class_names(synonyms)
        cells = grid_cells(dataset, work.parent)
        folder = work / "full" / "records" / name
        folder.mkdir(parents=True, exist_ok=True)
        labels_path = work.parent / f"labels-{dataset}.npy"
        if not labels_path.is_file():
            np.save(labels_path, test_labels(dataset, len(classes)))
        config = load_config(dataset)
        groups = [cells[i::distinct] for i in range(distinct)] if distinct else [[c] for c in cells]
        jobs = [(g, classes, str(labels_path), str(folder), [variant_base(config, c["method"]) for c in g])
                for g in groups if g]
        start = time.perf_counter()
        with ProcessPoolExecutor(workers) as pool:
            seconds = list(pool.map(_write, jobs))
        own = [s[0] for s, g in zip(seconds, groups) if len(s) == len(g)]  # the group's first was written now
        copied = [x for s, g in zip(seconds, groups) for x in (s[1:] if len(s) == len(g) else s)]
        print(f"{dataset}: {len(cells)} cells ({sum(map(len, seconds))} written in {time.perf_counter() - start:.0f} "
              f"s; {len(groups)} distinct score matrices), {len(np.load(labels_path)):,} x {len(classes)} scores each",
              flush=True)
        out[dataset] = {"cells": len(cells), "written": sum(map(len, seconds)), "distinct": len(groups),
                        "seconds_per_record": float(np.mean(own)) if own else None,
                        "seconds_per_copy": float(np.mean(copied)) if copied else None}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/bench_report_scale"))
    parser.add_argument("--datasets", default="coco,voc2007,nuswide")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0, help="share of the real test sizes (default 1)")
    parser.add_argument("--distinct", type=int, default=0,
                        help="score matrices per dataset (default 0: one per record); records beyond them get a "
                             "byte copy of one with its resamples, so a full grid is written in minutes, not hours")
    args = parser.parse_args()
    SCALE[0] = args.scale
    work = args.scratch / "work_dirs"
    print(f"load before {os.getloadavg()}", flush=True)
    made = make_records(work, args.datasets.split(","), args.workers, args.distinct)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    report = [sys.executable, "-m", "bench.cli", "report", "--work-dir", str(work), "--out",
              str(args.scratch / "report")]
    print(f"load before the report {os.getloadavg()}", flush=True)
    first = run_measured(report + ["--timings", str(args.scratch / "timings-1.json")], env, args.scratch / "r1.log")
    second = run_measured(report + ["--timings", str(args.scratch / "timings-2.json")], env, args.scratch / "r2.log")
    # --force: every table, plot and the page made again from the stored resamples (what one new record costs)
    forced = run_measured(report + ["--force", "--timings", str(args.scratch / "timings-3.json")], env,
                          args.scratch / "r3.log")
    scores = sum(p.stat().st_size for p in work.rglob("*.scores.npz"))
    summary = {"records": sum(d["cells"] for d in made.values()), "made": made, "first": first, "second": second,
               "forced": forced, "scores_gb": round(scores / 1e9, 2), "load_after": os.getloadavg()}
    for which, n in (("phases_first", 1), ("phases_second", 2), ("phases_forced", 3)):
        timings = args.scratch / f"timings-{n}.json"  # none when the report had nothing new to write
        summary[which] = json.loads(timings.read_text()) if timings.is_file() else {}
    (args.scratch / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if not k.startswith("phases")}, indent=1))
    print("second report:", (args.scratch / "r2.log").read_text().strip().splitlines()[-1:])
    for which in ("phases_first", "phases_second", "phases_forced"):
        print(which, {k: v["seconds"] for k, v in summary[which].items()})
    return 0 if not (first["returncode"] or second["returncode"] or forced["returncode"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
