#!/usr/bin/env bash
# Create ./.venv with the pinned stack and bench installed in editable mode (idempotent).
#   bash scripts/install.sh
# TORCH_SPEC overrides the torch pins (default: the versions tested with bench; on our machines
# they install from the local wheel mirror). PYTHON picks the interpreter (default python3, >= 3.11).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC2086  # TORCH_SPEC is a list of requirement strings
.venv/bin/python -m pip install --quiet --disable-pip-version-check $TORCH_SPEC -e ".[test]" 2>&1 \
    | grep -v "^WARNING: Location 'file://" || true
.venv/bin/python -c "import bench, torch, open_clip, mmengine, diffusers; print('bench', bench.__version__, 'torch', torch.__version__)"
