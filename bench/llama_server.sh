#!/usr/bin/env bash
# `allm serve` against llama.cpp's own llama-server, built here from the same llama.cpp tree (its
# own build dir; the main build keeps llama.cpp's tools off), on the same ~1B-parameter random
# GGUF model with the same settings: threads, context per sequence, 8 parallel sequences, flash
# attention off on both, greedy sampling, the same prompts through /v1/chat/completions.
#   bench/llama_server.sh                    (uses $ALLM_BUILD_DIR, default build/)
#   BENCH_PAIRS=N BENCH_THREADS=N BENCH_DTYPE=f16|bf16|q4_0|q8_0|q4_k_m bench/llama_server.sh
#   BENCH_THREADS=default: each server at its own defaults (only model, port and 8 sequences:
#   what a user who passes no flags gets)
# Quantized types are the f16 model quantized by llama.cpp's own llama-quantize (built beside
# llama-server), so both servers run the CPU's quantized kernels and repacked weights.
# Measures single-stream decode tokens/s, aggregate tokens/s of 8 concurrent streams and p50/p99
# time to first token, in pairs (both servers up and measured in turn, single streams request by
# request, the order flipping every pair: A B, B A, ...), and prints the allm/llama-server ratio
# of each pair as min / median / max. Above 1 means allm is better (for TTFT the ratio is
# llama-server/allm, so above 1 also means allm is better).
# A loaded machine makes single pairs noisy (±15 % here); compare medians.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${ALLM_BUILD_DIR:-build}"
DEPS_DIR="${ALLM_DEPS_DIR:-$HOME/.cache/allm/deps}"
THREADS="${BENCH_THREADS:-$(nproc)}"
PAIRS="${BENCH_PAIRS:-3}"
DTYPE="${BENCH_DTYPE:-f16}"
CTX=1024  # tokens per sequence on both servers
SERVER_BUILD="$BUILD_DIR/bench/llama-server"
MODEL_DIR="${BENCH_MODEL_DIR:-$HOME/.cache/allm/bench}"
MODEL="$MODEL_DIR/llama-1b-$DTYPE.gguf"

[ -x "$BUILD_DIR/bin/allm" ] || scripts/build.sh
export CCACHE_BASEDIR="$PWD"  # reuse the main build's ggml/llama objects (scripts/build.sh)
cmake -S "$DEPS_DIR/llama.cpp" -B "$SERVER_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON -DGGML_BACKEND_DL=OFF -DLLAMA_BUILD_COMMON=ON \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
ninja -C "$SERVER_BUILD" -j "${ALLM_JOBS:-2}" llama-server llama-quantize >/dev/null

# The random-weight model in a float type the fixture tool writes.
float_model() {
  local dtype="$1" out="$MODEL_DIR/llama-1b-$1.gguf"
  if [ ! -f "$out" ]; then
    mkdir -p "$MODEL_DIR"
    "$BUILD_DIR/bin/allm-make-hf-fixture" --arch llama --dtype "$dtype" --size 1b \
      --out "$MODEL_DIR/hf-llama-1b-$dtype" --gguf "$out"
    rm -rf "$MODEL_DIR/hf-llama-1b-$dtype"  # only the GGUF is served
  fi
  echo "$out"
}
if [ ! -f "$MODEL" ]; then
  case "$DTYPE" in
    f16|bf16) float_model "$DTYPE" >/dev/null ;;
    *) "$SERVER_BUILD/bin/llama-quantize" "$(float_model f16)" "$MODEL" "${DTYPE^^}" >/dev/null ;;
  esac
fi

node bench/llama_server.mjs --allm "$BUILD_DIR/bin/allm" \
  --llama-server "$SERVER_BUILD/bin/llama-server" --model "$MODEL" --threads "$THREADS" \
  --ctx "$CTX" --pairs "$PAIRS"
