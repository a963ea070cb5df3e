#!/usr/bin/env bash
# Runs the CUDA backend benchmark (xlstm-bench) and the Hugging Face eager baseline
# (hf_bench.py) one after the other on the GPU box, then puts them side by side (compare.py).
#
#   BUILD_DIR=build-h5b tools/bench/run_on_gpu_box.sh "$OUT" "$(git rev-parse HEAD)"
#
# Run from the repository root. BUILD_DIR (default: build) holds tools/bench/xlstm-bench, built
# elsewhere and carried to the box; LD_LIBRARY_PATH is the caller's. The second argument (or
# $XLSTM_COMMIT, else `git rev-parse HEAD` where .git exists) is recorded as the commit.
#
# Writes into OUT_DIR: nvidia-smi.txt, ours_small.{json,md,err} (162m, 407m), ours_7b.{json,md,err},
# hf.{json,md,err}, compare.md and run.log. Each stage has a timeout and the stages' limits sum
# to under 8 minutes; every program rewrites its JSON after each measurement (ours) or shape (HF),
# so a stage cut short keeps what it had measured. Exit status: 0 when every stage succeeded.
set -uo pipefail

OUT_DIR=${1:?usage: run_on_gpu_box.sh OUT_DIR [COMMIT]}
COMMIT=${2:-${XLSTM_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}}
BUILD_DIR=${BUILD_DIR:-build}
BENCH=${XLSTM_BENCH:-$BUILD_DIR/tools/bench/xlstm-bench}
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

mkdir -p "$OUT_DIR"
LOG=$OUT_DIR/run.log
: > "$LOG"
START=$(date +%s)
FAILED=0

stage() { echo "== $* (t=$(($(date +%s) - START)) s)" | tee -a "$LOG"; }
# run NAME LIMIT_S CMD...: stdout to NAME.md (and the terminal), stderr to NAME.err.
run() {
  local name=$1 limit=$2
  shift 2
  stage "$name: $*"
  timeout -k 10 "$limit" "$@" 2> "$OUT_DIR/$name.err" | tee "$OUT_DIR/$name.md"
  local rc=${PIPESTATUS[0]}
  if [[ $rc -ne 0 ]]; then
    FAILED=1
    echo "!! $name exited $rc$([[ $rc -eq 124 || $rc -eq 137 ]] && echo " (timeout ${limit}s)")" \
      | tee -a "$LOG"
    tail -n 20 "$OUT_DIR/$name.err" | tee -a "$LOG"
  fi
}

stage "nvidia-smi"
{
  nvidia-smi -L
  nvidia-smi --query-gpu=name,memory.total,memory.used,clocks.max.sm,clocks.max.memory,power.limit,driver_version \
    --format=csv
} > "$OUT_DIR/nvidia-smi.txt" 2>&1
tee -a "$LOG" < "$OUT_DIR/nvidia-smi.txt"
echo "commit $COMMIT; bench $BENCH" | tee -a "$LOG"

if [[ ! -x $BENCH ]]; then
  echo "!! $BENCH not found or not executable (set BUILD_DIR or XLSTM_BENCH)" | tee -a "$LOG"
  FAILED=1
else
  # Small shapes: full settings (each decode measurement capped at ~6 s of timed steps).
  run ours_small 120 "$BENCH" --shapes 162m,407m --decode-batches 1,8,64,256 --decode-prompt 128 \
    --decode-steps 64 --prefill-tokens 2048 --prefill-batches 1,8 --ttft-prompts 128,2048 \
    --repeats 5 --budget-s 6 --json "$OUT_DIR/ours_small.json" --commit "$COMMIT"
  # 7B shape: fewer steps and repeats (13 GB of weights per step).
  run ours_7b 120 "$BENCH" --shapes 7b --decode-batches 1,8,64,256 --decode-prompt 128 \
    --decode-steps 16 --prefill-tokens 2048 --prefill-batches 1,8 --ttft-prompts 128,2048 \
    --repeats 3 --budget-s 6 --json "$OUT_DIR/ours_7b.json" --commit "$COMMIT"
fi

# HF eager: batches 1, 8, 64 (64 skipped for the 7B, as in docs/performance.md).
run hf 200 "$PYTHON" "$HERE/hf_bench.py" --shapes 162m,407m,7b --decode-batches 1,8,64 \
  --skip-7b-batches 64 --prompt 128 --steps 16 --prefill-tokens 2048 --prefill-batches 1,8 \
  --ttft-prompts 128,2048 --repeats 3 --warmup 3 --budget-s 5 --json "$OUT_DIR/hf.json" \
  --commit "$COMMIT"

stage "compare"
ours_json=()
for f in "$OUT_DIR/ours_small.json" "$OUT_DIR/ours_7b.json"; do [[ -f $f ]] && ours_json+=("$f"); done
hf_json=()
[[ -f $OUT_DIR/hf.json ]] && hf_json+=("$OUT_DIR/hf.json")
if [[ ${#ours_json[@]} -gt 0 ]]; then
  "$PYTHON" "$HERE/compare.py" --ours "${ours_json[@]}" --hf "${hf_json[@]}" \
    --out "$OUT_DIR/compare.md" > /dev/null || FAILED=1
  cat "$OUT_DIR/compare.md"
else
  echo "!! no xlstm-bench results to compare" | tee -a "$LOG"
  FAILED=1
fi
stage "done, failed=$FAILED"
exit $FAILED
