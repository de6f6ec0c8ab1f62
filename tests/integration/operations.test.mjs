// Operations: /metrics, access log, API keys, CORS, prefix reuse, chunked prompts beside running
// streams, and the admission limits (queue, time limit, output cap).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  useServer, postJSON, postSSE, getJSON, request, show, assertError, responseText, sleep,
  MODEL, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';
import { scrape, metricValue } from './metrics_helpers.mjs';
import { checkPrefixCopiedFromRunningSequence } from './prefix_copy.mjs';

const T = { timeout: TEST_TIMEOUT_MS };

const SYSTEM = 'You are a meticulous assistant. ' + 'Always answer with care and cite the rules. '.repeat(20);

describe('metrics, access log and prefix reuse', { timeout: HOOK_TIMEOUT_MS + 7 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({ ctxSize: 8192, parallel: 2 });

  it('GET /metrics counts requests, tokens and latencies; one access line per request', T, async () => {
    const r = await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, input: 'metrics please', max_output_tokens: 8, temperature: 0 });
    assert.equal(r.status, 200, show('responses', r));
    const id = r.headers.get('x-request-id');
    assert.match(id, /^req_[0-9a-f]{32}$/);
    const s = await postSSE(srv.baseURL, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, temperature: 0, stream: true });
    assert.equal(s.status, 200);
    await postJSON(srv.baseURL, '/v1/responses', { model: 'no-such-model', input: 'x' });
    const m = await scrape(srv.baseURL);
    assert.ok(metricValue(m, 'allm_http_requests_total', { endpoint: 'POST /v1/responses', status: '200' }) >= 1);
    assert.ok(metricValue(m, 'allm_http_requests_total', { endpoint: 'POST /v1/chat/completions', status: '200' }) >= 1);
    assert.ok(metricValue(m, 'allm_http_requests_total', { endpoint: 'POST /v1/responses', status: '404' }) >= 1);
    assert.ok(metricValue(m, 'allm_errors_total', { code: 'model_not_found' }) >= 1);
    assert.ok(metricValue(m, 'allm_tokens_output_total', { model: MODEL }) >= 8);
    assert.ok(metricValue(m, 'allm_tokens_input_total', { model: MODEL }) > 0);
    assert.ok(metricValue(m, 'allm_time_to_first_token_seconds_count', { model: MODEL }) >= 2);
    assert.ok(metricValue(m, 'allm_time_per_output_token_seconds_count', { model: MODEL }) >= 7);
    assert.equal(metricValue(m, 'allm_model_loaded', { model: MODEL, modality: 'text' }), 1);
    assert.ok(metricValue(m, 'allm_model_memory_bytes', { model: MODEL }) > 0);
    assert.equal(metricValue(m, 'allm_queue_depth', { model: MODEL }), 0);
    const lines = srv.server.log.split('\n').filter((l) => l.includes(`access id=${id} `));
    assert.equal(lines.length, 1, `one access line for ${id}`);
    assert.match(lines[0], /method=POST path=\/v1\/responses status=200 model=tiny input_tokens=\d+ cached_tokens=\d+ output_tokens=8 ttft_ms=[\d.]+ duration_ms=[\d.]+/);
    assert.match(srv.server.log, /access id=req_\w+ method=POST path=\/v1\/chat\/completions status=200 model=tiny input_tokens=\d+ cached_tokens=\d+ output_tokens=5/,
      'a streamed request is logged when its stream ends, with its tokens');
  });

  it('a second request with the same long system prompt reuses the cache and answers the same', T, async () => {
    const body = (q) => ({ model: MODEL, instructions: SYSTEM, input: q, max_output_tokens: 16, temperature: 0 });
    const first = await postJSON(srv.baseURL, '/v1/responses', body('What is the first rule?'));
    assert.equal(first.status, 200, show('first', first));
    const second = await postJSON(srv.baseURL, '/v1/responses', body('What is the first rule?'));
    assert.equal(second.status, 200, show('second', second));
    const prompt = second.json.usage.input_tokens;
    const cached = second.json.usage.input_tokens_details.cached_tokens;
    assert.ok(cached > 100 && cached < prompt, `cached_tokens ${cached} of ${prompt}`);
    assert.equal(responseText(second.json), responseText(first.json), 'greedy output must not change');
    const other = await postJSON(srv.baseURL, '/v1/responses', body('And the second rule?'));
    assert.ok(other.json.usage.input_tokens_details.cached_tokens > 100, 'a different question shares the system prompt');

    const chat = { model: MODEL, messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: 'Hello there' }], max_tokens: 12, temperature: 0 };
    const c1 = await postJSON(srv.baseURL, '/v1/chat/completions', chat);
    const c2 = await postJSON(srv.baseURL, '/v1/chat/completions', chat);
    assert.equal(c2.status, 200, show('chat', c2));
    assert.ok(c2.json.usage.prompt_tokens_details.cached_tokens > 100);
    assert.equal(c2.json.choices[0].message.content, c1.json.choices[0].message.content);
    const m = await scrape(srv.baseURL);
    assert.ok(metricValue(m, 'allm_tokens_cached_total', { model: MODEL }) > 300);
  });

  it('a new conversation copies the system prompt that a running one holds', T, async () => {
    await checkPrefixCopiedFromRunningSequence(srv.baseURL, MODEL, { streamTokens: 2000 });
  });

  it('a long prompt arriving is read in chunks: a running stream keeps getting tokens', T, async () => {
    const arrivals = [];
    let longStart = 0;
    let longEnd = 0;
    let longPromise = null;
    const stream = postSSE(srv.baseURL, '/v1/responses',
      { model: MODEL, input: 'Tell a long story', max_output_tokens: 2500, temperature: 0, stream: true },
      {
        onEvent: (e) => {
          if (e.event !== 'response.output_text.delta') return true;
          arrivals.push(performance.now());
          if (arrivals.length === 20) {
            longStart = performance.now();
            longPromise = postJSON(srv.baseURL, '/v1/responses',
              { model: MODEL, input: 'The quick brown fox jumps. '.repeat(120), max_output_tokens: 1 })
              .then((r) => { longEnd = performance.now(); return r; });
          }
          return !(longEnd && performance.now() > longEnd + 100);  // stop reading soon after
        },
      });
    const s = await stream;
    assert.equal(s.status, 200);
    const long = await longPromise;
    assert.equal(long.status, 200, show('long prompt', long));
    assert.ok(long.json.usage.input_tokens > 2000, `long prompt has ${long.json.usage.input_tokens} tokens`);
    const during = arrivals.filter((t) => t > longStart && t <= longEnd);
    const gaps = [];
    for (let i = 1; i < arrivals.length; i++) {
      if (arrivals[i] > longStart && arrivals[i - 1] < longEnd) gaps.push(arrivals[i] - arrivals[i - 1]);
    }
    const maxGap = Math.max(...gaps);
    const prefill = longEnd - longStart;
    assert.ok(during.length >= 3, `stream tokens while the ${prefill.toFixed(0)} ms prompt was read: ${during.length}`);
    // Unchunked, the stream would get nothing while the prompt is read (one gap as long as the
    // prefill); the bound is loose because this machine is shared.
    assert.ok(maxGap < prefill * 0.8, `largest gap between stream tokens ${maxGap.toFixed(0)} ms vs ${prefill.toFixed(0)} ms for the long prompt`);
  });
});

describe('API keys and CORS', { timeout: HOOK_TIMEOUT_MS + 4 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({ extraArgs: ['--api-key', 'sk-first', '--api-key', 'sk-second', '--cors-origin', 'https://app.example'] });
  const auth = (k) => ({ headers: { authorization: `Bearer ${k}` } });

  it('every /v1 route and /metrics need a key; /health does not', T, async () => {
    assert.equal((await getJSON(srv.baseURL, '/health')).status, 200);
    const none = await getJSON(srv.baseURL, '/v1/models');
    assertError(none, { status: 401, type: 'invalid_request_error', code: 'invalid_api_key' });
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    const wrong = await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, input: 'x' }, auth('sk-firsT'));
    assertError(wrong, { status: 401, code: 'invalid_api_key' });
    assertError(await postJSON(srv.baseURL, '/v1/chat/completions', { model: MODEL, messages: [] }), { status: 401 });
    assertError(await getJSON(srv.baseURL, '/v1/responses/resp_x'), { status: 401 });
    assertError(await getJSON(srv.baseURL, '/metrics'), { status: 401 });
    assert.equal((await getJSON(srv.baseURL, '/v1/models', auth('sk-first'))).status, 200);
    const ok = await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, input: 'hi', max_output_tokens: 3 }, auth('sk-second'));
    assert.equal(ok.status, 200, show('with key', ok));
    assert.equal((await getJSON(srv.baseURL, '/metrics', auth('sk-first'))).status, 200);
  });

  it('answers CORS preflights without a key and marks allowed origins', T, async () => {
    const pre = await request(srv.baseURL, 'OPTIONS', '/v1/responses', {
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
    assert.match(pre.headers.get('access-control-allow-headers'), /authorization/);
    const denied = await request(srv.baseURL, 'OPTIONS', '/v1/responses', { headers: { origin: 'https://evil.example' } });
    assert.equal(denied.status, 403);
    assert.equal(denied.headers.get('access-control-allow-origin'), null);
    const r = await getJSON(srv.baseURL, '/v1/models', { headers: { origin: 'https://app.example', authorization: 'Bearer sk-first' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
  });
});

describe('admission limits', { timeout: HOOK_TIMEOUT_MS + 6 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({
    ctxSize: 16384, parallel: 1,
    extraArgs: ['--queue-size', '1', '--request-timeout', '2', '--max-output-tokens', '20000'],
  });
  const endless = { model: MODEL, input: 'Go on forever', temperature: 0 };  // runs into the time limit

  it('a full queue answers 429 with Retry-After in the OpenAI error shape', T, async () => {
    let release;
    const started = new Promise((r) => { release = r; });
    const running = postSSE(srv.baseURL, '/v1/responses', { ...endless, stream: true }, { onEvent: (e) => { if (e.event === 'response.output_text.delta') release(); return true; } });
    await started;
    const queued = postJSON(srv.baseURL, '/v1/responses', { model: MODEL, input: 'queued', max_output_tokens: 2 });
    await sleep(100);
    const refused = await postJSON(srv.baseURL, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'one too many' }], max_tokens: 2 });
    assertError(refused, { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    await running;
    const q = await queued;
    assert.ok([200, 504].includes(q.status), show('queued', q));
    const m = await scrape(srv.baseURL);
    assert.ok(metricValue(m, 'allm_rejected_requests_total', { model: MODEL, reason: 'queue_full' }) >= 1);
  });

  it('the time limit gives 504 TIMEOUT, response.failed in a Responses stream, an error chunk in chat', T, async () => {
    const plain = await postJSON(srv.baseURL, '/v1/responses', endless);
    assertError(plain, { status: 504, code: 'TIMEOUT' });
    const s = await postSSE(srv.baseURL, '/v1/responses', { ...endless, stream: true });
    assert.equal(s.status, 200);
    const last = s.events[s.events.length - 1];
    assert.equal(last.event, 'response.failed');
    assert.equal(last.json.response.status, 'failed');
    assert.equal(last.json.response.error.code, 'TIMEOUT');
    const c = await postSSE(srv.baseURL, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'x' }], temperature: 0, stream: true });
    assert.equal(c.status, 200);
    const error = c.events.find((e) => e.json && e.json.error);
    assert.ok(error, 'an error chunk');
    assert.equal(error.json.error.code, 'TIMEOUT');
    assert.equal(c.events[c.events.length - 1].data, '[DONE]');
    const m = await scrape(srv.baseURL);
    assert.ok(metricValue(m, 'allm_errors_total', { code: 'TIMEOUT' }) >= 3);
  });

  it('max_output_tokens / max_tokens above --max-output-tokens are refused; n must be 1', T, async () => {
    assertError(await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, input: 'x', max_output_tokens: 20001 }),
      { status: 400, param: 'max_output_tokens' });
    assertError(await postJSON(srv.baseURL, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 20001 }),
      { status: 400, param: 'max_tokens' });
    assertError(await postJSON(srv.baseURL, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'x' }], max_completion_tokens: 20001 }),
      { status: 400, param: 'max_completion_tokens' });
    assertError(await postJSON(srv.baseURL, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'x' }], n: 2 }),
      { status: 400, param: 'n' });
  });
});

describe('output cap as the default limit', { timeout: HOOK_TIMEOUT_MS + TEST_TIMEOUT_MS }, () => {
  const srv = useServer({ extraArgs: ['--max-output-tokens', '7'] });
  it('a request without a limit stops at --max-output-tokens', T, async () => {
    const r = await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, input: 'talk', temperature: 0 });
    assert.equal(r.status, 200, show('capped', r));
    assert.ok(r.json.usage.output_tokens <= 7);
  });
});
