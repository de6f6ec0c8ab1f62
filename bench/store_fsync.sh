#!/usr/bin/env bash
# What storing responses costs under load: every `store: true` response is committed to SQLite
# with a synchronous (fsync'd) write before the client hears it is complete. BENCH_CLIENTS
# clients send POST /v1/responses back to back for BENCH_SECONDS with store: true, then with
# store: false (the order flips every pair), to the tiny fixture model with one output token, so
# that the store's share of a request is as large as it gets; prints requests/s and p50/p99
# latency of each run and the store:true / store:false ratio of requests/s per pair.
#   bench/store_fsync.sh                          (uses $ALLM_BUILD_DIR, default build/)
#   BENCH_PAIRS=N BENCH_SECONDS=S BENCH_CLIENTS=C BENCH_DATA_DIR=DIR bench/store_fsync.sh
# BENCH_DATA_DIR is where responses.db lives (default ~/.cache/allm/bench/store): put it on the
# disk to measure; a tmpfs makes fsync free.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${ALLM_BUILD_DIR:-build}"
PAIRS="${BENCH_PAIRS:-3}"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CLIENTS="${BENCH_CLIENTS:-16}"
DATA_DIR="${BENCH_DATA_DIR:-$HOME/.cache/allm/bench/store}"
PORT="${BENCH_PORT:-18480}"

[ -x "$BUILD_DIR/bin/allm" ] || scripts/build.sh
MODELS_DIR="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$MODELS_DIR"
}
trap cleanup EXIT

"$BUILD_DIR/bin/allm-make-fixture" --out "$MODELS_DIR/tiny.gguf" >/dev/null
mkdir -p "$DATA_DIR"
rm -f "$DATA_DIR"/responses.db*  # every run starts from an empty store
"$BUILD_DIR/bin/allm" serve --port "$PORT" --models-dir "$MODELS_DIR" --data-dir "$DATA_DIR" \
  --parallel 8 --ctx-size 256 --no-demo 2>"$MODELS_DIR/server.log" &
SERVER_PID=$!

node --input-type=module - "$PORT" "$PAIRS" "$SECONDS_PER_RUN" "$CLIENTS" <<'EOF'
const [port, pairs, seconds, clients] = process.argv.slice(2).map(Number);
const url = `http://127.0.0.1:${port}`;

for (let i = 0; ; i++) {
  try { if ((await fetch(`${url}/health`)).ok) break; } catch { /* not up yet */ }
  if (i > 600) throw new Error('the server did not start');
  await new Promise((r) => setTimeout(r, 100));
}

async function run(store) {
  const latencies = [];
  let failed = 0;
  const end = Date.now() + seconds * 1000;
  const client = async (c) => {
    for (let n = 0; Date.now() < end; n++) {
      const start = performance.now();
      const r = await fetch(`${url}/v1/responses`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        // unique inputs, so that no request is cheaper than another through the prefix cache
        body: JSON.stringify({ model: 'tiny', input: `client ${c} request ${n} ${store}`, max_output_tokens: 1, temperature: 0, store }),
      });
      const body = await r.json();
      if (r.status !== 200 || body.store !== store) failed++;
      latencies.push(performance.now() - start);
    }
  };
  const began = performance.now();
  await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  const elapsed = (performance.now() - began) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  const row = { store, rps: latencies.length / elapsed, p50: pct(0.5), p99: pct(0.99), failed };
  console.log(`store:${String(store).padEnd(5)}  ${row.rps.toFixed(1).padStart(7)} req/s  ` +
    `p50 ${row.p50.toFixed(1)} ms  p99 ${row.p99.toFixed(1)} ms${failed ? `  (${failed} failed)` : ''}`);
  return row;
}

await run(false);  // warm-up: model load, first allocations
const ratios = [];
for (let p = 0; p < pairs; p++) {
  const order = p % 2 ? [false, true] : [true, false];
  const rows = {};
  for (const store of order) rows[store] = await run(store);
  ratios.push(rows.true.rps / rows.false.rps);
}
ratios.sort((a, b) => a - b);
console.log(`store:true / store:false requests/s: min ${ratios[0].toFixed(3)}  ` +
  `median ${ratios[Math.floor(ratios.length / 2)].toFixed(3)}  max ${ratios.at(-1).toFixed(3)}`);
EOF
