# xlstm-serve image: xlstm-server, xlstm-client, xlstm-run and xlstm-loadgen on Debian 12.
#
# CPU (the reference backend):
#   docker build -t xlstm-serve:cpu .
#   docker run --rm -p 50051:50051 -p 50052:50052 -v /path/to/model:/models:ro xlstm-serve:cpu
#
# CUDA (NVIDIA GPUs; the build stage installs nvcc and cuBLAS from NVIDIA's Debian 12 repository,
# or, with --build-arg CUDA_INSTALL=none, uses a toolkit mounted at /usr/local/cuda; the README's
# Deployment section says which of these were verified where):
#   docker build -t xlstm-serve:cuda --build-arg XLSTM_CUDA=ON --build-arg CUDA_ARCHITECTURES=90 .
#   docker run --rm --gpus all -p 50051:50051 -p 50052:50052 -v /path/to/model:/models:ro \
#       xlstm-serve:cuda
#
# The build stage runs tools/bootstrap.sh (the dependency set CI builds with) and a Release build.
# The runtime stage holds the Debian packages of the shared libraries the binaries link against
# (found with ldd in the build stage, so the list cannot drift from the code) and, in the CUDA
# variant, libcublas and libcublasLt: cudart is linked statically and cuBLAS is dlopen'ed by name
# (engine/cuda/cublas_loader.cc), so besides those two files the image needs only the driver's
# libcuda, which the NVIDIA container runtime mounts in.
#
# A host ccache can be lent to the build stage (buildah bud --volume DIR:/ccache); see
# tools/container-test.sh. Without it the build simply compiles everything.

ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
ARG XLSTM_CUDA=OFF
ARG CUDA_ARCHITECTURES=90
# NVIDIA's package suffix (cuda-nvcc-13-0, libcublas-dev-13-0) and its Debian 12 repository.
ARG CUDA_PACKAGE_VERSION=13-0
ARG CUDA_REPO=https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64
# apt: install the toolkit from CUDA_REPO; none: it is already at /usr/local/cuda (e.g. a host
# toolkit bind-mounted with buildah bud --volume /usr/local/cuda-13.0:/usr/local/cuda:ro).
ARG CUDA_INSTALL=apt
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src

COPY tools/bootstrap.sh tools/bootstrap.sh
RUN bash tools/bootstrap.sh build && rm -rf /var/lib/apt/lists/*
RUN if [ "$XLSTM_CUDA" = ON ] && [ "$CUDA_INSTALL" = apt ]; then \
      apt-get update -q && apt-get install -y -q --no-install-recommends ca-certificates curl && \
      curl -fsSL -o /tmp/cuda-keyring.deb "$CUDA_REPO/cuda-keyring_1.1-1_all.deb" && \
      dpkg -i /tmp/cuda-keyring.deb && rm /tmp/cuda-keyring.deb && apt-get update -q && \
      apt-get install -y -q --no-install-recommends "cuda-nvcc-$CUDA_PACKAGE_VERSION" \
        "cuda-cudart-dev-$CUDA_PACKAGE_VERSION" "libcublas-dev-$CUDA_PACKAGE_VERSION" && \
      rm -rf /var/lib/apt/lists/*; \
    fi

COPY . /src
# CCACHE_BASEDIR makes the cache keys relative to /src, so a host build of the same sources in
# <repo>/<build dir> with the same compiler and no locale variables (ccache hashes LANG and
# LC_*) produces the same keys (tools/dev.sh does that).
RUN set -eu; \
    unset LANG LC_ALL LC_CTYPE LC_MESSAGES; \
    launcher=""; \
    if [ -d /ccache ] && [ -w /ccache ]; then \
      launcher="-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache"; \
      export CCACHE_DIR=/ccache CCACHE_BASEDIR=/src; \
      ccache -z >/dev/null; \
    fi; \
    cuda="-DXLSTM_ENABLE_CUDA=OFF"; \
    if [ "$XLSTM_CUDA" = ON ]; then \
      cuda="-DXLSTM_ENABLE_CUDA=ON -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc \
            -DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHITECTURES"; \
    fi; \
    if ! cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release $cuda $launcher \
        > /tmp/cmake.log 2>&1; then cat /tmp/cmake.log; exit 1; fi; \
    grep 'xlstm: CUDA backend' /tmp/cmake.log; \
    if [ "$XLSTM_CUDA" = ON ] && ! grep -q 'xlstm: CUDA backend ON' /tmp/cmake.log; then \
      echo "XLSTM_CUDA=ON but CMake found no CUDA compiler at /usr/local/cuda/bin/nvcc" >&2; \
      exit 1; \
    fi; \
    cmake --build build-release --target xlstm-server xlstm-client xlstm-run xlstm-loadgen; \
    if [ -n "$launcher" ]; then ccache -s | grep -E 'Hits|Misses' || true; fi; \
    mkdir -p /out/bin /out/lib; \
    install -s -m 0755 build-release/server/xlstm-server build-release/client/xlstm-client \
      build-release/client/xlstm-loadgen build-release/tools/xlstm_run/xlstm-run /out/bin/; \
    if [ "$XLSTM_CUDA" = ON ]; then \
      cp -a /usr/local/cuda/lib64/libcublas.so.* /usr/local/cuda/lib64/libcublasLt.so.* /out/lib/; \
    fi; \
    tools/docker/runtime-packages.sh /out/bin/* > /out/runtime-packages.txt; \
    echo "runtime packages: $(tr '\n' ' ' < /out/runtime-packages.txt)"

FROM ${BASE_IMAGE} AS runtime
ARG XLSTM_CUDA=OFF
COPY --from=build /out/runtime-packages.txt /usr/local/share/xlstm-serve/runtime-packages.txt
RUN apt-get update -q && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      $(cat /usr/local/share/xlstm-serve/runtime-packages.txt) && \
    rm -rf /var/lib/apt/lists/* && \
    groupadd --system --gid 10001 xlstm && \
    useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin xlstm && \
    mkdir -p /models
COPY --from=build /out/bin/ /usr/local/bin/
# Empty in the CPU variant; libcublas.so.N and libcublasLt.so.N in the CUDA one, where the
# loader looks for them (/usr/local/cuda/lib64, then the default search path).
COPY --from=build /out/lib/ /usr/local/cuda/lib64/
RUN if ldd /usr/local/bin/xlstm-* | grep 'not found'; then exit 1; fi
# Read by the NVIDIA container runtime: which GPUs and which driver libraries to mount.
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility

# Mount a Hugging Face model directory here (config.json, *.safetensors, tokenizer.json).
VOLUME /models
# gRPC (xlstm.v1.Inference, grpc.health.v1, reflection) and Prometheus /metrics.
EXPOSE 50051 50052
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# SIGTERM drains (health NOT_SERVING, in-flight requests get --drain-grace-seconds, default 30):
# give `docker stop` a --time above that grace.
STOPSIGNAL SIGTERM
# The start period covers a large checkpoint's load; health answers NOT_SERVING until it is done.
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
  CMD ["xlstm-client", "--target", "127.0.0.1:50051", "--deadline-ms", "4000", "health"]
ENTRYPOINT ["xlstm-server"]
CMD ["--model", "/models", "--host", "0.0.0.0", "--port", "50051", "--metrics-port", "50052", \
     "--metrics-host", "0.0.0.0"]
