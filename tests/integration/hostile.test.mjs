// Hostile and careless clients (issue "Hardening"): every case is sent to one running server,
// which must answer each with a 4xx and afterwards still be the same healthy process.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  useServer, getJSON, postJSON, request, assertError, sleep, show,
  MODEL, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';
import { scrape, metricValue } from './metrics_helpers.mjs';
import { WHISPER_MODEL, postAudio } from '../e2e/audio_helpers.mjs';
import { IMAGE_MODEL, withAllModalities } from './modalities.mjs';

const T = { timeout: TEST_TIMEOUT_MS };
const DEPTH_LIMIT = 64;  // kMaxJsonDepth, README "Limits"

// `[[[ ... value ... ]]]` with `depth` arrays around `value` (text, never parsed here).
const nested = (depth, value = '1') => '['.repeat(depth) + value + ']'.repeat(depth);
const nestedObjects = (depth) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

// Every field a text endpoint reads, with a deep value in it (100 000 levels: 200 KB).
const DEEP = nested(100_000);
const deepBodies = {
  '/v1/responses': [
    `{"model":"${MODEL}","input":[{"type":${DEEP}}]}`,
    `{"model":"${MODEL}","input":[{"type":"message","role":${DEEP},"content":"hi"}]}`,
    `{"model":"${MODEL}","input":[{"role":"user","content":[{"type":${DEEP}}]}]}`,
    `{"model":"${MODEL}","input":"hi","metadata":{"k":${DEEP}}}`,
    `{"model":"${MODEL}","input":"hi","text":{"format":{"type":"json_schema","schema":${DEEP}}}}`,
    `{"model":"${MODEL}","input":"hi","tools":[{"type":"function","name":"f","parameters":${DEEP}}]}`,
    `{"model":${DEEP},"input":"hi"}`,
    `{"model":"${MODEL}","input":"hi","x":${nestedObjects(100_000)}}`,
  ],
  '/v1/chat/completions': [
    `{"model":"${MODEL}","messages":[{"role":"user","content":[{"type":${DEEP}}]}]}`,
    `{"model":"${MODEL}","messages":[{"role":${DEEP},"content":"hi"}]}`,
    `{"model":"${MODEL}","messages":[{"role":"user","content":"hi"}],"response_format":${DEEP}}`,
    `{"model":"${MODEL}","messages":[{"role":"user","content":"hi"}],"tools":${DEEP}}`,
    `{"model":"${MODEL}","messages":${DEEP}}`,
  ],
  '/v1/images/generations': [
    `{"model":"demo-image","prompt":${DEEP}}`,
  ],
};

// A 1 KB WAV whose header claims 32 channels of 48 kHz and a 4 GiB data chunk.
function wavClaimingGigabytes() {
  const head = Buffer.alloc(44);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(0xFFFFFFFF, 4);
  head.write('WAVEfmt ', 8, 'latin1');
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20);  // PCM
  head.writeUInt16LE(32, 22);  // channels
  head.writeUInt32LE(48000, 24);
  head.writeUInt32LE(48000 * 64, 28);
  head.writeUInt16LE(64, 32);
  head.writeUInt16LE(16, 34);
  head.write('data', 36, 'latin1');
  head.writeUInt32LE(0xFFFFFFF0, 40);
  return Buffer.concat([head, Buffer.alloc(1024)]);
}

const chat = (extra) => ({ model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 1, ...extra });
const respond = (extra) => ({ model: MODEL, input: 'x', max_output_tokens: 1, ...extra });

// Values each endpoint must refuse with a 400 naming the field (README: Errors, Limits).
const BAD_VALUES = [
  ['/v1/images/generations', { model: IMAGE_MODEL, prompt: 'x', size: '99999999999999999999x64' }, 'size'],
  ['/v1/images/generations', { model: IMAGE_MODEL, prompt: 'x', size: '4294967360x64' }, 'size'],
  ['/v1/images/generations', { model: IMAGE_MODEL, prompt: 'x', size: '-64x64' }, 'size'],
  ['/v1/responses', respond({ metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }), 'metadata'],
  ['/v1/responses', respond({ metadata: { ['k'.repeat(65)]: 'v' } }), 'metadata'],
  ['/v1/responses', respond({ metadata: { k: 'v'.repeat(513) } }), 'metadata'],
  ['/v1/responses', respond({ metadata: { k: { nested: 'v' } } }), 'metadata'],
  ['/v1/responses', respond({ metadata: ['k'] }), 'metadata'],
  ['/v1/chat/completions', chat({ seed: 1.5 }), 'seed'],
  ['/v1/chat/completions', chat({ presence_penalty: 3 }), 'presence_penalty'],
  ['/v1/chat/completions', chat({ frequency_penalty: -2.5 }), 'frequency_penalty'],
];

describe('hostile requests', { timeout: HOOK_TIMEOUT_MS + 20 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({ setup: withAllModalities });
  let pid = null;

  it('records the server process', T, () => {
    pid = srv.server.child.pid;
    assert.ok(pid > 0);
  });

  it(`JSON nested deeper than ${DEPTH_LIMIT} levels is a 400 on every endpoint and field`, T, async () => {
    for (const [p, bodies] of Object.entries(deepBodies)) {
      for (const raw of bodies) {
        const r = await request(srv.baseURL, 'POST', p, { rawBody: raw });
        assertError(r, { status: 400, type: 'invalid_request_error', code: 'invalid_json', what: `POST ${p} ${raw.slice(0, 80)}...` });
        assert.match(r.json.error.message, /deeper than 64/, `POST ${p}: ${r.json.error.message}`);
      }
    }
  });

  it(`exactly ${DEPTH_LIMIT} levels is accepted by the parser (then judged as a request)`, T, async () => {
    // The body object is level 1, so the value may nest 63 more.
    const raw = `{"model":"${MODEL}","input":"hi","max_output_tokens":1,"metadata_x":${nested(DEPTH_LIMIT - 1)}}`;
    const r = await request(srv.baseURL, 'POST', '/v1/responses', { rawBody: raw });
    assert.notEqual(r.json?.error?.code, 'invalid_json', JSON.stringify(r.json));
    const over = `{"model":"${MODEL}","input":"hi","max_output_tokens":1,"metadata_x":${nested(DEPTH_LIMIT)}}`;
    const r2 = await request(srv.baseURL, 'POST', '/v1/responses', { rawBody: over });
    assertError(r2, { status: 400, code: 'invalid_json', what: '65 levels' });
  });

  it('a non-string type inside the limit is quoted as a short flat excerpt', T, async () => {
    const raw = `{"model":"${MODEL}","input":[{"type":${nested(50, '"' + 'x'.repeat(1000) + '"')}}]}`;
    const r = await request(srv.baseURL, 'POST', '/v1/responses', { rawBody: raw });
    assertError(r, { status: 400, param: 'input[0].type', what: 'array type' });
    assert.ok(r.json.error.message.length < 200, r.json.error.message);
    const long = `{"model":"${MODEL}","input":[{"type":"${'y'.repeat(100_000)}"}]}`;
    const r2 = await request(srv.baseURL, 'POST', '/v1/responses', { rawBody: long });
    assertError(r2, { status: 400, param: 'input[0].type', what: 'long type' });
    assert.ok(r2.json.error.message.length < 200, r2.json.error.message.slice(0, 300));
  });

  it('out-of-range values are 400s naming their field', T, async () => {
    for (const [p, body, param] of BAD_VALUES) {
      const r = await request(srv.baseURL, 'POST', p, { body });
      assertError(r, { status: 400, param, what: `POST ${p} ${JSON.stringify(body).slice(0, 120)}` });
    }
    // A seed past 64 bits cannot be written by JSON.stringify.
    const raw = `{"model":"${MODEL}","messages":[{"role":"user","content":"x"}],"max_tokens":1,"seed":18446744073709551616}`;
    assertError(await request(srv.baseURL, 'POST', '/v1/chat/completions', { rawBody: raw }), { status: 400, param: 'seed', what: 'seed 2^64' });
  });

  it('a 100 000-byte model name is quoted short in its 404', T, async () => {
    for (const [p, body] of [['/v1/responses', respond({ model: 'm'.repeat(100_000) })],
      ['/v1/chat/completions', chat({ model: 'm'.repeat(100_000) })],
      ['/v1/images/generations', { model: 'm'.repeat(100_000), prompt: 'x' }]]) {
      const r = await request(srv.baseURL, 'POST', p, { body });
      assertError(r, { status: 404, code: 'model_not_found', what: p });
      assert.ok(r.json.error.message.length < 200, `${p}: a message of ${r.json.error.message.length} bytes`);
    }
  });

  it('a 1 KB WAV claiming a 4 GiB data chunk on 32 channels is a 400 naming file', T, async () => {
    const r = await postAudio(srv.baseURL, '/v1/audio/transcriptions', { model: WHISPER_MODEL },
      { bytes: wavClaimingGigabytes(), name: 'huge.wav' });
    assertError(r, { status: 400, param: 'file', what: 'a WAV claiming 4 GiB' });
  });

  it('a model used on another modality\'s endpoint is a 400 on model that says where it is served', T, async () => {
    const cases = [
      ['/v1/responses', respond({ model: IMAGE_MODEL }), 'an image model', /; use it with \/v1\/images\/generations or \/v1\/images\/edits$/],
      ['/v1/chat/completions', chat({ model: IMAGE_MODEL }), 'an image model', /; use it with \/v1\/images\/generations or \/v1\/images\/edits$/],
      ['/v1/responses', respond({ model: WHISPER_MODEL }), 'an audio model', /; use it with \/v1\/audio\/transcriptions or \/v1\/audio\/translations$/],
      ['/v1/chat/completions', chat({ model: WHISPER_MODEL }), 'an audio model', /; use it with \/v1\/audio\/transcriptions or \/v1\/audio\/translations$/],
      ['/v1/images/generations', { model: MODEL, prompt: 'x' }, 'a text model', /; use it with \/v1\/responses or \/v1\/chat\/completions$/],
    ];
    for (const [p, body, what, advice] of cases) {
      const r = await request(srv.baseURL, 'POST', p, { body });
      assertError(r, { status: 400, param: 'model', code: 'invalid_value', what: `${body.model} on ${p}` });
      assert.ok(r.json.error.message.startsWith(`The model '${body.model}' is ${what}, not `), `${p}: ${r.json.error.message}`);
      assert.match(r.json.error.message, advice, `${body.model} on ${p}`);
    }
  });

  // Last: the same process, still healthy, after every case above.
  it('the server is the same healthy process afterwards', T, async () => {
    const h = await getJSON(srv.baseURL, '/health');
    assert.equal(h.status, 200, 'GET /health after the hostile requests');
    assert.equal(srv.server.child?.pid, pid, 'the server process must not have been replaced');
    assert.equal(srv.server.child.exitCode, null, 'the server must still run');
  });
});

// Milliseconds a GET takes.
async function timeGet(baseURL, p) {
  const t0 = performance.now();
  const r = await getJSON(baseURL, p);
  assert.equal(r.status, 200, show(`GET ${p}`, r));
  return performance.now() - t0;
}

// POST on a connection of its own; resolves {status, text} (the whole response).
function rawPost(port, p, body) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const data = JSON.stringify(body);
    let text = '';
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(data)}\r\nConnection: close\r\n\r\n${data}`));
    sock.on('data', (d) => { text += d; });
    sock.on('end', () => resolve({ status: Number(text.split(' ')[1]), text }));
    sock.on('error', reject);
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe('admission at the default limits (--parallel 4, --queue-size 64)', { timeout: HOOK_TIMEOUT_MS + 4 * TEST_TIMEOUT_MS }, () => {
  // A long context and a time limit keep the 4 running requests busy and the 64 queued waiting.
  const srv = useServer({ ctxSize: 65536, extraArgs: ['--request-timeout', '12', '--max-output-tokens', '65000'] });
  const endless = { model: MODEL, input: 'Go on forever', temperature: 0 };

  it('request 69 gets its 429 at once; /health and /metrics answer within 100 ms meanwhile', T, async () => {
    // Loaded first, so that the 68 requests below find it ready.
    const warm = await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, input: 'hi', max_output_tokens: 1 });
    assert.equal(warm.status, 200, show('warm-up', warm));
    const held = [];
    // Four streams whose bodies are not read (parsing thousands of events a second would make this
    // test's own process the bottleneck); their connections stay open until the time limit.
    const streams = new AbortController();
    for (let i = 0; i < 4; ++i) {
      held.push(fetch(srv.baseURL + '/v1/responses', {
        method: 'POST', headers: { 'content-type': 'application/json' }, signal: streams.signal,
        body: JSON.stringify({ ...endless, stream: true }),
      }).then((r) => ({ status: r.status })));
    }
    for (let i = 0; i < 64; ++i) held.push(postJSON(srv.baseURL, '/v1/responses', endless));
    // Wait until the scheduler holds all 68 (each connection has reached its handler).
    const until = Date.now() + 8000;
    let m;
    do {
      await sleep(50);
      m = await scrape(srv.baseURL);
    } while (Date.now() < until &&
             (metricValue(m, 'allm_queue_depth', { model: MODEL }) < 64 || metricValue(m, 'allm_active_sequences', { model: MODEL }) < 4));
    assert.equal(metricValue(m, 'allm_queue_depth', { model: MODEL }), 64, `all 64 waiting requests reached the queue (${Date.now() - until + 8000} ms)`);
    assert.equal(metricValue(m, 'allm_active_sequences', { model: MODEL }), 4);

    const t0 = performance.now();
    const refused = await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, input: 'one too many', max_output_tokens: 2 });
    const waited = performance.now() - t0;
    assertError(refused, { status: 429, code: 'rate_limit_exceeded', what: 'request 69' });
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.ok(waited < 1000, `the 429 took ${waited.toFixed(0)} ms`);

    const health = [], metrics = [];
    for (let i = 0; i < 5; ++i) {
      health.push(await timeGet(srv.baseURL, '/health'));
      metrics.push(await timeGet(srv.baseURL, '/metrics'));
    }
    assert.ok(median(health) < 100, `GET /health took ${health.map((x) => x.toFixed(0))} ms`);
    assert.ok(median(metrics) < 100, `GET /metrics took ${metrics.map((x) => x.toFixed(0))} ms`);
    streams.abort();
    const done = await Promise.all(held);
    for (const r of done) assert.ok([200, 504].includes(r.status), `held request: ${r.status}`);
  });
});

describe('the time limit counts from accept (--max-connections 1, --request-timeout 2)', { timeout: HOOK_TIMEOUT_MS + 2 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({ extraArgs: ['--max-connections', '1', '--request-timeout', '2'] });

  it('a request that waited 3 s for a connection thread is already past its limit', T, async () => {
    // A client that trickles its body for 3 s holds the only connection thread.
    const slow = net.connect(srv.server.port, '127.0.0.1');
    await new Promise((r) => slow.once('connect', r));
    const body = JSON.stringify({ model: MODEL, input: 'slow', max_output_tokens: 1 });
    slow.write(`POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    const trickle = (async () => {
      for (let i = 0; i < body.length; ++i) {
        slow.write(body[i]);
        await sleep(3000 / body.length);
      }
    })();
    await sleep(200);
    // Accepted now (a new connection: fetch could reuse a kept-alive one that has a thread), read
    // only once the slow client is done.
    const quick = await rawPost(srv.server.port, '/v1/responses', { model: MODEL, input: 'quick', max_output_tokens: 2 });
    await trickle;
    slow.destroy();
    assert.equal(quick.status, 504, quick.text);
    assert.equal(JSON.parse(quick.text.slice(quick.text.indexOf('\r\n\r\n') + 4)).error.code, 'TIMEOUT');
  });
});
