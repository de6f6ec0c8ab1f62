// Model formats and load failures: safetensors dirs, explicit --model registration, garbage GGUF.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  useServer, getJSON, postJSON, assertError, show, copyFixture, responseText,
  MODEL, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';

const T = { timeout: TEST_TIMEOUT_MS };

async function writeSafetensorsDir(dir, config = { model_type: 'llama' }) {
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
  await fsp.writeFile(path.join(dir, 'model.safetensors'), Buffer.alloc(8));
}

describe('model formats', { timeout: HOOK_TIMEOUT_MS + 10 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({
    setup: async ({ tmp, modelsDir }) => {
      // in the models dir
      await writeSafetensorsDir(path.join(modelsDir, 'st-only'));
      await writeSafetensorsDir(path.join(modelsDir, 'mixed'));
      await copyFixture(path.join(modelsDir, 'mixed', 'model.gguf'));
      await fsp.writeFile(path.join(modelsDir, 'broken.gguf'), crypto.randomBytes(4096));
      await writeSafetensorsDir(path.join(modelsDir, 'invented'), { model_type: 'frobnicator' });
      await writeSafetensorsDir(path.join(modelsDir, 'glm-planned'), { model_type: 'glm' });
      // outside it, registered explicitly
      const extra = path.join(tmp, 'extra');
      await writeSafetensorsDir(path.join(extra, 'both'));
      await copyFixture(path.join(extra, 'both', 'weights.gguf'));
      await writeSafetensorsDir(path.join(extra, 'stonly'));
      return [
        '--model', `both=${path.join(extra, 'both')}:gguf`,
        '--model', `mismatch=${path.join(extra, 'stonly')}:gguf`,
      ];
    },
  });

  async function models() {
    const r = await getJSON(srv.baseURL, '/v1/models');
    assert.equal(r.status, 200, show('GET /v1/models', r));
    return { byId: Object.fromEntries(r.json.data.map((m) => [m.id, m])), ctx: show('GET /v1/models', r) };
  }

  it('lists every model with its format', T, async () => {
    const { byId, ctx } = await models();
    assert.equal(byId[MODEL]?.format, 'gguf', ctx);
    assert.equal(byId['st-only']?.format, 'safetensors', `safetensors-only dir; ${ctx}`);
    assert.equal(byId['mixed']?.format, 'safetensors', `dir with both formats, unregistered: default is safetensors; ${ctx}`);
    assert.equal(byId['both']?.format, 'gguf', `dir with both formats registered as :gguf; ${ctx}`);
    assert.ok(byId['mismatch'], `a model registered with a format it does not have is still listed; ${ctx}`);
    for (const id of [MODEL, 'st-only', 'mixed', 'both', 'mismatch']) {
      assert.equal(byId[id].object, 'model', ctx);
      assert.equal(byId[id].owned_by, 'allm', ctx);
      assert.equal(byId[id].modality, 'text', ctx);
    }
  });

  it('a broken safetensors folder answers 422 MODEL_CORRUPT or LOAD_FAILED', T, async () => {
    const r = await postJSON(srv.baseURL, '/v1/responses', { model: 'st-only', input: 'hi', max_output_tokens: 2 });
    assertError(r, { status: 422, codes: ['MODEL_CORRUPT', 'LOAD_FAILED'], what: 'POST /v1/responses model=st-only' });
    const r2 = await postJSON(srv.baseURL, '/v1/chat/completions', { model: 'st-only', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    assertError(r2, { status: 422, codes: ['MODEL_CORRUPT', 'LOAD_FAILED'], what: 'POST /v1/chat/completions model=st-only' });
  });

  it('an unknown model_type and the planned glm answer 501 UNSUPPORTED through both APIs', T, async () => {
    for (const [model, mention] of [['invented', 'frobnicator'], ['glm-planned', 'planned']]) {
      const r = await postJSON(srv.baseURL, '/v1/responses', { model, input: 'hi', max_output_tokens: 2 });
      assertError(r, { status: 501, code: 'UNSUPPORTED', what: `POST /v1/responses model=${model}` });
      assert.ok(r.json.error.message.includes(mention), r.json.error.message);
      assert.ok(r.json.error.message.includes('qwen3'), `lists the supported architectures: ${r.json.error.message}`);
      const r2 = await postJSON(srv.baseURL, '/v1/chat/completions', { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
      assertError(r2, { status: 501, code: 'UNSUPPORTED', what: `POST /v1/chat/completions model=${model}` });
    }
  });

  it('a dir with both formats registered as :gguf runs the GGUF (same output as the fixture)', T, async () => {
    const req = { input: 'Which weights are these?', max_output_tokens: 12, temperature: 0 };
    const a = await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, ...req });
    assert.equal(a.status, 200, show('POST /v1/responses model=tiny', a));
    const b = await postJSON(srv.baseURL, '/v1/responses', { model: 'both', ...req });
    assert.equal(b.status, 200, show('POST /v1/responses model=both', b));
    assert.equal(b.json.model, 'both');
    assert.equal(responseText(b.json), responseText(a.json), 'same GGUF weights must give the same greedy text');
    assert.equal(b.json.usage.output_tokens, a.json.usage.output_tokens);
  });

  it('registering :gguf for a dir without a .gguf answers 400 FORMAT_MISMATCH', T, async () => {
    const r = await postJSON(srv.baseURL, '/v1/responses', { model: 'mismatch', input: 'hi', max_output_tokens: 2 });
    assertError(r, { status: 400, code: 'FORMAT_MISMATCH', what: 'POST /v1/responses model=mismatch' });
    const r2 = await postJSON(srv.baseURL, '/v1/chat/completions', { model: 'mismatch', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    assertError(r2, { status: 400, code: 'FORMAT_MISMATCH', what: 'POST /v1/chat/completions model=mismatch' });
  });

  it('a garbage .gguf answers 422 MODEL_CORRUPT or LOAD_FAILED, and the server keeps working', T, async () => {
    for (let i = 0; i < 2; i++) {
      const r = await postJSON(srv.baseURL, '/v1/responses', { model: 'broken', input: 'hi', max_output_tokens: 2 });
      assertError(r, { status: 422, codes: ['MODEL_CORRUPT', 'LOAD_FAILED'], what: `POST /v1/responses model=broken (try ${i + 1})` });
    }
    const r2 = await postJSON(srv.baseURL, '/v1/chat/completions', { model: 'broken', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    assertError(r2, { status: 422, codes: ['MODEL_CORRUPT', 'LOAD_FAILED'], what: 'POST /v1/chat/completions model=broken' });
    const h = await getJSON(srv.baseURL, '/health');
    assert.equal(h.status, 200, show('GET /health after a corrupt model', h));
    const ok = await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, input: 'still fine?', max_output_tokens: 4, temperature: 0 });
    assert.equal(ok.status, 200, show('POST /v1/responses model=tiny after a corrupt model', ok));
    const m = await getJSON(srv.baseURL, '/v1/models');
    assert.equal(m.status, 200, show('GET /v1/models after a corrupt model', m));
  });
});
