// Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens) driven by the official,
// unmodified Anthropic TypeScript SDK against a real allm process: text, streaming through the
// SDK's stream() helper and final-message accumulation, a forced tool_use on random weights (its
// input valid against the schema only through constrained decoding, checked with ajv), a
// tool_result round trip, stop sequences, count_tokens, thinking reaching the chat template, and
// Anthropic's error shape (also for keys sent as x-api-key).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createRequire } from 'node:module';
import Anthropic from '@anthropic-ai/sdk';
import {
  useServer, postJSON, cuttingStop, REPO_ROOT, MODEL, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from './helpers.mjs';
import { makeHfFixture, makeQwen3Fixture } from '../integration/hf_fixture.mjs';

const Ajv = createRequire(path.join(REPO_ROOT, 'tests/e2e/package.json'))('ajv').default;

const T = { timeout: 2 * TEST_TIMEOUT_MS };
const HF = 'llama-f32-hf';
const QWEN3 = 'qwen3-real';
const WEATHER = {
  type: 'object',
  properties: {
    city: { type: 'string', minLength: 1, maxLength: 6 },
    days: { type: 'integer', minimum: 1, maximum: 7 },
  },
  required: ['city', 'days'],
  additionalProperties: false,
};
const validWeather = new Ajv({ strict: false }).compile(WEATHER);
const TOOLS = [{ name: 'get_weather', description: 'Forecast for a city', input_schema: WEATHER }];
const ASK = [{ role: 'user', content: 'What is the weather in Oslo?' }];

const textOf = (message) => message.content.filter((b) => b.type === 'text').map((b) => b.text).join('');

describe('Anthropic Messages API', { timeout: HOOK_TIMEOUT_MS + 10 * T.timeout }, () => {
  const srv = useServer({
    ctxSize: 2048,
    setup: async ({ modelsDir }) => {
      await makeHfFixture('llama', 'f32', modelsDir);
      await makeQwen3Fixture(modelsDir, QWEN3);
    },
  });
  const client = () => new Anthropic({ baseURL: srv.baseURL, apiKey: 'test', maxRetries: 0, timeout: 110_000 });

  for (const model of [MODEL, HF]) {
    it(`${model}: messages.create, and stream() + finalMessage() giving the same message`, T, async () => {
      const req = { model, max_tokens: 24, temperature: 0, system: 'Be brief.', messages: [{ role: 'user', content: 'Hello there' }] };
      const plain = await client().messages.create(req);
      assert.match(plain.id, /^msg_/);
      assert.equal(plain.type, 'message');
      assert.equal(plain.role, 'assistant');
      assert.equal(plain.model, model);
      assert.ok(['end_turn', 'max_tokens'].includes(plain.stop_reason), plain.stop_reason);
      assert.equal(plain.stop_sequence, null);
      assert.ok(plain.content.every((b) => b.type === 'text'), JSON.stringify(plain.content));
      assert.ok(plain.usage.output_tokens >= 1 && plain.usage.output_tokens <= 24);
      if (plain.stop_reason === 'max_tokens') assert.equal(plain.usage.output_tokens, 24);

      const stream = client().messages.stream(req);
      const types = [];
      let streamed = '';
      stream.on('streamEvent', (event) => types.push(event.type));
      stream.on('text', (delta) => { streamed += delta; });
      const final = await stream.finalMessage();
      assert.equal(textOf(final), textOf(plain));
      assert.equal(streamed, textOf(plain));
      assert.equal(final.stop_reason, plain.stop_reason);
      assert.equal(final.usage.output_tokens, plain.usage.output_tokens);
      assert.equal(final.usage.input_tokens + final.usage.cache_read_input_tokens,
        plain.usage.input_tokens + plain.usage.cache_read_input_tokens);
      assert.equal(types[0], 'message_start');
      assert.deepEqual(types.slice(-2), ['message_delta', 'message_stop']);
      const starts = types.filter((t) => t === 'content_block_start').length;
      assert.equal(starts, types.filter((t) => t === 'content_block_stop').length);
    });
  }

  it('count_tokens counts the prompt a create would have, system and tools included', T, async () => {
    const body = { model: HF, system: [{ type: 'text', text: 'You forecast.' }], messages: ASK };
    const counted = await client().messages.countTokens(body);
    const created = await client().messages.create({ ...body, max_tokens: 1 });
    assert.equal(counted.input_tokens, created.usage.input_tokens + created.usage.cache_read_input_tokens);
    const withTools = await client().messages.countTokens({ ...body, tools: TOOLS });
    assert.ok(withTools.input_tokens > counted.input_tokens, `${withTools.input_tokens} <= ${counted.input_tokens}`);
  });

  it('thinking reaches the chat template: disabled adds Qwen3\'s empty think block', T, async () => {
    const count = (thinking) => client().messages.countTokens({ model: QWEN3, messages: ASK, thinking });
    const enabled = await count({ type: 'enabled', budget_tokens: 1024 });
    const disabled = await count({ type: 'disabled' });
    // '<think>\n\n</think>\n\n' is 4 tokens in Qwen3's vocabulary.
    assert.equal(disabled.input_tokens - enabled.input_tokens, 4);
  });

  it('a forced tool_use has input valid against the schema, plain and streamed', T, async () => {
    const req = {
      model: HF, max_tokens: 400, temperature: 1, messages: ASK, tools: TOOLS,
      tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
    };
    const plain = await client().messages.create(req);
    assert.equal(plain.stop_reason, 'tool_use');
    const uses = plain.content.filter((b) => b.type === 'tool_use');
    assert.equal(uses.length, 1, JSON.stringify(plain.content));
    assert.equal(uses[0].name, 'get_weather');
    assert.ok(uses[0].id.length > 0);
    assert.ok(validWeather(uses[0].input), `${JSON.stringify(uses[0].input)} ${JSON.stringify(validWeather.errors)}`);

    // `any` with parallel calls allowed: one call or more, each valid.
    const final = await client().messages.stream({ ...req, tool_choice: { type: 'any' } }).finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    const streamed = final.content.filter((b) => b.type === 'tool_use');
    assert.ok(streamed.length >= 1, JSON.stringify(final.content));
    for (const use of streamed) assert.ok(validWeather(use.input), JSON.stringify(use.input));
  });

  it('tool_result round trip: the answer to a call continues the conversation', T, async () => {
    const first = await client().messages.create({
      model: HF, max_tokens: 400, messages: ASK, tools: TOOLS, tool_choice: { type: 'any' },
    });
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.ok(use, JSON.stringify(first.content));
    const history = [...ASK, { role: 'assistant', content: first.content }];
    const result = (id, more = {}) => ({ role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content: [{ type: 'text', text: 'Sunny, 21 C' }], ...more }] });
    const second = await client().messages.create({
      model: HF, max_tokens: 16, temperature: 0, messages: [...history, result(use.id)], tools: TOOLS, tool_choice: { type: 'none' },
    });
    assert.ok(['end_turn', 'max_tokens'].includes(second.stop_reason), second.stop_reason);
    assert.ok(second.content.every((b) => b.type === 'text'));
    // The result is in the prompt: the conversation is longer than without it.
    const counted = await client().messages.countTokens({ model: HF, messages: [...history, result(use.id)], tools: TOOLS });
    const errorCounted = await client().messages.countTokens({ model: HF, messages: [...history, result(use.id, { is_error: true })], tools: TOOLS });
    assert.ok(errorCounted.input_tokens > counted.input_tokens, 'is_error reaches the model');

    const orphan = await client().messages.create({ model: HF, max_tokens: 8, messages: [...history, result('toolu_nope')] }).catch((e) => e);
    assert.ok(orphan instanceof Anthropic.BadRequestError, String(orphan));
    assert.equal(orphan.error.type, 'error');
    assert.equal(orphan.error.error.type, 'invalid_request_error');
    assert.match(orphan.error.error.message, /tool_use_id/);
  });

  it('stop_sequences end the text, and the message says which', T, async () => {
    const req = { model: MODEL, max_tokens: 24, temperature: 0, messages: [{ role: 'user', content: 'Count' }] };
    const full = textOf(await client().messages.create(req));
    const stop = cuttingStop(full);
    const cut = await client().messages.create({ ...req, stop_sequences: ['never-there', stop] });
    assert.equal(cut.stop_reason, 'stop_sequence');
    assert.equal(cut.stop_sequence, stop);
    assert.equal(textOf(cut), full.slice(0, full.indexOf(stop)));
    const streamed = await client().messages.stream({ ...req, stop_sequences: [stop] }).finalMessage();
    assert.equal(streamed.stop_reason, 'stop_sequence');
    assert.equal(streamed.stop_sequence, stop);
  });

  it('errors come in Anthropic\'s shape with the right status', T, async () => {
    const noMax = await client().messages.create({ model: MODEL, messages: ASK }).catch((e) => e);
    assert.ok(noMax instanceof Anthropic.BadRequestError, String(noMax));
    assert.deepEqual(Object.keys(noMax.error), ['type', 'error']);
    assert.equal(noMax.error.error.type, 'invalid_request_error');
    assert.match(noMax.error.error.message, /max_tokens/);

    const unknown = await client().messages.create({ model: 'no-such-model', max_tokens: 8, messages: ASK }).catch((e) => e);
    assert.ok(unknown instanceof Anthropic.NotFoundError, String(unknown));
    assert.equal(unknown.error.error.type, 'not_found_error');

    const cases = [
      [{ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AA==' } }] }] }, /image/],
      [{ messages: [{ role: 'system', content: 'x' }] }, /role/],
      [{ messages: [...ASK, { role: 'assistant', content: 'Sure' }] }, /prefill/],
      [{ messages: ASK, frobnicate: true }, /frobnicate/],
      [{ messages: ASK, temperature: 1.5 }, /temperature/],
      [{ messages: ASK, thinking: { type: 'enabled', budget_tokens: 100 } }, /budget_tokens/],
      [{ messages: ASK, tools: TOOLS, tool_choice: { type: 'tool', name: 'nope' } }, /tool_choice/],
      [{ messages: ASK, tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, /web_search/],
      [{ messages: ASK, stop_sequences: 'x' }, /stop_sequences/],
    ];
    for (const [body, message] of cases) {
      const r = await postJSON(srv.baseURL, '/v1/messages', { model: MODEL, max_tokens: 8, ...body });
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.json.type, 'error');
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.match(r.json.error.message, message, JSON.stringify(body));
    }
  });
});

describe('Anthropic Messages API with an API key', { timeout: HOOK_TIMEOUT_MS + 2 * T.timeout }, () => {
  const srv = useServer({ extraArgs: ['--api-key', 'sk-right'] });
  const client = (apiKey) => new Anthropic({ baseURL: srv.baseURL, apiKey, maxRetries: 0, timeout: 55_000 });

  it('takes the key as x-api-key (the SDK\'s way) and refuses a wrong one with authentication_error', T, async () => {
    const ok = await client('sk-right').messages.create({ model: MODEL, max_tokens: 4, messages: ASK });
    assert.equal(ok.type, 'message');
    const counted = await client('sk-right').messages.countTokens({ model: MODEL, messages: ASK });
    assert.ok(counted.input_tokens > 0);
    const wrong = await client('sk-wrong').messages.create({ model: MODEL, max_tokens: 4, messages: ASK }).catch((e) => e);
    assert.ok(wrong instanceof Anthropic.AuthenticationError, String(wrong));
    assert.equal(wrong.error.error.type, 'authentication_error');
    const bearer = await postJSON(srv.baseURL, '/v1/messages', { model: MODEL, max_tokens: 4, messages: ASK },
      { headers: { Authorization: 'Bearer sk-right' } });
    assert.equal(bearer.status, 200, bearer.text);
  });
});
