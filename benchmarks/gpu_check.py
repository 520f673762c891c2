"""The first thing to run when a GPU is available (``benchmarks/gpu_check.sh``: at most 8 minutes).

    python benchmarks/gpu_check.py [--scratch DIR] [--methods all] [--amp fp16,bf16] [--model RN50]

Random weights and tiny data (a synthetic COCO tree with the real 80 classes, ``bench.data.synthetic``), so
nothing is downloaded:
  1. one partial-label (and zero-shot) cell of every method on CUDA with each ``--amp`` dtype through
     ``bench run --device cuda --amp ...``: ok or its one-line error, train and eval seconds, and the peak GPU
     memory each record states (at 80 classes, the configured batch sizes; one epoch of at most 20 steps);
  2. ``torchrun --nproc_per_node=1`` on the NCCL backend (``bench run`` under torchrun initialises NCCL on
     GPUs): its return code and records;
  3. feature extraction images/s in fp16 for RN50 @ 224, RN101 @ 448 and ViT-B/16 @ 224 (global + dense);
then one table. ``--device cpu --amp none`` runs the same steps on the CPU (tests/test_scale.py does, small).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRACTION = [("RN50", 224), ("RN101", 448), ("ViT-B-16", 224)]


def write_config(data_root: Path, model: str, path: Path) -> Path:
    """COCO's config on the synthetic tree: random weights, one epoch of at most 20 steps per method, the
    linear probe at one C, T2I-PAL on the toy renderer with 64 captions."""
    from bench.config import load_config, to_plain

    cfg = to_plain(load_config("coco").to_dict())
    cfg["dataset"]["data_root"] = str(data_root)
    cfg["backbone"] = {"model": model}
    cfg["features"]["num_workers"] = 2
    for section in cfg.values():
        if isinstance(section, dict) and isinstance(section.get("train"), dict) and section["train"].get("epochs"):
            section["train"].update(epochs=1, steps_per_epoch=20)
            section["train"].pop("per_setting", None)
    cfg["tip_adapter_f"]["epochs"] = 1
    cfg["linear_probe"].update(search=False, max_iter=20)
    cfg["t2ipal"].update(generator={"type": "toy", "size": 32}, max_captions=64)
    path.write_text("".join(f"{key} = {value!r}\n" for key, value in cfg.items()))
    return path


def run(command: list[str], log: Path, env: dict) -> tuple[int, float]:
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode
    return code, time.perf_counter() - start


def cells_of(work: Path) -> dict[str, dict]:
    """Per method: status (or error), train and eval seconds, peak GPU MB, from its records."""
    out: dict[str, dict] = {}
    for path in sorted(work.rglob("records/**/*.json")):
        record = json.loads(path.read_text())
        if record.get("kind", "cell") != "cell" or record.get("derived_from"):
            continue
        seconds, memory = record.get("seconds") or {}, record.get("peak_memory_mb") or {}
        mine = out.setdefault(record["method"], {"status": "ok", "train_s": 0.0, "eval_s": 0.0, "peak_mb": 0.0})
        if record.get("status") != "ok":
            mine["status"] = f"failed: {record.get('error', '?')}"
        mine["train_s"] += seconds.get("train", 0.0)
        mine["eval_s"] += seconds.get("eval", 0.0)
        mine["peak_mb"] = max(mine["peak_mb"], memory.get("cuda_peak_allocated_mb") or 0.0)
    return out


def extraction_rate(model: str, size: int, device: str, amp: str | None, batch: int = 64) -> float:
    """Images per second through the image encoder (global + dense), random weights, after a warm-up."""
    import torch

    from bench.features.backbone import load_backbone
    from bench.features.spec import resolve_spec
    from bench.features.standin import is_standin, load_standin

    spec = resolve_spec({"model": model, "image_size": size})
    backbone = (load_standin if is_standin(model) else load_backbone)(spec, device=device, amp=amp)
    pixels = torch.randn(batch, 3, size, size, device=device)
    backbone.encode_images(pixels, ("global", "dense"))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start, rounds = time.perf_counter(), 3
    for _ in range(rounds):
        backbone.encode_images(pixels, ("global", "dense"))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return rounds * batch / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", default="/tmp/bench_gpu_check")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--methods", default="all")
    parser.add_argument("--amp", default="fp16,bf16", help="comma list of fp16, bf16, none")
    parser.add_argument("--model", default="RN50", help="the architecture of the cells (random weights)")
    parser.add_argument("--extract", default=",".join(f"{m}@{s}" for m, s in EXTRACTION),
                        help="architectures@resolution to time extraction of ('' to skip)")
    parser.add_argument("--no-torchrun", action="store_true")
    parser.add_argument("--fraction", type=float, default=0.002, help="share of COCO's images (default 0.002)")
    args = parser.parse_args(argv)
    import torch

    from bench.data.synthetic import write_coco

    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") and torch.cuda.is_available() \
        else "cpu"
    print(f"torch {torch.__version__}, device {args.device} ({device_name})", flush=True)
    data = scratch / "coco"
    if not (data / ".complete").is_file():
        write_coco(data, fraction=args.fraction)
        (data / ".complete").write_text("")
    config = write_config(data, args.model, scratch / "config.py")
    bench = [sys.executable, "-m", "bench.cli", "run", "--methods", args.methods, "--dataset", str(config),
             "--settings", "zero-shot,partial", "--ratios", "0.5", "--seeds", "1", "--device", args.device,
             "--jobs", "1", "--quiet"]
    results: dict[str, dict] = {}
    for amp in [a for a in args.amp.split(",") if a]:
        work = scratch / f"work-{amp}"
        code, seconds = run(bench + ["--work-dir", str(work)] + (["--amp", amp] if amp != "none" else []),
                            scratch / f"run-{amp}.log", env)
        results[amp] = {"returncode": code, "seconds": seconds, "methods": cells_of(work)}
        print(f"amp {amp}: exit {code} in {seconds:.0f} s (log {scratch / f'run-{amp}.log'})", flush=True)
    torchrun = None
    if not args.no_torchrun:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=1", "-m", "bench.cli", "run",
                   "--methods", "zsclip,coop", "--dataset", str(config), "--settings", "zero-shot,partial",
                   "--ratios", "0.5", "--seeds", "1", "--work-dir", str(scratch / "work-torchrun"), "--quiet"]
        code, seconds = run(command, scratch / "torchrun.log", env)
        torchrun = {"returncode": code, "seconds": seconds, "records": len(cells_of(scratch / "work-torchrun"))}
        print(f"torchrun --nproc_per_node=1: exit {code} in {seconds:.0f} s", flush=True)
    rates = {}
    for item in [x for x in args.extract.split(",") if x]:
        model, _, size = item.partition("@")
        amp = None if args.device == "cpu" else "fp16"
        rates[item] = extraction_rate(model, int(size or 224), args.device, amp)
    print_table(results, torchrun, rates)
    (scratch / "gpu_check.json").write_text(json.dumps({"device": device_name, "cells": results,
                                                        "torchrun": torchrun, "extraction": rates}, indent=1))
    failed = any(r["returncode"] for r in results.values()) or (torchrun and torchrun["returncode"])
    return 1 if failed else 0


def print_table(results: dict, torchrun: dict | None, rates: dict) -> None:
    amps = list(results)
    methods = sorted({m for r in results.values() for m in r["methods"]})
    print("\n| method | " + " | ".join(f"{a}: status | {a}: train + eval s | {a}: peak GPU MB" for a in amps) + " |")
    print("|---" * (1 + 3 * len(amps)) + "|")
    for method in methods:
        cells = []
        for amp in amps:
            found = results[amp]["methods"].get(method)
            cells += [found["status"], f"{found['train_s'] + found['eval_s']:.1f}", f"{found['peak_mb']:.0f}"] \
                if found else ["missing", "-", "-"]
        print(f"| {method} | " + " | ".join(cells) + " |")
    if torchrun:
        print(f"\ntorchrun --nproc_per_node=1: exit {torchrun['returncode']}, {torchrun['records']} methods' records, "
              f"{torchrun['seconds']:.0f} s")
    for item, rate in rates.items():
        print(f"extraction {item} (global + dense): {rate:,.0f} images/s")


if __name__ == "__main__":
    raise SystemExit(main())
