// /v1/images/generations through the official OpenAI SDK on a tiny random Stable Diffusion 1.x
// checkpoint (allm-make-sd-fixture), as a single file and as a diffusers folder with the same
// weights: PNGs of the asked size, deterministic by seed and the same from both layouts, every
// sampler, response_format url (built from the listening address or --public-url, never the
// Host header), 400s naming the parameter, 429 when the queue is full, and cancellation when the
// client goes away.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import OpenAI from 'openai';
import {
  REPO_ROOT, useServer, runCommand, postJSON, assertError, checkValidationCases, sleep,
  TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from './helpers.mjs';

const SD_FIXTURE_TOOL = path.resolve(REPO_ROOT,
  process.env.ALLM_SD_FIXTURE_TOOL || path.join(path.dirname(process.env.ALLM_BIN || 'build/bin/allm'), 'allm-make-sd-fixture'));

// The single-file checkpoint, or (layout 'diffusers') the same weights as a diffusers folder.
async function writeSdFixture(tmp, layout = 'single') {
  const dir = path.join(tmp, `sd-tiny-${layout}`);
  const r = await runCommand(SD_FIXTURE_TOOL, [dir, '--layout', layout]);
  assert.equal(r.code, 0, `allm-make-sd-fixture failed: ${r.stderr}`);
  return layout === 'single' ? path.join(dir, 'model.safetensors') : dir;
}

// Width and height from a PNG's IHDR chunk.
function pngSize(buf) {
  assert.equal(buf.subarray(0, 8).toString('latin1'), '\x89PNG\r\n\x1a\n');
  assert.equal(buf.subarray(12, 16).toString('latin1'), 'IHDR');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

// POSTs JSON with a Host header of the client's choosing (fetch does not let one set it).
function postWithHost(baseURL, route, body, host) {
  const { hostname, port } = new URL(baseURL);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path: route, method: 'POST', headers: { Host: host, 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('images', { timeout: HOOK_TIMEOUT_MS + 8 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({
    extraArgs: ['--image-queue', '0'],
    setup: async ({ tmp }) => [
      '--model', `sd-tiny=${await writeSdFixture(tmp)}`,
      '--model', `sd-tiny-diffusers=${await writeSdFixture(tmp, 'diffusers')}`,
    ],
  });
  const client = () => new OpenAI({ baseURL: `${srv.baseURL}/v1`, apiKey: 'unused', maxRetries: 0 });

  it('lists the checkpoint and the diffusers folder as image models', { timeout: TEST_TIMEOUT_MS }, async () => {
    const models = (await client().models.list()).data;
    for (const id of ['sd-tiny', 'sd-tiny-diffusers']) {
      assert.equal(models.find((m) => m.id === id)?.modality, 'image', id);
    }
  });

  it('gives the same PNGs from the diffusers folder as from the single file', { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const sampler of ['euler_a', 'dpm++2m']) {
      const params = { prompt: 'a photo of the cat', negative_prompt: 'dog', size: '64x64', steps: 3, seed: 5, sampler };
      const single = await client().images.generate({ model: 'sd-tiny', ...params });
      const diffusers = await client().images.generate({ model: 'sd-tiny-diffusers', ...params });
      assert.deepEqual(pngSize(Buffer.from(diffusers.data[0].b64_json, 'base64')), { width: 64, height: 64 });
      assert.equal(diffusers.data[0].b64_json, single.data[0].b64_json, sampler);
    }
  });

  it('generates PNGs of the asked size, the same for the same seed', { timeout: TEST_TIMEOUT_MS }, async () => {
    const params = { model: 'sd-tiny', prompt: 'a photo of the cat', n: 2, size: '128x64', steps: 3, seed: 11 };
    const a = await client().images.generate(params);
    assert.ok(Number.isInteger(a.created));
    assert.equal(a.data.length, 2);
    for (const image of a.data) {
      assert.deepEqual(pngSize(Buffer.from(image.b64_json, 'base64')), { width: 128, height: 64 });
      assert.equal(image.revised_prompt, params.prompt);
    }
    assert.notEqual(a.data[0].b64_json, a.data[1].b64_json, 'image i uses seed + i');
    const b = await client().images.generate(params);
    assert.equal(b.data[0].b64_json, a.data[0].b64_json);
    assert.equal(b.data[1].b64_json, a.data[1].b64_json);
    const c = await client().images.generate({ ...params, n: 1, seed: 12 });
    assert.equal(c.data[0].b64_json, a.data[1].b64_json, 'seed 12 is the second image of seed 11');
    const d = await client().images.generate({ ...params, n: 1, seed: 99 });
    assert.notEqual(d.data[0].b64_json, a.data[0].b64_json);
  });

  it('runs every sampler, with a negative prompt', { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const sampler of ['euler_a', 'euler', 'dpm++2m', 'ddim']) {
      const r = await client().images.generate({
        model: 'sd-tiny', prompt: 'the dog', negative_prompt: 'cat', size: '64x64', steps: 2,
        cfg_scale: 5, seed: 1, sampler,
      });
      assert.deepEqual(pngSize(Buffer.from(r.data[0].b64_json, 'base64')), { width: 64, height: 64 }, sampler);
    }
  });

  it('serves response_format url from /v1/images/files', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await client().images.generate({ model: 'sd-tiny', prompt: 'cat', size: '64x64', steps: 1, response_format: 'url' });
    assert.ok(r.data[0].url.startsWith(`${srv.baseURL}/v1/images/files/img_`), r.data[0].url);
    const res = await fetch(r.data[0].url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/png');
    assert.deepEqual(pngSize(Buffer.from(await res.arrayBuffer())), { width: 64, height: 64 });
    const missing = await fetch(`${srv.baseURL}/v1/images/files/img_nothing`);
    assert.equal(missing.status, 404);
  });

  it('builds image urls from the listening address, not the client\'s Host header', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await postWithHost(srv.baseURL, '/v1/images/generations',
      { model: 'sd-tiny', prompt: 'cat', size: '64x64', steps: 1, response_format: 'url' }, 'evil.example:666');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.ok(r.json.data[0].url.startsWith(`${srv.baseURL}/v1/images/files/img_`), r.json.data[0].url);
  });

  it('answers bad input with 400 naming the parameter', { timeout: TEST_TIMEOUT_MS }, async () => {
    const ok = { model: 'sd-tiny', prompt: 'cat', size: '64x64', steps: 1 };
    await checkValidationCases(srv.baseURL, '/v1/images/generations', [
      [{ ...ok, prompt: '' }, 'prompt'],
      [{ model: 'sd-tiny' }, 'prompt'],
      // Numbers past int ('4294967360' wrapped to 64 through sscanf's %d), signs, spaces.
      ...['65x64', '64', '8192x64', '4294967360x64', '64x4294967360', '99999999999999999999x512',
        ' 64x64', '+64x64', '64x64 ', '64x-64', '0x64', '64X64', 'x64'].map((size) => [{ ...ok, size }, 'size']),
      [{ ...ok, n: 0 }, 'n'],
      [{ ...ok, n: 11 }, 'n'],
      [{ ...ok, sampler: 'plms' }, 'sampler'],
      [{ ...ok, steps: 0 }, 'steps'],
      [{ ...ok, response_format: 'png' }, 'response_format'],
      [{ ...ok, seed: -1 }, 'seed'],
      [{ ...ok, model: 'tiny' }, 'model'],
    ]);
    const r = await postJSON(srv.baseURL, '/v1/images/generations', { ...ok, model: 'nope' });
    assertError(r, { status: 404, param: 'model', code: 'model_not_found' });
  });

  it('answers 429 while the only slot is busy (--image-queue 0)', { timeout: TEST_TIMEOUT_MS }, async () => {
    const long = postJSON(srv.baseURL, '/v1/images/generations', { model: 'sd-tiny', prompt: 'cat', size: '256x256', steps: 10 });
    await sleep(300);
    const r = await postJSON(srv.baseURL, '/v1/images/generations', { model: 'sd-tiny', prompt: 'dog', size: '64x64', steps: 1 });
    assertError(r, { status: 429, code: 'rate_limit_exceeded' });
    assert.equal((await long).status, 200);
  });

  it('cancels a generation when the client disconnects', { timeout: TEST_TIMEOUT_MS }, async () => {
    const controller = new AbortController();
    const pending = fetch(`${srv.baseURL}/v1/images/generations`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, signal: controller.signal,
      body: JSON.stringify({ model: 'sd-tiny', prompt: 'cat', size: '512x512', steps: 150 }),
    }).catch(() => null);
    await sleep(500);
    controller.abort();
    await pending;
    const started = Date.now();
    for (;;) {  // the slot is free again long before 150 steps at 512x512 could finish
      const r = await postJSON(srv.baseURL, '/v1/images/generations', { model: 'sd-tiny', prompt: 'dog', size: '64x64', steps: 1 });
      if (r.status === 200) break;
      assert.equal(r.status, 429);
      assert.ok(Date.now() - started < 20_000, 'the cancelled generation still holds the slot');
      await sleep(200);
    }
    assert.match(srv.server.log, /generation cancelled/);
  });
});

describe('image urls with --public-url', { timeout: HOOK_TIMEOUT_MS + TEST_TIMEOUT_MS }, () => {
  const srv = useServer({
    extraArgs: ['--public-url', 'https://images.example.com/allm/'],
    setup: async ({ tmp }) => ['--model', `sd-tiny=${await writeSdFixture(tmp)}`],
  });

  it('points image urls at --public-url, whatever the Host header says', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await postWithHost(srv.baseURL, '/v1/images/generations',
      { model: 'sd-tiny', prompt: 'cat', size: '64x64', steps: 1, response_format: 'url' }, 'evil.example:666');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const url = r.json.data[0].url;
    const prefix = 'https://images.example.com/allm/v1/images/files/';
    assert.ok(url.startsWith(prefix), url);
    // Behind the proxy that URL reaches this server at /v1/images/files/{id}.
    const res = await fetch(`${srv.baseURL}/v1/images/files/${url.slice(prefix.length)}`);
    assert.equal(res.status, 200);
    assert.deepEqual(pngSize(Buffer.from(await res.arrayBuffer())), { width: 64, height: 64 });
  });
});
