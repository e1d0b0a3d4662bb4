#!/usr/bin/env bash
# Every GPU figure this project still lacks, in one script that finishes within 8 minutes on one
# GPU (each step has its own time limit; a step that fails or times out is reported and the
# script goes on). Not needed for CI. Run it whenever a GPU machine is lent and keep its output:
#
#   scripts/gpu_check.sh 2>&1 | tee gpu_check.log
#
# Steps: the card; `gdw bench --device cuda` plain, --channels-last, --compile, --bf16; the GPU
# packing benchmark (N ResNet-32 runs sharing the card); a 2-epoch synthetic CUDA run; a small
# sweep on GPU slots (--gpus 0 --per-gpu 2) and its report; the CUDA tests (pytest -m cuda).
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
GDW=("$PY" -m gdw_cli)
TMP=$(mktemp -d /tmp/gdw-gpu-check-XXXX)
START=$(date +%s)
FAILED=()

step() {  # step NAME LIMIT_S COMMAND...
    local name=$1 limit=$2
    shift 2
    echo
    echo "== $name (limit ${limit}s, t+$(( $(date +%s) - START ))s)"
    timeout --signal=TERM --kill-after=5 "$limit" "$@"
    local rc=$?
    [ "$rc" -eq 0 ] || { echo "-- $name: exit $rc$([ "$rc" -eq 124 ] && echo ' (time limit)')"; FAILED+=("$name"); }
}

echo "== card"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader || {
    echo "error: nvidia-smi found no GPU; this script needs one" >&2
    exit 2
}
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"

step "bench plain" 45 "${GDW[@]}" bench --device cuda
step "bench --channels-last" 45 "${GDW[@]}" bench --device cuda --channels-last --no-augmentation
step "bench --compile" 90 "${GDW[@]}" bench --device cuda --compile --methods erm,gdw --no-augmentation
step "bench --bf16" 45 "${GDW[@]}" bench --device cuda --bf16 --no-augmentation
step "packing gdw" 100 "$PY" scripts/bench_packing.py --per-gpu 1,2,4,8 --method gdw --seconds 8
step "synthetic 2-epoch CUDA run" 45 "${GDW[@]}" run --headless synthetic-smoke --device cuda --epochs 2 --runs-dir "$TMP/runs"
step "sweep on GPU slots" 60 "${GDW[@]}" sweep digits-clean --methods erm,gdw --seeds 1,2 --device cuda --gpus 0 --per-gpu 2 \
    --set train.epochs=2 --runs-dir "$TMP/runs"
step "sweep report" 15 "${GDW[@]}" report digits-clean --format md --runs-dir "$TMP/runs"
step "CUDA tests" 60 "$PY" -m pytest -q -m cuda -p no:cacheprovider

echo
echo "== done in $(( $(date +%s) - START ))s; failed steps: ${FAILED[*]:-none}"
rm -rf "$TMP"
[ ${#FAILED[@]} -eq 0 ]
