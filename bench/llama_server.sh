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
THREADS="${BENCH_THREADS:-$(nproc)}"
PAIRS="${BENCH_PAIRS:-3}"
DTYPE="${BENCH_DTYPE:-f16}"
CTX=1024  # tokens per sequence on both servers
SERVER_BUILD="$BUILD_DIR/bench/llama-server"
MODEL_DIR="${BENCH_MODEL_DIR:-$HOME/.cache/allm/bench}"
MODEL="$MODEL_DIR/llama-1b-$DTYPE.gguf"

bench/build_llama_server.sh llama-server llama-quantize

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
