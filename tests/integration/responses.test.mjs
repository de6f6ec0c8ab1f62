// POST/GET/DELETE /v1/responses with plain fetch.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  useServer, checkValidationCases, getJSON, postJSON, postSSE, deleteJSON, assertError, show,
  responseText, checkResponseStream, assertResponseUsage, pseudoWords,
  MODEL, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';

const T = { timeout: TEST_TIMEOUT_MS };

function assertResponseObject(resp, req, ctx) {
  assert.ok(resp && typeof resp === 'object', `no JSON body ${ctx}`);
  assert.ok(typeof resp.id === 'string' && resp.id.startsWith('resp_'), `id must start with resp_ ${ctx}`);
  assert.equal(resp.object, 'response', ctx);
  assert.ok(Number.isInteger(resp.created_at) && resp.created_at > 1_600_000_000, `created_at (unix seconds) ${ctx}`);
  assert.ok(['completed', 'incomplete'].includes(resp.status), `status ${ctx}`);
  assert.equal(resp.model, MODEL, ctx);
  assert.ok(Array.isArray(resp.output) && resp.output.length >= 1, `output must be a non-empty array ${ctx}`);
  const msg = resp.output.find((o) => o.type === 'message');
  assert.ok(msg, `output must contain a message item ${ctx}`);
  assert.ok(typeof msg.id === 'string' && msg.id.startsWith('msg_'), `message id must start with msg_ ${ctx}`);
  assert.equal(msg.role, 'assistant', ctx);
  assert.equal(typeof msg.status, 'string', `message status ${ctx}`);
  assert.ok(Array.isArray(msg.content) && msg.content.length >= 1, `message content ${ctx}`);
  const part = msg.content[0];
  assert.equal(part.type, 'output_text', ctx);
  assert.equal(typeof part.text, 'string', ctx);
  assert.deepEqual(part.annotations, [], `annotations must be [] ${ctx}`);
  assertResponseUsage(resp.usage, ctx);
  if (resp.status === 'incomplete') {
    assert.deepEqual(resp.incomplete_details, { reason: 'max_output_tokens' }, `incomplete_details ${ctx}`);
  }
  if (req) {
    if ('max_output_tokens' in req) {
      assert.equal(resp.max_output_tokens, req.max_output_tokens, `max_output_tokens echo ${ctx}`);
      assert.ok(resp.usage.output_tokens <= req.max_output_tokens, `output_tokens <= max_output_tokens ${ctx}`);
      if (resp.status === 'incomplete') assert.equal(resp.usage.output_tokens, req.max_output_tokens, `incomplete => output_tokens == max_output_tokens ${ctx}`);
    }
    if ('temperature' in req) assert.equal(resp.temperature, req.temperature, `temperature echo ${ctx}`);
    if ('top_p' in req) assert.equal(resp.top_p, req.top_p, `top_p echo ${ctx}`);
    if ('instructions' in req) assert.equal(resp.instructions, req.instructions, `instructions echo ${ctx}`);
    assert.equal(resp.store, req.store ?? true, `store echo (default true) ${ctx}`);
    assert.equal(resp.previous_response_id ?? null, req.previous_response_id ?? null, `previous_response_id echo ${ctx}`);
  }
}

async function create(base, req) {
  const r = await postJSON(base, '/v1/responses', req);
  const ctx = show(`POST /v1/responses ${JSON.stringify(req).slice(0, 300)}`, r);
  assert.equal(r.status, 200, ctx);
  assertResponseObject(r.json, req, ctx);
  return r.json;
}

describe('/v1/responses', { timeout: HOOK_TIMEOUT_MS + 22 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer();

  it('non-stream: Response object shape, incomplete at max_output_tokens 5', T, async () => {
    const req = { model: MODEL, input: 'Tell me a story about a dragon.', max_output_tokens: 5, temperature: 0 };
    const resp = await create(srv.baseURL, req);
    assert.ok(resp.usage.output_tokens <= 5);
    // a random model almost always runs to the limit
    if (resp.status === 'incomplete') assert.equal(resp.usage.output_tokens, 5);
  });

  it('greedy (temperature 0) is deterministic', T, async () => {
    const req = { model: MODEL, input: 'Deterministic please', max_output_tokens: 20, temperature: 0 };
    const a = await create(srv.baseURL, req);
    const b = await create(srv.baseURL, req);
    assert.equal(responseText(b), responseText(a));
    assert.equal(b.usage.output_tokens, a.usage.output_tokens);
    assert.equal(b.usage.input_tokens, a.usage.input_tokens);
    assert.notEqual(b.id, a.id, 'every response gets a new id');
  });

  it('accepts instructions and echoes them; they count as input', T, async () => {
    const base = { model: MODEL, input: 'Hello', max_output_tokens: 3, temperature: 0 };
    const plain = await create(srv.baseURL, base);
    const withInstr = await create(srv.baseURL, { ...base, instructions: 'You are a very helpful assistant that answers briefly.' });
    assert.ok(withInstr.usage.input_tokens > plain.usage.input_tokens,
      `instructions must add input tokens: ${withInstr.usage.input_tokens} vs ${plain.usage.input_tokens}`);
  });

  it('accepts message-array input in all documented forms', T, async () => {
    const forms = [
      [{ role: 'user', content: 'Hi there' }],
      [{ role: 'system', content: 'Be terse.' }, { role: 'user', content: 'Hi there' }],
      [{ role: 'developer', content: 'Be terse.' }, { role: 'user', content: [{ type: 'input_text', text: 'Hi there' }] }],
      [{ type: 'message', role: 'user', content: 'Hi there' }],
      [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hi' }, { type: 'input_text', text: ' there' }] }],
      [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }, { role: 'user', content: 'How are you?' }],
    ];
    for (const input of forms) {
      await create(srv.baseURL, { model: MODEL, input, max_output_tokens: 3, temperature: 0 });
    }
  });

  it('a string input equals the same text as a single user message', T, async () => {
    const a = await create(srv.baseURL, { model: MODEL, input: 'Same prompt', max_output_tokens: 10, temperature: 0 });
    const b = await create(srv.baseURL, { model: MODEL, input: [{ role: 'user', content: 'Same prompt' }], max_output_tokens: 10, temperature: 0 });
    const c = await create(srv.baseURL, { model: MODEL, input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Same prompt' }] }], max_output_tokens: 10, temperature: 0 });
    assert.equal(b.usage.input_tokens, a.usage.input_tokens);
    assert.equal(responseText(b), responseText(a));
    assert.equal(c.usage.input_tokens, a.usage.input_tokens);
    assert.equal(responseText(c), responseText(a));
  });

  it('accepts temperature > 0 and top_p and echoes them', T, async () => {
    const req = { model: MODEL, input: 'Sample me', max_output_tokens: 8, temperature: 0.7, top_p: 0.9 };
    await create(srv.baseURL, req);
  });

  it('stream: event sequence, deltas == done text == final text == non-stream text', T, async () => {
    const req = { model: MODEL, input: 'Stream a short poem', max_output_tokens: 24, temperature: 0 };
    const ns = await create(srv.baseURL, req);
    const r = await postSSE(srv.baseURL, '/v1/responses', { ...req, stream: true });
    assert.equal(r.status, 200, show('POST /v1/responses stream', r));
    assert.match(r.headers.get('content-type') || '', /text\/event-stream/);
    const s = checkResponseStream(r.events);
    assert.equal(s.deltaText, s.doneText, 'concatenated deltas must equal output_text.done text');
    assert.equal(responseText(s.final), s.doneText, 'final response text must equal output_text.done text');
    assert.equal(s.doneText, responseText(ns), 'streamed text must equal the non-stream greedy text');
    assert.equal(s.final.status, ns.status);
    assert.equal(s.final.usage.output_tokens, ns.usage.output_tokens);
    assert.equal(s.final.usage.input_tokens, ns.usage.input_tokens);
    assertResponseObject(s.final, req, 'final streamed response');
    if (s.final.status === 'incomplete') assert.equal(s.finalType, 'response.incomplete');
    // items in the per-item events are consistent
    const added = r.events[2].json;
    assert.equal(added.output_index, 0);
    assert.equal(added.item.type, 'message');
    const partAdded = r.events[3].json;
    assert.equal(partAdded.content_index, 0);
    assert.equal(partAdded.part.type, 'output_text');
    const itemDone = r.events[r.events.length - 2].json;
    assert.equal(itemDone.item.id, added.item.id);
    assert.equal(itemDone.item.content[0].text, s.doneText);
    assert.equal(r.events[0].json.response.status, 'in_progress');
  });

  it('stream: a stored streamed response can be retrieved', T, async () => {
    const r = await postSSE(srv.baseURL, '/v1/responses', { model: MODEL, input: 'store me streamed', max_output_tokens: 6, temperature: 0, stream: true });
    assert.equal(r.status, 200, show('POST /v1/responses stream', r));
    const s = checkResponseStream(r.events);
    const g = await getJSON(srv.baseURL, `/v1/responses/${s.final.id}`);
    assert.equal(g.status, 200, show(`GET /v1/responses/${s.final.id}`, g));
    assert.equal(g.json.id, s.final.id);
    assert.equal(responseText(g.json), s.doneText);
  });

  it('GET returns the stored response; DELETE removes it', T, async () => {
    const resp = await create(srv.baseURL, { model: MODEL, input: 'remember this', max_output_tokens: 8, temperature: 0 });
    const g = await getJSON(srv.baseURL, `/v1/responses/${resp.id}`);
    assert.equal(g.status, 200, show(`GET /v1/responses/${resp.id}`, g));
    assert.equal(g.json.id, resp.id);
    assert.equal(g.json.object, 'response');
    assert.equal(g.json.status, resp.status);
    assert.deepEqual(g.json.output, resp.output);
    assert.deepEqual(g.json.usage, resp.usage);
    const d = await deleteJSON(srv.baseURL, `/v1/responses/${resp.id}`);
    assert.equal(d.status, 200, show(`DELETE /v1/responses/${resp.id}`, d));
    assert.deepEqual(d.json, { id: resp.id, object: 'response.deleted', deleted: true });
    const g2 = await getJSON(srv.baseURL, `/v1/responses/${resp.id}`);
    assertError(g2, { status: 404, what: `GET /v1/responses/${resp.id} after DELETE` });
    const d2 = await deleteJSON(srv.baseURL, `/v1/responses/${resp.id}`);
    assertError(d2, { status: 404, what: `DELETE /v1/responses/${resp.id} twice` });
  });

  it('unknown response id: GET and DELETE answer 404', T, async () => {
    const g = await getJSON(srv.baseURL, '/v1/responses/resp_doesnotexist0000');
    assertError(g, { status: 404, what: 'GET /v1/responses/resp_doesnotexist0000' });
    const d = await deleteJSON(srv.baseURL, '/v1/responses/resp_doesnotexist0000');
    assertError(d, { status: 404, what: 'DELETE /v1/responses/resp_doesnotexist0000' });
  });

  it('store:false responses are not retrievable', T, async () => {
    const resp = await create(srv.baseURL, { model: MODEL, input: 'forget this', max_output_tokens: 4, temperature: 0, store: false });
    assert.equal(resp.store, false);
    const g = await getJSON(srv.baseURL, `/v1/responses/${resp.id}`);
    assertError(g, { status: 404, what: `GET /v1/responses/${resp.id} (store:false)` });
  });

  it('previous_response_id continues a stored conversation', T, async () => {
    const first = await create(srv.baseURL, { model: MODEL, input: 'My name is Ada.', max_output_tokens: 8, temperature: 0 });
    const second = await create(srv.baseURL, { model: MODEL, input: 'What is my name?', max_output_tokens: 8, temperature: 0, previous_response_id: first.id });
    assert.equal(second.previous_response_id, first.id);
    const alone = await create(srv.baseURL, { model: MODEL, input: 'What is my name?', max_output_tokens: 8, temperature: 0 });
    assert.ok(second.usage.input_tokens > first.usage.input_tokens,
      `continued request must include the conversation: input_tokens ${second.usage.input_tokens} vs first ${first.usage.input_tokens}`);
    assert.ok(second.usage.input_tokens > alone.usage.input_tokens,
      `continued input (${second.usage.input_tokens}) must be longer than the same input alone (${alone.usage.input_tokens})`);
    // a chain of three
    const third = await create(srv.baseURL, { model: MODEL, input: 'And again?', max_output_tokens: 4, temperature: 0, previous_response_id: second.id });
    assert.ok(third.usage.input_tokens > second.usage.input_tokens, 'chain of three grows the input');
    // the stored continuation records its previous id
    const g = await getJSON(srv.baseURL, `/v1/responses/${second.id}`);
    assert.equal(g.status, 200, show('GET continued response', g));
    assert.equal(g.json.previous_response_id, first.id);
  });

  it('previous_response_id to a store:false response or unknown id is an error', T, async () => {
    const r = await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, input: 'x', max_output_tokens: 2, previous_response_id: 'resp_unknown123' });
    assert.ok([400, 404].includes(r.status), show('unknown previous_response_id', r));
    assertError(r, { what: 'unknown previous_response_id' });
    const ns = await create(srv.baseURL, { model: MODEL, input: 'x', max_output_tokens: 2, temperature: 0, store: false });
    const r2 = await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, input: 'y', max_output_tokens: 2, previous_response_id: ns.id });
    assert.ok([400, 404].includes(r2.status), show('previous_response_id of a store:false response', r2));
    assertError(r2, { what: 'previous_response_id of a store:false response' });
  });

  it('metadata: stored with the response and echoed by POST, the stream and GET', T, async () => {
    const longest = { ['k'.repeat(64)]: 'v'.repeat(512), ['ключ'.repeat(16)]: 'é'.repeat(512) };  // limits are characters
    const metadata = { ...Object.fromEntries(Array.from({ length: 14 }, (_, i) => [`key${i}`, `value ${i}`])), ...longest };
    const resp = await create(srv.baseURL, { model: MODEL, input: 'tag me', max_output_tokens: 2, temperature: 0, metadata });
    assert.deepEqual(resp.metadata, metadata);
    const g = await getJSON(srv.baseURL, `/v1/responses/${resp.id}`);
    assert.equal(g.status, 200, show('GET with metadata', g));
    assert.deepEqual(g.json.metadata, metadata);
    const r = await postSSE(srv.baseURL, '/v1/responses', { model: MODEL, input: 'tag me', max_output_tokens: 2, temperature: 0, stream: true, metadata: { a: 'b' } });
    const s = checkResponseStream(r.events);
    assert.deepEqual(s.final.metadata, { a: 'b' });
    for (const absent of [{}, { metadata: null }]) {
      const plain = await create(srv.baseURL, { model: MODEL, input: 'no tags', max_output_tokens: 2, temperature: 0, ...absent });
      assert.deepEqual(plain.metadata, {}, 'absent or null metadata is an empty object');
    }
  });

  it('metadata past OpenAI\'s limits is a 400 naming metadata', T, async () => {
    const ok = { model: MODEL, input: 'hi', max_output_tokens: 2 };
    const pairs = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
    await checkValidationCases(srv.baseURL, '/v1/responses', [
      [{ ...ok, metadata: 'tag' }, 'metadata'],
      [{ ...ok, metadata: ['a', 'b'] }, 'metadata'],
      [{ ...ok, metadata: pairs(17) }, 'metadata'],
      [{ ...ok, metadata: { ['k'.repeat(65)]: 'v' } }, 'metadata'],
      [{ ...ok, metadata: { k: 'v'.repeat(513) } }, 'metadata'],
      [{ ...ok, metadata: { k: 7 } }, 'metadata'],
      [{ ...ok, metadata: { k: { nested: 'v' } } }, 'metadata'],
      [{ ...ok, metadata: { k: null } }, 'metadata'],
    ]);
  });

  it('request validation: 400 invalid_request_error naming the param', T, async () => {
    const cases = [
      [{ input: 'hi' }, 'model'],
      [{ model: 42, input: 'hi' }, 'model'],
      [{ model: MODEL }, 'input'],
      [{ model: MODEL, input: 42 }, 'input'],
      [{ model: MODEL, input: [{ role: 'wizard', content: 'hi' }] }, 'input', { paramPath: true }],
      [{ model: MODEL, input: 'hi', temperature: 'hot' }, 'temperature'],
      [{ model: MODEL, input: 'hi', temperature: -1 }, 'temperature'],
      [{ model: MODEL, input: 'hi', temperature: 3 }, 'temperature'],
      [{ model: MODEL, input: 'hi', top_p: 1.5 }, 'top_p'],
      [{ model: MODEL, input: 'hi', max_output_tokens: -1 }, 'max_output_tokens'],
      [{ model: MODEL, input: 'hi', max_output_tokens: 'lots' }, 'max_output_tokens'],
      [{ model: MODEL, input: 'hi', stream: 'yes' }, 'stream'],
    ];
    await checkValidationCases(srv.baseURL, '/v1/responses', cases);
  });

  it('a prompt longer than the context answers 400 mentioning the context', T, async () => {
    const long = pseudoWords(12_000);
    for (const input of [long, [{ role: 'user', content: long }]]) {
      const r = await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, input, max_output_tokens: 4 });
      const e = assertError(r, { status: 400, type: 'invalid_request_error', param: 'input', what: 'POST /v1/responses with a ~12000-char input (ctx 512)' });
      assert.match(e.message, /context/i, `message should mention the context: ${e.message}`);
    }
    // and the server still works
    await create(srv.baseURL, { model: MODEL, input: 'short', max_output_tokens: 2, temperature: 0 });
  });
});
