#!/usr/bin/env bash
# deploy/ renders and lints: every kustomization under deploy/ renders with `kubectl kustomize`
# (Debian's kubernetes-client 1.20 and newer kubectl alike), the sources and the rendered
# output pass yamllint, and the rendered objects say what docs/deployment.md promises
# (manifests_check.py). Registered with ctest as deploy_manifests.
#
#   tests/deploy/manifests_test.sh [REPO_ROOT] [XLSTM_SERVER]
#
# With XLSTM_SERVER, the server's own option table checks the container arguments.
# Exit 77 (ctest: skipped) when kubectl or yamllint is missing (tools/bootstrap.sh installs them).
set -euo pipefail
ROOT=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
SERVER=${2:-}
for tool in kubectl yamllint /usr/bin/python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "deploy_manifests: SKIP: $tool not found (tools/bootstrap.sh installs it)"
    exit 77
  fi
done

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "deploy_manifests: yamllint deploy/"
yamllint --strict -c "$ROOT/deploy/.yamllint" "$ROOT/deploy"

mapfile -t kustomizations < <(cd "$ROOT/deploy" && find . -name kustomization.yaml -printf '%h\n' |
  sed 's|^\./||' | sort)
((${#kustomizations[@]} >= 4)) || {
  echo "deploy_manifests: FAIL: expected base, cpu, gpu and prometheus-adapter kustomizations" >&2
  exit 1
}
rendered=()
for dir in "${kustomizations[@]}"; do
  out="$TMP/${dir//\//_}.yaml"
  if ! timeout 60 kubectl kustomize "$ROOT/deploy/$dir" >"$out" 2>"$TMP/err"; then
    echo "deploy_manifests: FAIL: kubectl kustomize deploy/$dir:" >&2
    cat "$TMP/err" >&2
    exit 1
  fi
  # Newer kustomize warns about the fields kubectl 1.20's kustomize (v2.0.3) still needs
  # (bases, patchesStrategicMerge, commonLabels); anything else on stderr is a failure.
  if grep -v "^# Warning: '[A-Za-z]*' is deprecated" "$TMP/err" >&2; then
    echo "deploy_manifests: FAIL: kubectl kustomize deploy/$dir wrote the above" >&2
    exit 1
  fi
  # The rendered output, in kustomize's layout (long lines of embedded files, flush lists).
  yamllint --strict -d '{extends: default, rules: {line-length: disable, document-start: disable,
    indentation: {indent-sequences: whatever}}}' \
    "$out"
  echo "deploy_manifests: rendered deploy/$dir ($(grep -c '^kind:' "$out") objects)"
  rendered+=("$dir=$out")
done

/usr/bin/python3 "$ROOT/tests/deploy/manifests_check.py" --root "$ROOT" \
  ${SERVER:+--server "$SERVER"} \
  "${rendered[@]}"
echo "deploy_manifests: PASS"
