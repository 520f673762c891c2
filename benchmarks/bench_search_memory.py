"""Peak memory of the validation-mAP ranking in Tip-Adapter's search at full COCO's sizes, chunked vs at once.

    python benchmarks/bench_search_memory.py

One grid point per alpha of the reference's 20, 16,416 validation images (COCO's 20% holdout), 80 classes:
``methods/_parts/val_map.py`` ranks ``MAP_ELEMENTS`` score entries at a time; "at once" sets it past the grid.
Each variant runs in a fresh process (peak RSS is per process: ru_maxrss growth during the call), with the
seconds and the summed mAPs (equal: chunking is memory, never numbers).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time


def one(variant: str) -> None:
    import numpy as np
    import torch

    import bench.methods._parts.val_map as val_map

    if variant == "at once":
        val_map.MAP_ELEMENTS = 1 << 40
    n, c = 16_416, 80
    torch.manual_seed(0)
    labels = torch.from_numpy(np.where(np.random.default_rng(0).random((n, c)) < 0.05, 1, -1))
    scores = torch.randn(n, c) + torch.linspace(0.1, 3.0, 20)[:, None, None] * torch.randn(n, c)  # [20, N, C]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    maps = val_map.mean_average_precision(scores, labels)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(f"| {variant} | {grown:,.0f} MB | {time.perf_counter() - start:.2f} s | {float(maps.sum()):.10f} |")


def main() -> int:
    if len(sys.argv) > 1:
        one(sys.argv[1])
        return 0
    print(f"load {os.getloadavg()}\n| ranking | peak RSS growth | seconds | sum of the 20 mAPs |\n|---|---|---|---|",
          flush=True)
    for variant in ("at once", "chunked"):
        subprocess.run([sys.executable, __file__, variant], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
