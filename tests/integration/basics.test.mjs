// GET /health, GET /v1/models, unknown routes, malformed JSON, body limit, SIGTERM, and the
// harness's check of how each test server ended.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  useServer, startServer, getJSON, postJSON, request, assertError, show,
  MODEL, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';

const T = { timeout: TEST_TIMEOUT_MS };

describe('basics', { timeout: HOOK_TIMEOUT_MS + 10 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer();

  it('GET /health answers 200 {"status":"ok","store":"ok"}', T, async () => {
    const r = await getJSON(srv.baseURL, '/health');
    assert.equal(r.status, 200, show('GET /health', r));
    assert.deepEqual(r.json, { status: 'ok', store: 'ok' }, show('GET /health', r));
    assert.match(r.headers.get('content-type') || '', /application\/json/, 'content-type of /health');
  });

  it('GET /v1/models lists the fixture model', T, async () => {
    const r = await getJSON(srv.baseURL, '/v1/models');
    assert.equal(r.status, 200, show('GET /v1/models', r));
    assert.match(r.headers.get('content-type') || '', /application\/json/);
    assert.equal(r.json.object, 'list', show('GET /v1/models', r));
    assert.ok(Array.isArray(r.json.data), show('GET /v1/models', r));
    const tiny = r.json.data.find((m) => m.id === MODEL);
    assert.ok(tiny, `model "${MODEL}" must be listed; ${show('GET /v1/models', r)}`);
    assert.equal(tiny.object, 'model');
    assert.ok(Number.isInteger(tiny.created) && tiny.created > 0, `created must be a positive integer: ${JSON.stringify(tiny)}`);
    assert.equal(tiny.owned_by, 'allm');
    assert.equal(tiny.modality, 'text');
    assert.equal(tiny.format, 'gguf');
    for (const m of r.json.data) {
      assert.equal(typeof m.id, 'string', JSON.stringify(m));
      assert.equal(m.object, 'model', JSON.stringify(m));
    }
    const ids = r.json.data.map((m) => m.id);
    assert.equal(new Set(ids).size, ids.length, `model ids must be unique: ${ids}`);
  });

  it('unknown route answers 404 with an error body', T, async () => {
    for (const [method, p] of [['GET', '/v1/nope'], ['POST', '/v1/does/not/exist'], ['GET', '/nothing-here']]) {
      const r = await request(srv.baseURL, method, p, method === 'POST' ? { body: {} } : {});
      assertError(r, { status: 404, what: `${method} ${p}` });
    }
  });

  it('malformed JSON answers 400 with param null', T, async () => {
    for (const p of ['/v1/responses', '/v1/chat/completions']) {
      for (const raw of ['{"model": "tiny", "input": ', 'not json at all', '']) {
        const r = await request(srv.baseURL, 'POST', p, { rawBody: raw });
        assertError(r, { status: 400, type: 'invalid_request_error', param: null, what: `POST ${p} with body ${JSON.stringify(raw)}` });
      }
    }
  });

  it('a JSON body that is not an object answers 400', T, async () => {
    for (const p of ['/v1/responses', '/v1/chat/completions']) {
      for (const raw of ['[]', '"tiny"', '42', 'null']) {
        const r = await request(srv.baseURL, 'POST', p, { rawBody: raw });
        assertError(r, { status: 400, type: 'invalid_request_error', what: `POST ${p} with body ${raw}` });
      }
    }
  });

  it('unknown model answers 404 model_not_found on both endpoints', T, async () => {
    const r1 = await postJSON(srv.baseURL, '/v1/responses', { model: 'no-such-model', input: 'hi', max_output_tokens: 4 });
    assertError(r1, { status: 404, code: 'model_not_found', params: ['model', null], what: 'POST /v1/responses model=no-such-model' });
    const r2 = await postJSON(srv.baseURL, '/v1/chat/completions', { model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
    assertError(r2, { status: 404, code: 'model_not_found', params: ['model', null], what: 'POST /v1/chat/completions model=no-such-model' });
  });
});

describe('body size limit (--max-body-bytes 4096)', { timeout: HOOK_TIMEOUT_MS + 3 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({ extraArgs: ['--max-body-bytes', '4096'] });

  it('a body over the limit answers 413 with an error body', T, async () => {
    const body = { model: MODEL, input: 'x'.repeat(8192), max_output_tokens: 2 };
    const r = await postJSON(srv.baseURL, '/v1/responses', body);
    assertError(r, { status: 413, what: 'POST /v1/responses with an 8 KiB body' });
    const r2 = await postJSON(srv.baseURL, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'y'.repeat(8192) }], max_tokens: 2 });
    assertError(r2, { status: 413, what: 'POST /v1/chat/completions with an 8 KiB body' });
  });

  it('a body under the limit still works', T, async () => {
    const r = await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, input: 'hello', max_output_tokens: 2, temperature: 0 });
    assert.equal(r.status, 200, show('POST /v1/responses (small body)', r));
    const h = await getJSON(srv.baseURL, '/health');
    assert.equal(h.status, 200, show('GET /health after 413', h));
  });
});

describe('shutdown', { timeout: 3 * HOOK_TIMEOUT_MS }, () => {
  it('SIGTERM stops the server promptly (no SIGKILL needed)', { timeout: HOOK_TIMEOUT_MS }, async () => {
    const s = await startServer();
    try {
      const r = await postJSON(s.baseURL, '/v1/responses', { model: MODEL, input: 'hi', max_output_tokens: 3, temperature: 0 });
      assert.equal(r.status, 200, show('POST /v1/responses', r));
      const info = await s.stop();  // throws unless the server exited 0 by itself
      assert.deepEqual(info, { code: 0, signal: null, forced: false, deliberate: false });
    } finally {
      await s.cleanup();
    }
  });

  // Every test server's end is checked (AllmServer.stop): a crash fails the test that stops it,
  // a kill on purpose (AllmServer.kill) does not.
  it('a server that dies is a failure unless it was killed on purpose', { timeout: HOOK_TIMEOUT_MS }, async () => {
    const crashed = await startServer();
    try {
      process.kill(crashed.child.pid, 'SIGKILL');
      await assert.rejects(crashed.stop(), /allm did not shut down cleanly: it was killed by SIGKILL/);
    } finally {
      await crashed.cleanup();
    }
    const killed = await startServer();
    try {
      const info = await killed.kill('SIGKILL');
      assert.equal(info.signal, 'SIGKILL');
      assert.equal(info.deliberate, true);
    } finally {
      await killed.cleanup();
    }
  });
});
