#!/usr/bin/env bash
# Mutation testing (mutmut 3) of the code where a wrong line changes numbers silently: methods/_parts/, the
# methods' logits and loss, bench/analysis/metrics.py and stats.py, bench/grid/fusion.py, bench/data/base.py.
#   bash scripts/mutation.sh [SECONDS]   # default 5400; stops there and keeps what it has (a rerun goes on)
#   MUTATION_DIR=/tmp/m JOBS=2 bash scripts/mutation.sh 600 'bench.analysis.metrics.*'   # some mutants only
# mutmut names mutants by module, so it runs in a copy laid out as the installed wheel (methods/ as bench/methods/,
# configs/ as bench/configs/) under $MUTATION_DIR (default /tmp/bench-mutation), never in the checkout: its
# mutants/ folder holds the results (mutmut caches them; a rerun tests what is left or changed). The files and the
# fast tests each mutant runs are in pyproject.toml [tool.mutmut]; scripts/mutation_report.py prints kill rates.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
STAGE=${MUTATION_DIR:-/tmp/bench-mutation}
BUDGET=${1:-5400}
shift || true
.venv/bin/python -c "import mutmut" 2>/dev/null || .venv/bin/pip install --quiet --disable-pip-version-check "mutmut==3.8.1"
mkdir -p "$STAGE"
rm -rf "$STAGE/bench" "$STAGE/tests"
cp -rp bench "$STAGE/bench" && cp -rp methods "$STAGE/bench/methods" && cp -rp configs "$STAGE/bench/configs"
cp -rp tests "$STAGE/tests" && cp -p pyproject.toml "$STAGE/"
find "$STAGE/bench" "$STAGE/tests" -name __pycache__ -prune -exec rm -rf {} +
if [ "$#" -eq 0 ]; then  # every mutant of the files, but of the methods' own files only logits and loss
    set -- 'bench.analysis.*' 'bench.grid.fusion.*' 'bench.data.base.*' 'bench.methods._parts.*' \
        'bench.methods.*ǁlogits__mutmut_*' 'bench.methods.*ǁloss__mutmut_*'
fi
cd "$STAGE"
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
status=0
timeout "$BUDGET" "$REPO/.venv/bin/mutmut" run --max-children "${JOBS:-2}" "$@" > "$STAGE/run.log" 2>&1 || status=$?
[ "$status" -eq 124 ] && echo "stopped after ${BUDGET}s (rerun to go on)"
"$REPO/.venv/bin/python" "$REPO/scripts/mutation_report.py" "$STAGE/mutants" "$@"
