// Store latency per response, SQLite vs PostgreSQL (smoke-sized): one client sends N sequential
// POST /v1/responses to the tiny fixture model (one output token) with store: true and with
// store: false, then reads each stored one back (GET /v1/responses/{id}); prints p50/p99 of each
// and the store's share (store:true minus store:false at the median). PostgreSQL is a throwaway
// local cluster with fsync on (tests/integration/postgres_cluster.mjs); SQLite is a file in a
// temp dir. Both commit synchronously.
//   node bench/store_backends.mjs            (BENCH_REQUESTS=N, default 200; ALLM_BIN, ALLM_FIXTURE_TOOL)
import path from 'node:path';
import { AllmServer, makeTempDir, copyFixture, postJSON, getJSON } from '../tests/e2e/helpers.mjs';
import { PostgresCluster } from '../tests/integration/postgres_cluster.mjs';

const N = Number(process.env.BENCH_REQUESTS || 200);

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function summary(ms) {
  const sorted = [...ms].sort((x, y) => x - y);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

async function timed(fn) {
  const start = performance.now();
  const r = await fn();
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text}`);
  return [performance.now() - start, r];
}

async function measure(store) {
  const tmp = await makeTempDir('allm-bench-');
  const srv = new AllmServer({ tmp, extraArgs: ['--store', typeof store === 'function' ? store(tmp) : store] });
  await copyFixture(path.join(srv.modelsDir, 'tiny.gguf'));
  await srv.start();
  try {
    const post = (n, stored) => postJSON(srv.baseURL, '/v1/responses', { model: 'tiny', input: `request ${n} ${stored}`, max_output_tokens: 1, temperature: 0, store: stored });
    for (let n = 0; n < 10; n++) await post(-n, true);  // model loaded, connections open
    const stored = [], unstored = [], reads = [], ids = [];
    for (let n = 0; n < N; n++) {
      const [t, r] = await timed(() => post(n, true));
      stored.push(t);
      ids.push(r.json.id);
      unstored.push((await timed(() => post(n, false)))[0]);
    }
    for (const id of ids) reads.push((await timed(() => getJSON(srv.baseURL, `/v1/responses/${id}`)))[0]);
    return { stored: summary(stored), unstored: summary(unstored), read: summary(reads) };
  } finally {
    await srv.cleanup();
  }
}

const pg = new PostgresCluster({ fsync: true });
await pg.init();
try {
  const results = {
    sqlite: await measure((tmp) => `sqlite:${path.join(tmp, 'responses.db')}`),
    postgres: await measure(pg.uri),
  };
  const f = (x) => x.toFixed(2).padStart(7);
  console.log(`${N} sequential requests each; milliseconds`);
  console.log('store     | POST store:true p50 p99 | POST store:false p50 p99 | store share p50 | GET p50 p99');
  for (const [name, r] of Object.entries(results)) {
    console.log(`${name.padEnd(9)} | ${f(r.stored.p50)} ${f(r.stored.p99)}         | ${f(r.unstored.p50)} ${f(r.unstored.p99)}          | ${f(r.stored.p50 - r.unstored.p50)}         | ${f(r.read.p50)} ${f(r.read.p99)}`);
  }
} finally {
  await pg.destroy();
}
