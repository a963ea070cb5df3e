#!/usr/bin/env bash
# The project's entry points, shared by the README quick start and CI:
#
#   tools/dev.sh demo   install dependencies, build, create the default (random-weight) model
#                       and generate from it
#   tools/dev.sh test   install dependencies, build, run every test (plus the model-loading
#                       tests under address/undefined sanitizers)
#   tools/dev.sh build  install dependencies and build only
#
# Environment: BUILD_DIR (default build), JOBS (default: number of cores).
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

demo_model() {
  if [[ ! -f "$DEMO_MODEL/model.safetensors" ]]; then
    "$BUILD_DIR/tools/xlstm_run/xlstm-run" init-random --config tools/configs/demo.json --seed 0 \
      --dtype bfloat16 --tokenizer tests/data/tokenizers/gpt-neox-20b/tokenizer.json --out "$DEMO_MODEL"
  fi
}

case "${1:-}" in
  build)
    build
    ;;
  demo)
    build
    demo_model
    echo "== xlstm-run generate (random weights: the tokens are meaningless, the pipeline is real)"
    "$BUILD_DIR/tools/xlstm_run/xlstm-run" generate --model "$DEMO_MODEL" \
      --prompt "The recurrent state of an xLSTM" --max-new-tokens 24 --temperature 0.8 --top-p 0.95 \
      --seed 1 --json
    ;;
  test)
    build
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS"
    # Malformed-input handling must also hold under the sanitizers.
    cmake -S . -B "$BUILD_DIR-sanitize" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
      -DXLSTM_SANITIZE="address;undefined" -DXLSTM_ENABLE_CUDA=OFF
    cmake --build "$BUILD_DIR-sanitize" -j "$JOBS" --target model_loading_test model_config_test dtype_test
    ctest --test-dir "$BUILD_DIR-sanitize" --output-on-failure -j "$JOBS" \
      -R '^(ModelLoadingTest|ModelConfigTest|DTypeTest)\.'
    ;;
  *)
    echo "usage: tools/dev.sh demo|test|build" >&2
    exit 2
    ;;
esac
