// POST /v1/embeddings with the official OpenAI SDK: float and base64 vectors, many inputs in one
// request, `dimensions`, errors; the GGUF (llama.cpp's pooling) and the Hugging Face folder
// (safetensors.cpp's hidden states, pooled as its modules.json says) of the same random weights
// agree; embeddings running beside a generation on the same model leave it unchanged.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import OpenAI from 'openai';
import {
  useServer, postJSON, show, assertError, runCommand, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from './helpers.mjs';
import { HF_TOOL } from '../integration/hf_fixture.mjs';
import { scrape, metricValue } from '../integration/metrics_helpers.mjs';

const T = { timeout: TEST_TIMEOUT_MS };
const CTX = 256;
const HF = 'qwen3-hf';      // mean pooling + Normalize (modules.json)
const GGUF = 'qwen3-gguf';  // the same weights, qwen3.pooling_type = mean
const LAST = 'llama-hf';    // no modules.json: last token, normalised
const WIDTH = 64;           // the fixtures' hidden size

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const cosine = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0) / (norm(a) * norm(b));
// encoding_format "base64": little-endian float32 bytes.
const decodeBase64 = (text) => {
  const bytes = Buffer.from(text, 'base64');
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(4 * i));
};

describe('embeddings', { timeout: HOOK_TIMEOUT_MS + 10 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({
    ctxSize: CTX,
    setup: async ({ modelsDir }) => {
      const make = async (arch, pooling) => {
        const args = ['--arch', arch, '--dtype', 'f32', '--out', path.join(modelsDir, `${arch}-hf`),
          '--gguf', path.join(modelsDir, `${arch}-gguf.gguf`)];
        if (pooling) args.push('--pooling', pooling);
        const r = await runCommand(HF_TOOL, args);
        assert.equal(r.code, 0, `${HF_TOOL} failed: ${r.stderr}`);
      };
      await make('qwen3', 'mean');
      await make('llama', null);
    },
  });
  let client;
  const sdk = () => {
    client ??= new OpenAI({ baseURL: srv.baseURL + '/v1', apiKey: 'test', maxRetries: 0, timeout: 55_000 });
    return client;
  };
  const texts = ['The quick brown fox', 'jumps over the lazy dog', 'a'];

  it('float and base64 give the same vectors, one per input, normalised, with usage', T, async () => {
    for (const model of [HF, GGUF, LAST]) {
      const floats = await sdk().embeddings.create({ model, input: texts, encoding_format: 'float' });
      assert.equal(floats.object, 'list');
      assert.equal(floats.model, model);
      assert.equal(floats.data.length, texts.length);
      floats.data.forEach((d, i) => {
        assert.equal(d.object, 'embedding');
        assert.equal(d.index, i);
        assert.equal(d.embedding.length, WIDTH);
        assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-5, `${model} input ${i} has length ${norm(d.embedding)}`);
      });
      assert.ok(floats.usage.prompt_tokens >= texts.join('').length / 4, JSON.stringify(floats.usage));
      assert.equal(floats.usage.total_tokens, floats.usage.prompt_tokens);
      assert.ok(cosine(floats.data[0].embedding, floats.data[1].embedding) < 0.9999, 'different inputs, different vectors');

      // The SDK asks for base64 by default and decodes it into floats itself.
      const decoded = await sdk().embeddings.create({ model, input: texts });
      const raw = await sdk().embeddings.create({ model, input: texts, encoding_format: 'base64' });
      for (let i = 0; i < texts.length; ++i) {
        assert.equal(typeof raw.data[i].embedding, 'string');
        const ours = decodeBase64(raw.data[i].embedding);
        const expected = floats.data[i].embedding.map(Math.fround);
        assert.deepEqual(Array.from(decoded.data[i].embedding), expected, `${model} input ${i}: SDK-decoded base64`);
        assert.deepEqual(ours, expected, `${model} input ${i}: base64 bytes`);
      }
    }
  });

  it('inputs batched together give what each gives alone; token ids', T, async () => {
    const all = await sdk().embeddings.create({ model: HF, input: texts, encoding_format: 'float' });
    for (let i = 0; i < texts.length; ++i) {
      const alone = await sdk().embeddings.create({ model: HF, input: texts[i], encoding_format: 'float' });
      assert.ok(cosine(alone.data[0].embedding, all.data[i].embedding) > 0.99999, `input ${i}`);
    }
    const ids = [[5, 6, 7, 8], [9, 10]];
    const arrays = await sdk().embeddings.create({ model: GGUF, input: ids, encoding_format: 'float' });
    const one = await sdk().embeddings.create({ model: GGUF, input: ids[0], encoding_format: 'float' });
    assert.equal(arrays.data.length, 2);
    assert.equal(arrays.usage.prompt_tokens, 6);
    assert.ok(cosine(one.data[0].embedding, arrays.data[0].embedding) > 0.99999);
  });

  it('the GGUF and the Hugging Face folder of the same weights agree (mean pooling)', T, async () => {
    const hf = await sdk().embeddings.create({ model: HF, input: texts, encoding_format: 'float' });
    const gguf = await sdk().embeddings.create({ model: GGUF, input: texts, encoding_format: 'float' });
    assert.equal(hf.usage.prompt_tokens, gguf.usage.prompt_tokens);
    for (let i = 0; i < texts.length; ++i) {
      const c = cosine(hf.data[i].embedding, gguf.data[i].embedding);
      assert.ok(c >= 0.9999, `input ${i}: cosine ${c}`);
    }
  });

  it('dimensions: the first components, normalised again', T, async () => {
    for (const model of [HF, GGUF]) {
      const full = await sdk().embeddings.create({ model, input: texts[0], encoding_format: 'float' });
      const short = await sdk().embeddings.create({ model, input: texts[0], dimensions: 16, encoding_format: 'float' });
      const v = short.data[0].embedding;
      assert.equal(v.length, 16);
      const prefix = full.data[0].embedding.slice(0, 16);
      const n = norm(prefix);
      v.forEach((x, i) => assert.ok(Math.abs(x - prefix[i] / n) < 1e-6, `component ${i}`));
    }
  });

  it('bad requests: 400 naming the field, 404 for an unknown model', T, async () => {
    const cases = [
      [{ model: HF, input: '' }, 'input'],
      [{ model: HF, input: [] }, 'input'],
      [{ model: HF, input: ['a', ''] }, 'input[1]'],
      [{ model: HF, input: 'a', encoding_format: 'int8' }, 'encoding_format'],
      [{ model: HF, input: 'a', dimensions: WIDTH + 1 }, 'dimensions'],
      [{ model: HF, input: 'a', dimensions: 0 }, 'dimensions'],
      [{ model: HF, input: 'a', truncate: true }, 'truncate'],
      [{ model: HF, input: [[1, 2], [1e9]] }, 'input[1]'],
      [{ model: GGUF, input: 'x'.repeat(4 * CTX) }, 'input'],
      [{ model: HF, input: ['ok', 'x'.repeat(4 * CTX)] }, 'input[1]'],
      [{ model: HF, input: ['x'.repeat(4 * CTX)] }, 'input[0]'],
      [{ model: GGUF, input: [5, 1e6] }, 'input'],
    ];
    for (const [body, param] of cases) {
      const r = await postJSON(srv.baseURL, '/v1/embeddings', body);
      assertError(r, { status: 400, param, what: JSON.stringify(body).slice(0, 80) });
    }
    const long = await postJSON(srv.baseURL, '/v1/embeddings', { model: GGUF, input: 'x'.repeat(4 * CTX) });
    assert.equal(long.json.error.code, 'context_length_exceeded', show('long input', long));
    const unknown = await postJSON(srv.baseURL, '/v1/embeddings', { model: 'nope', input: 'a' });
    assertError(unknown, { status: 404, code: 'model_not_found' });
    await assert.rejects(sdk().embeddings.create({ model: HF, input: '' }), OpenAI.BadRequestError);
    const m = await scrape(srv.baseURL);
    const label = { endpoint: 'POST /v1/embeddings' };
    assert.ok(metricValue(m, 'allm_http_requests_total', { ...label, status: '400' }) >= cases.length);
    assert.ok(metricValue(m, 'allm_http_requests_total', { ...label, status: '200' }) > 0);
  });

  it('embeddings beside a generation on the same model leave its text unchanged', T, async () => {
    const chat = { model: HF, messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 48, temperature: 0 };
    const alone = await postJSON(srv.baseURL, '/v1/chat/completions', chat);
    assert.equal(alone.status, 200, show('chat alone', alone));
    const expected = await sdk().embeddings.create({ model: HF, input: texts, encoding_format: 'float' });
    const generation = postJSON(srv.baseURL, '/v1/chat/completions', chat);
    const embeddings = Array.from({ length: 6 }, () =>
      sdk().embeddings.create({ model: HF, input: texts, encoding_format: 'float' }));
    const [together, ...vectors] = await Promise.all([generation, ...embeddings]);
    assert.equal(together.status, 200, show('chat beside embeddings', together));
    assert.equal(together.json.choices[0].message.content, alone.json.choices[0].message.content);
    for (const v of vectors) {
      v.data.forEach((d, i) => assert.ok(cosine(d.embedding, expected.data[i].embedding) > 0.99999));
    }
  });
});
