// The official OpenAI SDK's audio.transcriptions.create and audio.translations.create against
// the server, for WAV, MP3 and FLAC in every response format.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';
import { useServer, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS } from './helpers.mjs';
import { WHISPER_MODEL, makeWhisperFixture, speechFiles, checkSrt, checkVtt } from './audio_helpers.mjs';

describe('OpenAI SDK: audio', { timeout: HOOK_TIMEOUT_MS + 4 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({
    setup: async ({ modelsDir }) => { await makeWhisperFixture(path.join(modelsDir, `${WHISPER_MODEL}.bin`)); },
  });
  const client = () => new OpenAI({ baseURL: `${srv.baseURL}/v1`, apiKey: 'unused' });

  for (const [method, task] of [['transcriptions', 'transcribe'], ['translations', 'translate']]) {
    it(`audio.${method}.create: WAV, MP3, FLAC in every response format`, { timeout: 2 * TEST_TIMEOUT_MS }, async () => {
      const files = await speechFiles();
      for (const key of ['wav', 'mp3', 'flac']) {
        const create = (extra) => client().audio[method].create({
          model: WHISPER_MODEL, file: fs.createReadStream(files[key]), ...extra,
        });
        const json = await create({});
        assert.equal(typeof json.text, 'string', `${key} json`);
        const text = await create({ response_format: 'text' });
        assert.equal(typeof text, 'string', `${key} text`);
        assert.equal(text.trim(), json.text.trim(), `${key}: text and json agree`);
        checkSrt(await create({ response_format: 'srt' }), `${key} srt`);
        checkVtt(await create({ response_format: 'vtt' }), `${key} vtt`);
        const verbose = await create({ response_format: 'verbose_json' });
        assert.equal(verbose.task, task);
        assert.ok(verbose.duration > 1, `${key} duration ${verbose.duration}`);
        assert.ok(verbose.segments.length >= 1);
        if (method === 'translations') assert.equal(verbose.language, 'english');
      }
    });
  }

  it('word timestamps through timestamp_granularities', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { wav } = await speechFiles();
    const r = await client().audio.transcriptions.create({
      model: WHISPER_MODEL, file: await toFile(fs.readFileSync(wav), 'speech.wav'),
      response_format: 'verbose_json', timestamp_granularities: ['word', 'segment'], language: 'en',
    });
    assert.equal(r.language, 'english');
    assert.ok(r.words.length >= 1 && r.segments.length >= 1);
    for (const w of r.words) assert.ok(w.start <= w.end, JSON.stringify(w));
  });

  it('errors come back as SDK errors with status and param', { timeout: TEST_TIMEOUT_MS }, async () => {
    await assert.rejects(
      client().audio.transcriptions.create({ model: WHISPER_MODEL, file: await toFile(Buffer.from('not audio'), 'x.wav') }),
      (e) => e.status === 400 && e.param === 'file');
  });
});
