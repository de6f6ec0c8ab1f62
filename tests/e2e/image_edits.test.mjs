// /v1/images/edits through the official OpenAI SDK (images.edit, multipart) on tiny random
// Stable Diffusion checkpoints: image to image and inpainting with a mask (or the image's own
// transparency), strength 0 and a mask that keeps everything both giving the image through the
// VAE, determinism by seed, output sizes, a 9-channel inpainting checkpoint, the fields of
// /v1/images/generations the server does not offer, and hostile uploads answered with a 400 that
// names the field while the server keeps running.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import zlib from 'node:zlib';
import OpenAI, { toFile } from 'openai';
import {
  REPO_ROOT, useServer, runCommand, request, postJSON, assertError, checkValidationCases,
  TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from './helpers.mjs';

const SD_FIXTURE_TOOL = path.resolve(REPO_ROOT,
  process.env.ALLM_SD_FIXTURE_TOOL || path.join(path.dirname(process.env.ALLM_BIN || 'build/bin/allm'), 'allm-make-sd-fixture'));

async function writeSdFixture(tmp, name, flags = []) {
  const dir = path.join(tmp, name);
  const r = await runCommand(SD_FIXTURE_TOOL, [dir, ...flags]);
  assert.equal(r.code, 0, `allm-make-sd-fixture failed: ${r.stderr}`);
  return path.join(dir, 'model.safetensors');
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

// An 8-bit PNG, RGBA (4 channels) or RGB (3), from `pixel(x, y)` giving the channel values.
function png(width, height, pixel, channels = 4) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;
  header[9] = channels === 4 ? 6 : 2;
  const rows = [];
  for (let y = 0; y < height; y++) {
    rows.push(0);  // filter: none
    for (let x = 0; x < width; x++) rows.push(...pixel(x, y).slice(0, channels));
  }
  return Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(Buffer.from(rows))), chunk('IEND', Buffer.alloc(0))]);
}

const picture = (x, y) => [(x * 7) % 256, (y * 11) % 256, (x * y) % 256, 255];
const IMAGE = png(64, 64, picture);
// Transparent (repaint) on the left half.
const LEFT_MASK = png(64, 64, (x) => [0, 0, 0, x < 32 ? 0 : 255]);
const KEEP_ALL_MASK = png(64, 64, () => [0, 0, 0, 255]);

function pngSize(buf) {
  assert.equal(buf.subarray(1, 4).toString('latin1'), 'PNG');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

const file = (buf, name = 'image.png') => toFile(buf, name, { type: 'image/png' });

// A multipart POST to /v1/images/edits with the given text fields and files.
async function postForm(baseURL, fields, files = {}) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, String(v));
  for (const [k, v] of Object.entries(files)) form.append(k, new Blob([v], { type: 'image/png' }), `${k}.png`);
  const res = await fetch(`${baseURL}/v1/images/edits`, { method: 'POST', body: form });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, text, json };
}

describe('image edits', { timeout: HOOK_TIMEOUT_MS + 10 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({
    setup: async ({ tmp }) => [
      '--model', `sd-tiny=${await writeSdFixture(tmp, 'sd')}`,
      '--model', `sd-inpaint=${await writeSdFixture(tmp, 'inpaint', ['--inpainting'])}`,
      '--model', `sd-decoder-only=${await writeSdFixture(tmp, 'decoder', ['--no-vae-encoder'])}`,
    ],
  });
  const client = () => new OpenAI({ baseURL: `${srv.baseURL}/v1`, apiKey: 'unused', maxRetries: 0 });
  const edit = async (params) => {
    const r = await client().images.edit({ model: 'sd-tiny', prompt: 'a red barn', steps: 3, ...params });
    return r.data.map((d) => Buffer.from(d.b64_json, 'base64'));
  };

  it('keeps the image through the VAE at strength 0, and under a mask that keeps everything', { timeout: TEST_TIMEOUT_MS }, async () => {
    const [zero] = await edit({ image: await file(IMAGE), strength: 0, seed: 1 });
    assert.deepEqual(pngSize(zero), { width: 64, height: 64 });
    const [kept] = await edit({ image: await file(IMAGE), mask: await file(KEEP_ALL_MASK, 'mask.png'), seed: 2 });
    assert.ok(kept.equals(zero), 'a mask that keeps every pixel gives the strength-0 image');
  });

  it('inpaints the masked part, the same for the same seed, image i with seed + i', { timeout: TEST_TIMEOUT_MS }, async () => {
    const params = async (seed, n = 1) => ({ image: await file(IMAGE), mask: await file(LEFT_MASK, 'mask.png'), seed, n });
    const two = await edit(await params(7, 2));
    const [again] = await edit(await params(7));
    const [next] = await edit(await params(8));
    assert.ok(two[0].equals(again));
    assert.ok(two[1].equals(next));
    assert.ok(!two[0].equals(two[1]));
    const [zero] = await edit({ image: await file(IMAGE), strength: 0 });
    assert.ok(!two[0].equals(zero), 'the masked half was repainted');
  });

  it("takes the image's own transparency as the mask when none is sent", { timeout: TEST_TIMEOUT_MS }, async () => {
    const holed = png(64, 64, (x, y) => (x < 32 ? [0, 0, 0, 0] : picture(x, y)));
    const [own] = await edit({ image: await file(holed), seed: 3 });
    const [explicit] = await edit({ image: await file(holed), mask: await file(LEFT_MASK, 'mask.png'), seed: 3 });
    assert.ok(own.equals(explicit));
  });

  it('runs image to image without a mask, at the image size or the asked one', { timeout: TEST_TIMEOUT_MS }, async () => {
    const [a] = await edit({ image: await file(IMAGE), strength: 0.7, seed: 4 });
    const [b] = await edit({ image: await file(IMAGE), strength: 0.7, seed: 4 });
    assert.ok(a.equals(b));
    const [resized] = await edit({ image: await file(IMAGE), size: '128x64', seed: 4 });
    assert.deepEqual(pngSize(resized), { width: 128, height: 64 });
    const [rounded] = await edit({ image: await file(png(70, 66, picture)), seed: 4 });
    assert.deepEqual(pngSize(rounded), { width: 64, height: 64 });
    const r = await client().images.edit({
      model: 'sd-tiny', prompt: 'a red barn', steps: 2, image: await file(png(64, 64, picture, 3)), response_format: 'url',
    });
    const fetched = await fetch(r.data[0].url);
    assert.equal(fetched.status, 200);
    assert.deepEqual(pngSize(Buffer.from(await fetched.arrayBuffer())), { width: 64, height: 64 });
  });

  it('edits with a 9-channel inpainting checkpoint', { timeout: TEST_TIMEOUT_MS }, async () => {
    const params = async (seed) => ({ model: 'sd-inpaint', image: await file(IMAGE), mask: await file(LEFT_MASK, 'mask.png'), seed });
    const [a] = await edit(await params(5));
    const [b] = await edit(await params(5));
    assert.ok(a.equals(b));
    assert.deepEqual(pngSize(a), { width: 64, height: 64 });
    const r = await client().images.generate({ model: 'sd-inpaint', prompt: 'cat', size: '64x64', steps: 2 });
    assert.equal(r.data.length, 1);
  });

  it('answers bad uploads and fields with a 400 naming the field, and keeps serving', { timeout: TEST_TIMEOUT_MS }, async () => {
    const ok = { model: 'sd-tiny', prompt: 'cat', steps: '1' };
    const huge = Buffer.from(IMAGE);
    huge.writeUInt32BE(100000, 16);
    huge.writeUInt32BE(100000, 20);
    const cases = [
      [ok, {}, 'image', /missing required field 'image'/],
      [ok, { image: Buffer.from('GIF89a not really') }, 'image', /not a PNG, JPEG or WebP/],
      [ok, { image: huge }, 'image', /100000x100000 pixels, more than/],
      [ok, { image: IMAGE.subarray(0, IMAGE.length - 30) }, 'image', /truncated or corrupt/],
      [ok, { image: IMAGE, mask: png(32, 32, () => [0, 0, 0, 0]) }, 'mask', /same size/],
      [ok, { image: IMAGE, mask: png(64, 64, picture, 3) }, 'mask', /alpha channel/],
      [{ ...ok, strength: '2' }, { image: IMAGE }, 'strength', /strength/],
      [{ ...ok, strength: 'lots' }, { image: IMAGE }, 'strength', /strength/],
      [{ ...ok, size: '60x60' }, { image: IMAGE }, 'size', /multiples of 8/],
      [ok, { image: png(7, 7, picture) }, 'size', /the image is 7x7/],
      [{ ...ok, input_fidelity: 'high' }, { image: IMAGE }, 'input_fidelity', /strength/],
      [{ ...ok, colour: 'red' }, { image: IMAGE }, 'colour', /unknown parameter/],
      [{ ...ok, n: '2', extra: 'x' }, { image: IMAGE }, 'extra', /unknown parameter/],
      [{ ...ok, model: 'sd-decoder-only' }, { image: IMAGE }, 'image', /no VAE encoder/],
    ];
    for (const [fields, files, param, message] of cases) {
      const r = await postForm(srv.baseURL, fields, files);
      const e = assertError(r, { status: 400, param, what: `${JSON.stringify(fields)} ${Object.keys(files)}` });
      assert.match(e.message, message);
    }
    const json = await postJSON(srv.baseURL, '/v1/images/edits', { model: 'sd-tiny', prompt: 'cat' });
    assertError(json, { status: 400 });
    assert.equal((await request(srv.baseURL, 'GET', '/health')).status, 200);
  });

  it('refuses the generation fields it does not offer, by name', { timeout: TEST_TIMEOUT_MS }, async () => {
    const ok = { model: 'sd-tiny', prompt: 'cat', size: '64x64', steps: 1 };
    await checkValidationCases(srv.baseURL, '/v1/images/generations', [
      [{ ...ok, quality: 'hd' }, 'quality'],
      [{ ...ok, style: 'vivid' }, 'style'],
      [{ ...ok, output_format: 'jpeg' }, 'output_format'],
      [{ ...ok, background: 'transparent' }, 'background'],
      [{ ...ok, stream: true }, 'stream'],
      [{ ...ok, partial_images: 2 }, 'partial_images'],
      [{ ...ok, output_compression: 50 }, 'output_compression'],
      [{ ...ok, strength: 0.5 }, 'strength'],
      [{ ...ok, nonsense: 1 }, 'nonsense'],
    ]);
    const r = await postJSON(srv.baseURL, '/v1/images/generations',
      { ...ok, user: 'me', quality: 'auto', output_format: 'png', background: 'auto', moderation: 'low', stream: false });
    assert.equal(r.status, 200, JSON.stringify(r.json));
  });
});
