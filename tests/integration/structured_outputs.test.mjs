// Structured outputs on random weights: whatever the seed and temperature, a json_schema answer
// validates against its schema (checked with ajv), through both APIs and both backends (the same
// weights as safetensors and as GGUF). On random weights that holds only through constrained
// decoding. json_object gives an object; a schema keyword we cannot enforce is a 400 naming it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import {
  useServer, postJSON, postSSE, show, responseText, checkResponseStream, checkChatStream,
  checkValidationCases, REPO_ROOT, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';
import { makeHfFixture } from './hf_fixture.mjs';

// ajv, the JSON Schema validator, from the test packages (tests/e2e/package.json).
const Ajv = createRequire(path.join(REPO_ROOT, 'tests/e2e/package.json'))('ajv').default;

const T = { timeout: TEST_TIMEOUT_MS };
const MODELS = ['llama-f32-hf', 'llama-f32-gguf'];

// Every supported keyword, with bounds that keep each answer short (random weights seldom close
// an unbounded string).
const SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 6, description: 'who' },
    age: { type: 'integer', minimum: 18, maximum: 99 },
    tags: { type: 'array', items: { enum: ['red', 'green', 7, null] }, minItems: 1, maxItems: 3 },
    code: { type: 'string', pattern: '^[A-Z]{2}-[0-9]{2}$' },
    kind: { oneOf: [{ const: 'point' }, { type: 'boolean' }] },
    where: { $ref: '#/$defs/point' },
    note: { anyOf: [{ type: 'null' }, { type: 'string', maxLength: 3 }] },
  },
  required: ['name', 'age', 'tags', 'code', 'where'],
  additionalProperties: false,
  $defs: {
    point: {
      type: 'object',
      properties: { x: { type: 'integer', minimum: -9, maximum: 9 }, up: { type: 'boolean' } },
      required: ['x', 'up'],
      additionalProperties: false,
    },
  },
};
const validate = new Ajv({ strict: false }).compile(SCHEMA);
const MAX_TOKENS = 400;  // far more than the longest answer the schema admits

function chatBody(model, seed, temperature, format) {
  return {
    model, seed, temperature, max_tokens: MAX_TOKENS,
    messages: [{ role: 'user', content: 'Describe a person as JSON.' }],
    response_format: format,
  };
}

// The Responses API has no seed: each of its runs draws a random one.
function responsesBody(model, temperature, format) {
  return {
    model, temperature, max_output_tokens: MAX_TOKENS, store: false,
    input: 'Describe a person as JSON.', text: { format },
  };
}

const CHAT_SCHEMA = { type: 'json_schema', json_schema: { name: 'person', schema: SCHEMA, strict: true } };
const RESPONSES_SCHEMA = { type: 'json_schema', name: 'person', schema: SCHEMA, strict: true };

function assertValid(text, ctx) {
  let value;
  assert.doesNotThrow(() => { value = JSON.parse(text); }, `not JSON ${ctx}: ${text}`);
  assert.ok(validate(value), `${ctx}: ${text}\n${JSON.stringify(validate.errors)}`);
}

describe('structured outputs', { timeout: HOOK_TIMEOUT_MS + 6 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({
    fixture: false,
    parallel: 4,
    setup: async ({ modelsDir }) => { await makeHfFixture('llama', 'f32', modelsDir); },
  });

  it('json_schema answers always validate: both APIs, both backends, many seeds, temperature >= 1', T, async () => {
    const runs = [];
    for (const model of MODELS) {
      for (let seed = 1; seed <= 10; ++seed) {
        const temperature = [1, 1.5, 2][seed % 3];
        runs.push(['chat', model, seed, temperature]);
        runs.push(['responses', model, seed, temperature]);
      }
    }
    // Four at a time, as the server's --parallel runs them.
    for (let i = 0; i < runs.length; i += 4) {
      await Promise.all(runs.slice(i, i + 4).map(async ([api, model, seed, temperature]) => {
        const ctx = `(${api} ${model} ${api === 'chat' ? `seed ${seed}` : 'random seed'} temperature ${temperature})`;
        if (api === 'chat') {
          const r = await postJSON(srv.baseURL, '/v1/chat/completions', chatBody(model, seed, temperature, CHAT_SCHEMA));
          assert.equal(r.status, 200, show(ctx, r));
          assert.equal(r.json.choices[0].finish_reason, 'stop', ctx);
          assertValid(r.json.choices[0].message.content, ctx);
        } else {
          const r = await postJSON(srv.baseURL, '/v1/responses', responsesBody(model, temperature, RESPONSES_SCHEMA));
          assert.equal(r.status, 200, show(ctx, r));
          assert.equal(r.json.status, 'completed', ctx);
          assert.deepEqual(r.json.text.format, { ...RESPONSES_SCHEMA, description: null }, `text.format echo ${ctx}`);
          assertValid(responseText(r.json), ctx);
        }
      }));
    }
  });

  it('streamed json_schema answers validate too', T, async () => {
    for (const model of MODELS) {
      const responses = await postSSE(srv.baseURL, '/v1/responses', { ...responsesBody(model, 1.5, RESPONSES_SCHEMA), stream: true });
      assert.equal(responses.status, 200);
      assertValid(checkResponseStream(responses.events, `(${model} stream)`).doneText, `(responses stream ${model})`);
      const chat = await postSSE(srv.baseURL, '/v1/chat/completions', { ...chatBody(model, 12, 1.5, CHAT_SCHEMA), stream: true });
      assert.equal(chat.status, 200);
      assertValid(checkChatStream(chat.events, { model }, `(${model} chat stream)`).content, `(chat stream ${model})`);
    }
  });

  it('json_object answers are JSON objects; text is free text', T, async () => {
    for (const model of MODELS) {
      // Any object, strings unbounded: on random weights some answers run out of tokens (they
      // still start as an object); every one that ends is an object.
      let finished = 0;
      for (let seed = 1; seed <= 8; ++seed) {
        const ctx = `(json_object ${model} seed ${seed})`;
        const r = await postJSON(srv.baseURL, '/v1/chat/completions', { ...chatBody(model, seed, 1, { type: 'json_object' }), max_tokens: 200 });
        assert.equal(r.status, 200, show(ctx, r));
        const text = r.json.choices[0].message.content;
        assert.ok(text.trimStart().startsWith('{'), `${ctx}: ${text}`);
        if (r.json.choices[0].finish_reason === 'length') continue;
        const value = JSON.parse(text);
        assert.ok(value && typeof value === 'object' && !Array.isArray(value), `${ctx}: ${text}`);
        ++finished;
      }
      assert.ok(finished >= 4, `only ${finished} of 8 json_object answers finished (${model})`);
      const plain = await postJSON(srv.baseURL, '/v1/responses', responsesBody(model, 1, { type: 'text' }));
      assert.equal(plain.status, 200, show('text format', plain));
      assert.deepEqual(plain.json.text.format, { type: 'text' });
      const object = await postJSON(srv.baseURL, '/v1/responses', responsesBody(model, 1, { type: 'json_object' }));
      assert.equal(object.status, 200, show('json_object format', object));
      assert.deepEqual(object.json.text.format, { type: 'json_object' });
      assert.ok(responseText(object.json).trimStart().startsWith('{'), responseText(object.json));
    }
  });

  it('an unsupported schema keyword is a 400 naming its path, in both APIs', T, async () => {
    const bad = { type: 'object', properties: { age: { type: 'integer', multipleOf: 2 } } };
    const model = MODELS[0];
    await checkValidationCases(srv.baseURL, '/v1/chat/completions', [
      [chatBody(model, 1, 1, { type: 'json_schema', json_schema: { name: 'p', schema: bad } }),
        'response_format.json_schema.schema.properties.age.multipleOf'],
      [chatBody(model, 1, 1, { type: 'json_schema', json_schema: { name: 'p', schema: { type: 'string', format: 'email' } } }),
        'response_format.json_schema.schema.format'],
      [chatBody(model, 1, 1, { type: 'yaml' }), 'response_format.type'],
    ]);
    await checkValidationCases(srv.baseURL, '/v1/responses', [
      [responsesBody(model, 1, { type: 'json_schema', name: 'p', schema: bad }),
        'text.format.schema.properties.age.multipleOf'],
      [responsesBody(model, 1, { type: 'json_schema', name: 'p', schema: { type: 'number', minimum: 0 } }),
        'text.format.schema.minimum'],
      [responsesBody(model, 1, { type: 'json_schema', name: 'p' }), 'text.format.schema'],
    ]);
  });
});
