// Driver of bench/embeddings.sh: starts both servers, sends each the same requests of BATCH
// inputs of TOKENS token ids to /v1/embeddings in turn, pair by pair, and prints the ratios.
import { parseArgs } from 'node:util';
import {
  startServer, stopServer, post, quantile, blame,
  SERVER_OPTIONS,
} from './bench_servers.mjs';

const { values: opt } = parseArgs({
  options: {
    ...SERVER_OPTIONS,
    batch: { type: 'string', default: '32' },
    tokens: { type: 'string', default: '512' },
    requests: { type: 'string', default: '2' },  // per server and pair
  },
});
const BATCH = Number(opt.batch);
const TOKENS = Number(opt.tokens);
// Each input's context: its tokens and room to spare; llama-server reads an embedding input in
// one micro-batch, so its -ub covers it.
const CTX = 2 * TOKENS;

// Both with the same threads; allm packs a request's inputs into decodes of up to --ctx-size
// tokens, llama-server spreads them over its slots (8, each of CTX tokens).
function command(kind, port) {
  const common = ['--host', '127.0.0.1', '--port', String(port), '--threads', opt.threads];
  if (kind === 'allm') {
    return [opt.allm, ['serve', ...common, '--model', `bench=${opt.model}`, '--preload', 'bench',
      '--ctx-size', String(CTX), '--no-demo', '--data-dir', `/tmp/allm-bench-${process.pid}`]];
  }
  return [opt['llama-server'], [...common, '-m', opt.model, '--alias', 'bench', '--embeddings',
    '-np', '8', '-c', String(CTX * 8), '-b', String(CTX), '-ub', String(CTX), '--no-webui',
    '--threads-batch', opt.threads]];
}

// Token ids spread over the vocabulary's first ids (every fixture has at least 256), different
// for every request so that no cache answers them.
function inputs(request) {
  return Array.from({ length: BATCH }, (_, i) =>
    Array.from({ length: TOKENS }, (_, k) => (request * 7919 + i * 131 + k * 17) % 250 + 3));
}

// Inputs per second over `count` sequential requests.
async function rate(server, first, count) {
  return blame(server, async () => {
    const start = performance.now();
    for (let r = first; r < first + count; r++) {
      const res = await post(`${server.base}/v1/embeddings`, { model: 'bench', input: inputs(r) });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      const body = await res.json();
      if (body.data.length !== BATCH) throw new Error(`${body.data.length} embeddings for ${BATCH} inputs`);
    }
    return (count * BATCH) / ((performance.now() - start) / 1000);
  });
}

const servers = {
  allm: await startServer('allm', (port) => command('allm', port)),
  llama: await startServer('llama-server', (port) => command('llama-server', port)),
};
const ratios = [];
try {
  for (const server of Object.values(servers)) await rate(server, 0, 1);  // warm-up
  const count = Number(opt.requests);
  for (let pair = 1; pair <= Number(opt.pairs); pair++) {
    const order = pair % 2 ? [servers.allm, servers.llama] : [servers.llama, servers.allm];
    const results = new Map();
    for (const server of order) results.set(server, await rate(server, pair * 100, count));
    const a = results.get(servers.allm), b = results.get(servers.llama);
    ratios.push(a / b);
    console.log(`pair ${pair}: inputs/s (${BATCH} x ${TOKENS} tokens a request) ` +
      `allm ${a.toFixed(2)} llama-server ${b.toFixed(2)}`);
  }
} finally {
  await Promise.all(Object.values(servers).map(stopServer));
}
const s = [...ratios].sort((x, y) => x - y);
console.log(`ratio allm/llama-server (above 1: allm faster): min / median / max ` +
  `${s[0].toFixed(2)} / ${quantile(s, 0.5).toFixed(2)} / ${s.at(-1).toFixed(2)}`);
