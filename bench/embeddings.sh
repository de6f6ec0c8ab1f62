#!/usr/bin/env bash
# `allm serve` against llama.cpp's llama-server on POST /v1/embeddings: inputs/s for requests of
# BENCH_BATCH inputs of BENCH_TOKENS token ids each, on the same ~1B-parameter random GGUF
# (llama widths, last-token pooling declared in its metadata), the same threads and context.
# llama-server is built from the same llama.cpp tree as in bench/llama_server.sh.
#   bench/embeddings.sh                       (uses $ALLM_BUILD_DIR, default build/)
#   BENCH_PAIRS=N BENCH_THREADS=N BENCH_BATCH=32 BENCH_TOKENS=512 BENCH_SIZE=1b|tiny bench/embeddings.sh
# Prints each pair's inputs/s and the allm/llama-server ratio as min / median / max (above 1:
# allm is faster). BENCH_SIZE=tiny (the random test fixture) is a smoke run, not a measurement.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${ALLM_BUILD_DIR:-build}"
THREADS="${BENCH_THREADS:-$(nproc)}"
PAIRS="${BENCH_PAIRS:-3}"
BATCH="${BENCH_BATCH:-32}"
TOKENS="${BENCH_TOKENS:-512}"
SIZE="${BENCH_SIZE:-1b}"
SERVER_BUILD="$BUILD_DIR/bench/llama-server"
MODEL_DIR="${BENCH_MODEL_DIR:-$HOME/.cache/allm/bench}"
MODEL="$MODEL_DIR/llama-$SIZE-f16-embed.gguf"

bench/build_llama_server.sh llama-server

if [ ! -f "$MODEL" ]; then
  mkdir -p "$MODEL_DIR"
  "$BUILD_DIR/bin/allm-make-hf-fixture" --arch llama --dtype f16 --size "$SIZE" --pooling last \
    --out "$MODEL_DIR/hf-llama-$SIZE-f16-embed" --gguf "$MODEL"
  rm -rf "$MODEL_DIR/hf-llama-$SIZE-f16-embed"  # only the GGUF is served
fi

node bench/embeddings.mjs --allm "$BUILD_DIR/bin/allm" \
  --llama-server "$SERVER_BUILD/bin/llama-server" --model "$MODEL" --threads "$THREADS" \
  --pairs "$PAIRS" --batch "$BATCH" --tokens "$TOKENS"
