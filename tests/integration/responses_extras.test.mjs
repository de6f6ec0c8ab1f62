// The Responses API beyond create/get/delete: input_items, background responses with polling and
// cancel (across restarts too), truncation: "auto", and output text logprobs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  useServer, startServer, getJSON, postJSON, postSSE, assertError, show, responseText, pseudoWords, sleep,
  MODEL, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';

const T = { timeout: TEST_TIMEOUT_MS };
const RESPONSES = '/v1/responses';
const endless = { model: MODEL, input: 'Go on forever', temperature: 0, max_output_tokens: 12000 };

async function create(baseURL, body) {
  const r = await postJSON(baseURL, RESPONSES, { model: MODEL, max_output_tokens: 4, temperature: 0, ...body });
  assert.equal(r.status, 200, show(`POST ${RESPONSES} ${JSON.stringify(body).slice(0, 200)}`, r));
  return r.json;
}

// Polls a background response until it is no longer queued or in progress.
async function settled(baseURL, id, ms = 20_000) {
  const until = Date.now() + ms;
  for (;;) {
    const r = await getJSON(baseURL, `${RESPONSES}/${id}`);
    assert.equal(r.status, 200, show(`GET ${id}`, r));
    if (!['queued', 'in_progress'].includes(r.json.status)) return r.json;
    assert.ok(Date.now() < until, `${id} still ${r.json.status} after ${ms} ms`);
    await sleep(50);
  }
}

const items = async (baseURL, id, query = '') => {
  const r = await getJSON(baseURL, `${RESPONSES}/${id}/input_items${query}`);
  assert.equal(r.status, 200, show(`input_items ${query}`, r));
  return r.json;
};

describe('responses: input_items, background, logprobs', { timeout: HOOK_TIMEOUT_MS + 6 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({ ctxSize: 16384, parallel: 2 });

  it('input_items lists what a response was given, newest first, paged by limit/after/order', T, async () => {
    const first = await create(srv.baseURL, {
      instructions: 'Be brief.',
      input: [
        { role: 'user', content: 'one' },
        { role: 'assistant', content: [{ type: 'output_text', text: 'two' }] },
        { role: 'user', content: [{ type: 'input_text', text: 'three' }] },
      ],
    });
    const second = await create(srv.baseURL, { input: 'four', previous_response_id: first.id });
    const all = await items(srv.baseURL, second.id);
    assert.equal(all.object, 'list');
    assert.equal(all.has_more, false);
    // The history (the first response's input and output), then this input; the instructions are not an item.
    const texts = all.data.map((i) => i.content.map((p) => p.text).join(''));
    assert.deepEqual(texts, ['four', responseText(first), 'three', 'two', 'one']);
    assert.deepEqual(all.data.map((i) => i.role), ['user', 'assistant', 'user', 'assistant', 'user']);
    assert.equal(all.data[1].id, first.output.find((o) => o.type === 'message').id, 'the answer keeps its output item id');
    for (const item of all.data) {
      assert.match(item.id, /^msg_/);
      assert.equal(item.type, 'message');
      assert.equal(item.content[0].type, item.role === 'assistant' ? 'output_text' : 'input_text');
    }
    assert.equal(new Set(all.data.map((i) => i.id)).size, 5, 'ids are unique');
    assert.equal(all.first_id, all.data[0].id);
    assert.equal(all.last_id, all.data[4].id);
    // The first response's own items: its input only.
    assert.deepEqual((await items(srv.baseURL, first.id)).data.map((i) => i.id), all.data.slice(2).map((i) => i.id));

    // Pages of two, oldest first, walked with after.
    const ascending = [...all.data].reverse().map((i) => i.id);
    const walked = [];
    let after = '';
    for (let page = 0; page < 3; ++page) {
      const p = await items(srv.baseURL, second.id, `?limit=2&order=asc${after}`);
      walked.push(...p.data.map((i) => i.id));
      assert.equal(p.has_more, page < 2, `has_more on page ${page}`);
      after = `&after=${p.last_id}`;
    }
    assert.deepEqual(walked, ascending);
    const older = await items(srv.baseURL, second.id, `?limit=1&after=${all.data[1].id}`);
    assert.deepEqual(older.data.map((i) => i.id), [all.data[2].id], 'after in descending order gives older items');

    assertError(await getJSON(srv.baseURL, `${RESPONSES}/resp_nope/input_items`), { status: 404, what: 'unknown response' });
    for (const [query, param] of [['?limit=0', 'limit'], ['?limit=101', 'limit'], ['?limit=x', 'limit'], ['?order=up', 'order'],
      ['?after=msg_nope', 'after'], ['?include=message.output_text.logprobs', 'include'], ['?limt=2', 'limt']]) {
      assertError(await getJSON(srv.baseURL, `${RESPONSES}/${second.id}/input_items${query}`), { status: 400, param, what: query });
    }
  });

  it('a background response answers at once in progress and is polled to its end', T, async () => {
    const started = await create(srv.baseURL, { input: 'Say something', max_output_tokens: 8, background: true });
    assert.equal(started.background, true);
    assert.ok(['queued', 'in_progress'].includes(started.status), show('status', { json: started }));
    assert.equal(started.usage, null);
    const done = await settled(srv.baseURL, started.id);
    assert.ok(['completed', 'incomplete'].includes(done.status), show('settled', { json: done }));
    assert.equal(done.background, true);
    assert.equal(typeof responseText(done), 'string');
    assert.ok(done.usage.output_tokens > 0);
    // It continues like any stored response.
    const next = await create(srv.baseURL, { input: 'More', previous_response_id: started.id });
    assert.ok(next.usage.input_tokens > done.usage.input_tokens);
    // Cancelling one that ended answers it unchanged.
    const again = await postJSON(srv.baseURL, `${RESPONSES}/${started.id}/cancel`);
    assert.equal(again.status, 200, show('cancel after the end', again));
    assert.deepEqual(again.json, done);
  });

  it('cancel ends a long background generation; refusals name the field', T, async () => {
    const started = await create(srv.baseURL, { ...endless, background: true });
    await sleep(300);
    const running = await getJSON(srv.baseURL, `${RESPONSES}/${started.id}`);
    assert.equal(running.json.status, 'in_progress', show('still running', running));
    assertError(await postJSON(srv.baseURL, RESPONSES, { model: MODEL, input: 'x', previous_response_id: started.id }),
      { status: 400, param: 'previous_response_id', what: 'continuing a response in progress' });
    const t0 = Date.now();
    const cancelled = await postJSON(srv.baseURL, `${RESPONSES}/${started.id}/cancel`);
    assert.equal(cancelled.status, 200, show('cancel', cancelled));
    assert.equal(cancelled.json.status, 'cancelled');
    assert.ok(Date.now() - t0 < 5000, 'cancel returns promptly');
    const after = await getJSON(srv.baseURL, `${RESPONSES}/${started.id}`);
    assert.deepEqual(after.json, cancelled.json);
    assert.deepEqual((await postJSON(srv.baseURL, `${RESPONSES}/${started.id}/cancel`)).json, cancelled.json);

    const plain = await create(srv.baseURL, { input: 'not in the background' });
    assertError(await postJSON(srv.baseURL, `${RESPONSES}/${plain.id}/cancel`), { status: 400, param: 'response_id', what: 'cancel of a foreground response' });
    assertError(await postJSON(srv.baseURL, `${RESPONSES}/resp_nope/cancel`), { status: 404, what: 'cancel of an unknown response' });
    assertError(await postJSON(srv.baseURL, RESPONSES, { model: MODEL, input: 'x', background: true, store: false }),
      { status: 400, param: 'background', what: 'background without store' });
    assertError(await postJSON(srv.baseURL, RESPONSES, { model: MODEL, input: 'x', background: true, stream: true }),
      { status: 400, param: 'stream', what: 'background with stream' });
  });

  it('output text logprobs: top_logprobs alternatives, streamed deltas add up to the final part', T, async () => {
    const body = { input: 'Count', max_output_tokens: 12, include: ['message.output_text.logprobs'], top_logprobs: 3 };
    const plain = await create(srv.baseURL, body);
    assert.equal(plain.top_logprobs, 3);
    const part = plain.output.find((o) => o.type === 'message').content[0];
    assert.ok(part.logprobs.length > 0, show('logprobs', { json: plain }));
    for (const lp of part.logprobs) {
      assert.equal(typeof lp.token, 'string');
      assert.ok(lp.logprob <= 0);
      assert.ok(Array.isArray(lp.bytes));
      assert.equal(lp.top_logprobs.length, 3);
      assert.ok(lp.top_logprobs[0].logprob >= lp.logprob - 1e-4, 'the likeliest alternative is at least as likely');
    }
    assert.equal(Buffer.from(part.logprobs.flatMap((lp) => lp.bytes)).toString('utf8'), part.text, 'the tokens spell the text');

    const s = await postSSE(srv.baseURL, RESPONSES, { model: MODEL, temperature: 0, ...body, stream: true });
    const deltas = s.events.filter((e) => e.event === 'response.output_text.delta');
    assert.ok(deltas.length > 0);
    const streamed = deltas.flatMap((e) => e.json.logprobs);
    const done = s.events.find((e) => e.event === 'response.output_text.done');
    assert.deepEqual(streamed, done.json.logprobs, 'deltas\' logprobs concatenated = the done event\'s');
    const final = s.events[s.events.length - 1].json.response;
    assert.deepEqual(final.output.find((o) => o.type === 'message').content[0].logprobs, streamed);
    assert.deepEqual(streamed.map((lp) => lp.token), part.logprobs.map((lp) => lp.token), 'greedy: the same tokens as the plain request');

    const without = await create(srv.baseURL, { input: 'Count', max_output_tokens: 4 });
    assert.deepEqual(without.output.find((o) => o.type === 'message').content[0].logprobs, []);
    assertError(await postJSON(srv.baseURL, RESPONSES, { model: MODEL, input: 'x', top_logprobs: 2 }),
      { status: 400, param: 'top_logprobs', what: 'top_logprobs without include' });
  });
});

describe('responses: truncation', { timeout: HOOK_TIMEOUT_MS + 2 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({ ctxSize: 256, parallel: 1 });

  it('truncation auto drops the oldest items to fit the context; disabled refuses', T, async () => {
    const input = [];
    for (let i = 0; i < 24; ++i) {
      input.push({ role: i % 2 ? 'assistant' : 'user', content: pseudoWords(40, i + 1) });
    }
    input.push({ role: 'user', content: 'The newest question' });
    const body = { model: MODEL, instructions: 'Be brief.', input, max_output_tokens: 4, temperature: 0 };
    assertError(await postJSON(srv.baseURL, RESPONSES, body), { status: 400, param: 'input', code: 'context_length_exceeded', what: 'disabled (default)' });
    assertError(await postJSON(srv.baseURL, RESPONSES, { ...body, truncation: 'disabled' }), { status: 400, code: 'context_length_exceeded', what: 'disabled' });
    const r = await postJSON(srv.baseURL, RESPONSES, { ...body, truncation: 'auto' });
    assert.equal(r.status, 200, show('auto', r));
    assert.equal(r.json.truncation, 'auto');
    assert.ok(r.json.usage.input_tokens < 256, `input_tokens ${r.json.usage.input_tokens}`);
    // Only as many are dropped as needed: a shorter conversation keeps more of its tokens.
    assert.ok(r.json.usage.input_tokens > 256 / 2, `input_tokens ${r.json.usage.input_tokens}: more than the newest item kept`);
    // The whole conversation is stored; truncation applies to what the model is given.
    assert.equal((await items(srv.baseURL, r.json.id, '?limit=100')).data.length, input.length);
    // The newest input alone past the context cannot be truncated.
    assertError(await postJSON(srv.baseURL, RESPONSES, { ...body, input: pseudoWords(3000), truncation: 'auto' }),
      { status: 400, code: 'context_length_exceeded', what: 'newest input too long' });
  });
});

describe('background responses across restarts', { timeout: 2 * HOOK_TIMEOUT_MS + 2 * TEST_TIMEOUT_MS }, () => {
  it('a clean shutdown cancels a running background response; one a crash left is failed, never in progress', { timeout: HOOK_TIMEOUT_MS }, async () => {
    const srv = await startServer({ ctxSize: 16384, parallel: 1 });
    try {
      const stopped = await create(srv.baseURL, { ...endless, background: true });
      await sleep(300);
      const exit = await srv.restart();  // throws unless the server exited 0 by itself
      assert.equal(exit.forced, false);
      const afterStop = await getJSON(srv.baseURL, `${RESPONSES}/${stopped.id}`);
      assert.equal(afterStop.json.status, 'cancelled', show('after a clean stop', afterStop));

      const crashed = await create(srv.baseURL, { ...endless, background: true });
      await sleep(300);
      await srv.kill('SIGKILL');
      await srv.start();
      const afterCrash = await getJSON(srv.baseURL, `${RESPONSES}/${crashed.id}`);
      assert.equal(afterCrash.json.status, 'failed', show('after a crash', afterCrash));
      assert.equal(afterCrash.json.error.code, 'CANCELLED');
      assert.deepEqual((await getJSON(srv.baseURL, `${RESPONSES}/${crashed.id}`)).json, afterCrash.json, 'the failure is stored');
      assert.equal((await postJSON(srv.baseURL, `${RESPONSES}/${crashed.id}/cancel`)).json.status, 'failed');
    } finally {
      await srv.cleanup();
    }
  });
});
