// Driver of bench/llama_server.sh: starts both servers, measures them in turn through
// /v1/chat/completions (streaming), pair by pair, and prints the ratios.
import { parseArgs } from 'node:util';
import {
  startServer as start, stopServer, post, quantile, blame,
  SERVER_OPTIONS,
} from './bench_servers.mjs';

const { values: opt } = parseArgs({
  options: {
    ...SERVER_OPTIONS,
    ctx: { type: 'string', default: '1024' },
    streams: { type: 'string', default: '8' },
    'max-tokens': { type: 'string', default: '32' },
  },
});
const STREAMS = Number(opt.streams);
const MAX_TOKENS = Number(opt['max-tokens']);

// The same settings on both: threads, context per sequence, STREAMS sequences, flash attention
// left to llama.cpp's default (auto) on both, one KV slice per sequence. With --threads default
// each server runs at its own defaults: only the model, port and parallel sequences are given.
function command(kind, port) {
  const defaults = opt.threads === 'default';
  const common = ['--host', '127.0.0.1', '--port', String(port)];
  if (!defaults) common.push('--threads', opt.threads);
  if (kind === 'allm') {
    return [opt.allm, ['serve', ...common, '--model', `bench=${opt.model}`, '--preload', 'bench',
      '--parallel', String(STREAMS), ...(defaults ? [] : ['--ctx-size', opt.ctx]), '--no-demo',
      '--data-dir', `/tmp/allm-bench-${process.pid}`]];
  }
  if (defaults) return [opt['llama-server'], [...common, '-m', opt.model, '--alias', 'bench', '-np', String(STREAMS)]];
  return [opt['llama-server'], [...common, '-m', opt.model, '--alias', 'bench', '-np', String(STREAMS),
    '-c', String(Number(opt.ctx) * STREAMS), '--no-kv-unified', '-fa', 'auto', '--no-webui',
    '--threads-batch', opt.threads]];
}

const WORDS = 'the quiet harbor holds seven boats painted blue and red while gulls circle'.split(' ');
// Every request's prompt differs from its first word on (the number), so neither server can
// answer one from a cache of earlier prompts: the bench measures prompt reading, not caching.
function prompt(i) {
  const words = Array.from({ length: 12 }, (_, k) => WORDS[(i * 7 + k * 3) % WORDS.length]);
  return `${i} ${words.join(' ')}`;
}

// One streamed completion: time to first token, then decode rate over the rest.
async function completion(base, i, maxTokens = MAX_TOKENS) {
  const start = performance.now();
  const res = await post(`${base}/v1/chat/completions`, {
    model: 'bench', messages: [{ role: 'user', content: prompt(i) }], max_tokens: maxTokens,
    temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let first = null, tokens = 0, chunks = 0, buf = '';
  for await (const chunk of res.body) {
    buf += Buffer.from(chunk).toString('utf8');
    let nl;
    while ((nl = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/^data: /, '');
      buf = buf.slice(nl + 2);
      if (line === '[DONE]') continue;
      const json = JSON.parse(line);
      if (json.choices?.[0]?.delta?.content) {
        chunks++;
        if (first === null) first = performance.now();
      }
      if (json.usage) tokens = json.usage.completion_tokens;
    }
  }
  const end = performance.now();
  // Usage when the server sends it, else one token per content chunk.
  return { ttft: (first ?? end) - start, tokens: tokens || chunks, decodeMs: end - (first ?? end), end };
}

// Single-stream decode rate of both servers: three sequential requests each, taken in turn
// (request by request, `first` going first), since a single stream's rate follows the machine's
// swings within seconds. Longer than the concurrent requests, for the same reason.
async function singles(first, second, pair) {
  const runs = new Map([[first, []], [second, []]]);
  for (let i = 0; i < 3; i++) {
    for (const server of [first, second]) {
      runs.get(server).push(await blame(server, () => completion(server.base, pair * 1000 + i, 4 * MAX_TOKENS)));
    }
  }
  const rate = (list) => list.reduce((a, r) => a + r.tokens - 1, 0) / list.reduce((a, r) => a + r.decodeMs / 1000, 0);
  return new Map([...runs].map(([server, list]) => [server, rate(list)]));
}

// Two rounds of STREAMS concurrent requests on one server: aggregate rate and TTFTs.
async function concurrent(server, pair) {
  return blame(server, async () => {
    const ttfts = [];
    let aggregate = 0;
    for (let round = 0; round < 2; round++) {
      const start = performance.now();
      const runs = await Promise.all(Array.from({ length: STREAMS }, (_, i) =>
        completion(server.base, pair * 1000 + 100 + round * STREAMS + i)));
      const seconds = (Math.max(...runs.map((r) => r.end)) - start) / 1000;
      aggregate += runs.reduce((a, r) => a + r.tokens, 0) / seconds / 2;
      ttfts.push(...runs.map((r) => r.ttft));
    }
    return { aggregate, p50: quantile(ttfts, 0.5), p99: quantile(ttfts, 0.99) };
  });
}

// Both servers stay up (the idle one sleeps) so that they can be measured in turn; the order
// flips every pair (A B, B A, ...) so that a drift in the machine's speed favours neither. The
// prompts differ from pair to pair and request to request, so no prompt cache answers them.
const startServer = (kind) => start(kind, (port) => command(kind, port));
const servers = { allm: await startServer('allm'), llama: await startServer('llama-server') };
const ratios = { single: [], aggregate: [], p50: [], p99: [] };
try {
  for (const server of Object.values(servers)) await completion(server.base, 999);  // warm-up
  for (let pair = 1; pair <= Number(opt.pairs); pair++) {
    const order = pair % 2 ? [servers.allm, servers.llama] : [servers.llama, servers.allm];
    const rates = await singles(order[0], order[1], pair);
    const results = new Map();
    for (const server of order) results.set(server, await concurrent(server, pair));
    const a = { single: rates.get(servers.allm), ...results.get(servers.allm) };
    const b = { single: rates.get(servers.llama), ...results.get(servers.llama) };
    ratios.single.push(a.single / b.single);
    ratios.aggregate.push(a.aggregate / b.aggregate);
    ratios.p50.push(b.p50 / a.p50);  // lower is better: llama-server/allm
    ratios.p99.push(b.p99 / a.p99);
    const f = (x) => x.toFixed(2);
    console.log(`pair ${pair}: single tok/s allm ${f(a.single)} llama-server ${f(b.single)} | ` +
      `aggregate(${STREAMS}) tok/s allm ${f(a.aggregate)} llama-server ${f(b.aggregate)} | ` +
      `TTFT p50 ms allm ${a.p50.toFixed(0)} llama-server ${b.p50.toFixed(0)} | ` +
      `p99 ms allm ${a.p99.toFixed(0)} llama-server ${b.p99.toFixed(0)}`);
  }
} finally {
  await Promise.all(Object.values(servers).map(stopServer));
}
console.log('ratios allm/llama-server (above 1: allm better; TTFT as llama-server/allm): min / median / max');
for (const [name, list] of Object.entries(ratios)) {
  const s = [...list].sort((x, y) => x - y);
  console.log(`  ${name.padEnd(10)} ${s[0].toFixed(2)} / ${quantile(s, 0.5).toFixed(2)} / ${s.at(-1).toFixed(2)}`);
}
