"""Why `bench run --jobs` (bench/grid/jobs.py) runs one cell per core: the same work in one process with every thread,
against one single-threaded process per core, side by side in one run.

    python benchmarks/bench_jobs.py [--procs 2] [--steps 200] [--images 1024]

The unit of work is what the toy main job's cells and prepare tasks spend their time on, with the toy CLIP:
``--steps`` DualCoOp training steps on cached region features (batch 128, both prompt sets through the text
tower, asymmetric loss, SGD; small operations) and encoding ``--images`` random 128 px images (the image tower,
four feature kinds). ``--procs`` units are run (a) one after another in one process with ``--procs`` torch
threads, (b) at once in ``--procs`` processes with one thread each. Prints each wall time, the throughput ratio
b/a and the machine's load before (judge the ratio against it: other work on the machine skews both).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def unit(steps: int, images: int) -> dict:
    """Run one unit of work in this process; seconds of each part."""
    import torch

    from bench.config import load_config
    from bench.features.backbone import load_backbone
    from bench.features.spec import resolve_spec
    from bench.methods.dualcoop import DualCoOp
    from bench.toy.world import CLASSES

    backbone = load_backbone(resolve_spec(load_config("toy").backbone))
    method = DualCoOp()
    method.build(backbone, list(CLASSES))
    method.train()
    optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=1e-3)
    g = torch.Generator().manual_seed(0)
    feats = {"dense": torch.randn(128, 17, backbone.embed_dim, generator=g)}
    targets = (torch.rand(128, len(CLASSES), generator=g) < 0.2).float() * 2 - 1
    start = time.perf_counter()
    for _ in range(steps):
        loss = method.loss(method.logits(feats), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    mid = time.perf_counter()
    pixels = torch.randn(images, 3, 128, 128, generator=g)
    for i in range(0, images, 128):
        backbone.encode_images(pixels[i:i + 128], ("global", "global_nopos", "dense", "dense_nopos"))
    return {"train": mid - start, "encode": time.perf_counter() - mid}


def child(threads: int, units: int, steps: int, images: int) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    code = (f"import torch, sys; torch.set_num_threads({threads}); sys.path.insert(0, {str(ROOT)!r}); "
            f"from benchmarks.bench_jobs import unit; "
            f"[print(unit({steps}, {images})) for _ in range({units})]")
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--images", type=int, default=1024)
    args = parser.parse_args(argv)
    print(f"cores {len(os.sched_getaffinity(0))}, load before {'/'.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"a unit = {args.steps} DualCoOp steps + encoding {args.images} images (toy CLIP)")
    results = {}
    for name, procs, threads, units in (("one process", 1, args.procs, args.procs),
                                        ("one process per core", args.procs, 1, 1)):
        start = time.perf_counter()
        running = [child(threads, units, args.steps, args.images) for _ in range(procs)]
        outputs = [p.communicate()[0] for p in running]
        if any(p.returncode for p in running):
            sys.exit(f"{name}: a child failed")
        results[name] = time.perf_counter() - start
        # each part's wall time: summed over the units of one process, the slowest process's when they run at once
        per_proc = [[eval(line) for line in out.splitlines()] for out in outputs]  # noqa: S307 -- our own dicts
        for part in ("train", "encode"):
            results[name, part] = max(sum(u[part] for u in units_) for units_ in per_proc)
        print(f"{name}: {procs} x {threads} thread(s), {args.procs} units: {results[name]:.1f} s wall with start-up; "
              f"training {results[name, 'train']:.1f} s, encoding {results[name, 'encode']:.1f} s")
    ratios = {part: results["one process", part] / results["one process per core", part]
              for part in ("train", "encode")}
    print(f"throughput, one process per core / one process with {args.procs} threads: training steps "
          f"{ratios['train']:.2f}x, encoding {ratios['encode']:.2f}x, whole units with start-up "
          f"{results['one process'] / results['one process per core']:.2f}x "
          f"(load after {'/'.join(f'{x:.2f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
