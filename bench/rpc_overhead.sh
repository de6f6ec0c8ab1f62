#!/usr/bin/env bash
# RPC overhead: prefill and decode tokens/s of a GGUF model local-only (CPU) vs split over two
# `allm rpc-server` workers on loopback (bench/rpc_overhead.mjs). The model: the ~1B llama bench
# model of bench/text_backends.sh (BF16, written into $ALLM_BENCH_DIR on first use, ~2.5 GB for
# the GGUF), or with BENCH_SIZE=tiny the tests' tiny fixture (a smoke run).
#
# Usage: [BENCH_SIZE=1b|tiny] [BENCH_PROMPT=128] [BENCH_DECODE=32] bench/rpc_overhead.sh [pairs]
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${ALLM_BUILD_DIR:-build}"
BENCH_DIR="${ALLM_BENCH_DIR:-$HOME/.cache/allm/bench}"
scripts/build.sh >/dev/null
mkdir -p "$BENCH_DIR"
case "${BENCH_SIZE:-1b}" in
  1b)
    model="$BENCH_DIR/llama-1b-bf16"
    if [ ! -f "$model.gguf" ]; then
      "$BUILD_DIR/bin/allm-make-hf-fixture" --arch llama --dtype bf16 --size 1b \
        --out "$model" --gguf "$model.gguf.tmp"
      mv "$model.gguf.tmp" "$model.gguf"
    fi
    model="$model.gguf" ;;
  tiny)
    model="$BENCH_DIR/tiny.gguf"
    "$BUILD_DIR/bin/allm-make-fixture" --out "$model" ;;
  *) echo "BENCH_SIZE: 1b or tiny" >&2; exit 2 ;;
esac
ALLM_BIN="$BUILD_DIR/bin/allm" node bench/rpc_overhead.mjs "$model" "${1:-3}"
