"""Generation with a cold vs a warm image cache, side by side in one run.

    python benchmarks/bench_generation.py [--captions 200] [--diffusers 8] [--threads 2]

Cold: every (caption, seed) image is rendered and written. Warm: the same call again, every image
already in the cache (only keys are computed and files checked). Measured for the toy renderer and
for a tiny random-init Stable Diffusion pipeline (32 px, 2 steps; real pipelines are far slower per
image, so the warm/cold ratio only grows). Prints times and the speed-up of the warm cache.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def cold_warm(generator, prompts: list[str], root: Path) -> tuple[float, float]:
    from bench.generation.generators import generate_all

    seeds = list(range(len(prompts)))
    start = time.perf_counter()
    generate_all(generator, prompts, seeds, root, progress=False)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    generate_all(generator, prompts, seeds, root, progress=False)
    return cold, time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captions", type=int, default=200)
    parser.add_argument("--diffusers", type=int, default=8, help="images for the tiny diffusers pipeline (0: skip)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from bench.generation.generators import DiffusersGenerator, ToyGenerator
    from bench.testing import write_tiny_diffusers
    from bench.toy.build import text_only_captions

    captions = text_only_captions(seed=0, n=args.captions)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("toy renderer", args.captions, *cold_warm(ToyGenerator(), captions, Path(tmp) / "toy")))
        if args.diffusers:
            pipe = write_tiny_diffusers(Path(tmp) / "sd", resolution=32)
            gen = DiffusersGenerator(str(pipe), scheduler=None, steps=2, guidance=1.0, height=32, width=32)
            rows.append(("tiny SD pipeline (32 px, 2 steps)", args.diffusers,
                         *cold_warm(gen, captions[:args.diffusers], Path(tmp) / "sd_cache")))
    print(f"torch threads {args.threads}")
    print("| generator | images | cold cache | warm cache | warm speed-up |\n|---|---|---|---|---|")
    for name, n, cold, warm in rows:
        print(f"| {name} | {n} | {cold:.2f} s | {warm:.3f} s | **{cold / warm:.0f}x** |")


if __name__ == "__main__":
    main()
