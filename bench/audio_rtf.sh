#!/usr/bin/env bash
# Real-time factor of POST /v1/audio/transcriptions against whisper.cpp's own whisper-cli, built
# here from the same whisper.cpp tree (its own build dir; the main build keeps examples off).
# whisper-cli links the ggml bundled with whisper.cpp, as whisper.cpp's users get it; the server
# links the one ggml of its process, llama.cpp's, so the ratio includes the ggml versions' gap.
# Same model (random weights, whisper "tiny" dimensions), same audio, same threads, greedy
# decoding at temperature 0 without the temperature fallback (whisper-cli -nf, the server's
# temperature_inc=0), language fixed to English. Without that the work is not the same on both
# sides: random weights fail whisper's checks in nearly every window, and the sampled retries
# draw from a random generator that a fresh whisper-cli starts anew while the server's pooled
# state continues it, so the two decode different token counts.
#   bench/audio_rtf.sh            (uses $ALLM_BUILD_DIR, default build/; builds what is missing)
#   BENCH_THREADS=N BENCH_RUNS=N BENCH_MODEL_ARGS="" (small test model) bench/audio_rtf.sh
# Run it on an otherwise idle machine: ggml's worker threads spin while waiting, so a loaded
# machine slows both sides by orders of magnitude.
# Prints both RTFs (seconds of compute per second of audio) and whisper-cli / server: above 1
# means the server is faster.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${ALLM_BUILD_DIR:-build}"
DEPS_DIR="${ALLM_DEPS_DIR:-$HOME/.cache/allm/deps}"
THREADS="${BENCH_THREADS:-$(nproc)}"
RUNS="${BENCH_RUNS:-3}"
# Fixture flags: --tiny (default) for whisper "tiny" dimensions; "" for the small test model.
MODEL_ARGS="${BENCH_MODEL_ARGS---tiny}"
CLI_BUILD="$BUILD_DIR/bench/whisper-cli"

[ -x "$BUILD_DIR/bin/allm" ] || scripts/build.sh
cmake -S "$DEPS_DIR/whisper.cpp" -B "$CLI_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DWHISPER_BUILD_EXAMPLES=ON -DWHISPER_BUILD_TESTS=OFF \
  -DWHISPER_BUILD_SERVER=OFF -DWHISPER_SDL2=OFF -DGGML_NATIVE=ON \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
ninja -C "$CLI_BUILD" -j "${ALLM_JOBS:-2}" whisper-cli >/dev/null
CLI="$CLI_BUILD/bin/whisper-cli"

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/models"
# shellcheck disable=SC2086
"$BUILD_DIR/bin/allm-make-whisper-fixture" $MODEL_ARGS --out "$tmp/models/bench.bin"
# About a minute of speech, already 16 kHz mono 16-bit so neither side resamples.
text="The quick brown fox jumps over the lazy dog. Speech recognition turns spoken words into text."
espeak-ng -s 150 -w "$tmp/raw.wav" "$text $text $text $text $text $text $text $text"
sox "$tmp/raw.wav" -r 16000 -c 1 -b 16 "$tmp/speech.wav"
duration=$(soxi -D "$tmp/speech.wav")

# whisper-cli: the compute time it reports (total minus model load), best of $RUNS.
cli_best=""
for _ in $(seq "$RUNS"); do
  "$CLI" -m "$tmp/models/bench.bin" -f "$tmp/speech.wav" -t "$THREADS" -l en -bs 1 -nf >/dev/null 2>"$tmp/cli.log" || true
  grep -q "total time" "$tmp/cli.log" || { cat "$tmp/cli.log" >&2; exit 1; }
  total=$(grep "total time" "$tmp/cli.log" | sed 's/.*= *\([0-9.]*\) ms.*/\1/')
  load=$(grep "load time" "$tmp/cli.log" | sed 's/.*= *\([0-9.]*\) ms.*/\1/')
  t=$(echo "($total - $load) / 1000" | bc -l)
  if [ -z "$cli_best" ] || (( $(echo "$t < $cli_best" | bc -l) )); then cli_best=$t; fi
done

# The server: model preloaded, one warm-up request, then the wall time of each request.
port=$((20000 + RANDOM % 20000))
"$BUILD_DIR/bin/allm" serve --port "$port" --models-dir "$tmp/models" --data-dir "$tmp/data" \
  --preload bench --audio-parallel 1 --threads "$THREADS" --no-demo >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
request() {
  curl -sf -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/v1/audio/transcriptions" \
    -F file=@"$tmp/speech.wav" -F model=bench -F language=en -F temperature_inc=0
}
request >/dev/null
server_best=""
for _ in $(seq "$RUNS"); do
  t=$(request)
  if [ -z "$server_best" ] || (( $(echo "$t < $server_best" | bc -l) )); then server_best=$t; fi
done

printf 'audio: %.2f s, threads: %s, best of %s runs\n' "$duration" "$THREADS" "$RUNS"
printf 'whisper-cli RTF: %.4f (%.3f s)\n' "$(echo "$cli_best / $duration" | bc -l)" "$cli_best"
printf 'allm server RTF: %.4f (%.3f s, HTTP included)\n' "$(echo "$server_best / $duration" | bc -l)" "$server_best"
printf 'speed ratio (whisper-cli time / server time): %.3f\n' "$(echo "$cli_best / $server_best" | bc -l)"
