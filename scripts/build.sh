#!/usr/bin/env bash
# Builds aLLM (and its pinned dependencies) into build/ — or $ALLM_BUILD_DIR.
# Extra arguments go to CMake, e.g. -DALLM_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-system-deps.sh
scripts/fetch-deps.sh
BUILD_DIR="${ALLM_BUILD_DIR:-build}"
# Paths relative to the build dir in ccache's keys, so that other build dirs (the sanitizer
# build, the benchmark's llama-server) reuse the dependency objects compiled here.
export CCACHE_BASEDIR="$PWD"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
ninja -C "$BUILD_DIR" -j "${ALLM_JOBS:-2}"
