// /v1/images/generations through the official OpenAI SDK on a tiny random SDXL base model
// (allm-make-sd-fixture --sdxl), as a single file and as a diffusers folder with the same
// weights: the same PNGs from both, deterministic by seed, SDXL's default size (1024x1024) when
// the request names none, and an SDXL refiner refused as UNSUPPORTED, naming it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import OpenAI from 'openai';
import {
  REPO_ROOT, useServer, runCommand, postJSON, assertError, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from './helpers.mjs';

const SD_FIXTURE_TOOL = path.resolve(REPO_ROOT,
  process.env.ALLM_SD_FIXTURE_TOOL || path.join(path.dirname(process.env.ALLM_BIN || 'build/bin/allm'), 'allm-make-sd-fixture'));

async function writeSdxlFixture(tmp, layout, name = `sdxl-tiny-${layout}`) {
  const dir = path.join(tmp, name);
  const r = await runCommand(SD_FIXTURE_TOOL, [dir, '--sdxl', '--layout', layout]);
  assert.equal(r.code, 0, `allm-make-sd-fixture failed: ${r.stderr}`);
  return layout === 'single' ? path.join(dir, 'model.safetensors') : dir;
}

// A diffusers folder marked as diffusers marks SDXL's refiner (requires_aesthetics_score).
async function writeRefinerFixture(tmp) {
  const dir = await writeSdxlFixture(tmp, 'diffusers', 'sdxl-refiner');
  const index = JSON.parse(await fs.readFile(path.join(dir, 'model_index.json'), 'utf8'));
  index.requires_aesthetics_score = true;
  await fs.writeFile(path.join(dir, 'model_index.json'), JSON.stringify(index));
  return dir;
}

function pngSize(buf) {
  assert.equal(buf.subarray(0, 8).toString('latin1'), '\x89PNG\r\n\x1a\n');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

describe('images (SDXL)', { timeout: HOOK_TIMEOUT_MS + 4 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({
    setup: async ({ tmp }) => {
      const single = await writeSdxlFixture(tmp, 'single');
      const diffusers = await writeSdxlFixture(tmp, 'diffusers');
      return [
        '--model', `sdxl-tiny=${single}`,
        '--model', `sdxl-tiny-diffusers=${diffusers}`,
        '--model', `sdxl-refiner=${await writeRefinerFixture(tmp)}`,
      ];
    },
  });
  const client = () => new OpenAI({ baseURL: `${srv.baseURL}/v1`, apiKey: 'unused', maxRetries: 0 });

  it('gives the same PNGs from the diffusers folder as from the single file, the same for the same seed', { timeout: TEST_TIMEOUT_MS }, async () => {
    const params = { prompt: 'a photo of the cat', negative_prompt: 'dog', size: '80x64', steps: 2, seed: 5 };
    const single = await client().images.generate({ model: 'sdxl-tiny', ...params });
    const diffusers = await client().images.generate({ model: 'sdxl-tiny-diffusers', ...params });
    assert.deepEqual(pngSize(Buffer.from(single.data[0].b64_json, 'base64')), { width: 80, height: 64 });
    assert.equal(diffusers.data[0].b64_json, single.data[0].b64_json);
    const again = await client().images.generate({ model: 'sdxl-tiny', ...params });
    assert.equal(again.data[0].b64_json, single.data[0].b64_json);
    const other = await client().images.generate({ model: 'sdxl-tiny', ...params, seed: 6 });
    assert.notEqual(other.data[0].b64_json, single.data[0].b64_json);
  });

  it('generates 1024x1024, SDXL\'s size, when the request names none', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await client().images.generate({ model: 'sdxl-tiny', prompt: 'a photo of the cat', steps: 1, cfg_scale: 1 });
    assert.deepEqual(pngSize(Buffer.from(r.data[0].b64_json, 'base64')), { width: 1024, height: 1024 });
  });

  it('refuses an SDXL refiner as UNSUPPORTED, naming it', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await postJSON(srv.baseURL, '/v1/images/generations', { model: 'sdxl-refiner', prompt: 'cat', size: '64x64', steps: 1 });
    assertError(r, {});
    assert.ok(r.status >= 400 && r.status < 600, `status ${r.status}`);
    assert.match(r.json.error.message, /SDXL refiner/);
  });
});
