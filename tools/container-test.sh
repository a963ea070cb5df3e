#!/usr/bin/env bash
# Builds the CPU image from the top-level Dockerfile with buildah and tests it: xlstm-server runs
# inside the image (buildah run --isolation chroot, host network) on a model directory mounted
# in, and the host's xlstm-client drives it over 127.0.0.1: health, a streamed generation, a
# score, a /metrics scrape, then SIGTERM, after which the server must drain and exit 0.
#
#   tools/container-test.sh
#
# Needs root (buildah's chroot isolation), buildah and debootstrap (tools/bootstrap.sh installs
# them), and a host build with xlstm-client. No Docker engine and no registry: the Dockerfile's
# base image (debian:bookworm-slim) is made with `debootstrap --variant=minbase bookworm` from
# the Debian mirror apt uses, imported into buildah's local storage once, and the build runs
# with --pull=never.
#
# Build caches (both optional, both only speed the build up):
#   CT_CCACHE_DIR   host ccache directory lent to the build stage as /ccache (default: ccache's
#                   own, `ccache -k cache_dir`); tools/dev.sh's Release build fills it with the
#                   same compiler, flags and relative paths, so the image's compiles hit it.
#                   "none": no cache.
#   CT_APT_ARCHIVES host apt archive directory lent to both stages (default
#                   /var/cache/apt/archives, where tools/bootstrap.sh's packages already are);
#                   "none": download everything.
# CT_VARIANT=cuda builds the CUDA variant instead (--build-arg XLSTM_CUDA=ON CUDA_INSTALL=none,
# the host's /usr/local/cuda toolkit bind-mounted into the build stage), checks that the image
# holds libcublas and libcublasLt and that its server has the CUDA backend, and runs the same
# checks (the server falls back to the CPU backend where no GPU is visible). Not part of CI:
# it needs a CUDA toolkit on the host, and the image is about 920 MB.
# Other environment: BUILD_DIR (host build with client/xlstm-client, default build),
# CT_IMAGE (image name, default localhost/xlstm-serve:container-test), CT_READY_TIMEOUT
# (seconds for the server to be ready, default 120), CT_KEEP_IMAGE=0 to delete the image at the
# end (kept by default: buildah's layer cache makes the next run fast), CT_NO_CACHE=1 to build
# every step again (as on a fresh CI machine), CT_LOG_DIR to keep the build and server logs.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

BUILD_DIR=${BUILD_DIR:-build}
CLIENT="$BUILD_DIR/client/xlstm-client"
VARIANT=${CT_VARIANT:-cpu}
[[ $VARIANT == cpu || $VARIANT == cuda ]] || { echo "CT_VARIANT: cpu or cuda" >&2; exit 2; }
IMAGE=${CT_IMAGE:-localhost/xlstm-serve:container-test$(if [[ $VARIANT == cuda ]]; then echo -cuda; fi)}
BASE_IMAGE=docker.io/library/debian:bookworm-slim
READY_TIMEOUT=${CT_READY_TIMEOUT:-120}
KEEP_IMAGE=${CT_KEEP_IMAGE:-1}
NO_CACHE=${CT_NO_CACHE:-0}
LOG_DIR=${CT_LOG_DIR:-}
CCACHE_DIR_HOST=${CT_CCACHE_DIR:-$(ccache -k cache_dir 2>/dev/null || echo none)}
APT_ARCHIVES=${CT_APT_ARCHIVES:-/var/cache/apt/archives}

log() { echo "container-test: $*"; }
die() {
  echo "container-test: FAIL: $*" >&2
  exit 1
}

[[ $(id -u) -eq 0 ]] || die "needs root (buildah --isolation chroot)"
for tool in buildah debootstrap curl; do
  command -v "$tool" >/dev/null || die "$tool not found (run tools/bootstrap.sh)"
done
[[ -x $CLIENT ]] || die "$CLIENT not found: build the host tree first (BUILD_DIR=$BUILD_DIR)"

TMP=""
CTR=""
RUN_PID=""
cleanup() {
  local status=$?
  if [[ -n $RUN_PID ]] && kill -0 "$RUN_PID" 2>/dev/null; then
    kill -TERM "$RUN_PID" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$RUN_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$RUN_PID" 2>/dev/null || true
    wait "$RUN_PID" 2>/dev/null || true
  fi
  if [[ -n $CTR ]]; then buildah rm "$CTR" >/dev/null 2>&1 || true; fi
  if [[ $KEEP_IMAGE == 0 ]]; then buildah rmi "$IMAGE" >/dev/null 2>&1 || true; fi
  if [[ -n $TMP ]]; then
    if [[ -n $LOG_DIR ]]; then
      mkdir -p "$LOG_DIR"
      cp "$TMP"/*.log "$LOG_DIR"/ 2>/dev/null || true
    fi
    rm -rf "$TMP"
  fi
  if ((status != 0)); then echo "container-test: failed (status $status)" >&2; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
TMP=$(mktemp -d /var/tmp/xlstm-container-test.XXXXXX)
START=$SECONDS

# The Debian mirror apt is configured with (deb822 sources first, then sources.list).
debian_mirror() {
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '{print $2}' | grep -v security | head -n1 || true)
  if [[ -z $uri ]]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' |
      grep -v security | head -n1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# --- 1. The base image -------------------------------------------------------------------------
if buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE already in buildah's storage"
else
  mirror=$(debian_mirror)
  log "debootstrap --variant=minbase bookworm from $mirror"
  t=$SECONDS
  debootstrap --variant=minbase bookworm "$TMP/rootfs" "$mirror" >"$TMP/debootstrap.log" 2>&1 ||
    {
      tail -n 30 "$TMP/debootstrap.log" >&2
      die "debootstrap failed (log above)"
    }
  tar -C "$TMP/rootfs" --numeric-owner -cf "$TMP/rootfs.tar" .
  rm -rf "$TMP/rootfs"
  base=$(buildah from scratch)
  CTR=$base
  buildah add "$base" "$TMP/rootfs.tar" / >/dev/null
  buildah config --cmd /bin/bash --label org.opencontainers.image.description="debootstrap \
--variant=minbase bookworm ($mirror), imported by tools/container-test.sh" "$base"
  buildah commit -q --rm "$base" "$BASE_IMAGE" >/dev/null
  CTR=""
  rm -f "$TMP/rootfs.tar"
  log "base image $BASE_IMAGE imported ($((SECONDS - t))s)"
fi

# --- 2. The image --------------------------------------------------------------------------------
volumes=()
build_args=()
if [[ $VARIANT == cuda ]]; then
  [[ -x /usr/local/cuda/bin/nvcc ]] || die "CT_VARIANT=cuda needs a CUDA toolkit at /usr/local/cuda"
  build_args+=(--build-arg XLSTM_CUDA=ON --build-arg CUDA_INSTALL=none)
  volumes+=(--volume "$(realpath /usr/local/cuda):/usr/local/cuda:ro")
fi
if [[ $CCACHE_DIR_HOST != none ]]; then
  mkdir -p "$CCACHE_DIR_HOST"
  volumes+=(--volume "$CCACHE_DIR_HOST:/ccache")
fi
if [[ $APT_ARCHIVES != none && -d $APT_ARCHIVES ]]; then
  volumes+=(--volume "$APT_ARCHIVES:/var/cache/apt/archives")
fi
log "buildah bud -t $IMAGE (ccache: $CCACHE_DIR_HOST, apt archives: $APT_ARCHIVES)"
t=$SECONDS
# --format docker: the OCI format has no HEALTHCHECK. --layers: unchanged steps are reused.
# --force-rm: no working container is left behind when a step fails.
cache_flags=(--layers)
if [[ $NO_CACHE == 1 ]]; then cache_flags+=(--no-cache); fi
buildah bud --isolation chroot --pull=never --format docker --force-rm "${cache_flags[@]}" \
  "${build_args[@]}" "${volumes[@]}" -t "$IMAGE" -f Dockerfile . >"$TMP/build.log" 2>&1 || {
  tail -n 60 "$TMP/build.log" >&2
  die "buildah bud failed (last lines above)"
}
BUILD_S=$((SECONDS - t))
grep -E '^(runtime packages:|xlstm: CUDA backend|[[:space:]]*(Hits|Misses):)' "$TMP/build.log" |
  sed 's/^/  /' || true
log "image built in ${BUILD_S}s; size $(buildah images --format '{{.Size}}' "$IMAGE")"

# --- 3. The image's configuration ----------------------------------------------------------------
buildah inspect --type image "$IMAGE" >"$TMP/inspect.json"
python3 - "$TMP/inspect.json" <<'PY' || die "the image's configuration is not the Dockerfile's"
import json, sys
config = json.load(open(sys.argv[1]))["Docker"]["config"]
expect = {
    "User": "10001:10001",
    "ExposedPorts": {"50051/tcp": {}, "50052/tcp": {}},
    "Volumes": {"/models": {}},
    "StopSignal": "SIGTERM",
    "Entrypoint": ["xlstm-server"],
}
bad = [f"{k}: {config.get(k)!r}, expected {v!r}" for k, v in expect.items() if config.get(k) != v]
test = (config.get("Healthcheck") or {}).get("Test", [])
if test[:4] != ["CMD", "xlstm-client", "--target", "127.0.0.1:50051"] or "health" not in test:
    bad.append(f"Healthcheck: {config.get('Healthcheck')!r}")
for line in bad:
    print("container-test: image config", line, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
log "config: user 10001, ports 50051+50052, volume /models, STOPSIGNAL SIGTERM, HEALTHCHECK ok"

CTR=$(buildah from --pull=never "$IMAGE")
if [[ $VARIANT == cuda ]]; then
  # cuBLAS is dlopen'ed from /usr/local/cuda/lib64; libcublas finds libcublasLt beside it.
  libs=$(buildah run --isolation chroot "$CTR" -- sh -c \
    'ls /usr/local/cuda/lib64; ldd /usr/local/cuda/lib64/libcublas.so.*' 2>&1) ||
    die "no cuBLAS in the image: $libs"
  grep -q 'libcublasLt.so.[0-9]* => /usr/local/cuda/lib64/' <<<"$libs" ||
    die "libcublas in the image does not resolve libcublasLt: $libs"
  ! grep -q 'not found' <<<"$libs" || die "unresolved libraries: $libs"
  if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    # No GPU here: the CUDA backend must be there and say so (not "this build has no CUDA").
    nogpu=$(buildah run --isolation chroot --network host "$CTR" -- sh -c \
      'mkdir -p /tmp/m && xlstm-server --model /tmp/m --backend cuda --host 127.0.0.1 \
         --port 0 --metrics-port -1' 2>&1 || true)
    grep -q 'no CUDA device is visible' <<<"$nogpu" ||
      die "--backend cuda in the CUDA image: $nogpu"
  fi
  log "CUDA variant: libcublas + libcublasLt in /usr/local/cuda/lib64, CUDA backend built in"
fi
# The model is mounted at /mnt/model, not at the image's VOLUME /models: buildah run (1.28,
# chroot isolation) mounts an anonymous volume over a bind mount on a declared VOLUME, which
# docker run -v and Kubernetes volumeMounts replace.
# A model made by the image's own xlstm-run: random weights, the demo shape, a real tokenizer.
mkdir -p "$TMP/model"
chown 10001:10001 "$TMP/model"
buildah run --isolation chroot --network host \
  -v "$REPO/tools/configs:/cfg:ro" -v "$REPO/tests/data/tokenizers:/tok:ro" \
  -v "$TMP/model:/mnt/model" \
  "$CTR" -- xlstm-run init-random --config /cfg/demo.json --seed 0 --dtype bfloat16 \
  --tokenizer /tok/gpt-neox-20b/tokenizer.json --out /mnt/model >"$TMP/init.log" 2>&1 || {
  cat "$TMP/init.log" >&2
  die "xlstm-run init-random in the image failed"
}
[[ -f $TMP/model/model.safetensors ]] || die "xlstm-run in the image wrote no model.safetensors"
chmod -R a+rX "$TMP/model"

# --- 4. The server in the image, driven from the host --------------------------------------------
SERVER_LOG="$TMP/server.log"
buildah run --isolation chroot --network host -v "$TMP/model:/mnt/model:ro" "$CTR" -- \
  xlstm-server --model /mnt/model --host 127.0.0.1 --port 0 --metrics-port 0 --num-slots 4 \
  --drain-grace-seconds 30 >"$SERVER_LOG" 2>&1 &
RUN_PID=$!
ready=""
t=$SECONDS
while [[ -z $ready ]]; do
  ready=$(grep -m1 -o 'ready grpc_port=[0-9]* metrics_port=[0-9]*' "$SERVER_LOG" || true)
  [[ -n $ready ]] && break
  if ! kill -0 "$RUN_PID" 2>/dev/null; then
    cat "$SERVER_LOG" >&2
    die "xlstm-server in the image exited before it was ready (output above)"
  fi
  if ((SECONDS - t >= READY_TIMEOUT)); then
    cat "$SERVER_LOG" >&2
    die "xlstm-server in the image not ready after ${READY_TIMEOUT}s (CT_READY_TIMEOUT)"
  fi
  sleep 0.2
done
port=${ready#ready grpc_port=}
port=${port%% *}
metrics_port=${ready##*metrics_port=}
target="127.0.0.1:$port"
log "server in the image: $ready ($((SECONDS - t))s)"

# The server runs as the image's user, not root.
server_pid=$(pgrep -P "$(pgrep -P "$(pgrep -P "$RUN_PID")")" -x xlstm-server || true)
[[ -n $server_pid ]] || die "no xlstm-server process under buildah run (pid $RUN_PID)"
uid=$(ps -o uid= -p "$server_pid" | tr -d ' ')
[[ $uid == 10001 ]] || die "xlstm-server runs as uid $uid, not 10001"
log "xlstm-server pid $server_pid runs as uid $uid"

health=$("$CLIENT" --target "$target" --deadline-ms 5000 health) || die "health: $health"
[[ $health == SERVING ]] || die "health answered '$health'"
log "health (host client): $health"
# The image's HEALTHCHECK command, run inside the image.
hc=$(buildah run --isolation chroot --network host "$CTR" -- \
  xlstm-client --target "$target" --deadline-ms 4000 health 2>&1) ||
  die "the HEALTHCHECK command failed in the image: $hc"
log "health (the image's HEALTHCHECK command): $hc"

gen=$("$CLIENT" --target "$target" --deadline-ms 30000 generate --prompt "The recurrent state" \
  --max-new-tokens 12 --seed 3 --ignore-eos --stream --json 2>&1) || die "generate: $gen"
# One JSON object per stream message: 12 tokens in all, the last message final.
gen_summary=$(python3 -c '
import json, sys
msgs = [json.loads(line) for line in sys.stdin if line.strip()]
ids = sum(len(m["ids"]) for m in msgs)
assert ids == 12 and msgs[-1].get("final") and msgs[-1]["finish_reason"] == "length", msgs
print(f"{len(msgs)} messages, {ids} tokens, finish_reason length")' <<<"$gen") ||
  die "generate --stream: unexpected stream: $gen"
log "generate --stream: $gen_summary"

score=$("$CLIENT" --target "$target" --deadline-ms 30000 score --context "The recurrent" \
  --continuation " state" --json 2>&1) || die "score: $score"
grep -q '"logprobs"' <<<"$score" || die "score: no logprobs: $score"
log "score: $(tr -d '\n ' <<<"$score" | cut -c1-120)"

metrics=$(curl -fsS --max-time 5 "http://127.0.0.1:$metrics_port/metrics") ||
  die "GET /metrics on port $metrics_port failed"
for series in 'xlstm_request_success_total{finished_reason="length"} 2' \
  'xlstm_state_slots_capacity 4' 'xlstm_requests_running 0'; do
  grep -qF "$series" <<<"$metrics" || die "/metrics lacks '$series'"
done
log "metrics: 2 successful requests, 4 slots, none running"

# docker stop: the STOPSIGNAL (SIGTERM) to the container's first process, the server. (Not to
# buildah run itself, which ends its child with SIGKILL.) A request in flight must finish
# inside the drain grace; the server then exits 0, and buildah run with it.
"$CLIENT" --target "$target" --deadline-ms 60000 generate --ids 5,17,9 --max-new-tokens 300 \
  --ignore-eos --json >"$TMP/inflight.json" 2>&1 &
inflight_pid=$!
running=""
for _ in $(seq 100); do
  running=$(curl -fsS --max-time 5 "http://127.0.0.1:$metrics_port/metrics" |
    grep -E '^xlstm_requests_running 1$' || true)
  [[ -n $running ]] && break
  sleep 0.05
done
[[ -n $running ]] || die "the long request never showed as running in /metrics"
t=$SECONDS
kill -TERM "$server_pid"
# Draining: health is no longer SERVING (NOT_SERVING, or UNAVAILABLE once the port closes).
drain_health=SERVING
for _ in $(seq 50); do
  drain_health=$("$CLIENT" --target "$target" --deadline-ms 2000 health 2>&1 || true)
  [[ $drain_health != SERVING ]] && break
  sleep 0.1
done
[[ $drain_health != SERVING ]] || die "health still SERVING 5s after SIGTERM"
log "draining: health answers '$drain_health'"
status=0
wait "$RUN_PID" || status=$?
RUN_PID=""
inflight_status=0
wait "$inflight_pid" || inflight_status=$?
grep -E 'drain|stopped' "$SERVER_LOG" | sed 's/^/  /' || true
((status == 0)) || {
  cat "$SERVER_LOG" >&2
  die "after SIGTERM the server exited with status $status"
}
((inflight_status == 0)) || die "the in-flight request did not finish: $(cat "$TMP/inflight.json")"
python3 -c '
import json, sys
r = json.load(sys.stdin)
assert len(r["ids"]) == 300 and r["finish_reason"] == "length", r' <"$TMP/inflight.json" ||
  die "the in-flight request was cut short: $(cut -c1-300 "$TMP/inflight.json")"
log "SIGTERM: drained (the in-flight request finished), exit 0 in $((SECONDS - t))s"

log "PASS in $((SECONDS - START))s (image build ${BUILD_S}s)"
