#!/usr/bin/env bash
# safetensors.cpp vs llama.cpp on the same random weights, written once as a Hugging Face folder
# and as a GGUF (allm-make-hf-fixture --size 1b) into $ALLM_BENCH_DIR (default
# ~/.cache/allm/bench). Rows:
#   llama    ~1B parameters, Llama-3.2-1B widths, BF16 and F16                    (~9 GB on disk)
#   gpt-oss  gpt-oss-20b widths (32 experts, top-4, hidden 2880, 64 heads x 64, 8 KV heads,
#            MXFP4 experts, BF16 elsewhere) at 2 layers, 32000-row vocabulary    (~2.7 GB)
#   gemma2   gemma-2-2b widths (hidden 2304, 8 heads x 256, 4 KV heads, intermediate 9216,
#            256000-row vocabulary) at 6 of its 26 layers, ~1B parameters, BF16   (~4 GB)
# Each row prints per-pair numbers and min / median / max ratios (safetensors.cpp / llama.cpp,
# from alternating runs); a summary table of the prefill and decode ratios ends the output.
#
# Usage: [BENCH_ARCH="llama gpt-oss gemma2"] [BENCH_PROMPT=128] [BENCH_DECODE=32]
#        [BENCH_THREADS=$(nproc)] bench/text_backends.sh [pairs]
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS="${1:-3}"
ARCHS="${BENCH_ARCH:-llama gpt-oss gemma2}"
PROMPT="${BENCH_PROMPT:-128}"
DECODE="${BENCH_DECODE:-32}"
THREADS="${BENCH_THREADS:-$(nproc)}"
BUILD_DIR="${ALLM_BUILD_DIR:-build}"
BENCH_DIR="${ALLM_BENCH_DIR:-$HOME/.cache/allm/bench}"
scripts/build.sh >/dev/null
mkdir -p "$BENCH_DIR"

rows=()
bench_row() {  # arch dtype
  local arch="$1" dtype="$2" model="$BENCH_DIR/$1-1b-$2"
  if [ ! -f "$model.gguf" ]; then
    echo "writing the $arch $dtype bench model (HF folder + GGUF) into $BENCH_DIR"
    "$BUILD_DIR/bin/allm-make-hf-fixture" --arch "$arch" --dtype "$dtype" --size 1b \
      --out "$model" --gguf "$model.gguf.tmp"
    mv "$model.gguf.tmp" "$model.gguf"
  fi
  echo "== $arch $dtype: prompt $PROMPT tokens, $DECODE decode steps, $THREADS threads, $PAIRS pairs"
  local out
  out="$("$BUILD_DIR/bin/allm-bench-text" --hf "$model" --gguf "$model.gguf" --pairs "$PAIRS" \
    --prompt "$PROMPT" --decode "$DECODE" --threads "$THREADS" --label "$arch-$dtype" |
    tee /dev/stderr)"
  rows+=("$(grep '^row ' <<<"$out")")
}

for arch in ${ARCHS//,/ }; do
  case "$arch" in
    llama) bench_row llama bf16; bench_row llama f16 ;;
    gpt-oss) bench_row gpt-oss bf16 ;;
    gemma2) bench_row gemma2 bf16 ;;
    *) echo "unknown BENCH_ARCH entry '$arch' (llama, gpt-oss, gemma2)" >&2; exit 2 ;;
  esac
done

echo
echo "safetensors.cpp / llama.cpp tokens/s, $PAIRS pairs each (min median max):"
printf '  %-14s %-22s %s\n' row "prefill" "decode"
for row in "${rows[@]}"; do
  read -r _ name _ p1 p2 p3 _ d1 d2 d3 <<<"$row"
  printf '  %-14s %-22s %s\n' "${name%:}" "$p1 $p2 $p3" "$d1 $d2 $d3"
done
