// ggml RPC workers (issue 21): `allm rpc-server` processes on loopback lend their CPU to
// `allm serve --rpc`. A GGUF and a safetensors model split over the local CPU and two workers
// give the same greedy tokens and logprobs as local-only; a worker lost mid-stream fails that
// request (INTERNAL naming it) while the server survives and serves another model; loads fail
// naming the worker while it is down, and its return lets the model load again. GET /health/ready
// says "starting" while the server waits for its workers.
//
// A worker serves one client at a time (ggml's RPC server), so each server here has its own.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import net from 'node:net';
import {
  useServer, postJSON, postSSE, getJSON, show, freePort, sleep, runCommand, makeTempDir,
  ALLM_BIN, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';
import { makeHfFixture } from './hf_fixture.mjs';
import { metricValue, scrape } from './metrics_helpers.mjs';
import { IMAGE_MODEL, withAllModalities } from './modalities.mjs';

const T = { timeout: TEST_TIMEOUT_MS };
const GGUF = 'tiny';            // the llama GGUF fixture: 2 layers + the output head
const SAFETENSORS = 'llama-f32-hf';  // the Hugging Face fixture: 2 layers + the output head
const withHfFixture = async ({ modelsDir }) => { await makeHfFixture('llama', 'f32', modelsDir); };

function connects(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
  });
}

// An `allm rpc-server` on a loopback port, restartable on the same port.
class Worker {
  constructor(port) {
    this.port = port;
    this.endpoint = `127.0.0.1:${port}`;
    this.child = null;
    this.log = '';
  }

  async start() {
    this.child = spawn(ALLM_BIN, ['rpc-server', '--host', '127.0.0.1', '--port', String(this.port), '--threads', '1'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.on('close', resolve));
    for (const stream of [this.child.stdout, this.child.stderr]) stream.on('data', (d) => { this.log += d; });
    for (let i = 0; i < 200; ++i) {
      if (await connects(this.port)) return this;
      await sleep(50);
    }
    throw new Error(`rpc-server on ${this.endpoint} did not listen:\n${this.log}`);
  }

  async kill() {
    if (!this.child) return;
    this.child.kill('SIGKILL');
    await this.exited;
    this.child = null;
  }
}

// n workers started before the suite's server (useServer after this) and killed after it.
function useWorkers(n, { started } = {}) {
  const handle = {
    workers: [],
    get endpoints() { return handle.workers.map((w) => w.endpoint).join(','); },
  };
  before(async () => {
    for (let i = 0; i < n; ++i) handle.workers.push(await new Worker(await freePort()).start());
    if (started) started(handle.workers);
  }, { timeout: HOOK_TIMEOUT_MS });
  after(async () => { for (const w of handle.workers) await w.kill(); });
  return handle;
}

const chat = (baseURL, model, extra = {}) => postJSON(baseURL, '/v1/chat/completions', {
  model, messages: [{ role: 'user', content: 'Tell me about the model of the world' }],
  max_tokens: 16, temperature: 0, logprobs: true, ...extra,
});

async function devicesOf(baseURL, model) {
  const r = await getJSON(baseURL, `/v1/models/${model}`);
  assert.equal(r.status, 200, show('GET /v1/models/{id}', r));
  return r.json.devices;
}

describe('RPC workers: a model split over the CPU and two workers', { timeout: HOOK_TIMEOUT_MS * 3 + 4 * TEST_TIMEOUT_MS }, () => {
  const rpc = useWorkers(2);

  const local = useServer({ setup: withHfFixture, extraArgs: ['--device', 'none'] });
  // 2 of the 3 blocks offloaded, one per worker: the first layer stays on the CPU for the GGUF
  // (llama.cpp counts the output head as a block), the output head for safetensors.cpp.
  const split = useServer({
    setup: async (o) => {
      await withHfFixture(o);
      return ['--rpc', rpc.endpoints, '--gpu-layers', '2', '--tensor-split', '1,1'];
    },
  });

  for (const model of [GGUF, SAFETENSORS]) {
    it(`${model}: the same greedy tokens and logprobs as local-only`, T, async () => {
      const want = await chat(local.baseURL, model);
      assert.equal(want.status, 200, show('local', want));
      const got = await chat(split.baseURL, model);
      assert.equal(got.status, 200, show('split', got));
      const wantTokens = want.json.choices[0].logprobs.content;
      const gotTokens = got.json.choices[0].logprobs.content;
      assert.deepEqual(gotTokens.map((t) => t.token), wantTokens.map((t) => t.token));
      for (let i = 0; i < wantTokens.length; ++i) {
        assert.ok(Math.abs(gotTokens[i].logprob - wantTokens[i].logprob) < 1e-3,
          `token ${i}: logprob ${gotTokens[i].logprob} split vs ${wantTokens[i].logprob} local`);
      }
      assert.deepEqual(await devicesOf(local.baseURL, model), [{ name: 'CPU', layers: 3 }]);
      assert.deepEqual(await devicesOf(split.baseURL, model),
        [{ name: 'CPU', layers: 1 }, { name: 'RPC0', layers: 1 }, { name: 'RPC1', layers: 1 }]);
      const admin = await getJSON(split.baseURL, '/v1/admin/models');
      const loaded = admin.json.data.find((m) => m.id === model);
      assert.deepEqual(loaded.devices, await devicesOf(split.baseURL, model));
    });
  }
});

describe('RPC workers: a worker lost mid-stream', { timeout: HOOK_TIMEOUT_MS * 2 + 2 * TEST_TIMEOUT_MS }, () => {
  const rpc = useWorkers(2);

  // Every block offloaded, 3:1. The GGUF's 3 blocks fall in the first worker's three quarters;
  // safetensors.cpp's 2 layers do too, but its output head goes to the last device: the second
  // worker holds part of the safetensors model only.
  const srv = useServer({
    setup: async (o) => {
      await withHfFixture(o);
      return ['--rpc', rpc.endpoints, '--gpu-layers', '-1', '--tensor-split', '3,1'];
    },
  });

  it('fails the request naming the worker; the server serves the other model; the model loads again once the worker is back', T, async () => {
    const [, second] = rpc.workers;
    const before = await chat(srv.baseURL, SAFETENSORS);
    assert.equal(before.status, 200, show('before', before));
    assert.equal((await chat(srv.baseURL, GGUF)).status, 200);
    assert.deepEqual(await devicesOf(srv.baseURL, GGUF), [{ name: 'RPC0', layers: 3 }]);
    assert.deepEqual(await devicesOf(srv.baseURL, SAFETENSORS), [{ name: 'RPC0', layers: 2 }, { name: 'RPC1', layers: 1 }]);

    let killed = null;
    const stream = await postSSE(srv.baseURL, '/v1/chat/completions', {
      model: SAFETENSORS, messages: [{ role: 'user', content: 'Tell me about the model of the world' }],
      max_tokens: 400, temperature: 0, stream: true,
    }, {
      onEvent: (e) => {
        if (!killed && e.json?.choices?.[0]?.delta?.content) killed = second.kill();
      },
    });
    await killed;
    assert.equal(stream.status, 200);
    const failure = stream.events.find((e) => e.json?.error);
    assert.ok(failure, `the stream did not end with an error: ${JSON.stringify(stream.events.slice(-3))}`);
    assert.equal(failure.json.error.code, 'INTERNAL');
    assert.match(failure.json.error.message, new RegExp(`RPC worker ${second.endpoint} was lost`));

    // The server lives on and serves the model that does not use the lost worker.
    assert.equal((await getJSON(srv.baseURL, '/health')).status, 200);
    const other = await chat(srv.baseURL, GGUF);
    assert.equal(other.status, 200, show('the other model', other));

    // The broken model is unloaded by the next request, whose load fails while the worker is down.
    const down = await chat(srv.baseURL, SAFETENSORS);
    assert.equal(down.status, 422, show('while the worker is down', down));
    assert.equal(down.json.error.code, 'LOAD_FAILED');
    assert.match(down.json.error.message, new RegExp(second.endpoint));
    assert.equal(metricValue(await scrape(srv.baseURL), 'allm_model_unloads_total', { model: SAFETENSORS, reason: 'unhealthy' }), 1);

    await second.start();
    const again = await chat(srv.baseURL, SAFETENSORS);
    assert.equal(again.status, 200, show('once the worker is back', again));
    assert.equal(again.json.choices[0].message.content, before.json.choices[0].message.content);
    assert.equal((await chat(srv.baseURL, GGUF)).json.choices[0].message.content, other.json.choices[0].message.content);
  });
});

describe('RPC workers: an image model on a lost worker', { timeout: HOOK_TIMEOUT_MS * 2 + TEST_TIMEOUT_MS }, () => {
  const rpc = useWorkers(1);
  const srv = useServer({ setup: async (o) => [...await withAllModalities(o), '--rpc', rpc.endpoints] });
  const generate = () => postJSON(srv.baseURL, '/v1/images/generations',
    { model: IMAGE_MODEL, prompt: 'a red square', size: '64x64', steps: 2, seed: 5 });

  it('fails the generation naming the worker, then loads again once the worker is back', T, async () => {
    const first = await generate();
    assert.equal(first.status, 200, show('on the worker', first));
    const [worker] = rpc.workers;
    await worker.kill();
    const lost = await generate();
    assert.equal(lost.status, 500, show('worker lost', lost));
    assert.equal(lost.json.error.code, 'INTERNAL');
    assert.match(lost.json.error.message, new RegExp(`RPC worker ${worker.endpoint} was lost`));
    const down = await generate();
    assert.equal(down.json?.error?.code, 'LOAD_FAILED', show('worker down', down));
    await worker.start();
    const again = await generate();
    assert.equal(again.status, 200, show('worker back', again));
    assert.equal(again.json.data[0].b64_json, first.json.data[0].b64_json, 'the same seed gives the same image');
  });
});

describe('RPC workers: start-up', { timeout: HOOK_TIMEOUT_MS + 3 * TEST_TIMEOUT_MS }, () => {
  it('an unreachable worker stops the server, naming it', T, async () => {
    const tmp = await makeTempDir();
    try {
      const port = await freePort();
      const r = await runCommand(ALLM_BIN, ['serve', '--port', String(await freePort()), '--rpc', `127.0.0.1:${port}`,
        '--models-dir', tmp, '--data-dir', tmp]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr + r.stdout, new RegExp(`RPC worker 127\\.0\\.0\\.1:${port} does not answer`));
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  });

  describe('a tensor split of another count than the devices', () => {
    const rpc = useWorkers(1);
    const srv = useServer({
      setup: async (o) => {
        await withHfFixture(o);
        return ['--rpc', rpc.endpoints, '--tensor-split', '1,1'];
      },
    });

    it('fails the load of a GGUF and a safetensors model, saying so', T, async () => {
      for (const model of [GGUF, SAFETENSORS]) {
        const r = await chat(srv.baseURL, model);
        assert.equal(r.status, 501, show(`load ${model}`, r));
        assert.equal(r.json.error.code, 'UNSUPPORTED');
        assert.match(r.json.error.message, /the tensor split gives 2 proportions for 1 devices \(RPC0\)/);
      }
    });
  });

  describe('readiness while the server waits for its worker', () => {
    // Stopped: it accepts connections (the kernel does) but answers nothing.
    const rpc = useWorkers(1, { started: ([worker]) => worker.child.kill('SIGSTOP') });
    const srv = useServer({ waitReady: false, setup: async () => ['--rpc', rpc.endpoints] });

    it('GET /health/ready is 503 "starting" until the worker answers, then 200; /health is 200 throughout', T, async () => {
      assert.equal((await getJSON(srv.baseURL, '/health')).status, 200);
      const starting = await getJSON(srv.baseURL, '/health/ready');
      assert.equal(starting.status, 503, show('starting', starting));
      assert.equal(starting.json.status, 'starting');
      assert.equal(starting.headers.get('retry-after'), '1');
      rpc.workers[0].child.kill('SIGCONT');
      let ready;
      for (let i = 0; i < 100; ++i) {
        ready = await getJSON(srv.baseURL, '/health/ready');
        if (ready.status === 200) break;
        await sleep(50);
      }
      assert.equal(ready.status, 200, show('ready', ready));
      assert.deepEqual(ready.json, { status: 'ready' });
    });
  });
});
