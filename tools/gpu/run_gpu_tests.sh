#!/usr/bin/env bash
# Runs the CUDA engine's test suite on a machine with a GPU, from the repository root, with a
# build directory made elsewhere and carried here:
#
#   tools/gpu/run_gpu_tests.sh [BUILD_DIR]      (default: build)
#
# Steps (each runs even when an earlier one failed; the summary lists them all):
#   1. the device as nvidia-smi sees it (informational);
#   2. cuda_kernels_test, cuda_backend_test, cuda_sampling_test and cuda_embedding_test, with
#      XLSTM_REQUIRE_CUDA=1 so that a test that finds no device fails instead of skipping;
#   3. compute-sanitizer --tool memcheck on cuda_kernels_test, without its largest mLSTM shapes
#      (MEMCHECK_FILTER) to stay within about two minutes, and on the small-vocabulary tests of
#      cuda_sampling_test (SAMPLING_MEMCHECK_FILTER: every sampling kernel and the CUB sort, many
#      sort groups and staging batches, in seconds), and on cuda_embedding_test's default fixture.
# Exits non-zero when any step failed.
#
# Environment:
#   REPORT_DIR       where gtest XML reports and logs go (default: BUILD_DIR/gpu-test-reports)
#   MEMCHECK_FILTER  gtest filter for the memcheck run (default: -*dqk256_dv512*)
#   SAMPLING_MEMCHECK_FILTER  the same for cuda_sampling_test (default: the vocab-7 tests, one
#                    vocab-1000 test with small sort groups, the bad-row test)
#   SANITIZER        compute-sanitizer binary (default: /usr/local/cuda/bin/compute-sanitizer)
#   GTEST_ARGS       extra arguments for every test binary (e.g. --gtest_repeat=3)
set -euo pipefail
cd "$(dirname "$0")/../.."

BUILD_DIR=${1:-build}
REPORT_DIR=${REPORT_DIR:-$BUILD_DIR/gpu-test-reports}
MEMCHECK_FILTER=${MEMCHECK_FILTER:--*dqk256_dv512*}
SAMPLING_MEMCHECK_FILTER=${SAMPLING_MEMCHECK_FILTER:-*Vocab7:*Vocab1000SmallSortGroups:*BadRowsAreRejected}
SANITIZER=${SANITIZER:-/usr/local/cuda/bin/compute-sanitizer}
read -r -a EXTRA_ARGS <<<"${GTEST_ARGS:-}"
KERNELS_TEST=$BUILD_DIR/tests/cuda/cuda_kernels_test
BACKEND_TEST=$BUILD_DIR/tests/cuda/cuda_backend_test
SAMPLING_TEST=$BUILD_DIR/tests/cuda/cuda_sampling_test
export XLSTM_REQUIRE_CUDA=1

mkdir -p "$REPORT_DIR"
summary=()
failed=0

# run_step NAME COMMAND...: runs the command with its output teed to REPORT_DIR/NAME.log and
# records PASS or FAIL with the exit status and the time taken.
run_step() {
  local name=$1
  shift
  echo
  echo "=== $name: $*"
  local start=$SECONDS rc=0
  "$@" 2>&1 | tee "$REPORT_DIR/$name.log" || rc=$?
  local elapsed=$((SECONDS - start))
  if [[ $rc -eq 0 ]]; then
    summary+=("PASS  $name (${elapsed}s)")
  else
    summary+=("FAIL  $name (exit $rc, ${elapsed}s, log $REPORT_DIR/$name.log)")
    failed=1
  fi
}

# Fails a step that cannot start, naming the reason.
fail_step() {
  summary+=("FAIL  $1 ($2)")
  failed=1
  echo "=== $1: $2" >&2
}

# Checks that a test binary exists and that the dynamic loader finds all its libraries.
binary_ready() {
  local binary=$1
  if [[ ! -x $binary ]]; then
    echo "missing $binary (build the cuda_kernels_test, cuda_backend_test, cuda_sampling_test and cuda_embedding_test targets)"
    return 1
  fi
  local missing
  missing=$(ldd "$binary" 2>/dev/null | grep 'not found' || true)
  if [[ -n $missing ]]; then
    echo "$binary cannot load: $(echo "$missing" | awk '{print $1}' | tr '\n' ' ')"
    return 1
  fi
}

# The tests find their fixtures through the source path compiled into them. When the tree was
# carried to another path, make that path lead here.
source_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)
if [[ -n $source_dir && ! -d $source_dir/tests/data && $source_dir != "$PWD" ]]; then
  echo "fixtures: the build was configured in $source_dir; linking $source_dir/tests/data to $PWD/tests/data"
  if ! { mkdir -p "$source_dir/tests" && ln -sfn "$PWD/tests/data" "$source_dir/tests/data"; }; then
    echo "fixtures: could not create the link; fixture-based tests will fail" >&2
  fi
fi

echo "=== device"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv || true
else
  echo "nvidia-smi not found"
fi

for test in cuda_kernels_test cuda_backend_test cuda_sampling_test cuda_embedding_test; do
  binary=$BUILD_DIR/tests/cuda/$test
  if reason=$(binary_ready "$binary"); then
    run_step "$test" "$binary" --gtest_output="xml:$REPORT_DIR/$test.xml" "${EXTRA_ARGS[@]}"
  else
    fail_step "$test" "$reason"
  fi
done

# memcheck_step NAME TEST_BINARY GTEST_FILTER
# --error-exitcode: without it compute-sanitizer exits with the program's status even when it
# reported memory errors.
memcheck_step() {
  local name=$1 binary=$2 filter=$3 reason
  if [[ ! -x $SANITIZER ]]; then
    fail_step "$name" "compute-sanitizer not found at $SANITIZER"
  elif reason=$(binary_ready "$binary"); then
    run_step "$name" "$SANITIZER" --tool memcheck --error-exitcode 86 --print-limit 50 \
      "$binary" --gtest_filter="$filter" "${EXTRA_ARGS[@]}"
  else
    fail_step "$name" "$reason"
  fi
}
memcheck_step memcheck "$KERNELS_TEST" "$MEMCHECK_FILTER"
memcheck_step memcheck_sampling "$SAMPLING_TEST" "$SAMPLING_MEMCHECK_FILTER"
# The hidden-state rows of Embed (gather, fp32 final norm, copy out) on the small fixtures.
memcheck_step memcheck_embedding "$BUILD_DIR/tests/cuda/cuda_embedding_test" "*default*"

# gtest prints skipped tests; with XLSTM_REQUIRE_CUDA nothing should skip, so say so if it did.
for log in "$REPORT_DIR"/cuda_kernels_test.log "$REPORT_DIR"/cuda_backend_test.log \
  "$REPORT_DIR"/cuda_sampling_test.log; do
  if [[ -f $log ]] && grep -q '^\[  SKIPPED \]' "$log"; then
    echo "note: $(basename "$log" .log) skipped tests:"
    grep '^\[  SKIPPED \]' "$log" | sed 's/^/  /'
  fi
done

echo
echo "=== summary (reports in $REPORT_DIR)"
printf '%s\n' "${summary[@]}"
for log in "$REPORT_DIR"/*.log; do
  [[ -f $log ]] || continue
  grep -h '^\[ measured \]' "$log" || true
done
exit "$failed"
