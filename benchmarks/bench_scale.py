"""Every phase of bench from the toy world's size to the real datasets': seconds, memory, bytes, growth.

    python benchmarks/bench_scale.py [--sizes 0.0625,0.25,1] [--datasets coco,nuswide-zsl]
                                     [--scratch DIR] [--backbone standin:RN50] [--out results.json]

For each dataset and size (a share of the real image counts): ``bench.data.synthetic`` writes the dataset
in its real on-disk format (COCO 2014; NUS-WIDE with its Flickr tags), then the real pipeline runs in
subprocesses, as a user runs it:

  ``bench run``     every built-in method in its cells of one seed (zero-shot; partial labels at ratio 0.5;
                    16-shot; for ``nuswide-zsl`` the zsl setting with its 925 seen + 81 unseen classes), one
                    training epoch each of at most ``--max-steps`` batches (seconds per step are measured; an
                    epoch is that times its steps: CoCoOp's batch of one makes 82,081 steps at full COCO),
                    Tip-Adapter-F one fine-tuning epoch, the linear probe 20 L-BFGS iterations at one C,
                    T2I-PAL on the toy renderer with ``--generated-share`` of the train images' captions
                    rendered, one worker process;
                    the image encoder is the stand-in (``bench.features.standin``: the real architecture's
                    output shapes at memory speed), so the harness's own cost is measured, not the
                    encoder's (that is ``benchmarks/bench_features.py --model``'s, added per image);
  ``bench report``  every section, with the bootstrap (1000 resamples).

It prints, per phase, the seconds at each size and the growth exponent in images between consecutive sizes
(log t2/t1 / log n2/n1: 1 is linear), then each command's peak anonymous memory (Pss_Anon summed over the
process and its children, sampled every 0.2 s) and the bytes of the feature cache and of the records.
Phases come from the commands' own clocks: ``<run>/timings.json`` (``bench.phases``) and ``bench report
--timings``; one training epoch and the evaluation per method come from the records' ``seconds``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METHODS = ["zsclip", "coop", "cocoop", "dualcoop", "taidpt", "t2ipal", "tip_adapter", "tip_adapter_f",
           "linear_probe", "clip_adapter", "clip_lora"]
ZSL_METHODS = ["zsclip", "coop", "cocoop", "dualcoop", "taidpt", "t2ipal", "clip_adapter", "clip_lora"]
DATASETS = {  # name -> (synthetic writer, shipped config, settings)
    "coco": ("coco", "coco", "zero-shot,partial,fewshot"),
    "voc2007": ("voc2007", "voc2007", "zero-shot,partial,fewshot"),
    "nuswide-zsl": ("nuswide", "nuswide", "zsl"),
}


def process_tree_anon_mb(pid: int) -> float:
    """Anonymous memory of ``pid`` and every descendant (DataLoader workers), in MB, from /proc: each process's
    proportional share (``Pss_Anon`` of smaps_rollup, so pages a forked worker still shares with its parent
    count once), else its RssAnon."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        for source, field in ((f"/proc/{current}/smaps_rollup", "Pss_Anon:"), (f"/proc/{current}/status", "RssAnon:")):
            try:
                found = [ln for ln in Path(source).read_text().splitlines() if ln.startswith(field)]
            except OSError:
                continue
            if found:
                total += int(found[0].split()[1]) / 1024
                break
    return total


def run_measured(command: list[str], env: dict, log: Path) -> dict:
    """Run a command; its wall seconds, return code and peak anonymous memory of its process tree."""
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        peak, done = [0.0], threading.Event()

        def sample():
            while not done.wait(0.2):
                peak[0] = max(peak[0], process_tree_anon_mb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        done.set()
        sampler.join()
    return {"seconds": time.perf_counter() - start, "returncode": code, "peak_anon_mb": peak[0]}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def write_config(dataset: str, data_root: Path, backbone: str, n_train: int, generated_share: float,
                 max_steps: int, path: Path) -> Path:
    """The shipped config of ``dataset`` with the synthetic tree, the stand-in backbone, one epoch per method
    (every per-setting schedule too) of at most ``max_steps`` batches, the linear probe at one C for 20
    L-BFGS iterations, and T2I-PAL on the toy renderer."""
    from bench.config import load_config, method_class, method_config, to_plain

    writer, config, _ = DATASETS[dataset]
    cfg = load_config(config)
    cfg.merge_from_dict({"dataset.data_root": str(data_root)})
    if writer == "nuswide":
        cfg.merge_from_dict({"dataset.caption_files": [str(data_root / "captions.jsonl")],
                             "dataset.synonyms": str(data_root / "NUS_WID_Tags" / "synonyms_1006.json")})
    plain = to_plain(cfg.to_dict())
    plain["backbone"] = {"model": backbone}
    plain["features"]["num_workers"] = 2
    plain["runtime"]["jobs"] = 1
    for name in METHODS:
        section = plain.get(name) or {}
        cls = method_class(cfg, name)
        if not any(method_config(cfg, name, cls, s)[1].get("epochs", 0) for s in cls.settings):
            continue  # no gradient training (zero-shot CLIP, Tip-Adapter's cache, the linear probe's L-BFGS fit)
        train = section.setdefault("train", {})
        train["epochs"], train["steps_per_epoch"] = 1, max_steps
        for override in list((train.get("per_setting") or {}).values()) + [
                (s.get("train") or {}) for s in (section.get("per_setting") or {}).values()]:
            if "epochs" in override:
                override["epochs"] = 1
        plain[name] = section
    plain["tip_adapter_f"]["epochs"] = 1  # its fine-tuning epochs are its own (fit_features), not the runner's
    plain["linear_probe"].update(search=False, max_iter=20)  # 20 full-batch L-BFGS iterations at one C
    plain["t2ipal"]["generator"] = {"type": "toy", "size": 32}
    plain["t2ipal"]["max_captions"] = max(16, round(generated_share * n_train))
    path.write_text("".join(f"{key} = {value!r}\n" for key, value in plain.items()))
    return path


def phases_of(work_dir: Path, report_timings: Path) -> dict[str, float]:
    """Seconds per phase: the run's timings.json (top-level phases and named phases), one epoch and the
    evaluation per method from the records (their partial-label cell, else zero-shot, else zsl), the report's."""
    timings = json.loads((work_dir / "timings.json").read_text())
    out = {f"run: {k}": v for k, v in timings.items() if isinstance(v, (int, float)) and k != "total_after_imports"}
    out.update({k: v["seconds"] for k, v in (timings.get("phases") or {}).items()})
    chosen: dict[str, dict] = {}
    for path in sorted((work_dir / "records").rglob("*.json")):
        record = json.loads(path.read_text())
        if record.get("kind", "cell") != "cell" or record.get("derived_from") or record.get("status") != "ok":
            continue
        rank = {"partial": 0, "zero-shot": 1, "zsl": 2}.get(record["setting"])
        if rank is not None and rank < chosen.get(record["method"], {}).get("rank", 9):
            chosen[record["method"]] = {"rank": rank, "seconds": record.get("seconds") or {}, "record": record}
    for method, found in sorted(chosen.items()):
        record, train = found["record"], found["seconds"].get("train", 0.0)
        schedule, data = record.get("train_schedule") or {}, record.get("train_data") or {}
        rows = data.get("n_rows") or data.get("n_images") or data.get("n_captions") or 0
        batch = schedule.get("batch_size") or 1
        per_epoch = math.ceil(rows / batch) if schedule.get("epochs") else 0
        steps = min(per_epoch, schedule.get("steps_per_epoch") or per_epoch)
        if steps:  # gradient training: seconds per step, and the epoch's (measured, or per step x its steps)
            out[f"train: s per step: {method}"] = train / steps
            out[f"train: 1 epoch: {method}"] = train / steps * per_epoch
        else:  # fits from features (Tip-Adapter's cache and search, the linear probe's 20 L-BFGS iterations)
            out[f"train: fit: {method}"] = train
        out[f"evaluate: {method}"] = found["seconds"].get("eval", 0.0)
    if report_timings.is_file():
        out.update({k: v["seconds"] for k, v in json.loads(report_timings.read_text()).items()})
    return out


def one_size(dataset: str, fraction: float, scratch: Path, backbone: str, generated_share: float,
             max_steps: int, keep_data: bool) -> dict:
    from bench.data.synthetic import WRITERS, scaled

    writer, _, settings = DATASETS[dataset]
    tag = f"{dataset}-{fraction:g}"
    data_root, work = scratch / "data" / tag, scratch / "work" / tag
    counts = scaled(writer, fraction)
    t0 = time.perf_counter()
    if not (data_root / ".complete").is_file():
        WRITERS[writer](data_root, fraction=fraction)
        (data_root / ".complete").write_text("")
    written = time.perf_counter() - t0
    config = write_config(dataset, data_root, backbone, counts["train"][0], generated_share, max_steps,
                          scratch / f"config-{tag}.py")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    methods = ZSL_METHODS if settings == "zsl" else METHODS
    run = run_measured([sys.executable, "-m", "bench.cli", "run", "--methods", ",".join(methods), "--dataset",
                        str(config), "--settings", settings, "--ratios", "0.5", "--shots", "16", "--seeds", "1",
                        "--work-dir", str(work), "--run", "scale", "--jobs", "1", "--quiet"], env,
                       scratch / f"run-{tag}.log")
    if run["returncode"] != 0:
        raise SystemExit(f"bench run failed at {tag}: see {scratch / f'run-{tag}.log'}")
    report_timings = scratch / f"report-timings-{tag}.json"
    report = run_measured([sys.executable, "-m", "bench.cli", "report", "--work-dir", str(work), "--run", "scale",
                           "--out", str(work / "report"), "--timings", str(report_timings)], env,
                          scratch / f"report-{tag}.log")
    repeat = run_measured([sys.executable, "-m", "bench.cli", "report", "--work-dir", str(work), "--run", "scale",
                           "--out", str(work / "report")], env, scratch / f"report2-{tag}.log")
    if report["returncode"] or repeat["returncode"]:
        raise SystemExit(f"bench report failed at {tag}: see {scratch / f'report-{tag}.log'}")
    result = {"dataset": dataset, "fraction": fraction, "n_images": counts["train"][0] + counts["test"][0],
              "data_written_s": written, "run": run, "report": report, "report_repeat": repeat,
              "phases": phases_of(work / "scale", report_timings),
              "cache_bytes": folder_bytes(work / "cache"), "records_bytes": folder_bytes(work / "scale" / "records")}
    if not keep_data:
        import shutil

        shutil.rmtree(work / "cache", ignore_errors=True)
    return result


def exponent(t1: float, t2: float, n1: int, n2: int) -> str:
    if max(t1, t2) < 1.0 or min(t1, t2) <= 0:
        return "-"  # below a second both: noise
    return f"{math.log(t2 / t1) / math.log(n2 / n1):.2f}"


def print_table(results: list[dict]) -> None:
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        rows = sorted((r for r in results if r["dataset"] == dataset), key=lambda r: r["n_images"])
        sizes = [f"{r['n_images']:,} images" for r in rows]
        growth = [f"exp {a['n_images']:,}->{b['n_images']:,}" for a, b in zip(rows, rows[1:])]
        print(f"\n### {dataset}\n\n| phase | " + " | ".join(sizes + growth) + " |")
        print("|---" * (1 + len(sizes) + len(growth)) + "|")
        names = list(dict.fromkeys(name for r in rows for name in r["phases"]))
        for name in names:
            values = [r["phases"].get(name, 0.0) for r in rows]
            exps = [exponent(a, b, ra["n_images"], rb["n_images"])
                    for a, b, ra, rb in zip(values, values[1:], rows, rows[1:])]
            print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in values) + " | " + " | ".join(exps) + " |")
        for label, get in (("bench run: wall s", lambda r: r["run"]["seconds"]),
                           ("bench report: wall s", lambda r: r["report"]["seconds"]),
                           ("bench report again: wall s", lambda r: r["report_repeat"]["seconds"]),
                           ("bench run: peak anon MB", lambda r: r["run"]["peak_anon_mb"]),
                           ("bench report: peak anon MB", lambda r: r["report"]["peak_anon_mb"]),
                           ("feature cache MB", lambda r: r["cache_bytes"] / 2**20),
                           ("records + scores MB", lambda r: r["records_bytes"] / 2**20)):
            values = [get(r) for r in rows]
            exps = [exponent(a, b, ra["n_images"], rb["n_images"])
                    for a, b, ra, rb in zip(values, values[1:], rows, rows[1:])]
            print(f"| **{label}** | " + " | ".join(f"{v:.1f}" for v in values) + " | " + " | ".join(exps) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.0625,0.25,1", help="shares of the real image counts")
    parser.add_argument("--datasets", default="coco,nuswide-zsl", help=f"comma list of {', '.join(DATASETS)}")
    parser.add_argument("--scratch", default="/tmp/bench_scale", help="data, work dirs and logs (reused: a "
                        "synthetic tree already written is kept)")
    parser.add_argument("--backbone", default="standin:RN50", help="stand-in architecture (standin:RN50, "
                        "standin:RN101, standin:ViT-B-16)")
    parser.add_argument("--generated-share", type=float, default=0.125,
                        help="T2I-PAL renders this share of the train images' count of captions (default 1/8)")
    parser.add_argument("--max-steps", type=int, default=300,
                        help="batches per training epoch at most (default 300): seconds per step are measured, an "
                             "epoch is that times its steps (CoCoOp's batch of 1 makes 82,081 steps at full COCO)")
    parser.add_argument("--keep-data", action="store_true", help="keep each size's feature cache")
    parser.add_argument("--out", help="also write every measurement to this JSON file")
    args = parser.parse_args(argv)
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    print(f"cpus {os.cpu_count()}, load before {os.getloadavg()}")
    results = []
    for dataset in args.datasets.split(","):
        for fraction in (float(f) for f in args.sizes.split(",")):
            started = time.perf_counter()
            results.append(one_size(dataset, fraction, scratch, args.backbone, args.generated_share, args.max_steps,
                                    args.keep_data))
            print(f"{dataset} at {fraction:g}: {time.perf_counter() - started:.0f} s, load {os.getloadavg()}",
                  flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps(results, indent=1))
    print_table(results)
    print(f"\nload after {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
