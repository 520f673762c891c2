"""What ``bench status`` costs as a run grows to COCO size (DESIGN: every phase at most linear in images and cells).

    python benchmarks/bench_status.py [--train 82783] [--test 40504] [--scratch DIR] [--keep]

For each size (a tenth of the given one, then the given one) a fake MS-COCO 2014 layout is written: the annotation
and caption files of ``train`` / ``test`` images of 4 classes, every image a hard link to a small JPEG (status
never reads image bytes, only ``stat``s them); the default COCO grid of every built-in method (zero-shot, partial at
9 ratios, few-shot at 5 K, 3 seeds) with the shipped tiny ResNet CLIP as backbone and T2I-PAL's caption set capped
at 2,000 captions. Not timed: the image hash memo filled once (as a run leaves it) and a record for every cell
(status "ok" with the current config hash and data key, one in ten "failed"). Timed: ``bench status`` in a fresh
process (wall clock, imports included), and in this process the parts of :func:`bench.grid.status.run_status`
(cProfile cumulative seconds). Prints the machine's load before and after.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLASSES = ("red", "green", "blue", "yellow")


def write_layout(root: Path, n_train: int, n_test: int) -> None:
    """Annotations, captions and hard-linked images of a COCO 2014 layout (as bench.testing.write_coco, faster)."""
    from PIL import Image

    (root / "annotations").mkdir(parents=True)
    Image.new("RGB", (64, 64), (200, 40, 40)).save(root / "one.jpg")
    cat_ids = {name: 10 * (i + 1) + 1 for i, name in enumerate(CLASSES)}
    for split, n in (("train2014", n_train), ("val2014", n_test)):
        (root / split).mkdir()
        images, anns, caps = [], [], []
        for i in range(n):
            present = [CLASSES[i % 4], CLASSES[(i // 4) % 4]] if i % 3 else [CLASSES[i % 4]]
            name = f"COCO_{split}_{i:012d}.jpg"
            source = root / f"one_{split}_{i // 50000}.jpg"  # a file system allows some 65,000 links to a file
            if not source.is_file():
                shutil.copyfile(root / "one.jpg", source)
            os.link(source, root / split / name)
            images.append({"id": i, "file_name": name, "width": 64, "height": 64})
            anns += [{"id": len(anns) + 1, "image_id": i, "category_id": cat_ids[c], "bbox": [0, 0, 8, 8],
                      "area": 64, "iscrowd": 0} for c in dict.fromkeys(present)]
            caps.append({"id": i + 1, "image_id": i, "caption": "A picture of " + " and ".join(present)})
        categories = [{"id": cat_ids[c], "name": c, "supercategory": "colour"} for c in CLASSES]
        (root / "annotations" / f"instances_{split}.json").write_text(
            json.dumps({"images": images, "annotations": anns, "categories": categories}))
        (root / "annotations" / f"captions_{split}.json").write_text(json.dumps({"images": images,
                                                                                  "annotations": caps}))


def make_run(scratch: Path, n_train: int, n_test: int) -> tuple[Path, int, float]:
    """(work dir, cells, seconds of setup) of a run whose every cell has a record."""
    from bench.cell.plan import plan_cell
    from bench.cell.session import Session
    from bench.config import config_hash, load_config
    from bench.grid.selection import remember_selection, selection, selection_cells
    from bench.io import write_json
    from bench.testing import write_tiny_model

    start = time.perf_counter()
    data = scratch / "coco"
    write_layout(data, n_train, n_test)
    synonyms = scratch / "colours.json"
    synonyms.write_text(json.dumps({"classes": [{"name": c, "synonyms": [c]} for c in CLASSES]}))
    backbone = write_tiny_model(scratch / "model")
    options = {"dataset.data_root": str(data), "dataset.synonyms": str(synonyms), "t2ipal.max_captions": 2000,
               "t2ipal.generator": {"_delete_": True, "type": "toy", "size": 32},
               **{f"backbone.{k}": v for k, v in backbone.items()}}
    cfg = load_config("coco", options)
    run_dir = scratch / "w" / "coco"
    session = Session(cfg, run_dir, device="cpu", progress=False)
    chosen = selection(cfg)
    remember_selection(run_dir, chosen)
    cells = selection_cells(cfg, chosen)
    for i, cell in enumerate(cells):
        plan = plan_cell(cfg, cell)
        keys = session.data.for_cell(plan.method_cls.trains_on, session.eval_split, cell.setting)  # fills the memo
        record = {"status": "ok" if i % 10 else "failed", "method": cell.method, "dataset": cell.dataset,
                  "setting": cell.setting, "label_ratio": cell.label_ratio, "shots": cell.shots, "seed": cell.seed,
                  "config_hash": config_hash(plan.config), "config": plan.config, "data_key": keys["key"],
                  "data_digests": {k: v for k, v in keys.items() if k != "key"}, "mAP": 50.0,
                  "per_class_AP": [50.0] * len(CLASSES), "error": None if i % 10 else "NonFiniteLoss: nan"}
        write_json(cell.record_path(run_dir), record)
    (session.cache.root / "features").mkdir(parents=True, exist_ok=True)
    return scratch / "w", len(cells), time.perf_counter() - start


def time_status(work: Path) -> tuple[float, dict]:
    """(wall seconds of `bench status` in a fresh process, cumulative seconds of its parts in this process)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.cli", "status", "--work-dir", str(work)], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - start
    from bench.grid.status import find_runs, run_status

    profile = cProfile.Profile()
    profile.runcall(run_status, find_runs(work)[0])
    stats = pstats.Stats(profile).stats
    parts = {"run_status": "run_status", "cell selections": "selection_cells", "records read": "_record_cells",
             "cell states": "_cell_state", "feature entries": "_entries", "generated images": "_generated_sets",
             "image hash memo": "memoised_hashes", "backbone load": "_identity"}
    seconds = {label: round(sum(v[3] for k, v in stats.items() if k[2] == name and "bench" in k[0]), 2)
               for label, name in parts.items()}
    return wall, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=82783)
    parser.add_argument("--test", type=int, default=40504)
    parser.add_argument("--scratch", help="folder for the fake datasets (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="bench_status_"))
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores")
    try:
        for n_train, n_test in ((args.train // 10, args.test // 10), (args.train, args.test)):
            folder = scratch / f"{n_train}_{n_test}"
            work, n_cells, setup = make_run(folder, n_train, n_test)
            wall, parts = time_status(work)
            print(f"{n_train + n_test:>7} images ({n_train} train / {n_test} test), {n_cells} cells: bench status "
                  f"{wall:.1f} s wall in a fresh process; in-process {parts} (setup, not timed: {setup:.0f} s)")
    finally:
        print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
