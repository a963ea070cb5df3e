#!/usr/bin/env bash
# Packs built binaries for the GPU box (which has CUDA but no gRPC/abseil/protobuf libraries):
# stripped copies of the given binaries at their paths relative to the build directory, plus
# every shared library they need except glibc and CUDA's (which the box has), into one
# compressed archive small enough to carry.
#
#   tools/device/pack.sh BUILD_DIR OUT_ARCHIVE binary...   (binary paths relative to BUILD_DIR)
#
# On the box:  mkdir -p pkg && tar -xJf OUT_ARCHIVE -C pkg
#              LD_LIBRARY_PATH=$PWD/pkg/lib:/usr/local/cuda/lib64 pkg/build/<binary>
set -euo pipefail
build_dir=$1
archive=$2
shift 2
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/build" "$stage/lib"
for bin in "$@"; do
  mkdir -p "$stage/build/$(dirname "$bin")"
  strip -o "$stage/build/$bin" "$build_dir/$bin"
  ldd "$build_dir/$bin" | awk '$3 ~ /^\// {print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libcuda.so*|libcudart.so*|libcublas*.so*|libgcc_s.so*)
        continue ;;
    esac
    [[ -f "$stage/lib/$(basename "$lib")" ]] || cp -L "$lib" "$stage/lib/"
  done
done
tar -cJf "$archive" -C "$stage" build lib
echo "packed $# binaries into $archive ($(du -h "$archive" | cut -f1))"
