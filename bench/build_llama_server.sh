#!/usr/bin/env bash
# Builds llama.cpp's tools named as arguments (llama-server, llama-quantize, ...) from the same
# llama.cpp tree as aLLM, into $ALLM_BUILD_DIR/bench/llama-server (the main build keeps llama.cpp's
# tools off), and builds aLLM first if it is not built. For the benchmarks against llama-server.
#   bench/build_llama_server.sh llama-server [llama-quantize]
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${ALLM_BUILD_DIR:-build}"
DEPS_DIR="${ALLM_DEPS_DIR:-$HOME/.cache/allm/deps}"
SERVER_BUILD="$BUILD_DIR/bench/llama-server"

[ -x "$BUILD_DIR/bin/allm" ] || scripts/build.sh
export CCACHE_BASEDIR="$PWD"  # reuse the main build's ggml/llama objects (scripts/build.sh)
cmake -S "$DEPS_DIR/llama.cpp" -B "$SERVER_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON -DGGML_BACKEND_DL=OFF -DLLAMA_BUILD_COMMON=ON \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
ninja -C "$SERVER_BUILD" -j "${ALLM_JOBS:-2}" "$@" >/dev/null
