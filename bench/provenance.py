"""Where a record came from: package versions, the bench commit, the device and threads, peak memory."""

from __future__ import annotations

import platform
import resource
import subprocess
from pathlib import Path

import torch

from bench import __version__


def peak_memory_mb(device: str) -> dict:
    """The process's peak resident memory, and on CUDA the peak allocated device memory, in MB."""
    out = {"process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.startswith("cuda"):
        out["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def git_commit() -> str | None:
    """The bench checkout's commit, with '+dirty' when it has uncommitted changes; None outside git."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: str) -> dict:
    """What a record ran on: bench and package versions, Python, git commit, device, threads, GPU name."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("torch", "open_clip_torch", "mmengine", "numpy", "diffusers", "transformers", "peft"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {"bench": __version__, "python": platform.python_version(), "packages": versions,
            "git_commit": git_commit(), "device": device, "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if device.startswith("cuda") else None}
