#!/usr/bin/env bash
# One call on the GPU box for the CUDA engine: the GPU tests, a memcheck of the decode-graph
# tests, the benchmark and per-kernel layer profiles, with binaries built elsewhere.
#
#   tools/gpu/box_session.sh ARCHIVE OUT_DIR COMMIT_LABEL
#
# ARCHIVE is made here with tools/device/pack.sh from a build directory (cuda_kernels_test,
# cuda_backend_test, cuda_sampling_test, xlstm-bench, xlstm-layer-profile). Run from the
# repository root on the box. Everything lands in a scratch directory and is tarred into
# OUT_DIR/session.tar.gz (the device tool brings back at most 8 files); the benchmark tables and
# the summary are also copied to OUT_DIR. Stages have timeouts; each runs even when an earlier
# one failed. Exit status 0 when every stage passed.
set -uo pipefail

archive=${1:?usage: box_session.sh ARCHIVE OUT_DIR COMMIT_LABEL}
out=${2:?usage: box_session.sh ARCHIVE OUT_DIR COMMIT_LABEL}
commit=${3:-unknown}
here=$PWD
work=$(mktemp -d)
logs=$work/session
mkdir -p "$work/pkg" "$logs" "$out"
tar -xJf "$archive" -C "$work/pkg"
export LD_LIBRARY_PATH=$work/pkg/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
bin=$work/pkg/build
failed=0
summary=()

# The tests read their fixtures from the source path compiled into them (/work/main here).
if [[ ! -d /work/main/tests/data && -d $here/tests/data ]]; then
  mkdir -p /work/main/tests && ln -sfn "$here/tests/data" /work/main/tests/data
fi

stage() {  # stage NAME LIMIT_S CMD...: output to $logs/NAME.log
  local name=$1 limit=$2
  shift 2
  echo "== $name ($(date -u +%H:%M:%S)): $*"
  local start=$SECONDS rc=0
  timeout -k 10 "$limit" "$@" > "$logs/$name.log" 2>&1 || rc=$?
  if [[ $rc -eq 0 ]]; then
    summary+=("PASS  $name ($((SECONDS - start)) s)")
  else
    summary+=("FAIL  $name (exit $rc, $((SECONDS - start)) s)")
    failed=1
    tail -n 30 "$logs/$name.log"
  fi
}

nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm \
  --format=csv > "$logs/nvidia-smi.txt" 2>&1
cat "$logs/nvidia-smi.txt"

REPORT_DIR=$logs/tests stage gpu_tests 240 tools/gpu/run_gpu_tests.sh "$bin"
stage memcheck_backend 150 /usr/local/cuda/bin/compute-sanitizer --tool memcheck \
  --error-exitcode 86 --print-limit 50 "$bin/tests/cuda/cuda_backend_test" \
  --gtest_filter='*DecodeGraph*:*DependentLaunch*:*Greedy*:*Bf16State*'

bench=$bin/tools/bench/xlstm-bench
common=(--decode-prompt 128 --prefill-tokens 2048 --prefill-batches 1,8 --ttft-prompts 128,2048
  --commit "$commit")
# 7B: decode through graphs and the general path (greedy and sampled), fp32 state; then the
# same with cuBLAS for every product (--no-gemv), then a bf16 state.
stage bench_7b 150 "$bench" --shapes 7b --decode-batches 1,8,64,256 \
  --decode-modes greedy,sampled,sampled_topk --decode-paths graphs,general --decode-steps 16 --repeats 3 \
  --budget-s 3 --json "$logs/ours_7b.json" "${common[@]}"
# The same 7B decode with every kernel in plain stream order (no programmatic dependent launch),
# to measure what dependent launch buys.
stage bench_7b_plain 120 "$bench" --shapes 7b --decode-batches 1,8,64,256 --no-dependent-launch \
  --decode-modes greedy --decode-paths graphs --decode-steps 16 --repeats 3 --budget-s 3 \
  --prefill-batches 1 --ttft-prompts 128 --prefill-tokens 128 \
  --json "$logs/ours_7b_plain.json" --commit "$commit"
stage bench_7b_nogemv 90 "$bench" --shapes 7b --decode-batches 1,8 --no-gemv \
  --decode-modes greedy --decode-paths graphs --decode-steps 16 --repeats 3 --budget-s 3 \
  --prefill-batches 1 --ttft-prompts 128 --decode-prompt 128 --prefill-tokens 128 \
  --json "$logs/ours_7b_nogemv.json" --commit "$commit"
stage bench_7b_bf16_state 120 "$bench" --shapes 7b --decode-batches 1,8,64,256 \
  --state-dtype bfloat16 --decode-modes greedy,sampled --decode-paths graphs --decode-steps 16 \
  --repeats 3 --budget-s 3 --json "$logs/ours_7b_bf16_state.json" "${common[@]}"
stage bench_small 120 "$bench" --shapes 162m,407m --decode-batches 1,8,64,256 \
  --decode-modes greedy,sampled,argmax --decode-paths graphs,general --decode-steps 64 \
  --repeats 5 --budget-s 2 --json "$logs/ours_small.json" "${common[@]}"
stage bench_small_plain 90 "$bench" --shapes 162m,407m --decode-batches 1,8 --no-dependent-launch \
  --decode-modes greedy --decode-paths graphs --decode-steps 64 --repeats 5 --budget-s 2 \
  --prefill-batches 1 --ttft-prompts 128 --prefill-tokens 128 \
  --json "$logs/ours_small_plain.json" --commit "$commit"
i=0
for shape in "4096 8 1 1" "4096 8 8 1" "4096 8 64 1" "4096 8 64 1 bfloat16" "4096 8 256 1" \
  "4096 8 256 1 bfloat16" "768 4 1 1" "1024 4 1 1"; do
  i=$((i + 1))
  # shellcheck disable=SC2086
  stage "layer_profile_$i" 30 "$bin/tools/bench/xlstm-layer-profile" $shape
done
for f in "$logs"/layer_profile_*.log; do echo "### $f"; cat "$f"; done > "$logs/layer_profile.log"

{
  echo "commit $commit"
  printf '%s\n' "${summary[@]}"
  grep -h '^\[ measured \]' "$logs"/tests/*.log "$logs"/*.log 2>/dev/null | sort -u
} > "$logs/summary.txt"
for f in bench_7b.log bench_7b_plain.log bench_small_plain.log bench_7b_nogemv.log bench_7b_bf16_state.log bench_small.log layer_profile.log summary.txt; do
  [[ -f $logs/$f ]] && cp "$logs/$f" "$out/"
done
tar -czf "$out/session.tar.gz" -C "$work" session
echo
cat "$logs/summary.txt"
grep -h '^| decode\|^| prefill\|^| TTFT\|^###\|^bandwidth\|^(cuBLAS' "$logs"/bench_*.log 2>/dev/null
exit "$failed"
