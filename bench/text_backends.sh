#!/usr/bin/env bash
# safetensors.cpp vs llama.cpp on the same ~1B-parameter random llama model, BF16 and F16.
# Writes the models once into $ALLM_BENCH_DIR (default ~/.cache/allm/bench, ~9 GB), then prints
# per-pair numbers and min / median / max ratios. Usage: bench/text_backends.sh [pairs]
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS="${1:-3}"
BUILD_DIR="${ALLM_BUILD_DIR:-build}"
BENCH_DIR="${ALLM_BENCH_DIR:-$HOME/.cache/allm/bench}"
scripts/build.sh >/dev/null
mkdir -p "$BENCH_DIR"
for dtype in bf16 f16; do
  model="$BENCH_DIR/llama-1b-$dtype"
  if [ ! -f "$model.gguf" ]; then
    echo "writing the 1B $dtype model (HF folder + GGUF) into $BENCH_DIR"
    "$BUILD_DIR/bin/allm-make-hf-fixture" --arch llama --dtype "$dtype" --size 1b \
      --out "$model" --gguf "$model.gguf.tmp"
    mv "$model.gguf.tmp" "$model.gguf"
  fi
  echo "== llama 1B $dtype: prompt 128 tokens, 32 decode steps, $PAIRS pairs"
  "$BUILD_DIR/bin/allm-bench-text" --hf "$model" --gguf "$model.gguf" --pairs "$PAIRS" \
    --prompt 128 --decode 32 --threads "$(nproc)"
done
