// Function tools on random weights: a forced call (tool_choice required or named) always names an
// offered function with arguments valid against its schema (checked with ajv), whatever the seed
// and temperature, through both APIs — on the same weights as safetensors and as GGUF (a template
// without tool support: the generic JSON call format) and on Qwen3 with its real tokenizer and
// template (Hermes <tool_call> calls). On random weights that holds only through constrained
// decoding. Then the round trips (function_call_output, role tool), the streamed call events and
// the requests that are refused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  useServer, postJSON, postSSE, getJSON, show, assertError, checkValidationCases,
  REPO_ROOT, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';
import { makeHfFixture, makeQwen3Fixture } from './hf_fixture.mjs';

const Ajv = createRequire(path.join(REPO_ROOT, 'tests/e2e/package.json'))('ajv').default;

const T = { timeout: 2 * TEST_TIMEOUT_MS };
const QWEN3 = 'qwen3-real';
const MODELS = ['llama-f32-hf', 'llama-f32-gguf', QWEN3];

// Bounded values, so that random weights finish a call well within the token limit.
const WEATHER = {
  type: 'object',
  properties: {
    city: { type: 'string', minLength: 1, maxLength: 6 },
    days: { type: 'integer', minimum: 1, maximum: 7 },
    unit: { enum: ['c', 'f'] },
  },
  required: ['city', 'days', 'unit'],
  additionalProperties: false,
};
const TIME = {
  type: 'object',
  properties: { zone: { type: 'string', pattern: '^[A-Z]{3}$' } },
  required: ['zone'],
  additionalProperties: false,
};
const ajv = new Ajv({ strict: false });
const VALIDATE = { get_weather: ajv.compile(WEATHER), get_time: ajv.compile(TIME) };

const RESPONSES_TOOLS = [
  { type: 'function', name: 'get_weather', description: 'Forecast for a city', parameters: WEATHER, strict: true },
  { type: 'function', name: 'get_time', description: 'The time in a zone', parameters: TIME, strict: true },
];
const CHAT_TOOLS = RESPONSES_TOOLS.map(({ type, ...fn }) => ({ type, function: fn }));
const MAX_TOKENS = 800;  // far more than the longest call the schemas admit, blanks included

function assertCall(name, args, ctx, want) {
  assert.ok(name in VALIDATE, `unknown function ${name} ${ctx}`);
  if (want) assert.equal(name, want, ctx);
  let value;
  assert.doesNotThrow(() => { value = JSON.parse(args); }, `arguments are not JSON ${ctx}: ${args}`);
  assert.ok(VALIDATE[name](value), `${ctx}: ${args}\n${JSON.stringify(VALIDATE[name].errors)}`);
}

describe('function tools', { timeout: HOOK_TIMEOUT_MS + 8 * T.timeout }, () => {
  const srv = useServer({
    fixture: false,
    parallel: 4,
    ctxSize: 2048,  // the tool list takes room, and the tiny vocabulary has short tokens
    setup: async ({ modelsDir }) => {
      await makeHfFixture('llama', 'f32', modelsDir);
      await makeQwen3Fixture(modelsDir, QWEN3);
    },
  });

  it('forced calls always validate: both APIs, generic and Hermes formats, both backends, seeds and temperatures >= 1', T, async () => {
    const runs = [];
    for (const model of MODELS.slice(0, 2)) {
      for (let seed = 1; seed <= 4; ++seed) {
        const temperature = [1, 1.5][seed % 2];
        const choice = seed % 2 ? 'required' : 'get_time';
        runs.push(['chat', model, seed, temperature, choice]);
        if (seed <= 2) runs.push(['responses', model, seed, temperature, choice]);
      }
    }
    // Qwen3's 151k-token vocabulary makes each constrained step dearer (seconds a call in the
    // sanitizer build): two runs, one at a time.
    const qwen = [['chat', QWEN3, 1, 1, 'required'], ['responses', QWEN3, 2, 1.5, 'get_time']];
    const batches = [];
    for (let i = 0; i < runs.length; i += 4) batches.push(runs.slice(i, i + 4));
    for (const run of qwen) batches.push([run]);
    for (const batch of batches) {
      await Promise.all(batch.map(async ([api, model, seed, temperature, choice]) => {
        const ctx = `(${api} ${model} seed ${seed} temperature ${temperature} choice ${choice})`;
        const named = choice !== 'required';
        if (api === 'chat') {
          const r = await postJSON(srv.baseURL, '/v1/chat/completions', {
            model, seed, temperature, max_tokens: MAX_TOKENS, parallel_tool_calls: false,
            messages: [{ role: 'user', content: 'What is the weather in Oslo?' }], tools: CHAT_TOOLS,
            tool_choice: named ? { type: 'function', function: { name: choice } } : choice,
          });
          assert.equal(r.status, 200, show(ctx, r));
          const { message, finish_reason } = r.json.choices[0];
          assert.equal(finish_reason, 'tool_calls', `${ctx}: ${JSON.stringify(message)}`);
          assert.equal(message.tool_calls.length, 1, ctx);
          const call = message.tool_calls[0];
          assert.match(call.id, /^call_/);
          assert.equal(call.type, 'function');
          assertCall(call.function.name, call.function.arguments, ctx, named ? choice : undefined);
        } else {
          const r = await postJSON(srv.baseURL, '/v1/responses', {
            model, temperature, max_output_tokens: MAX_TOKENS, parallel_tool_calls: false, store: false,
            input: 'What is the weather in Oslo?', tools: RESPONSES_TOOLS,
            tool_choice: named ? { type: 'function', name: choice } : choice,
          });
          assert.equal(r.status, 200, show(ctx, r));
          assert.equal(r.json.status, 'completed', `${ctx}: ${JSON.stringify(r.json.output)}`);
          const calls = r.json.output.filter((item) => item.type === 'function_call');
          assert.equal(calls.length, 1, `${ctx}: ${JSON.stringify(r.json.output)}`);
          assert.match(calls[0].id, /^fc_/);
          assert.equal(calls[0].status, 'completed');
          assertCall(calls[0].name, calls[0].arguments, ctx, named ? choice : undefined);
          assert.deepEqual(r.json.tool_choice, named ? { type: 'function', name: choice } : choice);
          assert.equal(r.json.parallel_tool_calls, false);
          assert.deepEqual(r.json.tools.map((t) => t.name), ['get_weather', 'get_time']);
        }
      }));
    }
  });

  it('the same weights as safetensors and as GGUF make the same greedy call', T, async () => {
    const calls = [];
    for (const model of MODELS.slice(0, 2)) {
      const r = await postJSON(srv.baseURL, '/v1/chat/completions', {
        model, temperature: 0, max_tokens: MAX_TOKENS, parallel_tool_calls: false,
        messages: [{ role: 'user', content: 'What is the weather in Oslo?' }], tools: CHAT_TOOLS, tool_choice: 'required',
      });
      assert.equal(r.status, 200, show(model, r));
      const { name, arguments: args } = r.json.choices[0].message.tool_calls[0].function;
      assertCall(name, args, `(${model} greedy)`);
      calls.push({ name, args: JSON.parse(args) });
    }
    assert.deepEqual(calls[1], calls[0]);
  });

  it('responses: the call streams as function_call events whose deltas add up', T, async () => {
    for (const model of [MODELS[0], QWEN3]) {
      const ctx = `(${model} stream)`;
      const s = await postSSE(srv.baseURL, '/v1/responses', {
        model, temperature: 1, max_output_tokens: MAX_TOKENS, stream: true, store: false,
        input: 'Weather?', tools: RESPONSES_TOOLS, tool_choice: 'required', parallel_tool_calls: false,
      });
      assert.equal(s.status, 200);
      const events = s.events.map((e) => e.json);
      events.forEach((e, i) => assert.equal(e.sequence_number, i, ctx));
      const added = events.find((e) => e.type === 'response.output_item.added' && e.item.type === 'function_call');
      assert.ok(added, `${ctx}: ${events.map((e) => e.type).join(', ')}`);
      assert.equal(added.item.arguments, '');
      assert.equal(added.item.status, 'in_progress');
      const deltas = events.filter((e) => e.type === 'response.function_call_arguments.delta');
      const done = events.find((e) => e.type === 'response.function_call_arguments.done');
      assert.ok(done, ctx);
      assert.equal(deltas.map((e) => e.delta).join(''), done.arguments, ctx);
      for (const e of [...deltas, done]) assert.equal(e.item_id, added.item.id, ctx);
      const itemDone = events.find((e) => e.type === 'response.output_item.done' && e.item.type === 'function_call');
      assert.equal(itemDone.item.arguments, done.arguments);
      assert.equal(itemDone.item.call_id, added.item.call_id);
      assertCall(itemDone.item.name, done.arguments, ctx);
      const final = events.at(-1);
      assert.equal(final.type, 'response.completed', ctx);
      assert.deepEqual(final.response.output.find((i) => i.type === 'function_call'), itemDone.item);
    }
  });

  it('chat: streamed tool_calls carry index, id and name first, then argument pieces', T, async () => {
    for (const model of [MODELS[1], QWEN3]) {
      const ctx = `(${model} chat stream)`;
      const s = await postSSE(srv.baseURL, '/v1/chat/completions', {
        model, seed: 5, temperature: 1, max_tokens: MAX_TOKENS, stream: true, parallel_tool_calls: false,
        messages: [{ role: 'user', content: 'Weather?' }], tools: CHAT_TOOLS, tool_choice: 'required',
      });
      assert.equal(s.status, 200);
      const chunks = s.events.filter((e) => e.data !== '[DONE]').map((e) => e.json);
      const pieces = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
      assert.ok(pieces.length >= 1, ctx);
      assert.equal(pieces[0].index, 0);
      assert.match(pieces[0].id, /^call_/);
      assert.equal(pieces[0].type, 'function');
      for (const p of pieces.slice(1)) assert.equal(p.id, undefined, ctx);
      assertCall(pieces[0].function.name, pieces.map((p) => p.function.arguments).join(''), ctx);
      assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls', ctx);
    }
  });

  it('responses: outputs of calls continue the conversation, stored or sent back; an unknown call_id is a 400', T, async () => {
    const model = MODELS[0];
    const first = await postJSON(srv.baseURL, '/v1/responses', {
      model, max_output_tokens: MAX_TOKENS, input: 'Weather in Oslo?', tools: RESPONSES_TOOLS,
      tool_choice: { type: 'function', name: 'get_weather' }, parallel_tool_calls: false,
    });
    assert.equal(first.status, 200, show('first', first));
    const call = first.json.output.find((i) => i.type === 'function_call');
    assert.ok(call, JSON.stringify(first.json.output));
    const output = { type: 'function_call_output', call_id: call.call_id, output: '{"temp": 21}' };

    const stored = await postJSON(srv.baseURL, '/v1/responses', {
      model, max_output_tokens: 8, previous_response_id: first.json.id, input: [output], tools: RESPONSES_TOOLS,
    });
    assert.equal(stored.status, 200, show('after previous_response_id', stored));
    const items = await getJSON(srv.baseURL, `/v1/responses/${stored.json.id}/input_items?order=asc`);
    assert.equal(items.status, 200);
    const types = items.json.data.map((i) => i.type);
    assert.deepEqual(types, ['message', 'function_call', 'function_call_output'], JSON.stringify(items.json.data));
    assert.equal(items.json.data[1].call_id, call.call_id);
    assert.equal(items.json.data[1].arguments, call.arguments);
    assert.equal(items.json.data[2].output, '{"temp": 21}');

    const stateless = await postJSON(srv.baseURL, '/v1/responses', {
      model, max_output_tokens: 8, store: false, tools: RESPONSES_TOOLS,
      input: [{ role: 'user', content: 'Weather in Oslo?' }, call, output],
    });
    assert.equal(stateless.status, 200, show('stateless', stateless));
    assert.ok(stateless.json.usage.input_tokens > stored.json.usage.input_tokens - 8, 'the call and its output are in the prompt');

    const unknown = await postJSON(srv.baseURL, '/v1/responses', {
      model, max_output_tokens: 8, previous_response_id: first.json.id,
      input: [{ ...output, call_id: 'call_nope' }],
    });
    assertError(unknown, { status: 400, param: 'input[0].call_id' });
  });

  it('chat: assistant tool_calls and tool messages make a conversation; an unknown tool_call_id is a 400', T, async () => {
    const messages = [
      { role: 'user', content: 'Weather in Oslo?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo","days":1,"unit":"c"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 21}' },
    ];
    for (const model of MODELS) {
      const r = await postJSON(srv.baseURL, '/v1/chat/completions', { model, messages, tools: CHAT_TOOLS, max_tokens: 8 });
      assert.equal(r.status, 200, show(model, r));
    }
    const bad = structuredClone(messages);
    bad[2].tool_call_id = 'call_2';
    assertError(await postJSON(srv.baseURL, '/v1/chat/completions', { model: MODELS[0], messages: bad, max_tokens: 8 }),
      { status: 400, param: 'messages[2].tool_call_id' });
  });

  it('tool_choice none answers with a message; auto may call or answer, and a call validates', T, async () => {
    const model = MODELS[0];
    const none = await postJSON(srv.baseURL, '/v1/responses', {
      model, max_output_tokens: 16, store: false, input: 'Hi', tools: RESPONSES_TOOLS, tool_choice: 'none',
    });
    assert.equal(none.status, 200, show('none', none));
    assert.deepEqual(none.json.output.map((i) => i.type), ['message']);
    for (let seed = 1; seed <= 3; ++seed) {
      const r = await postJSON(srv.baseURL, '/v1/chat/completions', {
        model, seed, max_tokens: MAX_TOKENS, messages: [{ role: 'user', content: 'Hi' }], tools: CHAT_TOOLS,
        parallel_tool_calls: false,
      });
      assert.equal(r.status, 200, show('auto', r));
      for (const call of r.json.choices[0].message.tool_calls ?? []) {
        assertCall(call.function.name, call.function.arguments, `(auto seed ${seed})`);
      }
    }
  });

  it('a JSON response format beside auto tools: each answer is a valid call or valid JSON', T, async () => {
    const answer = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false };
    const validateAnswer = ajv.compile(answer);
    for (const model of [MODELS[0], QWEN3]) {
      for (let seed = 1; seed <= 2; ++seed) {
        const ctx = `(${model} seed ${seed})`;
        const r = await postJSON(srv.baseURL, '/v1/chat/completions', {
          model, seed, temperature: 1, max_tokens: MAX_TOKENS, messages: [{ role: 'user', content: 'Weather?' }],
          tools: CHAT_TOOLS, parallel_tool_calls: false,
          response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: answer, strict: true } },
        });
        assert.equal(r.status, 200, show(ctx, r));
        const { message, finish_reason } = r.json.choices[0];
        if (message.tool_calls) {
          assert.equal(finish_reason, 'tool_calls', ctx);
          assertCall(message.tool_calls[0].function.name, message.tool_calls[0].function.arguments, ctx);
        } else {
          assert.equal(finish_reason, 'stop', ctx);
          assert.ok(validateAnswer(JSON.parse(message.content)), `${ctx}: ${message.content}`);
        }
      }
    }
  });

  it('refuses what it cannot honour, naming the field', T, async () => {
    const model = MODELS[0];
    const base = { model, input: 'x', max_output_tokens: 4 };
    for (const type of ['web_search', 'file_search', 'code_interpreter', 'mcp', 'image_generation']) {
      assertError(await postJSON(srv.baseURL, '/v1/responses', { ...base, tools: [{ type }] }),
        { status: 400, param: 'tools[0].type', code: 'UNSUPPORTED', what: type });
    }
    await checkValidationCases(srv.baseURL, '/v1/responses', [
      [{ ...base, tools: RESPONSES_TOOLS, tool_choice: { type: 'function', name: 'nope' } }, 'tool_choice.name'],
      [{ ...base, tool_choice: 'required' }, 'tool_choice'],
      [{ ...base, tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: { d: { type: 'string', format: 'date' } } } }] },
        'tools[0].parameters.properties.d.format'],
      [{ ...base, tools: [{ type: 'function', name: 'bad name' }] }, 'tools[0].name'],
      [{ ...base, tools: [RESPONSES_TOOLS[0], RESPONSES_TOOLS[0]] }, 'tools[1]'],
      [{ ...base, input: [{ type: 'function_call_output', call_id: 'call_x', output: 'y' }] }, 'input[0].call_id'],
      [{ ...base, reasoning: { effort: 'extreme' } }, 'reasoning.effort'],
    ]);
    await checkValidationCases(srv.baseURL, '/v1/chat/completions', [
      [{ model, messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'array' } } }] },
        'tools[0].function.parameters.type'],
      [{ model, messages: [{ role: 'user', content: 'x' }], tools: CHAT_TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } },
        'tool_choice.function.name'],
    ]);
  });
});
