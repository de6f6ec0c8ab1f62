// The cost of ggml RPC: prefill and decode tokens/s of one model served local-only (the CPU)
// and split over two `allm rpc-server` workers on loopback (every block on the workers, 1:1),
// through the chat completions API (streamed: prefill = prompt tokens / time to the first token,
// decode = the later tokens / the time after it). Run by bench/rpc_overhead.sh.
//
// Usage: node bench/rpc_overhead.mjs MODEL_FILE [runs] (ALLM_BIN: the allm binary)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const [modelFile, runsArg] = process.argv.slice(2);
if (!modelFile) {
  console.error('usage: node bench/rpc_overhead.mjs MODEL_FILE [runs]');
  process.exit(2);
}
const RUNS = Number(runsArg || 3);
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
    if (!first && text.includes('"content":"')) first = performance.now();
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

async function bench(label, base) {
  await measure(base);  // warm-up
  const runs = [];
  for (let i = 0; i < RUNS; ++i) runs.push(await measure(base));
  const median = (key) => runs.map((r) => r[key]).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
  const row = { label, prefill: median('prefill'), decode: median('decode') };
  console.log(`${label.padEnd(22)} prefill ${row.prefill.toFixed(1).padStart(9)} tok/s   decode ${row.decode.toFixed(1).padStart(8)} tok/s`);
  return row;
}

const local = await bench('local (CPU)', await startServer(['--device', 'none']));
const workers = [];
for (let i = 0; i < 2; ++i) {
  const port = await freePort();
  run(['rpc-server', '--port', String(port)]);
  while (!(await connects(port))) await sleep(50);
  workers.push(`127.0.0.1:${port}`);
}
const split = await bench('two loopback workers', await startServer(['--rpc', workers.join(','), '--tensor-split', '1,1']));
console.log(`RPC / local: prefill ${(split.prefill / local.prefill).toFixed(2)}, decode ${(split.decode / local.decode).toFixed(2)}`);
process.exit(0);
