#!/usr/bin/env bash
# The project's entry points, shared by the README quick start and CI:
#
#   tools/dev.sh demo   install dependencies, build, create the default (random-weight) model,
#                       start xlstm-server on it (free port), stream a generation, check health,
#                       score a continuation with xlstm-client, then stop the server (SIGTERM)
#   tools/dev.sh test   install dependencies, build, run every test (plus the model-loading
#                       tests under address/undefined sanitizers, in a clang build that also
#                       has the fuzzers), build everything again as Release (the build type
#                       packagers and Dockerfiles use), run each fuzzer for 15 s, and build
#                       and run the container image (tools/container-test.sh, needs root)
#   tools/dev.sh build  install dependencies and build only
#   tools/dev.sh fuzz [SECONDS]
#                       build the libFuzzer targets (clang, ASan+UBSan, in $BUILD_DIR-sanitize)
#                       and run each for SECONDS (default 20) from tests/data/fuzz/<target>/
#
# Environment: BUILD_DIR (default build), JOBS (default: number of cores), DEMO_MODEL (default
# $BUILD_DIR/models/demo), DEMO_READY_TIMEOUT (seconds to wait for the server, default 60).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
DEMO_MODEL=${DEMO_MODEL:-$BUILD_DIR/models/demo}

build() {
  bash tools/bootstrap.sh
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

# The libFuzzer targets of fuzz/ and the corpus directory each one starts from.
FUZZERS=(model_config safetensors model_dir tokenizer_json request_validation)

# One clang build with ASan+UBSan serves both the sanitizer tests and the fuzzers (libFuzzer
# needs clang), so CI compiles the sanitized libraries once. Extra targets: $@.
SANITIZE_DIR="$BUILD_DIR-sanitize"
sanitize_build() {
  cmake -S . -B "$SANITIZE_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DXLSTM_ENABLE_CUDA=OFF \
    -DXLSTM_FUZZ=ON -DXLSTM_SANITIZE="address;undefined"
  cmake --build "$SANITIZE_DIR" -j "$JOBS" --target "${FUZZERS[@]/#/fuzz_}" "$@"
}

# Runs every fuzzer for $1 seconds. New inputs go to $SANITIZE_DIR/corpus/<target> (the
# committed seeds in tests/data/fuzz/<target> are only read); a crash stops with its input
# saved as $SANITIZE_DIR/crash-<target>-*, to be committed to tests/data/fuzz/<target>/.
fuzz_run() {
  local seconds=$1 name
  for name in "${FUZZERS[@]}"; do
    local corpus="$SANITIZE_DIR/corpus/$name"
    mkdir -p "$corpus"
    echo "== fuzz_$name for ${seconds}s"
    local log="$SANITIZE_DIR/fuzz_$name.log" status=0
    "$SANITIZE_DIR/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$SANITIZE_DIR/crash-$name-" \
      "$corpus" "tests/data/fuzz/$name" >"$log" 2>&1 || status=$?
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|SUMMARY|Test unit written' \
      "$log" || true
    if ((status != 0)); then
      tail -40 "$log" >&2
      echo "dev.sh: fuzz_$name failed (status $status); the input is $SANITIZE_DIR/crash-$name-*" >&2
      return 1
    fi
  done
}

demo_model() {
  if [[ ! -f "$DEMO_MODEL/model.safetensors" ]]; then
    "$BUILD_DIR/tools/xlstm_run/xlstm-run" init-random --config tools/configs/demo.json --seed 0 \
      --dtype bfloat16 --tokenizer tests/data/tokenizers/gpt-neox-20b/tokenizer.json --out "$DEMO_MODEL"
  fi
}

# The demo server: started on a free port, stopped (and waited for) on every exit path.
SERVER_PID=""
DEMO_TMP=""
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
  if [[ -n "$DEMO_TMP" ]]; then rm -rf "$DEMO_TMP"; fi
}

demo_server() {
  local client="$BUILD_DIR/client/xlstm-client" timeout=${DEMO_READY_TIMEOUT:-60}
  DEMO_TMP=$(mktemp -d)
  trap stop_server EXIT
  trap 'exit 130' INT TERM
  local log="$DEMO_TMP/server.log"
  echo "== xlstm-server --model $DEMO_MODEL --port 0 (a free port)"
  "$BUILD_DIR/server/xlstm-server" --model "$DEMO_MODEL" --host 127.0.0.1 --port 0 \
    --metrics-port 0 --num-slots 8 >"$log" 2>&1 &
  SERVER_PID=$!
  local ready="" start=$SECONDS
  while [[ -z "$ready" ]]; do
    ready=$(grep -m1 -o 'ready grpc_port=[0-9]* metrics_port=-\?[0-9]*' "$log" || true)
    [[ -n "$ready" ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "demo: xlstm-server exited before it was ready; its output:" >&2
      cat "$log" >&2
      exit 1
    fi
    if ((SECONDS - start >= timeout)); then
      echo "demo: xlstm-server not ready after ${timeout}s (DEMO_READY_TIMEOUT); its output:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.2
  done
  local port=${ready#ready grpc_port=}
  port=${port%% *}
  local metrics_port=${ready##*metrics_port=}
  local target="127.0.0.1:$port"
  grep -m1 'ready' "$log"

  echo
  echo "== xlstm-client --target $target health"
  "$client" --target "$target" health

  echo
  echo "== xlstm-client --target $target generate --prompt ... --stream"
  echo "   (random weights: the tokens are meaningless, the pipeline that streams them is real)"
  "$client" --target "$target" generate --prompt "The recurrent state of an xLSTM" \
    --max-new-tokens 24 --temperature 0.8 --top-p 0.95 --seed 1 --stream

  echo
  echo "== xlstm-client --target $target score --context ... --continuation ...  (log P per token)"
  "$client" --target "$target" score --context "The recurrent state of an" \
    --continuation " xLSTM cell"

  echo
  echo "== GET 127.0.0.1:$metrics_port/metrics (a few of the Prometheus series)"
  if exec 3<>"/dev/tcp/127.0.0.1/$metrics_port" 2>/dev/null; then
    printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
    grep -E '^xlstm_(generation_tokens_total|prompt_tokens_total|request_success_total)' <&3 || true
    exec 3<&- 3>&-
  fi

  echo
  echo "== SIGTERM: the server drains and exits"
  kill -TERM "$SERVER_PID"
  local status=0
  wait "$SERVER_PID" || status=$?
  SERVER_PID=""
  grep -E 'draining|stopped' "$log" || true
  if ((status != 0)); then
    echo "demo: xlstm-server exited with status $status" >&2
    exit 1
  fi
  echo "demo: done (server exit status 0)"
}

case "${1:-}" in
  build)
    build
    ;;
  demo)
    build
    demo_model
    demo_server
    ;;
  test)
    build
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS"
    # Malformed-input handling must also hold under the sanitizers (clang, ASan+UBSan; the same
    # build has the fuzzers).
    sanitize_start=$SECONDS
    sanitize_build model_loading_test model_config_test dtype_test
    ctest --test-dir "$SANITIZE_DIR" --output-on-failure -j "$JOBS" \
      -R '^(ModelLoadingTest|ModelConfigTest|DTypeTest)\.'
    echo "dev.sh: sanitizer build and tests took $((SECONDS - sanitize_start))s"
    # Release (-O3) must build: GCC's optimizer-driven warnings (-Werror=restrict,
    # -Wstringop-overflow, ...) fire only there. CUDA is off to keep CI short: nvcc compiles the
    # CUDA backend in the build above wherever it is installed. Through ccache with the repo as
    # base directory and no locale variables (ccache hashes them): the container image's build
    # stage (same compiler, flags, relative paths, no locale) then hits these compiles
    # (tools/container-test.sh).
    release_start=$SECONDS
    cmake -S . -B "$BUILD_DIR-release" -G Ninja -DCMAKE_BUILD_TYPE=Release -DXLSTM_ENABLE_CUDA=OFF \
      -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
    env -u LANG -u LC_ALL -u LC_CTYPE -u LC_MESSAGES CCACHE_BASEDIR="$PWD" \
      cmake --build "$BUILD_DIR-release" -j "$JOBS"
    echo "dev.sh: Release build took $((SECONDS - release_start))s"
    # Fuzzing, short: every target for 15 s from its committed seeds (which include the inputs of
    # every crash found so far), in the sanitizer build above.
    fuzz_start=$SECONDS
    fuzz_run "${FUZZ_SECONDS:-15}"
    echo "dev.sh: fuzz short runs (${#FUZZERS[@]} targets) took $((SECONDS - fuzz_start))s"
    # The Dockerfile, built with buildah and run: the server in the image, driven from here.
    container_start=$SECONDS
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then SUDO="sudo --preserve-env=BUILD_DIR,CT_CCACHE_DIR"; fi
    BUILD_DIR="$BUILD_DIR-release" CT_CCACHE_DIR=$(ccache -k cache_dir) \
      $SUDO bash tools/container-test.sh
    echo "dev.sh: container test took $((SECONDS - container_start))s"
    ;;
  fuzz)
    bash tools/bootstrap.sh
    sanitize_build
    fuzz_run "${2:-20}"
    ;;
  *)
    echo "usage: tools/dev.sh demo|test|build|fuzz [SECONDS]" >&2
    exit 2
    ;;
esac
