#!/usr/bin/env bash
# One call on the GPU box for the serving layer: the CUDA engine's test suite, the server's
# end-to-end suites with --backend cuda, and xlstm-loadgen through xlstm-server on a random 7B
# checkpoint written there with Hugging Face's save_pretrained (the server's own path, next to
# the engine-only figures of tools/gpu/box_session.sh).
#
#   tools/gpu/server_session.sh ARCHIVE OUT_DIR COMMIT_LABEL
#
# ARCHIVE is made here with tools/device/pack.sh from a CUDA build directory and must hold
# tests/cuda/{cuda_kernels_test,cuda_backend_test,cuda_sampling_test},
# tests/server/{server_e2e_test,text_e2e_test,streaming_e2e_test,loadgen_e2e_test},
# server/xlstm-server, client/xlstm-client, client/xlstm-loadgen and tools/xlstm_run/xlstm-run.
# Run from the repository root on the box. The tests find the binaries and fixtures at the
# paths compiled into them (/work/main/...): when the tree is elsewhere, /work/main is made to
# lead here. Logs and loadgen JSON go to OUT_DIR/server_session.tar.gz, the summary to
# OUT_DIR/summary.txt. Exit status 0 when every stage passed.
set -uo pipefail

archive=${1:?usage: server_session.sh ARCHIVE OUT_DIR COMMIT_LABEL}
out=${2:?usage: server_session.sh ARCHIVE OUT_DIR COMMIT_LABEL}
commit=${3:-unknown}
here=$PWD
work=$(mktemp -d)
logs=$work/server_session
mkdir -p "$work/pkg" "$logs" "$out"
tar -xJf "$archive" -C "$work/pkg"
export LD_LIBRARY_PATH=$work/pkg/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
bin=$work/pkg/build
failed=0
summary=()

if [[ $here != /work/main ]]; then
  if [[ ! -e /work/main ]]; then mkdir -p /work && ln -sfn "$here" /work/main; fi
fi
if [[ ! -e /work/main/build ]]; then ln -sfn "$bin" /work/main/build; fi

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
    tail -n 40 "$logs/$name.log"
  fi
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$logs/nvidia-smi.txt" 2>&1
cat "$logs/nvidia-smi.txt"

# SKIP_TESTS=1: only the 7B load runs (the tests ran in an earlier call at the same commit).
if [[ ${SKIP_TESTS:-0} != 1 ]]; then
  REPORT_DIR=$logs/gpu_tests stage gpu_tests 300 tools/gpu/run_gpu_tests.sh "$bin"
  export XLSTM_TEST_SERVER_ARGS="--backend cuda --weight-dtype float32"
  for suite in server_e2e_test text_e2e_test streaming_e2e_test loadgen_e2e_test; do
    stage "e2e_cuda_$suite" 240 "$bin/tests/server/$suite"
  done
  unset XLSTM_TEST_SERVER_ARGS
fi

# A random 7B checkpoint (Transformers' xLSTMConfig defaults are the 7B shape), bf16.
model=$work/xlstm-7b-random
stage write_7b 180 python3 - "$model" <<'EOF'
import sys, time, torch, transformers
start = time.time()
config = transformers.xLSTMConfig()
with torch.device("cuda"):
    model = transformers.xLSTMForCausalLM(config).to(torch.bfloat16)
model.save_pretrained(sys.argv[1])
print(f"wrote {sys.argv[1]} in {time.time() - start:.1f} s")
EOF

server_log=$logs/server_7b.log
"$bin/server/xlstm-server" --model "$model" --backend cuda --host 127.0.0.1 --port 0 \
  --metrics-port 0 --num-slots 256 --max-queue 1024 --stats-interval-seconds 5 \
  > "$server_log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 600); do
  port=$(grep -m1 -o 'ready grpc_port=[0-9]*' "$server_log" | cut -d= -f2)
  [[ -n $port ]] && break
  kill -0 $server_pid 2>/dev/null || break
  sleep 0.2
done
if [[ -z $port ]]; then
  summary+=("FAIL  server_7b (not ready; see server_7b.log)")
  failed=1
  tail -n 40 "$server_log"
else
  summary+=("PASS  server_7b ready on $port")
  # LOADS: "streams:prompt_tokens:new_tokens" entries. Default: issue 11's workload (prompt 128,
  # 512 new tokens) at 1/8/64/256 streams, then the engine-only benchmark's workload (prompt 1:
  # pure decode) at 64 and 256, so that prefill work and serving overhead can be told apart.
  metrics_port=$(grep -m1 -o 'metrics_port=[0-9]*' "$server_log" | cut -d= -f2)
  for load in ${LOADS:-1:128:512 8:128:512 64:128:512 256:128:512 64:1:512 256:1:512}; do
    IFS=: read -r streams prompt new <<<"$load"
    name="loadgen_7b_${streams}_p${prompt}"
    stage "$name" 120 "$bin/client/xlstm-loadgen" --target "127.0.0.1:$port" \
      --concurrency "$streams" --duration-s 20 --warmup-s 10 --prompt-tokens "$prompt" \
      --max-new-tokens "$new" --greedy --json "$logs/$name.json"
    # The server's own step-phase histograms, cumulative since start (differences between
    # consecutive scrapes give each load's share).
    python3 -c "import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())" \
      "http://127.0.0.1:$metrics_port/metrics" > "$logs/metrics_after_$name.txt" 2>&1 || true
  done
fi
kill -TERM $server_pid 2>/dev/null
wait $server_pid 2>/dev/null

{
  echo "commit $commit"
  printf '%s\n' "${summary[@]}"
  for f in "$logs"/loadgen_7b_*.json; do
    [[ -f $f ]] || continue
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(sys.argv[1].split('/')[-1], 'output_tok_s=%.0f' % j['output_tokens_per_second'], 'ttft_p50_ms=%.1f' % j['ttft_ms']['p50'], 'itl_p50_ms=%.2f' % j['itl_ms']['p50'], 'errors=%d' % j['errors'])" "$f"
  done
} > "$logs/summary.txt"
cp "$logs/summary.txt" "$out/"
tar -czf "$out/server_session.tar.gz" -C "$work" server_session
echo
cat "$logs/summary.txt"
exit "$failed"
