// Model layers on ggml RPC workers: two `allm rpc-server` processes on loopback and a server
// using both give the same greedy text as the same models on the server's own CPU, for a Hugging
// Face folder (safetensors.cpp) and its GGUF (llama.cpp); the load log says where the layers went.
// A worker that is gone fails the next load that would use it with LOAD_FAILED naming it, and the
// server keeps running; a worker that does not answer at start stops the server.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import {
  startServer, postJSON, show, responseText, runCommand, freePort, request, ALLM_BIN,
  TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';
import { makeHfFixture } from './hf_fixture.mjs';

const T = { timeout: TEST_TIMEOUT_MS };

function accepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** An `allm rpc-server` on a free loopback port, serving this machine's CPU with one thread. */
async function startWorker() {
  const port = await freePort();
  const child = spawn(ALLM_BIN, ['rpc-server', '--port', String(port), '--threads', '1'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  for (let i = 0; i < 200 && !(await accepts(port)); ++i) await new Promise((r) => setTimeout(r, 50));
  assert.ok(await accepts(port), `allm rpc-server did not listen on ${port}:\n${log}`);
  return {
    endpoint: `127.0.0.1:${port}`, exited,
    get log() { return log; },
    async stop() { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); await exited; },
  };
}

async function greedy(baseURL, model) {
  const r = await postJSON(baseURL, '/v1/responses', {
    model, input: 'Tell me about the model of the world', max_output_tokens: 12, temperature: 0,
  });
  assert.equal(r.status, 200, show(`responses ${model}`, r));
  return responseText(r.json);
}

describe('RPC workers', { timeout: HOOK_TIMEOUT_MS * 2 + 4 * TEST_TIMEOUT_MS }, () => {
  const workers = [];
  let local, split;

  before(async () => {
    workers.push(await startWorker(), await startWorker());
    const models = async ({ modelsDir }) => {
      await makeHfFixture('llama', 'f32', modelsDir);
      // The same folder under a second name, loaded only when first asked for.
      return ['--model', `late=${path.join(modelsDir, 'llama-f32-hf')}`];
    };
    local = await startServer({ fixture: false, setup: models, extraArgs: ['--device', 'none'] });
    split = await startServer({
      fixture: false, setup: models,
      extraArgs: ['--rpc', workers.map((w) => w.endpoint).join(',')],
    });
  }, { timeout: HOOK_TIMEOUT_MS * 2 });

  after(async () => {
    for (const srv of [local, split]) if (srv) await srv.cleanup();
    for (const w of workers) await w.stop();
  }, { timeout: HOOK_TIMEOUT_MS });

  it('layers split over two workers give the CPU\'s greedy text, GGUF and safetensors', T, async () => {
    for (const model of ['llama-f32-hf', 'llama-f32-gguf']) {
      assert.equal(await greedy(split.baseURL, model), await greedy(local.baseURL, model), model);
    }
    assert.match(split.log, /model 'llama-f32-hf' loaded .*on RPC0,RPC1: 2 layers/);
    assert.match(split.log, /2 RPC worker\(s\), devices RPC0,RPC1/);
  });

  it('a worker gone fails the next load that needs it, naming it; the server keeps serving', T, async () => {
    await workers[1].stop();
    const r = await postJSON(split.baseURL, '/v1/responses', { model: 'late', input: 'Hi', max_output_tokens: 2 });
    assert.equal(r.status, 422, show('responses late', r));
    assert.match(r.json.error.message, new RegExp(`RPC worker ${workers[1].endpoint} does not answer`));
    assert.equal(r.json.error.code, 'LOAD_FAILED');
    const health = await request(split.baseURL, 'GET', '/health');
    assert.equal(health.status, 200);
  });

  it('a server whose worker does not answer at start refuses to start, naming it', T, async () => {
    const port = await freePort();
    const r = await runCommand(ALLM_BIN, ['serve', '--port', String(port), '--rpc', `127.0.0.1:${await freePort()}`], { timeoutMs: 30_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /the RPC worker 127\.0\.0\.1:\d+ does not answer/);
  });
});
