// The README's run command with no models: the server generates and serves its demo model, and
// the official SDK works against it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import fs from 'node:fs';
import { useServer, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS } from './helpers.mjs';
import { speechFiles } from './audio_helpers.mjs';

describe('demo default', { timeout: HOOK_TIMEOUT_MS + 3 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({ fixture: false });

  it('lists demo-text and answers /v1/responses through the SDK', { timeout: TEST_TIMEOUT_MS }, async () => {
    const client = new OpenAI({ baseURL: `${srv.baseURL}/v1`, apiKey: 'unused' });
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['demo-image', 'demo-text', 'demo-whisper']);
    assert.equal(models.data[0].modality, 'image');
    assert.equal(models.data[1].format, 'gguf');
    assert.equal(models.data[2].modality, 'audio');

    const response = await client.responses.create({
      model: 'demo-text', input: 'Hello!', max_output_tokens: 8, temperature: 0,
    });
    assert.equal(response.object, 'response');
    assert.ok(['completed', 'incomplete'].includes(response.status));
    assert.ok(response.usage.output_tokens >= 1 && response.usage.output_tokens <= 8);

    const stream = client.responses.stream({ model: 'demo-text', input: 'Hello!', max_output_tokens: 8, temperature: 0 });
    let deltas = '';
    for await (const event of stream) {
      if (event.type === 'response.output_text.delta') deltas += event.delta;
    }
    const final = await stream.finalResponse();
    assert.equal(final.output_text, deltas);
    assert.equal(final.output_text, response.output_text);
  });

  it('generates a PNG with demo-image through the SDK', { timeout: TEST_TIMEOUT_MS }, async () => {
    const client = new OpenAI({ baseURL: `${srv.baseURL}/v1`, apiKey: 'unused' });
    const r = await client.images.generate({ model: 'demo-image', prompt: 'a cat', size: '64x64', steps: 2 });
    const png = Buffer.from(r.data[0].b64_json, 'base64');
    assert.equal(png.readUInt32BE(16), 64);
  });

  it('transcribes with demo-whisper through the SDK', { timeout: TEST_TIMEOUT_MS }, async () => {
    const client = new OpenAI({ baseURL: `${srv.baseURL}/v1`, apiKey: 'unused' });
    const { wav } = await speechFiles();
    const r = await client.audio.transcriptions.create({ model: 'demo-whisper', file: fs.createReadStream(wav) });
    assert.equal(typeof r.text, 'string');
  });
});
