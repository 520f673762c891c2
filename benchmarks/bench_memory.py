"""Peak memory as the dataset grows 1x / 4x / 16x: it must stay flat (bounded by the batch, not the data).

    python benchmarks/bench_memory.py [--base 250] [--threads 2]

Each size runs in a fresh process that extracts the toy CLIP's global + dense features of N images
into a new feature cache, trains CoOp for one epoch reading them, and scores every image with
zero-shot CLIP. It reports the process's peak RSS and its peak *anonymous* memory (RssAnon sampled
every 20 ms): memory-mapped feature pages count in RSS but are file-backed (the kernel drops them
under pressure), so anonymous memory is what has to fit in RAM. Images are the toy world's train
split when it is on disk (data/toy), else synthetic.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def rss_anon_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_size(n: int, threads: int) -> dict:
    import resource

    import torch
    from torch.utils.data import DataLoader

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_features import CLASSES, coop_epoch, image_paths, load_model

    from bench.cell.trainsets import FeatureDataset
    from bench.features.cache import FeatureCache
    from bench.methods.coop import CoOp
    from bench.methods.zsclip import ZSCLIP

    torch.set_num_threads(threads)
    peak_anon = [rss_anon_mb()]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak_anon[0] = max(peak_anon[0], rss_anon_mb())
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    backbone = load_model("cpu")
    labels = np.where(np.random.default_rng(0).random((n, len(CLASSES))) < 0.3, 1, -1).astype(np.int8)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        paths = image_paths(n, Path(tmp) / "images")
        feats = FeatureCache(Path(tmp) / "cache", progress=False).image_features(backbone, paths, ["global", "dense"])
        coop = CoOp()
        coop.build(backbone, CLASSES)
        optimizer = torch.optim.SGD(coop.trainable_parameters(), lr=2e-3)
        loader = DataLoader(FeatureDataset({"global": feats["global"]}, labels, views=1), batch_size=32, shuffle=True)

        def feature_batches():
            for batch in loader:
                yield dict(batch["feats"], modality="image"), batch["targets"]

        coop_epoch(coop, feature_batches, optimizer)
        zs = ZSCLIP(dense_weight=0.5)
        zs.build(backbone, CLASSES)
        with torch.no_grad():
            for s in range(0, n, 256):
                zs.logits({"global": torch.from_numpy(np.asarray(feats["global"][0, s:s + 256], np.float32)),
                           "dense": torch.from_numpy(np.asarray(feats["dense"][0, s:s + 256], np.float32)),
                           "modality": "image"})
    stop.set()
    return {"images": n, "seconds": time.perf_counter() - start, "peak_anon_mb": peak_anon[0],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=250)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size in this process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_size(args.one, args.threads)))
        return
    rows = []
    for factor in (1, 4, 16):
        out = subprocess.run([sys.executable, __file__, "--one", str(args.base * factor), "--threads",
                              str(args.threads)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"torch threads {args.threads}; features: global + dense (fp16, memory-mapped)")
    print("| images | seconds | peak anonymous MB | peak RSS MB |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['images']} | {r['seconds']:.1f} | {r['peak_anon_mb']:.0f} | {r['peak_rss_mb']:.0f} |")
    first, last = rows[0], rows[2]
    ratio = {k: last[k] / first[k] for k in ("seconds", "peak_anon_mb", "peak_rss_mb")}
    print(f"| **16x / 1x** | {ratio['seconds']:.1f}x | **{ratio['peak_anon_mb']:.2f}x** "
          f"| {ratio['peak_rss_mb']:.2f}x |")


if __name__ == "__main__":
    main()
