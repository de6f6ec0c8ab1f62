#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang) into build-fuzz/ — or $ALLM_FUZZ_BUILD_DIR —
# and runs each for SECONDS (default 15) on its committed seed corpus. Crashes and broken
# invariants are saved as build-fuzz/findings/<target>/crash-*; the script fails on the first.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 600 chat_request
#   scripts/fuzz.sh --http [SECONDS]          the whole HTTP server in process (target http):
#       built with its dependencies into build-fuzz-http/ ($ALLM_FUZZ_HTTP_BUILD_DIR); the
#       first build compiles llama.cpp, whisper.cpp and ggml with clang (ccache keeps them)
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP=0
if [ "${1:-}" = "--http" ]; then
  HTTP=1
  shift
fi
SECONDS_PER_TARGET="${1:-15}"
shift || true
scripts/install-system-deps.sh clang lld libclang-rt-14-dev
scripts/fetch-deps.sh
export CCACHE_BASEDIR="$PWD"
if [ "$HTTP" = 1 ]; then
  BUILD_DIR="${ALLM_FUZZ_HTTP_BUILD_DIR:-build-fuzz-http}"
  cmake -S . -B "$BUILD_DIR" -G Ninja -DALLM_FUZZ_HTTP=ON -DALLM_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    >/dev/null
  ninja -C "$BUILD_DIR" -j "${ALLM_JOBS:-2}" fuzz_http
  TARGETS=(http)
else
  BUILD_DIR="${ALLM_FUZZ_BUILD_DIR:-build-fuzz}"
  cmake -S . -B "$BUILD_DIR" -G Ninja -DALLM_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
  ninja -C "$BUILD_DIR" -j "${ALLM_JOBS:-2}"
  TARGETS=("$@")
  if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(chat_request responses_request audio_form audio_decode safetensors_header
             format_detection tokenizer_load image_decode)
  fi
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
for target in "${TARGETS[@]}"; do
  seeds="tests/fuzz/corpus/$target"
  work="$BUILD_DIR/corpus/$target"        # what the fuzzer learns; kept between runs
  findings="$BUILD_DIR/findings/$target"
  mkdir -p "$work" "$findings"
  extra=()
  case "$target" in
    chat_request|responses_request) extra=(-dict=tests/fuzz/json.dict) ;;
    # The server's threads allocate while an input runs, which libFuzzer's per-input leak check
    # would take for leaks; LeakSanitizer still checks at exit.
    http) extra=(-dict=tests/fuzz/json.dict -detect_leaks=0 -rss_limit_mb=4096 -timeout=150) ;;
  esac
  echo "== fuzz $target (${SECONDS_PER_TARGET}s)"
  "$BUILD_DIR/bin/fuzz_$target" "$work" "$seeds" -max_total_time="$SECONDS_PER_TARGET" \
    -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=0 \
    -artifact_prefix="$findings/" "${extra[@]}" 2>"$BUILD_DIR/fuzz_$target.log" ||
    { tail -n 60 "$BUILD_DIR/fuzz_$target.log"; echo "fuzz: $target failed; input in $findings/"; exit 1; }
  grep -E "^(#[0-9]+ +DONE|Done [0-9]+ runs)" "$BUILD_DIR/fuzz_$target.log" | tail -n 1 || true
done
echo "== fuzzing passed"
