// The cost of ggml RPC: prefill and decode tokens/s of one model served local-only (the CPU)
// and split over two `allm rpc-server` workers on loopback (every block on the workers, 1:1),
// through the chat completions API (streamed: prefill = prompt tokens / time to the first token,
// decode = the later tokens / the time after it), in pairs whose order flips; prints the RPC /
// local ratios as min / median / max. Run by bench/rpc_overhead.sh.
//
// Usage: node bench/rpc_overhead.mjs MODEL_FILE [pairs] (ALLM_BIN: the allm binary)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const [modelFile, pairsArg] = process.argv.slice(2);
if (!modelFile) {
  console.error('usage: node bench/rpc_overhead.mjs MODEL_FILE [pairs]');
  process.exit(2);
}
const PAIRS = Number(pairsArg || 3);
const PROMPT_WORDS = Number(process.env.BENCH_PROMPT || 128);
const DECODE = Number(process.env.BENCH_DECODE || 32);
const BIN = process.env.ALLM_BIN || 'build/bin/allm';
const children = [];
const tempDirs = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}
function run(args) {
  const child = spawn(BIN, args, { stdio: 'ignore' });
  children.push(child);
  return child;
}
function connects(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
  });
}
async function waitFor(url) {
  for (let i = 0; i < 600; ++i) {
    try { if ((await fetch(url)).status === 200) return; } catch { /* not yet */ }
    await sleep(100);
  }
  throw new Error(`${url} did not answer`);
}

async function startServer(extraArgs) {
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'allm-rpc-bench-'));
  tempDirs.push(dataDir);
  run(['serve', '--port', String(port), '--data-dir', dataDir, '--model', `bench=${modelFile}`,
    '--parallel', '1', '--ctx-size', '1024', '--preload', 'bench', ...extraArgs]);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`${base}/health/ready`);
  return base;
}

let requests = 0;

// One streamed request: {prefill, decode} tokens/s. Each prompt starts differently, so that no
// cached prefix is reused.
async function measure(base) {
  const prompt = `${++requests} ` + Array.from({ length: PROMPT_WORDS }, (_, i) => `word${i % 50}`).join(' ');
  const started = performance.now();
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'bench', messages: [{ role: 'user', content: prompt }], max_tokens: DECODE,
      temperature: 0, stream: true, stream_options: { include_usage: true },
    }),
  });
  let first = 0, usage = null, text = '';
  for await (const chunk of res.body) {
    text += Buffer.from(chunk).toString();
    // The first chunk (the role, empty content) comes before the prompt is read.
    if (!first && /"content":"[^"]/.test(text)) first = performance.now();
  }
  const ended = performance.now();
  for (const line of text.split('\n')) {
    if (line.startsWith('data: {') && line.includes('"usage":{')) usage = JSON.parse(line.slice(6)).usage;
  }
  return {
    prefill: usage.prompt_tokens / ((first - started) / 1000),
    decode: (usage.completion_tokens - 1) / ((ended - first) / 1000),
  };
}

const stats = (values) => {
  const v = [...values].sort((a, b) => a - b);
  return { min: v[0], median: v[Math.floor(v.length / 2)], max: v[v.length - 1] };
};
const show = (x) => `${x.min.toFixed(2)} / ${x.median.toFixed(2)} / ${x.max.toFixed(2)}`;

// Both servers stay up; each pair measures one request on each, the order flipping from pair
// to pair, so that the machine's drift falls on both alike.
const local = await startServer(['--device', 'none']);
const workers = [];
for (let i = 0; i < 2; ++i) {
  const port = await freePort();
  run(['rpc-server', '--port', String(port)]);
  while (!(await connects(port))) await sleep(50);
  workers.push(`127.0.0.1:${port}`);
}
const split = await startServer(['--rpc', workers.join(','), '--tensor-split', '1,1']);
await measure(local);  // warm-up
await measure(split);
const pairs = [];
for (let i = 0; i < PAIRS; ++i) {
  const order = i % 2 ? [split, local] : [local, split];
  const got = new Map();
  for (const base of order) got.set(base, await measure(base));
  const [l, r] = [got.get(local), got.get(split)];
  console.log(`pair ${i + 1}: local prefill ${l.prefill.toFixed(1)} decode ${l.decode.toFixed(2)} tok/s, ` +
    `two loopback workers prefill ${r.prefill.toFixed(1)} decode ${r.decode.toFixed(2)} tok/s`);
  pairs.push({ prefill: r.prefill / l.prefill, decode: r.decode / l.decode });
}
console.log(`RPC / local (min / median / max): prefill ${show(stats(pairs.map((p) => p.prefill)))}, ` +
  `decode ${show(stats(pairs.map((p) => p.decode)))}`);
process.exit(0);
