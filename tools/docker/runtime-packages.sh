#!/usr/bin/env bash
# Prints the Debian packages that own the shared libraries the given binaries link against, one
# per line, sorted. The Dockerfile's runtime stage installs exactly these.
#
#   tools/docker/runtime-packages.sh BINARY...
#
# Fails, naming the library, when a library is missing or no package owns it.
set -euo pipefail
if (($# == 0)); then
  echo "usage: tools/docker/runtime-packages.sh BINARY..." >&2
  exit 2
fi
if ldd "$@" | grep 'not found' >&2; then
  echo "runtime-packages: unresolved libraries (above)" >&2
  exit 1
fi
mapfile -t libs < <(ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u)
for lib in "${libs[@]}"; do
  real=$(realpath "$lib")
  # Debian 12 merges /lib into /usr/lib, and dpkg knows each file under one of the two names.
  owner=""
  for candidate in "$lib" "$real" "${lib/#\/usr\/lib\//\/lib\/}" "${real/#\/usr\/lib\//\/lib\/}"; do
    owner=$(dpkg -S "$candidate" 2>/dev/null | head -n1) && break
  done
  if [[ -z $owner ]]; then
    echo "runtime-packages: no Debian package owns $lib ($real)" >&2
    exit 1
  fi
  echo "${owner%%:*}"
done | sort -u
