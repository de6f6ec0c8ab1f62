// Model lifecycle: --keep-alive unloads idle models, --max-memory evicts idle models LRU-first
// and refuses what cannot fit (507 OOM_RAM), a failed load can be retried, SIGTERM lets running
// requests finish within --shutdown-grace and then cancels them (image generations too), and a
// second signal exits at once. Text, whisper and Stable Diffusion models share one budget and
// one LRU.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  startServer, useServer, postJSON, postSSE, show, assertError, sleep, copyFixture,
  MODEL, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';
import { WHISPER_MODEL, speechFiles, postAudio } from '../e2e/audio_helpers.mjs';
import { scrape, metricValue } from './metrics_helpers.mjs';
import { IMAGE_MODEL, withAllModalities } from './modalities.mjs';

const T = { timeout: TEST_TIMEOUT_MS };
const ask = (baseURL, model) => postJSON(baseURL, '/v1/responses', { model, input: 'hello', max_output_tokens: 4, temperature: 0 });
const withSecondModel = ({ modelsDir }) => copyFixture(path.join(modelsDir, 'tiny2.gguf')).then(() => []);

// What one loaded tiny model is charged, read from a server without a budget.
async function chargedBytes() {
  const srv = await startServer({});
  try {
    assert.equal((await ask(srv.baseURL, MODEL)).status, 200);
    return metricValue(await scrape(srv.baseURL), 'allm_model_memory_bytes', { model: MODEL });
  } finally {
    await srv.cleanup();
  }
}

async function withServer(opts, body) {
  const srv = await startServer(opts);
  try {
    await body(srv);
  } catch (e) {
    console.error(`----- allm log -----\n${srv.logTail()}`);
    throw e;
  } finally {
    await srv.cleanup();
  }
}

describe('keep-alive', { timeout: HOOK_TIMEOUT_MS + 2 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({ extraArgs: ['--keep-alive', '1'] });

  it('unloads an idle model and reloads it on the next request', T, async () => {
    assert.equal((await ask(srv.baseURL, MODEL)).status, 200);
    assert.equal(metricValue(await scrape(srv.baseURL), 'allm_model_loaded', { model: MODEL }), 1);
    await sleep(2500);
    const m = await scrape(srv.baseURL);
    assert.equal(metricValue(m, 'allm_model_unloads_total', { model: MODEL, reason: 'keep_alive' }), 1);
    assert.equal(metricValue(m, 'allm_model_loaded', { model: MODEL }), 0);
    assert.match(srv.server.log, /unloading model 'tiny' \(idle for [\d.]+ s, --keep-alive 1\)/);
    assert.equal((await ask(srv.baseURL, MODEL)).status, 200);
    const after = await scrape(srv.baseURL);
    assert.equal(metricValue(after, 'allm_model_loads_total', { model: MODEL, result: 'ok' }), 2);
  });
});

describe('memory budget', { timeout: 3 * HOOK_TIMEOUT_MS + 4 * TEST_TIMEOUT_MS }, () => {
  it('with room for one model, the idle one is evicted and both still answer', T, async () => {
    const one = await chargedBytes();
    assert.ok(one > 0);
    await withServer({ setup: withSecondModel, extraArgs: ['--max-memory', String(Math.floor(one * 1.5))] }, async (srv) => {
      for (const model of [MODEL, 'tiny2', MODEL, 'tiny2']) {
        const r = await ask(srv.baseURL, model);
        assert.equal(r.status, 200, show(model, r));
        const m = await scrape(srv.baseURL);
        assert.equal(metricValue(m, 'allm_model_loaded'), 1, `only ${model} is loaded`);
        assert.equal(metricValue(m, 'allm_model_loaded', { model }), 1);
      }
      const m = await scrape(srv.baseURL);
      assert.equal(metricValue(m, 'allm_model_unloads_total', { reason: 'memory' }), 3);
      assert.equal(metricValue(m, 'allm_memory_budget_bytes'), Math.floor(one * 1.5));
    });
  });

  it('a model whose estimate exceeds the budget gets 507 OOM_RAM; the server stays healthy', T, async () => {
    await withServer({ extraArgs: ['--max-memory', '8M'] }, async (srv) => {
      for (let i = 0; i < 2; i++) {
        const r = await ask(srv.baseURL, MODEL);
        const e = assertError(r, { status: 507, code: 'OOM_RAM' });
        assert.match(e.message, /--max-memory/);
      }
      assert.equal((await postJSON(srv.baseURL, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'x' }] })).status, 507);
      const health = await fetch(srv.baseURL + '/health');
      assert.equal(health.status, 200);
      const m = await scrape(srv.baseURL);
      assert.equal(metricValue(m, 'allm_errors_total', { code: 'OOM_RAM' }), 3);
      assert.equal(metricValue(m, 'allm_model_loads_total', { model: MODEL, result: 'error' }), 3);
    });
  });

  it('a model that failed to load loads once it is fixed', T, async () => {
    await withServer({ setup: async ({ modelsDir }) => { await fsp.writeFile(path.join(modelsDir, 'broken.gguf'), 'not a gguf file at all'); return []; } }, async (srv) => {
      const bad = await ask(srv.baseURL, 'broken');
      assertError(bad, { status: 422, code: 'MODEL_CORRUPT' });
      await copyFixture(path.join(srv.modelsDir, 'broken.gguf'));
      const good = await ask(srv.baseURL, 'broken');
      assert.equal(good.status, 200, show('after the fix', good));
    });
  });
});

describe('graceful shutdown', { timeout: 2 * HOOK_TIMEOUT_MS + 2 * TEST_TIMEOUT_MS }, () => {
  // Starts a stream, sends SIGTERM after its first tokens, returns the stream and the exit.
  async function streamThroughShutdown(srv, body) {
    let release;
    const started = new Promise((r) => { release = r; });
    const stream = postSSE(srv.baseURL, '/v1/responses', { ...body, stream: true },
      { onEvent: (e) => { if (e.event === 'response.output_text.delta') release(); return true; } });
    await started;
    const t0 = performance.now();
    const exit = srv.stop();
    const s = await stream;
    return { s, exit: await exit, seconds: (performance.now() - t0) / 1000 };
  }

  it('SIGTERM lets a running stream finish, refuses new connections, exits 0', T, async () => {
    await withServer({ extraArgs: ['--shutdown-grace', '20'] }, async (srv) => {
      const base = srv.baseURL;
      const { s, exit } = await streamThroughShutdown(srv, { model: MODEL, input: 'hi', max_output_tokens: 300, temperature: 0 });
      assert.equal(s.status, 200);
      const last = s.events[s.events.length - 1];
      assert.ok(['response.completed', 'response.incomplete'].includes(last.event), `last event ${last.event}`);
      assert.equal(exit.code, 0);
      assert.equal(exit.forced, false);
      await assert.rejects(fetch(base + '/health'));
    });
  });

  it('past --shutdown-grace the running streams are cancelled with an error event', T, async () => {
    await withServer({ ctxSize: 16384, parallel: 1, extraArgs: ['--shutdown-grace', '1'] }, async (srv) => {
      const { s, exit, seconds } = await streamThroughShutdown(srv, { model: MODEL, input: 'Go on forever', temperature: 0 });
      const last = s.events[s.events.length - 1];
      assert.equal(last.event, 'response.failed');
      assert.equal(last.json.response.error.code, 'CANCELLED');
      assert.match(srv.log, /grace period over: cancelling the requests still running/);
      assert.equal(exit.code, 0);
      assert.ok(seconds < 8, `shutdown took ${seconds.toFixed(1)} s`);
    });
  });
});

// --- audio and image models in the same lifecycle

const transcribe = async (baseURL) =>
  postAudio(baseURL, '/v1/audio/transcriptions', { model: WHISPER_MODEL }, { path: (await speechFiles()).wav });
const draw = (baseURL) =>
  postJSON(baseURL, '/v1/images/generations', { model: IMAGE_MODEL, prompt: 'a cat', size: '64x64', steps: 1 });
const loadedModels = (m) => m.filter((s) => s.name === 'allm_model_loaded' && s.value === 1).map((s) => s.labels.model).sort();

// What each model is charged, read from a server without a budget.
async function chargesOfAllModalities() {
  const srv = await startServer({ setup: withAllModalities });
  try {
    assert.equal((await ask(srv.baseURL, MODEL)).status, 200);
    assert.equal((await transcribe(srv.baseURL)).status, 200);
    assert.equal((await draw(srv.baseURL)).status, 200);
    const m = await scrape(srv.baseURL);
    const charge = (model) => metricValue(m, 'allm_model_memory_bytes', { model });
    return { text: charge(MODEL), audio: charge(WHISPER_MODEL), image: charge(IMAGE_MODEL) };
  } finally {
    await srv.cleanup();
  }
}

describe('shutdown during an image generation', { timeout: 2 * HOOK_TIMEOUT_MS + 2 * TEST_TIMEOUT_MS }, () => {
  // Starts a generation that runs for a while (150 steps) and resolves once its
  // first step is done; `response` settles when the request ends.
  async function longGeneration(srv) {
    const mark = srv.log.length;
    const response = postJSON(srv.baseURL, '/v1/images/generations', { model: IMAGE_MODEL, prompt: 'a cat', size: '128x128', steps: 150 })
      .catch((e) => ({ failed: e }));
    for (let i = 0; i < 600 && !/step 1\/150/.test(srv.log.slice(mark)); i++) await sleep(100);
    assert.match(srv.log.slice(mark), /step 1\/150/, 'the generation started');
    return { response };
  }

  it('past --shutdown-grace a running generation is cancelled and the server exits 0', T, async () => {
    await withServer({ setup: withAllModalities, extraArgs: ['--shutdown-grace', '1'] }, async (srv) => {
      const { response } = await longGeneration(srv);
      const t0 = performance.now();
      const exit = await srv.stop();
      const seconds = (performance.now() - t0) / 1000;
      const r = await response;
      assertError(r, { status: 499, code: 'CANCELLED' });
      assert.match(r.json.error.message, /shutting down/);
      assert.match(srv.log, /generation cancelled \(the server is shutting down\)/);
      assert.equal(exit.forced, false, 'the server needed SIGKILL');
      assert.equal(exit.code, 0);
      assert.ok(seconds < 8, `shutdown took ${seconds.toFixed(1)} s`);
    });
  });

  it('a second signal exits at once, whatever is running', T, async () => {
    await withServer({ setup: withAllModalities, extraArgs: ['--shutdown-grace', '600'] }, async (srv) => {
      const { response } = await longGeneration(srv);
      const child = srv.child;
      const t0 = performance.now();
      child.kill('SIGTERM');
      await sleep(300);
      // The second signal through kill(): its exit status (128 + 15) is this test's to check.
      const timer = sleep(5000).then(() => 'still running');
      const exit = await Promise.race([srv.kill('SIGTERM'), timer]);
      const seconds = (performance.now() - t0) / 1000;
      assert.notEqual(exit, 'still running', 'the second SIGTERM did not end the process within 5 s');
      assert.equal(exit.code, 128 + 15, `exit ${JSON.stringify(exit)}`);
      assert.ok(seconds < 5, `exit took ${seconds.toFixed(1)} s`);
      assert.match(srv.log, /second signal \(SIGTERM\): exiting now/);
      assert.ok((await response).failed, 'the generation\'s connection was dropped');
    });
  });
});

describe('audio and image keep-alive', { timeout: HOOK_TIMEOUT_MS + 2 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({ setup: withAllModalities, extraArgs: ['--keep-alive', '2'] });

  it('unloads idle whisper and diffusion models and reloads them on the next request', T, async () => {
    const t = await transcribe(srv.baseURL);
    assert.equal(t.status, 200, show('transcription', t));
    let m = await scrape(srv.baseURL);
    assert.equal(metricValue(m, 'allm_model_loaded', { model: WHISPER_MODEL, modality: 'audio' }), 1);
    assert.ok(metricValue(m, 'allm_model_memory_bytes', { model: WHISPER_MODEL }) > 0);
    const i = await draw(srv.baseURL);
    assert.equal(i.status, 200, show('image', i));
    m = await scrape(srv.baseURL);
    assert.equal(metricValue(m, 'allm_model_loaded', { model: IMAGE_MODEL, modality: 'image' }), 1);
    assert.ok(metricValue(m, 'allm_model_memory_bytes', { model: IMAGE_MODEL }) > 0);
    await sleep(4000);
    m = await scrape(srv.baseURL);
    for (const model of [WHISPER_MODEL, IMAGE_MODEL]) {
      assert.equal(metricValue(m, 'allm_model_loaded', { model }), 0, `${model} unloaded`);
      assert.equal(metricValue(m, 'allm_model_unloads_total', { model, reason: 'keep_alive' }), 1);
      assert.match(srv.server.log, new RegExp(`unloading model '${model}' \\(idle for [\\d.]+ s, --keep-alive 2\\)`));
    }
    assert.equal((await transcribe(srv.baseURL)).status, 200);
    assert.equal((await draw(srv.baseURL)).status, 200);
    m = await scrape(srv.baseURL);
    for (const model of [WHISPER_MODEL, IMAGE_MODEL]) {
      assert.equal(metricValue(m, 'allm_model_loads_total', { model, result: 'ok' }), 2);
    }
  });
});

describe('one memory budget for every modality', { timeout: 4 * HOOK_TIMEOUT_MS + 4 * TEST_TIMEOUT_MS }, () => {
  let charges;

  it('evicts an idle model of another modality to make room, both ways', T, async () => {
    charges ??= await chargesOfAllModalities();
    const budget = Math.floor(Math.max(charges.text, charges.audio, charges.image) * 1.2);
    assert.ok(budget < charges.text + charges.audio, `budget ${budget}, charges ${JSON.stringify(charges)}`);
    await withServer({ setup: withAllModalities, extraArgs: ['--max-memory', String(budget)] }, async (srv) => {
      assert.equal((await ask(srv.baseURL, MODEL)).status, 200);
      assert.deepEqual(loadedModels(await scrape(srv.baseURL)), [MODEL]);
      const t = await transcribe(srv.baseURL);
      assert.equal(t.status, 200, show('transcription', t));
      let m = await scrape(srv.baseURL);
      assert.deepEqual(loadedModels(m), [WHISPER_MODEL], 'the idle text model made room for whisper');
      assert.equal(metricValue(m, 'allm_model_unloads_total', { model: MODEL, reason: 'memory' }), 1);
      assert.match(srv.log, /unloading text model 'tiny' \(memory, idle for [\d.]+ s, [\d.]+ MiB\) to load 'whisper'/);
      const i = await draw(srv.baseURL);
      assert.equal(i.status, 200, show('image', i));
      assert.deepEqual(loadedModels(await scrape(srv.baseURL)), [IMAGE_MODEL]);
      assert.equal((await ask(srv.baseURL, MODEL)).status, 200);
      m = await scrape(srv.baseURL);
      assert.deepEqual(loadedModels(m), [MODEL], 'the idle image model made room for text');
      assert.equal(metricValue(m, 'allm_model_unloads_total', { model: WHISPER_MODEL, reason: 'memory' }), 1);
      assert.equal(metricValue(m, 'allm_model_unloads_total', { model: IMAGE_MODEL, reason: 'memory' }), 1);
    });
  });

  it('refuses a second model that cannot fit beside a busy one: 507 OOM_RAM, then it loads', T, async () => {
    charges ??= await chargesOfAllModalities();
    const budget = Math.floor(Math.max(charges.text, charges.audio) * 1.2);
    await withServer({ setup: withAllModalities, ctxSize: 16384, parallel: 1, extraArgs: ['--max-memory', String(budget)] }, async (srv) => {
      // A long stream keeps the text model busy while whisper asks for room.
      const abort = new AbortController();
      let refused;
      const stream = postSSE(srv.baseURL, '/v1/responses', { model: MODEL, input: 'Go on forever', temperature: 0, stream: true }, {
        signal: abort.signal,
        onEvent: (e) => {
          if (e.event !== 'response.output_text.delta' || refused) return true;
          refused = transcribe(srv.baseURL).finally(() => abort.abort());
          return true;
        },
      }).catch(() => null);
      await stream;
      const r = await refused;
      const e = assertError(r, { status: 507, code: 'OOM_RAM' });
      assert.equal(e.type, 'engine_error', show('error type', r));
      assert.equal(e.param, null);
      assert.match(e.message, /^model 'whisper' needs about [\d.]+ MiB \(weights .*\) but the memory budget \([\d.]+ MiB, --max-memory\) is held by models that are busy; retry later$/);
      assert.equal((await fetch(srv.baseURL + '/health')).status, 200);
      // Once the stream is over the text model is idle, and whisper gets its room.
      let t;
      for (let i = 0; i < 50; i++) {
        t = await transcribe(srv.baseURL);
        if (t.status !== 507) break;
        await sleep(100);
      }
      assert.equal(t.status, 200, show('transcription after the stream', t));
      const m = await scrape(srv.baseURL);
      assert.equal(metricValue(m, 'allm_errors_total', { code: 'OOM_RAM' }) >= 1, true);
      assert.equal(metricValue(m, 'allm_model_loads_total', { model: WHISPER_MODEL, result: 'error' }) >= 1, true);
      assert.deepEqual(loadedModels(m), [WHISPER_MODEL]);
    });
  });

  it('an image model larger than the whole budget gets 507 OOM_RAM and the text model stays', T, async () => {
    charges ??= await chargesOfAllModalities();
    const budget = Math.floor(charges.text * 1.2);
    assert.ok(charges.image > budget);
    await withServer({ setup: withAllModalities, extraArgs: ['--max-memory', String(budget)] }, async (srv) => {
      assert.equal((await ask(srv.baseURL, MODEL)).status, 200);
      const r = await draw(srv.baseURL);
      const e = assertError(r, { status: 507, code: 'OOM_RAM' });
      assert.match(e.message, /^model 'sd' needs about [\d.]+ MiB \(weights [\d.]+ MiB, compute [\d.]+ MiB, at 128x128 \(--image-max-size\)\), more than the memory budget of [\d.]+ MiB \(--max-memory\)$/);
      const m = await scrape(srv.baseURL);
      assert.deepEqual(loadedModels(m), [MODEL], 'nothing was unloaded for a model that cannot fit');
      assert.equal(metricValue(m, 'allm_model_unloads_total'), 0);
      assert.equal((await ask(srv.baseURL, MODEL)).status, 200);
    });
  });
});
