// POST /v1/chat/completions with plain fetch.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  useServer, checkValidationCases, postJSON, request, postSSE, assertError, show, checkChatStream, assertChatUsage, pseudoWords,
  MODEL, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';
import { checkPenaltyStopsRepetition, checkPenaltyShiftsLogprobs } from './penalties.mjs';

const T = { timeout: TEST_TIMEOUT_MS };
const PATH = '/v1/chat/completions';

function assertCompletion(c, req, ctx) {
  assert.ok(c && typeof c === 'object', `no JSON body ${ctx}`);
  assert.ok(typeof c.id === 'string' && c.id.startsWith('chatcmpl-'), `id must start with chatcmpl- ${ctx}`);
  assert.equal(c.object, 'chat.completion', ctx);
  assert.ok(Number.isInteger(c.created) && c.created > 1_600_000_000, `created (unix seconds) ${ctx}`);
  assert.equal(c.model, MODEL, ctx);
  assert.ok(Array.isArray(c.choices) && c.choices.length === 1, `exactly one choice ${ctx}`);
  const ch = c.choices[0];
  assert.equal(ch.index, 0, ctx);
  assert.equal(ch.message?.role, 'assistant', ctx);
  assert.equal(typeof ch.message.content, 'string', `message.content must be a string ${ctx}`);
  assert.ok(['stop', 'length'].includes(ch.finish_reason), `finish_reason ${ctx}`);
  assert.ok('logprobs' in ch, `choice.logprobs must be present (null when not requested) ${ctx}`);
  if (!req?.logprobs) assert.equal(ch.logprobs, null, `logprobs must be null when not requested ${ctx}`);
  assertChatUsage(c.usage, ctx);
  const limit = req?.max_completion_tokens ?? req?.max_tokens;
  if (limit !== undefined) {
    assert.ok(c.usage.completion_tokens <= limit, `completion_tokens <= limit ${ctx}`);
    if (ch.finish_reason === 'length') assert.equal(c.usage.completion_tokens, limit, `finish length => completion_tokens == limit ${ctx}`);
  }
}

async function chat(base, req) {
  const r = await postJSON(base, PATH, req);
  const ctx = show(`POST ${PATH} ${JSON.stringify(req).slice(0, 300)}`, r);
  assert.equal(r.status, 200, ctx);
  assertCompletion(r.json, req, ctx);
  return r.json;
}

async function chatStream(base, req) {
  const r = await postSSE(base, PATH, { ...req, stream: true });
  const ctx = show(`POST ${PATH} stream ${JSON.stringify(req).slice(0, 300)}`, r);
  assert.equal(r.status, 200, ctx);
  assert.match(r.headers.get('content-type') || '', /text\/event-stream/, ctx);
  for (const ev of r.events) assert.equal(ev.event, null, `chat SSE uses data: lines only, got event: ${ev.event} ${ctx}`);
  return checkChatStream(r.events, { includeUsage: !!req.stream_options?.include_usage }, ctx);
}

const msgs = (text) => [{ role: 'user', content: text }];

/** Pick a stop string of 2-3 characters from the middle of `text`, avoiding U+FFFD. */
function pickStop(text) {
  const cps = Array.from(text);
  const ok = (s) => !s.includes('\uFFFD') && s.trim().length > 0;
  const starts = [10, 11, 12, 9, 8, 13, 7, 14, 6, 5];
  for (const len of [3, 2]) {
    for (const i of starts) {
      if (i + len > cps.length) continue;
      const sub = cps.slice(i, i + len).join('');
      if (ok(sub)) return sub;
    }
  }
  return null;
}

describe('/v1/chat/completions', { timeout: HOOK_TIMEOUT_MS + 22 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer();

  it('non-stream: completion shape and usage', T, async () => {
    const req = { model: MODEL, messages: msgs('Hello, who are you?'), max_tokens: 5, temperature: 0 };
    const c = await chat(srv.baseURL, req);
    // a random model almost always runs to the limit
    if (c.choices[0].finish_reason === 'length') assert.equal(c.usage.completion_tokens, 5);
  });

  it('greedy is deterministic; system messages count as prompt', T, async () => {
    const req = { model: MODEL, messages: msgs('Deterministic chat'), max_tokens: 20, temperature: 0 };
    const a = await chat(srv.baseURL, req);
    const b = await chat(srv.baseURL, req);
    assert.equal(b.choices[0].message.content, a.choices[0].message.content);
    assert.equal(b.usage.completion_tokens, a.usage.completion_tokens);
    assert.notEqual(a.id, b.id, 'every completion gets a new id');
    const withSys = await chat(srv.baseURL, { ...req, messages: [{ role: 'system', content: 'You are terse.' }, ...req.messages] });
    assert.ok(withSys.usage.prompt_tokens > a.usage.prompt_tokens, 'system message adds prompt tokens');
  });

  it('max_completion_tokens limits like max_tokens', T, async () => {
    const a = await chat(srv.baseURL, { model: MODEL, messages: msgs('Limit me'), max_completion_tokens: 7, temperature: 0 });
    const b = await chat(srv.baseURL, { model: MODEL, messages: msgs('Limit me'), max_tokens: 7, temperature: 0 });
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    assert.equal(a.usage.completion_tokens, b.usage.completion_tokens);
  });

  it('seeded sampling with temperature > 0 is reproducible', T, async () => {
    const req = { model: MODEL, messages: msgs('Random but seeded'), max_tokens: 20, temperature: 0.9, top_p: 0.95, seed: 1234 };
    const a = await chat(srv.baseURL, req);
    const b = await chat(srv.baseURL, req);
    assert.equal(b.choices[0].message.content, a.choices[0].message.content);
  });

  it('seeds are 64-bit: negative ones and 2^32 - 1 reproduce, the high bits count', T, async () => {
    const req = { model: MODEL, messages: msgs('Random but seeded'), max_tokens: 24, temperature: 1.5 };
    const text = async (seed) => (await chat(srv.baseURL, { ...req, seed })).choices[0].message.content;
    // -1 and 4294967295 (llama.cpp's "random seed") are ordinary seeds.
    for (const seed of [-1, -9007199254740991, 4294967295]) {
      assert.equal(await text(seed), await text(seed), `seed ${seed} must reproduce`);
    }
    assert.notEqual(await text(7), await text(7 + 2 ** 32), 'seeds 7 and 2^32 + 7 gave the same text: the seed was cut to 32 bits');
    // Beyond the signed 64-bit range (written as raw JSON: a JS number cannot hold it exactly).
    for (const seed of ['9223372036854775808', '-9223372036854775809', '1.5']) {
      const r = await request(srv.baseURL, 'POST', PATH, {
        rawBody: `{"model":"${MODEL}","messages":[{"role":"user","content":"hi"}],"seed":${seed}}`,
      });
      assertError(r, { status: 400, type: 'invalid_request_error', param: 'seed', what: `seed ${seed}` });
    }
  });

  it('a large frequency_penalty stops greedy decoding from repeating tokens', T, async () => {
    await checkPenaltyStopsRepetition(srv.baseURL, MODEL);
  });

  it('penalties lower the logprobs of generated tokens by count × frequency + presence', T, async () => {
    await checkPenaltyShiftsLogprobs(srv.baseURL, MODEL);
  });

  it('content parts in messages are accepted', T, async () => {
    const a = await chat(srv.baseURL, { model: MODEL, messages: [{ role: 'user', content: [{ type: 'text', text: 'Parts please' }] }], max_tokens: 8, temperature: 0 });
    const b = await chat(srv.baseURL, { model: MODEL, messages: msgs('Parts please'), max_tokens: 8, temperature: 0 });
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    assert.equal(a.usage.prompt_tokens, b.usage.prompt_tokens);
  });

  it('logprobs: one entry per token, bytes decode to the content, top_logprobs sized as asked', T, async () => {
    const req = { model: MODEL, messages: msgs('Log my probabilities'), max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 3 };
    const c = await chat(srv.baseURL, req);
    const ch = c.choices[0];
    const ctx = `completion: ${JSON.stringify(c).slice(0, 3000)}`;
    assert.ok(ch.logprobs && Array.isArray(ch.logprobs.content), `choices[0].logprobs.content must be an array; ${ctx}`);
    const entries = ch.logprobs.content;
    assert.ok(entries.length <= c.usage.completion_tokens, `at most one entry per generated token; ${ctx}`);
    if (ch.finish_reason === 'length') {
      assert.equal(entries.length, c.usage.completion_tokens, `one logprobs entry per generated token; ${ctx}`);
    }
    const allBytes = [];
    for (const e of entries) {
      assert.equal(typeof e.token, 'string', ctx);
      assert.equal(typeof e.logprob, 'number', ctx);
      assert.ok(e.logprob <= 0, `logprob must be <= 0: ${JSON.stringify(e)}`);
      assert.ok(Array.isArray(e.bytes) && e.bytes.every((b) => Number.isInteger(b) && b >= 0 && b <= 255), `bytes must be ints 0..255: ${JSON.stringify(e)}`);
      assert.ok(Array.isArray(e.top_logprobs), `top_logprobs array: ${JSON.stringify(e)}`);
      assert.equal(e.top_logprobs.length, 3, `top_logprobs length must equal the requested 3: ${JSON.stringify(e)}`);
      let prev = Infinity;
      let mass = 0;
      for (const t of e.top_logprobs) {
        assert.equal(typeof t.token, 'string', JSON.stringify(e));
        assert.ok(typeof t.logprob === 'number' && t.logprob <= 0, `top logprob <= 0: ${JSON.stringify(e)}`);
        assert.ok(Array.isArray(t.bytes), `top_logprobs[].bytes: ${JSON.stringify(e)}`);
        assert.ok(t.logprob <= prev + 1e-6, `top_logprobs must be sorted by logprob, descending: ${JSON.stringify(e)}`);
        prev = t.logprob;
        mass += Math.exp(t.logprob);
      }
      assert.ok(mass <= 1 + 1e-3, `top_logprobs probabilities sum to more than 1: ${JSON.stringify(e)}`);
      // greedy: the chosen token is the most likely one
      assert.ok(Math.abs(e.logprob - e.top_logprobs[0].logprob) < 1e-3,
        `greedy choice must have the highest logprob: ${JSON.stringify(e)}`);
      allBytes.push(...e.bytes);
    }
    if (ch.finish_reason === 'length') {
      const decoded = new TextDecoder('utf-8').decode(Uint8Array.from(allBytes));
      assert.equal(decoded, ch.message.content, `UTF-8 of the concatenated bytes must equal the content; bytes=${JSON.stringify(allBytes)}`);
    }
  });

  it('logprobs without top_logprobs gives empty top_logprobs; logprobs false gives null', T, async () => {
    const c = await chat(srv.baseURL, { model: MODEL, messages: msgs('lp'), max_tokens: 4, temperature: 0, logprobs: true });
    const entries = c.choices[0].logprobs?.content;
    assert.ok(Array.isArray(entries) && entries.length >= 1, JSON.stringify(c));
    for (const e of entries) assert.deepEqual(e.top_logprobs, [], JSON.stringify(e));
    const c2 = await chat(srv.baseURL, { model: MODEL, messages: msgs('lp'), max_tokens: 4, temperature: 0, logprobs: false });
    assert.equal(c2.choices[0].logprobs, null);
  });

  it('stream: chunks, role first, finish_reason, usage, [DONE]; content equals non-stream', T, async () => {
    const req = { model: MODEL, messages: msgs('Stream me something'), max_tokens: 24, temperature: 0 };
    const ns = await chat(srv.baseURL, req);
    const s = await chatStream(srv.baseURL, { ...req, stream_options: { include_usage: true } });
    assert.equal(s.content, ns.choices[0].message.content, 'streamed content must equal non-stream content');
    assert.equal(s.finish_reason, ns.choices[0].finish_reason);
    assertChatUsage(s.usage, 'stream usage');
    // cached_tokens depends on what earlier requests left in the cache (prefix reuse).
    const uncached = (u) => ({ ...u, prompt_tokens_details: { ...u.prompt_tokens_details, cached_tokens: 0 } });
    assert.deepEqual(uncached(s.usage), uncached(ns.usage), 'stream usage must equal non-stream usage');
    const s2 = await chatStream(srv.baseURL, req);
    assert.equal(s2.content, ns.choices[0].message.content, 'stream without include_usage');
    assert.equal(s2.usage, null, 'no usage chunk without include_usage');
  });

  it('stop sequence: output is the greedy text cut before the stop string (non-stream and stream)', T, async (t) => {
    const base = { model: MODEL, messages: msgs('Please write a long sentence about the sea.'), max_tokens: 30, temperature: 0 };
    const orig = (await chat(srv.baseURL, base)).choices[0].message.content;
    if (Array.from(orig).length < 15) {
      t.skip(`greedy text too short for the stop test: ${JSON.stringify(orig)}`);
      return;
    }
    const stop = pickStop(orig);
    if (!stop) {
      t.skip(`no usable stop substring in ${JSON.stringify(orig)}`);
      return;
    }
    const expected = orig.slice(0, orig.indexOf(stop));
    const ctx = `original=${JSON.stringify(orig)} stop=${JSON.stringify(stop)} expected=${JSON.stringify(expected)}`;
    for (const stopParam of [[stop], stop, ['#no-such-stop#', stop]]) {
      const c = await chat(srv.baseURL, { ...base, stop: stopParam });
      const ch = c.choices[0];
      assert.ok(!ch.message.content.includes(stop), `content must not contain the stop string; got ${JSON.stringify(ch.message.content)}; ${ctx}`);
      assert.equal(ch.message.content, expected, `stop=${JSON.stringify(stopParam)}; ${ctx}`);
      assert.equal(ch.finish_reason, 'stop', `finish_reason; ${ctx}`);
    }
    const s = await chatStream(srv.baseURL, { ...base, stop: [stop] });
    assert.ok(!s.content.includes(stop), `streamed content must not contain the stop string; got ${JSON.stringify(s.content)}; ${ctx}`);
    assert.equal(s.content, expected, `streamed; ${ctx}`);
    assert.equal(s.finish_reason, 'stop', `streamed finish_reason; ${ctx}`);
  });

  it('request validation: 400 invalid_request_error naming the param', T, async () => {
    const m = msgs('hi');
    const cases = [
      [{ messages: m }, 'model'],
      [{ model: MODEL }, 'messages'],
      [{ model: MODEL, messages: [] }, 'messages'],
      [{ model: MODEL, messages: 'hi' }, 'messages'],
      [{ model: MODEL, messages: [{ role: 'wizard', content: 'hi' }] }, 'messages', { paramPath: true }],
      [{ model: MODEL, messages: m, temperature: 'hot' }, 'temperature'],
      [{ model: MODEL, messages: m, temperature: 2.5 }, 'temperature'],
      [{ model: MODEL, messages: m, max_tokens: -5 }, 'max_tokens'],
      [{ model: MODEL, messages: m, max_tokens: 'many' }, 'max_tokens'],
      [{ model: MODEL, messages: m, max_completion_tokens: -1 }, 'max_completion_tokens'],
      [{ model: MODEL, messages: m, logprobs: true, top_logprobs: 21 }, 'top_logprobs'],
      [{ model: MODEL, messages: m, logprobs: true, top_logprobs: -1 }, 'top_logprobs'],
      [{ model: MODEL, messages: m, stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ model: MODEL, messages: m, stop: 42 }, 'stop'],
      [{ model: MODEL, messages: m, presence_penalty: 3 }, 'presence_penalty'],
      [{ model: MODEL, messages: m, frequency_penalty: -3 }, 'frequency_penalty'],
      [{ model: MODEL, messages: m, top_p: 2 }, 'top_p'],
    ];
    await checkValidationCases(srv.baseURL, PATH, cases);
  });

  it('limits that are allowed: top_logprobs 20, stop with 4 entries', T, async () => {
    await chat(srv.baseURL, { model: MODEL, messages: msgs('edge'), max_tokens: 3, temperature: 0, logprobs: true, top_logprobs: 20 });
    await chat(srv.baseURL, { model: MODEL, messages: msgs('edge'), max_tokens: 3, temperature: 0, stop: ['#1#', '#2#', '#3#', '#4#'] });
  });

  it('a prompt longer than the context answers 400 mentioning the context', T, async () => {
    const r = await postJSON(srv.baseURL, PATH, { model: MODEL, messages: msgs(pseudoWords(12_000)), max_tokens: 4 });
    const e = assertError(r, { status: 400, type: 'invalid_request_error', param: 'messages', what: `POST ${PATH} with a ~12000-char message (ctx 512)` });
    assert.match(e.message, /context/i, `message should mention the context: ${e.message}`);
    await chat(srv.baseURL, { model: MODEL, messages: msgs('still alive?'), max_tokens: 2, temperature: 0 });
  });
});
