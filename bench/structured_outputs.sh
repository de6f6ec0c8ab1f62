#!/usr/bin/env bash
# Decode tokens/s under a json_schema grammar vs unconstrained, through `allm serve`, on the ~1B
# random llama bench model of bench/text_backends.sh (the same weights as a Hugging Face folder,
# run by safetensors.cpp, and as a GGUF, run by llama.cpp; written once into $ALLM_BENCH_DIR,
# default ~/.cache/allm/bench, ~4.5 GB). Prints each pair and, per backend, the
# json_schema/unconstrained decode ratio as min / median / max (the target is >= 0.90).
#
# Usage: [BENCH_DTYPE=bf16|f16] [BENCH_TOKENS=128] [BENCH_THREADS=N] bench/structured_outputs.sh [pairs]
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS="${1:-3}"
DTYPE="${BENCH_DTYPE:-bf16}"
BUILD_DIR="${ALLM_BUILD_DIR:-build}"
BENCH_DIR="${ALLM_BENCH_DIR:-$HOME/.cache/allm/bench}"
MODEL="$BENCH_DIR/llama-1b-$DTYPE"
scripts/build.sh >/dev/null
if [ ! -f "$MODEL.gguf" ]; then
  echo "writing the llama $DTYPE bench model (HF folder + GGUF) into $BENCH_DIR"
  mkdir -p "$BENCH_DIR"
  "$BUILD_DIR/bin/allm-make-hf-fixture" --arch llama --dtype "$DTYPE" --size 1b \
    --out "$MODEL" --gguf "$MODEL.gguf.tmp"
  mv "$MODEL.gguf.tmp" "$MODEL.gguf"
fi
ALLM_BIN="$BUILD_DIR/bin/allm" node bench/structured_outputs.mjs --hf "$MODEL" --gguf "$MODEL.gguf" \
  --pairs "$PAIRS" --tokens "${BENCH_TOKENS:-128}" ${BENCH_THREADS:+--threads "$BENCH_THREADS"}
