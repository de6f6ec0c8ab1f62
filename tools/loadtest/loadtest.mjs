#!/usr/bin/env node
// Load test for a live aLLM server: N concurrent clients streaming from /v1/responses and
// /v1/chat/completions, with random disconnects and malformed requests mixed in, bounded by a
// request count and a time limit. It fails (exit 1) when
//   - a completed response or stream is not well-formed,
//   - any status is 5xx other than the documented 503/504/507 (429 is allowed everywhere),
//   - a malformed request is not answered with a 4xx,
//   - the server is not healthy afterwards,
//   - a sequence stays occupied or a request stays queued (GET /metrics: allm_active_sequences,
//     allm_queue_depth), or a follow-up batch of --parallel requests is not admitted at once,
//   - the server's RSS does not come back near its value after the warm-up.
//
//   node tools/loadtest/loadtest.mjs --serve [--parallel 4] [--clients 8] [--requests 300] [--duration 30]
//       starts build/bin/allm (ALLM_BIN) on a tiny random model (allm-make-fixture) and tests it
//   node tools/loadtest/loadtest.mjs --url http://127.0.0.1:8080 --model NAME --pid PID [...]
//       tests a running server (RSS needs --pid; /proc/PID/status)
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import {
  startServer, postSSE, request, checkResponseStream, checkChatStream, responseText, sleep,
} from '../../tests/e2e/helpers.mjs';

const { values: opt } = parseArgs({
  options: {
    serve: { type: 'boolean', default: false },
    url: { type: 'string' },
    model: { type: 'string', default: 'tiny' },
    pid: { type: 'string' },
    parallel: { type: 'string', default: '4' },
    clients: { type: 'string', default: '8' },
    requests: { type: 'string', default: '300' },
    duration: { type: 'string', default: '30' },
    'max-tokens': { type: 'string', default: '24' },
    'disconnect-rate': { type: 'string', default: '0.15' },
    'malformed-rate': { type: 'string', default: '0.15' },
    'rss-tolerance-mb': { type: 'string', default: '48' },
    seed: { type: 'string', default: '1' },
  },
});
const PARALLEL = Number(opt.parallel);
const CLIENTS = Number(opt.clients);
const MAX_REQUESTS = Number(opt.requests);
const DURATION_MS = Number(opt.duration) * 1000;
const MAX_TOKENS = Number(opt['max-tokens']);
const DISCONNECT_RATE = Number(opt['disconnect-rate']);
const MALFORMED_RATE = Number(opt['malformed-rate']);
const RSS_TOLERANCE_KB = Number(opt['rss-tolerance-mb']) * 1024;
const MODEL = opt.model;
const ALLOWED_5XX = new Set([503, 504, 507]);

// A small deterministic generator, so that a failing mix can be replayed with --seed.
let rngState = BigInt(opt.seed) || 1n;
function random() {
  rngState ^= rngState << 13n; rngState &= 0xffffffffffffffffn;
  rngState ^= rngState >> 7n;
  rngState ^= rngState << 17n; rngState &= 0xffffffffffffffffn;
  return Number(rngState % 1000000n) / 1000000;
}
const pick = (list) => list[Math.floor(random() * list.length)];

const stats = { ok: 0, disconnected: 0, malformed: 0, limited: 0, byStatus: {}, failures: [] };
function fail(what, detail) {
  if (stats.failures.length < 20) stats.failures.push(`${what}: ${String(detail).slice(0, 600)}`);
}
function countStatus(status) {
  stats.byStatus[status] = (stats.byStatus[status] || 0) + 1;
}
// 429/503/504/507 are the documented answers of a loaded server; anything else 5xx is a bug.
function acceptableOverload(status) {
  return status === 429 || ALLOWED_5XX.has(status);
}

function prompt() {
  const words = ['river', 'stone', 'cloud', 'lamp', 'orbit', 'maple', 'quartz', 'harbor', 'ember'];
  const n = 3 + Math.floor(random() * 30);
  return Array.from({ length: n }, () => pick(words)).join(' ');
}

// Half the conversations share a system prompt, so that prefixes are reused and copied between
// sequences while others start, stop and disconnect.
const SYSTEM = 'You answer in one short paragraph and never repeat the question back. '.repeat(3);
const shared = () => random() < 0.5;

function responsesBody(stream) {
  return {
    model: MODEL, input: prompt(), max_output_tokens: 1 + Math.floor(random() * MAX_TOKENS), stream,
    ...(shared() ? { instructions: SYSTEM } : {}),
  };
}
function chatBody(stream) {
  return {
    model: MODEL,
    messages: [...(shared() ? [{ role: 'system', content: SYSTEM }] : []), { role: 'user', content: prompt() }],
    max_tokens: 1 + Math.floor(random() * MAX_TOKENS),
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// the kinds of requests a client sends

async function streamingRequest(base) {
  const chat = random() < 0.5;
  const path = chat ? '/v1/chat/completions' : '/v1/responses';
  const r = await postSSE(base, path, chat ? chatBody(true) : responsesBody(true));
  countStatus(r.status);
  if (r.status !== 200) {
    if (acceptableOverload(r.status)) return void stats.limited++;
    return fail(`${path} stream`, `HTTP ${r.status}: ${r.text}`);
  }
  try {
    if (chat) checkChatStream(r.events, { includeUsage: true, model: MODEL });
    else checkResponseStream(r.events);
    stats.ok++;
  } catch (e) {
    // A stream the server ends with an error event (e.g. TIMEOUT under load) is well-formed too.
    const last = r.events?.at(chat ? -2 : -1)?.json;
    const code = last?.error?.code || last?.response?.error?.code;
    if (code === 'TIMEOUT') return void stats.limited++;
    fail(`${path} stream`, e.message);
  }
}

async function plainRequest(base) {
  const chat = random() < 0.5;
  const path = chat ? '/v1/chat/completions' : '/v1/responses';
  const r = await request(base, 'POST', path, { body: chat ? chatBody(false) : responsesBody(false) });
  countStatus(r.status);
  if (r.status !== 200) {
    if (acceptableOverload(r.status)) return void stats.limited++;
    return fail(path, `HTTP ${r.status}: ${r.text}`);
  }
  const body = r.json;
  const wellFormed = chat
    ? body?.object === 'chat.completion' && typeof body.choices?.[0]?.message?.content === 'string' &&
      Number.isInteger(body.usage?.completion_tokens)
    : body?.object === 'response' && ['completed', 'incomplete'].includes(body.status) &&
      typeof responseText(body) === 'string' && Number.isInteger(body.usage?.output_tokens);
  if (!wellFormed) return fail(path, `malformed body: ${r.text}`);
  stats.ok++;
}

// Starts a stream and goes away: before the headers, after a few events, or mid-body.
async function disconnectingRequest(base) {
  const chat = random() < 0.5;
  const path = chat ? '/v1/chat/completions' : '/v1/responses';
  const controller = new AbortController();
  const afterEvents = Math.floor(random() * 6);
  const timer = setTimeout(() => controller.abort(), Math.floor(random() * 400));
  try {
    const r = await postSSE(base, path, chat ? chatBody(true) : responsesBody(true), {
      signal: controller.signal,
      onEvent: (_e, events) => events.length < afterEvents,
    });
    countStatus(r.status);
    if (r.status >= 500 && !ALLOWED_5XX.has(r.status)) fail(`${path} (disconnect)`, `HTTP ${r.status}`);
  } catch (e) {
    if (e.name !== 'AbortError') fail(`${path} (disconnect)`, e.message);
  } finally {
    clearTimeout(timer);
    stats.disconnected++;
  }
}

// Hostile bodies (README "Limits"): nesting far past the limit in fields each endpoint reads.
const deep = (n) => '['.repeat(n) + ']'.repeat(n);
const MALFORMED = [
  ['/v1/responses', () => `{"model":"${MODEL}","input":[{"type":${deep(100000)}}]}`],
  ['/v1/responses', () => `{"model":"${MODEL}","input":"x","metadata":{"k":${'{"a":'.repeat(20000)}1${'}'.repeat(20000)}}}`],
  ['/v1/chat/completions', () => `{"model":"${MODEL}","messages":[{"role":"user","content":[{"type":${deep(100000)}}]}]}`],
  ['/v1/chat/completions', () => `{"model":"${MODEL}","messages":[{"role":${deep(65)},"content":"x"}]}`],
  ['/v1/responses', '{"model":'],
  ['/v1/responses', '[1,2,3]'],
  ['/v1/responses', ''],
  ['/v1/responses', () => JSON.stringify({ model: MODEL })],
  ['/v1/responses', () => JSON.stringify({ model: MODEL, input: [{ type: 7, role: 'user', content: 'x' }] })],
  ['/v1/responses', () => JSON.stringify({ model: MODEL, input: 'x', max_output_tokens: -3 })],
  ['/v1/responses', () => JSON.stringify({ model: MODEL, input: 'x', previous_response_id: 'resp_missing' })],
  ['/v1/responses', () => JSON.stringify({ model: 'no-such-model', input: 'x' })],
  ['/v1/chat/completions', () => JSON.stringify({ model: MODEL, messages: [] })],
  ['/v1/chat/completions', () => JSON.stringify({ model: MODEL, messages: [{ role: 'wizard', content: 'x' }] })],
  ['/v1/chat/completions', () => JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: [{ type: 5 }] }] })],
  ['/v1/chat/completions', () => JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], stop: [1, 2] })],
  ['/v1/chat/completions', () => JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], temperature: 'hot' })],
  ['/v1/chat/completions', '\u0000\u0001garbage'],
  ['/v1/audio/transcriptions', () => JSON.stringify({ model: 'x' })],
];

async function malformedRequest(base) {
  const [path, body] = pick(MALFORMED);
  const r = await request(base, 'POST', path, { rawBody: typeof body === 'function' ? body() : body });
  countStatus(r.status);
  stats.malformed++;
  if (r.status === 429) return;
  if (r.status < 400 || r.status >= 500) return fail(`malformed ${path}`, `HTTP ${r.status}: ${r.text}`);
  if (typeof r.json?.error?.message !== 'string') fail(`malformed ${path}`, `no error body: ${r.text}`);
}

async function oneRequest(base) {
  const x = random();
  if (x < MALFORMED_RATE) return malformedRequest(base);
  if (x < MALFORMED_RATE + DISCONNECT_RATE) return disconnectingRequest(base);
  return random() < 0.75 ? streamingRequest(base) : plainRequest(base);
}

// ---------------------------------------------------------------------------------------------
// the checks after the load

function rssKb(pid) {
  if (!pid) return null;
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : null;
}

async function metricValue(base, name) {
  const r = await request(base, 'GET', '/metrics');
  if (r.status !== 200) return null;  // a server without /metrics: only the batch check applies
  let sum = 0;
  for (const line of r.text.split('\n')) {
    if (line.startsWith(name + ' ') || line.startsWith(name + '{')) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

// Disconnected requests are cancelled at the scheduler's next step: give them a moment.
async function waitIdle(base) {
  const deadline = Date.now() + 15_000;
  let active = null, queued = null;
  while (Date.now() < deadline) {
    active = await metricValue(base, 'allm_active_sequences');
    queued = await metricValue(base, 'allm_queue_depth');
    if (active === null || (active === 0 && queued === 0)) return { active, queued };
    await sleep(200);
  }
  return { active, queued };
}

// --parallel requests at once must all start decoding at once: every first token arrives
// before any of them could have waited for another to finish.
async function checkAdmission(base) {
  const started = Date.now();
  const firstTokenMs = await Promise.all(Array.from({ length: PARALLEL }, async () => {
    let first = null;
    const r = await postSSE(base, '/v1/chat/completions', {
      model: MODEL, messages: [{ role: 'user', content: 'admission check' }], max_tokens: 48, stream: true,
      temperature: 0,
    }, { onEvent: (e) => { if (first === null && e.json?.choices?.[0]?.delta?.content) first = Date.now() - started; } });
    if (r.status !== 200) fail('admission batch', `HTTP ${r.status}: ${r.text}`);
    return { first, total: Date.now() - started };
  }));
  const shortest = Math.min(...firstTokenMs.map((x) => x.total));
  const late = firstTokenMs.filter((x) => x.first !== null && x.first > shortest + 100);
  if (late.length > 0) {
    fail('admission batch', `${late.length} of ${PARALLEL} requests got their first token only after ` +
      `another request had finished (a sequence was still occupied): ${JSON.stringify(firstTokenMs)}`);
  }
}

async function warmUp(base) {
  await Promise.all(Array.from({ length: PARALLEL * 2 }, (_, i) =>
    (i % 2 ? streamingRequest(base) : plainRequest(base))));
  stats.ok = 0;
  stats.byStatus = {};
}

async function runLoad(base) {
  const deadline = Date.now() + DURATION_MS;
  let sent = 0;
  const client = async () => {
    while (sent < MAX_REQUESTS && Date.now() < deadline) {
      sent++;
      try {
        await oneRequest(base);
      } catch (e) {
        fail('client', e.cause?.code || e.message);
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  return sent;
}

// A server we started must shut down cleanly: exit 0, no sanitizer report (AllmServer.stop).
async function stopServer(server) {
  try {
    await server.cleanup();
  } catch (e) {
    fail('shutdown', e.message.split('\n--- server log ---')[0]);
  }
  if (stats.failures.length > 0) console.error(server.logTail(8000));
}

async function main() {
  let server = null, base = opt.url, pid = opt.pid ? Number(opt.pid) : null;
  if (opt.serve) {
    server = await startServer({ parallel: PARALLEL, ctxSize: 1024 });
    base = server.baseURL;
    pid = server.child.pid;
  }
  if (!base) throw new Error('give --serve, or --url (and --pid for the memory check)');
  const t0 = Date.now();
  try {
    await warmUp(base);
    await sleep(500);
    const rssBefore = rssKb(pid);
    const sent = await runLoad(base);
    const loadSeconds = (Date.now() - t0) / 1000;

    const health = await request(base, 'GET', '/health');
    if (health.status !== 200) fail('health after load', `HTTP ${health.status}`);
    const idle = await waitIdle(base);
    if (idle.active !== null && (idle.active !== 0 || idle.queued !== 0)) {
      fail('idle after load', `allm_active_sequences=${idle.active} allm_queue_depth=${idle.queued}`);
    }
    await checkAdmission(base);
    await sleep(500);
    const rssAfter = rssKb(pid);
    if (rssBefore !== null && rssAfter !== null && rssAfter > rssBefore + RSS_TOLERANCE_KB) {
      fail('memory', `RSS ${rssBefore} kB after the warm-up, ${rssAfter} kB after the load ` +
        `(more than ${RSS_TOLERANCE_KB} kB above)`);
    }
    console.log(JSON.stringify({
      requests: sent, seconds: Number(loadSeconds.toFixed(1)), clients: CLIENTS, parallel: PARALLEL,
      completed: stats.ok, disconnected: stats.disconnected, malformed: stats.malformed,
      limited: stats.limited, statuses: stats.byStatus, idle,
      rss_kb: { after_warmup: rssBefore, after_load: rssAfter },
    }));
  } finally {
    if (server) await stopServer(server);
  }
  if (stats.failures.length > 0) {
    console.error(`loadtest FAILED:\n  ${stats.failures.join('\n  ')}`);
    process.exit(1);
  }
  console.log('loadtest passed');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
