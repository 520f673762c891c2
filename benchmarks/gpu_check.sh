#!/usr/bin/env bash
# The first thing to run when a GPU is available: every method's cell on CUDA with fp16 and bf16 autocast,
# torchrun on NCCL, fp16 extraction speed of RN50 @ 224, RN101 @ 448, ViT-B/16, and peak GPU memory per
# method at 80 classes, in one table (random weights, tiny data: nothing to download). At most 8 minutes.
#   bash benchmarks/gpu_check.sh [--scratch DIR] [extra benchmarks/gpu_check.py options]
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: not available"
timeout 480 "$PYTHON" benchmarks/gpu_check.py "$@"
code=$?
[ "$code" = 124 ] && echo "gpu_check: stopped at the 8-minute limit"
exit "$code"
