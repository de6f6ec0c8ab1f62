#!/usr/bin/env bash
# safetensors.cpp vs llama.cpp on the same random weights, written once as a Hugging Face folder
# and as a GGUF (allm-make-hf-fixture --size 1b) into $ALLM_BENCH_DIR (default
# ~/.cache/allm/bench). Rows:
#   llama    ~1B parameters, Llama-3.2-1B widths, BF16 and F16                    (~9 GB on disk)
#   gpt-oss  gpt-oss-20b widths (32 experts, top-4, hidden 2880, 64 heads x 64, 8 KV heads,
#            MXFP4 experts, BF16 elsewhere) at 2 layers, 32000-row vocabulary    (~2.7 GB)
#   gemma2   gemma-2-2b widths (hidden 2304, 8 heads x 256, 4 KV heads, intermediate 9216,
#            256000-row vocabulary) at 6 of its 26 layers, ~1B parameters, BF16   (~4 GB)
#   llama-q8_0, llama-q4_0 (BENCH_QUANTIZE)  the llama BF16 folder quantized on load by
#            safetensors.cpp against its GGUF quantized by llama.cpp's llama-quantize
# Each row prints per-pair numbers and min / median / max ratios (safetensors.cpp / llama.cpp,
# from alternating runs); a summary table of the prefill, decode, load-time and peak-RSS ratios
# ends the output.
#
# Usage: [BENCH_ARCH="llama gpt-oss gemma2" (empty: none)] [BENCH_QUANTIZE="q8_0 q4_0"] [BENCH_PROMPT=128]
#        [BENCH_DECODE=32] [BENCH_THREADS=$(nproc)] bench/text_backends.sh [pairs]
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS="${1:-3}"
ARCHS="${BENCH_ARCH-llama gpt-oss gemma2}"  # empty: only the quantized rows
QUANTIZE="${BENCH_QUANTIZE-q8_0 q4_0}"
PROMPT="${BENCH_PROMPT:-128}"
DECODE="${BENCH_DECODE:-32}"
THREADS="${BENCH_THREADS:-$(nproc)}"
BUILD_DIR="${ALLM_BUILD_DIR:-build}"
BENCH_DIR="${ALLM_BENCH_DIR:-$HOME/.cache/allm/bench}"
scripts/build.sh >/dev/null
mkdir -p "$BENCH_DIR"

rows=()
write_model() {  # arch dtype
  local model="$BENCH_DIR/$1-1b-$2"
  if [ ! -f "$model.gguf" ] || [ ! -f "$model/config.json" ]; then
    echo "writing the $1 $2 bench model (HF folder + GGUF) into $BENCH_DIR"
    "$BUILD_DIR/bin/allm-make-hf-fixture" --arch "$1" --dtype "$2" --size 1b \
      --out "$model" --gguf "$model.gguf.tmp"
    mv "$model.gguf.tmp" "$model.gguf"
  fi
}

measure_row() {  # label hf-folder gguf [allm-bench-text options]
  local label="$1" hf="$2" gguf="$3"
  shift 3
  echo "== $label: prompt $PROMPT tokens, $DECODE decode steps, $THREADS threads, $PAIRS pairs"
  local out
  out="$("$BUILD_DIR/bin/allm-bench-text" --hf "$hf" --gguf "$gguf" --pairs "$PAIRS" \
    --prompt "$PROMPT" --decode "$DECODE" --threads "$THREADS" --label "$label" "$@" |
    tee /dev/stderr)"
  rows+=("$(grep '^row ' <<<"$out")")
}

bench_row() {  # arch dtype
  write_model "$1" "$2"
  measure_row "$1-$2" "$BENCH_DIR/$1-1b-$2" "$BENCH_DIR/$1-1b-$2.gguf"
}

# The BF16 llama folder quantized on load against llama-quantize's GGUF of the same weights.
quantized_row() {  # type
  write_model llama bf16
  local gguf="$BENCH_DIR/llama-1b-$1.gguf"
  if [ ! -f "$gguf" ]; then
    bench/build_llama_server.sh llama-quantize
    "$BUILD_DIR/bench/llama-server/bin/llama-quantize" "$BENCH_DIR/llama-1b-bf16.gguf" \
      "$gguf.tmp" "${1^^}" >/dev/null
    mv "$gguf.tmp" "$gguf"
  fi
  measure_row "llama-$1" "$BENCH_DIR/llama-1b-bf16" "$gguf" --quantize "$1"
}

for arch in ${ARCHS//,/ }; do
  case "$arch" in
    llama) bench_row llama bf16; bench_row llama f16 ;;
    gpt-oss) bench_row gpt-oss bf16 ;;
    gemma2) bench_row gemma2 bf16 ;;
    *) echo "unknown BENCH_ARCH entry '$arch' (llama, gpt-oss, gemma2)" >&2; exit 2 ;;
  esac
done
for type in $QUANTIZE; do quantized_row "$type"; done

echo
echo "safetensors.cpp / llama.cpp, $PAIRS pairs each (min median max):"
printf '  %-12s %-20s %-20s %-20s %s\n' row "prefill tokens/s" "decode tokens/s" "load time" "peak RSS"
for row in "${rows[@]}"; do
  read -r _ name _ p1 p2 p3 _ d1 d2 d3 _ l1 l2 l3 _ r1 r2 r3 <<<"$row"
  printf '  %-12s %-20s %-20s %-20s %s\n' "${name%:}" "$p1 $p2 $p3" "$d1 $d2 $d3" "$l1 $l2 $l3" \
    "$r1 $r2 $r3"
done
