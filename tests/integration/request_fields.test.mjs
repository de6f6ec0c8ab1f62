// Every request field of the text endpoints is read, accepted with a documented meaning, or
// refused with an error naming it (README "Request fields"): nothing is dropped silently.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, postJSON, assertError, show, sleep, MODEL, TEST_TIMEOUT_MS } from '../e2e/helpers.mjs';

const T = { timeout: TEST_TIMEOUT_MS };
const RESPONSES = '/v1/responses';
const CHAT = '/v1/chat/completions';
const base = {
  [RESPONSES]: { model: MODEL, input: 'hi', max_output_tokens: 2 },
  [CHAT]: { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 },
};

// [endpoint, extra fields, the param the refusal names]
const TOOL = { type: 'function', name: 'f', parameters: { type: 'object' } };
const refused = [
  [RESPONSES, { tools: [{ type: 'web_search' }] }, 'tools[0].type'],
  [RESPONSES, { tools: [TOOL], tool_choice: { type: 'allowed_tools', mode: 'auto', tools: [] } }, 'tool_choice.type'],
  [CHAT, { tools: [{ type: 'custom', custom: { name: 'f' } }] }, 'tools[0].type'],
  [RESPONSES, { conversation: 'conv_1' }, 'conversation'],
  [RESPONSES, { prompt: { id: 'pmpt_1' } }, 'prompt'],
  [RESPONSES, { include: ['reasoning.encrypted_content'] }, 'include[0]'],
  [RESPONSES, { include: ['message.output_text.logprobs', 'file_search_call.results'] }, 'include[1]'],
  [RESPONSES, { service_tier: 'flex' }, 'service_tier'],
  [RESPONSES, { prompt_cache_retention: '24h' }, 'prompt_cache_retention'],
  [RESPONSES, { reasoning: { effort: 'minimal' } }, 'reasoning.effort'],
  [RESPONSES, { reasoning: { summary: 'auto' } }, 'reasoning.summary'],
  [RESPONSES, { stream: true, stream_options: { include_obfuscation: true } }, 'stream_options.include_obfuscation'],
  [CHAT, { store: true }, 'store'],
  [CHAT, { metadata: { k: 'v' } }, 'metadata'],
  [CHAT, { logit_bias: { 1: 5 } }, 'logit_bias'],
  [CHAT, { audio: { voice: 'alloy', format: 'wav' } }, 'audio'],
  [CHAT, { modalities: ['text', 'audio'] }, 'modalities[1]'],
  [CHAT, { prediction: { type: 'content', content: 'x' } }, 'prediction'],
  [CHAT, { web_search_options: {} }, 'web_search_options'],
  [CHAT, { reasoning_effort: 'minimal' }, 'reasoning_effort'],
  [CHAT, { verbosity: 'low' }, 'verbosity'],
  [CHAT, { functions: [{ name: 'f' }] }, 'functions'],
  [CHAT, { function_call: 'auto' }, 'function_call'],
  [CHAT, { service_tier: 'priority' }, 'service_tier'],
  [CHAT, { stream: true, stream_options: { include_obfuscation: true } }, 'stream_options.include_obfuscation'],
];

// Fields accepted with their documented meaning (or at the value that means "as usual").
const accepted = [
  [RESPONSES, { tools: [], tool_choice: 'auto', parallel_tool_calls: true }],
  [CHAT, { tools: [], tool_choice: 'none', parallel_tool_calls: false }],
  [RESPONSES, { tools: [TOOL], tool_choice: 'none', reasoning: { effort: 'high' } }],
  [CHAT, { tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: 'none', reasoning_effort: 'low' }],
  [RESPONSES, { background: false, include: [], truncation: 'disabled', service_tier: 'auto' }],
  [RESPONSES, { user: 'end-user-7', prompt_cache_key: 'k', prompt_cache_retention: 'in-memory' }],
  [RESPONSES, { reasoning: { effort: null, summary: null }, max_tool_calls: 3, top_logprobs: 0 }],
  [RESPONSES, { conversation: null, prompt: null, safety_identifier: 'sid-1' }],
  [RESPONSES, { stream: true, stream_options: { include_obfuscation: false } }],
  [RESPONSES, { truncation: 'auto', include: ['message.output_text.logprobs'], top_logprobs: 2 }],
  [CHAT, { store: false, metadata: {}, modalities: ['text'], service_tier: 'default' }],
  [CHAT, { user: 'end-user-8', prompt_cache_key: 'k', logit_bias: null, audio: null }],
  [CHAT, { logit_bias: {} }],
  [CHAT, { stream: true, stream_options: { include_usage: true, include_obfuscation: false } }],
];

describe('request fields of the text endpoints', () => {
  const srv = useServer();

  it('a field the OpenAI reference does not have is a 400 unknown_parameter naming it', T, async () => {
    for (const p of [RESPONSES, CHAT]) {
      const r = await postJSON(srv.baseURL, p, { ...base[p], temprature: 0.5 });
      assertError(r, { status: 400, type: 'invalid_request_error', param: 'temprature', code: 'unknown_parameter', what: `POST ${p}` });
    }
    const r = await postJSON(srv.baseURL, CHAT, { ...base[CHAT], stream: true, stream_options: { include_usage: true, inclde: 1 } });
    assertError(r, { status: 400, param: 'stream_options.inclde', code: 'unknown_parameter', what: 'stream_options typo' });
    const r2 = await postJSON(srv.baseURL, RESPONSES, { ...base[RESPONSES], stream: true, stream_options: { include_usage: true } });
    assertError(r2, { status: 400, param: 'stream_options.include_usage', code: 'unknown_parameter', what: 'include_usage on responses' });
  });

  it('a field that is not offered is a 400 UNSUPPORTED naming it', T, async () => {
    const failures = [];
    for (const [p, extra, param] of refused) {
      const r = await postJSON(srv.baseURL, p, { ...base[p], ...extra });
      try {
        assertError(r, { status: 400, type: 'invalid_request_error', param, code: 'UNSUPPORTED', what: `POST ${p} ${JSON.stringify(extra)}` });
      } catch (e) {
        failures.push(e.message);
      }
    }
    assert.equal(failures.length, 0, failures.join('\n'));
  });

  it('fields accepted at their documented meaning answer 200', T, async () => {
    for (const [p, extra] of accepted) {
      const r = await postJSON(srv.baseURL, p, { ...base[p], ...extra });
      assert.equal(r.status, 200, show(`POST ${p} ${JSON.stringify(extra)}`, r));
    }
  });

  it('user and safety_identifier go into the access log', T, async () => {
    const r = await postJSON(srv.baseURL, CHAT, { ...base[CHAT], user: 'alice-42' });
    assert.equal(r.status, 200, show('chat with user', r));
    const r2 = await postJSON(srv.baseURL, RESPONSES, { ...base[RESPONSES], safety_identifier: 'bob-43' });
    assert.equal(r2.status, 200, show('responses with safety_identifier', r2));
    for (let i = 0; i < 50 && !/user=bob-43/.test(srv.server.log); ++i) await sleep(20);
    assert.match(srv.server.log, /access .*user=alice-42/);
    assert.match(srv.server.log, /access .*user=bob-43/);
  });
});
