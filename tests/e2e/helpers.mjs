// Shared helpers for the aLLM integration (tests/integration) and end-to-end (tests/e2e) tests.
//
// Everything here talks to 127.0.0.1 only. A test file typically does:
//
//   const srv = useServer();               // inside describe(): starts in before(), stops in after()
//   it('...', async () => { const r = await postJSON(srv.baseURL, '/v1/responses', {...}); });
//
// Environment:
//   ALLM_BIN           server binary            (default build/bin/allm, relative to the repo root)
//   ALLM_FIXTURE_TOOL  fixture model generator  (default build/bin/allm-make-fixture)
//   ALLM_TEST_KEEP_TMP=1  keep the temp dirs for inspection
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function fromRepo(p) {
  return path.isAbsolute(p) ? p : path.resolve(REPO_ROOT, p);
}

export const ALLM_BIN = fromRepo(process.env.ALLM_BIN || 'build/bin/allm');
export const ALLM_FIXTURE_TOOL = fromRepo(process.env.ALLM_FIXTURE_TOOL || 'build/bin/allm-make-fixture');

export const MODEL = 'tiny';
export const HEALTH_TIMEOUT_MS = 60_000;
export const STOP_TIMEOUT_MS = 15_000;
/** Per-test timeout used by every test file. */
export const TEST_TIMEOUT_MS = 60_000;
/** Timeout for before()/after() hooks that start or stop servers. */
export const HOOK_TIMEOUT_MS = 120_000;

const LOG_CAP = 4 * 1024 * 1024;
// A line of a sanitizer's report (ASan, LeakSanitizer at exit, UBSan) in the server's stderr.
const SANITIZER_REPORT = /==\d+==ERROR: (AddressSanitizer|LeakSanitizer)|: runtime error: /;
const liveChildren = new Set();
const tempDirs = new Set();
process.on('exit', () => {
  for (const c of liveChildren) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
  if (!process.env.ALLM_TEST_KEEP_TMP) {
    for (const d of tempDirs) {
      try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
    }
  }
});

// ---------------------------------------------------------------------------------------------
// small utilities

export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

export async function makeTempDir(prefix = 'allm-test-') {
  const d = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Run a command to completion (bounded); resolves {code, signal, stdout, stderr}. */
export function runCommand(cmd, args, { timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      reject(e);
      return;
    }
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Generate the tiny random fixture model at `outPath` (a .gguf file). */
export async function makeFixture(outPath) {
  if (!fs.existsSync(ALLM_FIXTURE_TOOL)) {
    throw new Error(`fixture tool not found: ${ALLM_FIXTURE_TOOL} (build it or set ALLM_FIXTURE_TOOL)`);
  }
  await fsp.mkdir(path.dirname(outPath), { recursive: true });
  const r = await runCommand(ALLM_FIXTURE_TOOL, ['--out', outPath], { timeoutMs: 60_000 });
  if (r.code !== 0 || !fs.existsSync(outPath)) {
    throw new Error(`${ALLM_FIXTURE_TOOL} --out ${outPath} failed (code ${r.code}, signal ${r.signal})\n` +
      `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
  return outPath;
}

// The fixture is generated once per test process and copied afterwards (cheap, and all servers
// of one test file then see identical weights).
let fixtureCache = null;
export async function fixturePath() {
  if (!fixtureCache) {
    fixtureCache = (async () => {
      const dir = await makeTempDir('allm-fixture-');
      return makeFixture(path.join(dir, 'tiny.gguf'));
    })();
  }
  return fixtureCache;
}

export async function copyFixture(dest) {
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  await fsp.copyFile(await fixturePath(), dest);
  return dest;
}

// ---------------------------------------------------------------------------------------------
// server process

export class AllmServer {
  // `launcher`: a command that execs the server, e.g. ['prlimit', '--fsize=262144', '--'].
  // `env`: added to the server's environment. The Hugging Face Hub cache is the test's own
  // (tmp/hf-hub) unless `env` names one: a developer's downloaded models stay out of the tests.
  // start() waits for GET /health/ready (its --preload models loaded), or with `waitReady`
  // false only for GET /health (the process serves HTTP).
  constructor({ tmp, extraArgs = [], parallel = 4, ctxSize = 512, launcher = [], env = {}, waitReady = true }) {
    this.tmp = tmp;
    this.env = { ...process.env, HF_HUB_CACHE: path.join(tmp, 'hf-hub'), ...env };
    this.launcher = launcher;
    this.healthPath = waitReady ? '/health/ready' : '/health';
    this.modelsDir = path.join(tmp, 'models');
    this.dataDir = path.join(tmp, 'data');
    this.extraArgs = extraArgs;
    this.parallel = parallel;
    this.ctxSize = ctxSize;
    this.port = null;
    this.child = null;
    this.log = '';          // combined stdout+stderr of all processes of this server, capped
    this.exitInfo = null;   // {code, signal, forced, deliberate} of the last stopped process
    this.sanitizerReport = null;  // the first sanitizer report line of the running process
    this.generation = 0;
  }

  get baseURL() {
    return `http://127.0.0.1:${this.port}`;
  }

  args() {
    return ['serve', '--host', '127.0.0.1', '--port', String(this.port),
      '--models-dir', this.modelsDir, '--data-dir', this.dataDir,
      '--parallel', String(this.parallel), '--ctx-size', String(this.ctxSize),
      ...this.extraArgs];
  }

  appendLog(s) {
    this.log += s;
    if (this.log.length > LOG_CAP) this.log = this.log.slice(this.log.length - LOG_CAP / 2);
  }

  async start() {
    if (!fs.existsSync(ALLM_BIN)) {
      throw new Error(`server binary not found: ${ALLM_BIN} (build it or set ALLM_BIN)`);
    }
    await fsp.mkdir(this.modelsDir, { recursive: true });
    await fsp.mkdir(this.dataDir, { recursive: true });
    this.port = await freePort();
    this.generation += 1;
    const args = this.args();
    const command = [...this.launcher, ALLM_BIN, ...args];
    this.appendLog(`\n===== [test] starting (#${this.generation}): ${command.join(' ')}\n`);
    const child = spawn(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: this.tmp, env: this.env });
    this.child = child;
    liveChildren.add(child);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    this.sanitizerReport = null;
    child.stdout.on('data', (d) => this.appendLog(d));
    let partialLine = '';
    child.stderr.on('data', (d) => {
      this.appendLog(d);
      const lines = (partialLine + d).split('\n');
      partialLine = lines.pop();
      this.sanitizerReport ??= lines.find((line) => SANITIZER_REPORT.test(line)) ?? null;
    });
    child.stderr.on('end', () => {
      if (SANITIZER_REPORT.test(partialLine)) this.sanitizerReport ??= partialLine;
    });
    const exited = new Promise((resolve) => {
      // 'close': the process has exited and its output is read to the end (a report written
      // just before exit is in the log).
      child.on('close', (code, signal) => {
        liveChildren.delete(child);
        this.appendLog(`\n===== [test] process exited: code=${code} signal=${signal}\n`);
        resolve({ code, signal });
      });
      child.on('error', (e) => {
        liveChildren.delete(child);
        this.appendLog(`\n===== [test] spawn error: ${e.message}\n`);
        resolve({ code: null, signal: null, error: e });
      });
    });
    child.exited = exited;
    let early = null;
    exited.then((info) => { early = info; });

    const deadline = Date.now() + HEALTH_TIMEOUT_MS;
    let lastErr = '';
    while (Date.now() < deadline) {
      if (early) {
        throw new Error(`allm exited before becoming healthy (${JSON.stringify(early)})\n--- server log ---\n${this.logTail()}`);
      }
      try {
        const r = await fetch(`${this.baseURL}${this.healthPath}`, { signal: AbortSignal.timeout(2000) });
        await r.arrayBuffer();
        if (r.status === 200) return this;
        lastErr = `status ${r.status}`;
      } catch (e) {
        lastErr = e.cause?.code || e.message;
      }
      await sleep(100);
    }
    await this.stop();
    throw new Error(`allm did not answer GET ${this.healthPath} with 200 within ${HEALTH_TIMEOUT_MS} ms (last: ${lastErr})\n` +
      `--- server log ---\n${this.logTail()}`);
  }

  /**
   * SIGTERM, wait (SIGKILL after STOP_TIMEOUT_MS). Resolves {code, signal, forced}, and throws
   * when the server did not end cleanly: it must have exited with status 0 by itself (not crashed
   * earlier, not needed the SIGKILL) and reported nothing from a sanitizer (LeakSanitizer reports
   * at exit). Calling it again after the process ended resolves the same without checking again.
   */
  async stop() {
    const child = this.child;
    if (!child) return this.exitInfo;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
    }
    let forced = false;
    let timer;
    const timeout = new Promise((r) => { timer = setTimeout(() => r('timeout'), STOP_TIMEOUT_MS); });
    const first = await Promise.race([child.exited, timeout]);
    clearTimeout(timer);
    if (first === 'timeout') {
      forced = true;
      this.appendLog(`\n===== [test] SIGTERM not honoured within ${STOP_TIMEOUT_MS} ms; sending SIGKILL\n`);
      child.kill('SIGKILL');
    }
    const info = await child.exited;
    this.exitInfo = { ...info, forced, deliberate: false };
    const problem = this.exitProblem();
    if (problem) throw new Error(`allm did not shut down cleanly: ${problem}\n--- server log ---\n${this.logTail()}`);
    return this.exitInfo;
  }

  /**
   * Kills the server with `signal` on purpose (a test of what survives a crash): its exit is not
   * checked. Resolves {code, signal, forced: false, deliberate: true}.
   */
  async kill(signal = 'SIGKILL') {
    const child = this.child;
    if (!child) return this.exitInfo;
    this.child = null;
    this.appendLog(`\n===== [test] killing the server with ${signal} on purpose\n`);
    child.kill(signal);
    const info = await child.exited;
    this.exitInfo = { ...info, forced: false, deliberate: true };
    return this.exitInfo;
  }

  /** Why the last process's end fails the test, or null. */
  exitProblem() {
    const info = this.exitInfo;
    if (!info || info.deliberate) return null;
    if (info.forced) return `it ignored SIGTERM for ${STOP_TIMEOUT_MS} ms and was killed`;
    if (info.error) return `it could not be run: ${info.error.message}`;
    if (info.signal) return `it was killed by ${info.signal}`;
    if (info.code !== 0) return `it exited with status ${info.code}`;
    if (this.sanitizerReport) return `a sanitizer reported: ${this.sanitizerReport}`;
    return null;
  }

  /** Stop and start a new process with the same models/data dirs (new port). */
  async restart() {
    const info = await this.stop();
    await this.start();
    return info;
  }

  logTail(n = 16_000) {
    return this.log.length > n ? '...' + this.log.slice(this.log.length - n) : this.log;
  }

  async cleanup() {
    try {
      await this.stop();
    } finally {
      if (!process.env.ALLM_TEST_KEEP_TMP) {
        await fsp.rm(this.tmp, { recursive: true, force: true });
      }
    }
  }
}

/**
 * Create a temp dir with models/tiny.gguf (unless fixture:false), let `setup({tmp, modelsDir})`
 * add more files and return extra args, and start the server.
 */
export async function startServer({ extraArgs = [], setup, fixture = true, parallel, ctxSize, launcher, waitReady } = {}) {
  const tmp = await makeTempDir();
  const srv = new AllmServer({ tmp, extraArgs, parallel, ctxSize, launcher, waitReady });
  try {
    if (fixture) await copyFixture(path.join(srv.modelsDir, 'tiny.gguf'));
    await fsp.mkdir(srv.modelsDir, { recursive: true });
    if (setup) {
      const more = await setup({ tmp, modelsDir: srv.modelsDir, dataDir: srv.dataDir });
      if (Array.isArray(more)) srv.extraArgs = [...srv.extraArgs, ...more];
    }
    await srv.start();
  } catch (e) {
    await srv.cleanup().catch(() => {});
    throw e;
  }
  return srv;
}

/**
 * Register before/after/afterEach hooks in the current describe(): the server is started once
 * for the suite, always stopped at the end, and its log (since the test began) is printed for
 * every failed test. Returns a proxy-ish handle whose `.server` is set once started.
 */
export function useServer(opts = {}) {
  const handle = {
    server: null,
    get baseURL() { return handle.server.baseURL; },
  };
  let logMark = 0;
  before(async () => {
    handle.server = await startServer(opts);
  }, { timeout: HOOK_TIMEOUT_MS });
  after(async () => {
    if (handle.server) await handle.server.cleanup();
  }, { timeout: HOOK_TIMEOUT_MS });
  beforeEach(() => {
    logMark = handle.server ? handle.server.log.length : 0;
  });
  afterEach((t) => {
    if (t.passed === false && handle.server) {
      const log = handle.server.log;
      const since = log.length >= logMark ? log.slice(logMark) : log;
      const tail = since.length > 16_000 ? '...' + since.slice(since.length - 16_000) : since;
      console.error(`----- allm log during failed test "${t.name}" -----\n${tail}\n----- end of allm log -----`);
    }
  });
  return handle;
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

const REQ_TIMEOUT_MS = 55_000;

/**
 * Run every validation case and report all that fail together.
 * cases: [[body, param, {paramPath:true}?], ...]; param is matched exactly unless paramPath is set.
 */
export async function checkValidationCases(baseURL, p, cases) {
  const failures = [];
  for (const [body, param, o = {}] of cases) {
    const r = await postJSON(baseURL, p, body);
    try {
      assertError(r, {
        status: 400, type: 'invalid_request_error',
        ...(o.paramPath ? { paramPath: param } : { param }),
        what: `POST ${p} ${JSON.stringify(body)}`,
      });
    } catch (e) {
      failures.push(e.message);
    }
  }
  assert.equal(failures.length, 0, `${failures.length} of ${cases.length} validation cases failed:\n- ${failures.join('\n- ')}`);
}

/** Parse a fetch Response: {status, headers, text, json (or undefined if not JSON)}. */
async function readBody(res) {
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

export async function request(baseURL, method, p, { body, rawBody, headers = {}, signal } = {}) {
  const init = { method, headers: { ...headers }, signal: signal || AbortSignal.timeout(REQ_TIMEOUT_MS) };
  if (rawBody !== undefined) {
    init.body = rawBody;
    if (!init.headers['content-type']) init.headers['content-type'] = 'application/json';
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  }
  const res = await fetch(baseURL + p, init);
  return readBody(res);
}

export const getJSON = (baseURL, p, o) => request(baseURL, 'GET', p, o);
export const postJSON = (baseURL, p, body, o = {}) => request(baseURL, 'POST', p, { ...o, body });
export const deleteJSON = (baseURL, p, o) => request(baseURL, 'DELETE', p, o);

/** Short description of a request/response for assertion messages. */
export function show(what, r) {
  const t = r.text && r.text.length > 2000 ? r.text.slice(0, 2000) + '...' : r.text;
  return `${what} -> HTTP ${r.status}: ${t}`;
}

/** Assert the OpenAI error body shape and (optionally) its status/type/param/code. */
export function assertError(r, { status, type, param, paramPath, code, params, codes, what = 'request' } = {}) {
  const ctx = show(what, r);
  if (status !== undefined) assert.equal(r.status, status, `expected HTTP ${status}; ${ctx}`);
  assert.ok(r.json && typeof r.json === 'object', `error body is not JSON; ${ctx}`);
  const e = r.json.error;
  assert.ok(e && typeof e === 'object', `error body has no "error" object; ${ctx}`);
  assert.equal(typeof e.message, 'string', `error.message must be a string; ${ctx}`);
  assert.ok(e.message.length > 0, `error.message must not be empty; ${ctx}`);
  assert.equal(typeof e.type, 'string', `error.type must be a string; ${ctx}`);
  assert.ok('param' in e, `error.param must be present (string or null); ${ctx}`);
  assert.ok(e.param === null || typeof e.param === 'string', `error.param must be string|null; ${ctx}`);
  assert.ok('code' in e, `error.code must be present (string or null); ${ctx}`);
  assert.ok(e.code === null || typeof e.code === 'string', `error.code must be string|null; ${ctx}`);
  if (type !== undefined) assert.equal(e.type, type, `error.type; ${ctx}`);
  if (param !== undefined) assert.equal(e.param, param, `error.param; ${ctx}`);
  if (paramPath !== undefined) {
    // a nested problem may name the path inside the parameter, e.g. messages[0].role
    const p = e.param;
    assert.ok(p === paramPath || (typeof p === 'string' && (p.startsWith(paramPath + '[') || p.startsWith(paramPath + '.'))),
      `error.param should be "${paramPath}" or a path inside it; ${ctx}`);
  }
  if (params !== undefined) assert.ok(params.includes(e.param), `error.param should be one of ${JSON.stringify(params)}; ${ctx}`);
  if (code !== undefined) assert.equal(e.code, code, `error.code; ${ctx}`);
  if (codes !== undefined) assert.ok(codes.includes(e.code), `error.code should be one of ${JSON.stringify(codes)}; ${ctx}`);
  return e;
}

// ---------------------------------------------------------------------------------------------
// Server-sent events

/**
 * Parse an SSE body from a fetch Response. Yields {event, data, raw} per event
 * (`event` is null when there was no `event:` line). Handles \n and \r\n line endings.
 */
export async function* readSSE(res) {
  const decoder = new TextDecoder('utf-8');
  let buf = '';
  let event = null;
  let data = [];
  let rawLines = [];
  const flushLine = function* (line) {
    if (line === '') {
      if (data.length > 0 || event !== null) {
        yield { event, data: data.join('\n'), raw: rawLines.join('\n') };
      }
      event = null; data = []; rawLines = [];
      return;
    }
    rawLines.push(line);
    if (line.startsWith(':')) return;
    const idx = line.indexOf(':');
    const field = idx === -1 ? line : line.slice(0, idx);
    let value = idx === -1 ? '' : line.slice(idx + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  };
  for await (const chunk of res.body) {
    buf += decoder.decode(chunk, { stream: true });
    let m;
    while ((m = /\r\n|\n|\r/.exec(buf)) !== null) {
      // a lone trailing \r might be the first half of \r\n: wait for more input
      if (m[0] === '\r' && m.index === buf.length - 1) break;
      const line = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      yield* flushLine(line);
    }
  }
  buf += decoder.decode();
  if (buf.length > 0) yield* flushLine(buf);
  yield* flushLine('');
}

/** POST with stream:true and return {status, headers, events:[{event,data,json}], ...}. */
export async function postSSE(baseURL, p, body, { signal, onEvent } = {}) {
  const res = await fetch(baseURL + p, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(body),
    signal: signal || AbortSignal.timeout(REQ_TIMEOUT_MS),
  });
  if (res.status !== 200) {
    const r = await readBody(res);
    return { ...r, events: null };
  }
  const events = [];
  for await (const ev of readSSE(res)) {
    let json;
    if (ev.data !== '[DONE]') {
      try { json = JSON.parse(ev.data); } catch { json = undefined; }
    }
    const e = { ...ev, json };
    events.push(e);
    if (onEvent && onEvent(e, events) === false) break;
  }
  return { status: res.status, headers: res.headers, events, text: events.map((e) => e.raw).join('\n\n') };
}

// ---------------------------------------------------------------------------------------------
// Response helpers

/** The concatenated output_text of a Responses API Response object. */
export function responseText(resp) {
  let s = '';
  for (const item of resp.output || []) {
    if (item.type !== 'message') continue;
    for (const c of item.content || []) {
      if (c.type === 'output_text') s += c.text;
    }
  }
  return s;
}

export const RESPONSE_EVENT_ORDER_HEAD = [
  'response.created',
  'response.in_progress',
  'response.output_item.added',
  'response.content_part.added',
];
export const RESPONSE_EVENT_ORDER_TAIL = [
  'response.output_text.done',
  'response.content_part.done',
  'response.output_item.done',
];

/**
 * Validate a /v1/responses SSE stream (array from postSSE) and return
 * {deltaText, doneText, final (Response object), finalType}.
 */
export function checkResponseStream(events, ctx = '') {
  assert.ok(Array.isArray(events) && events.length > 0, `no SSE events ${ctx}`);
  const types = [];
  events.forEach((ev, i) => {
    assert.ok(ev.json && typeof ev.json === 'object', `event #${i} data is not JSON: ${ev.raw} ${ctx}`);
    assert.equal(typeof ev.json.type, 'string', `event #${i} has no type: ${ev.raw} ${ctx}`);
    assert.equal(ev.event, ev.json.type, `event #${i}: "event:" line must equal data.type: ${ev.raw} ${ctx}`);
    assert.equal(ev.json.sequence_number, i, `event #${i} sequence_number must be ${i}: ${ev.raw} ${ctx}`);
    types.push(ev.json.type);
  });
  const n = types.length;
  assert.ok(n >= 8, `too few events (${n}): ${types.join(', ')} ${ctx}`);
  assert.deepEqual(types.slice(0, 4), RESPONSE_EVENT_ORDER_HEAD, `event order (head): ${types.join(', ')} ${ctx}`);
  const finalType = types[n - 1];
  assert.ok(['response.completed', 'response.incomplete'].includes(finalType),
    `last event must be response.completed or response.incomplete, got ${finalType}: ${types.join(', ')} ${ctx}`);
  assert.deepEqual(types.slice(n - 4, n - 1), RESPONSE_EVENT_ORDER_TAIL, `event order (tail): ${types.join(', ')} ${ctx}`);
  const middle = types.slice(4, n - 4);
  for (const t of middle) {
    assert.equal(t, 'response.output_text.delta', `only output_text.delta events may come between content_part.added and output_text.done: ${types.join(', ')} ${ctx}`);
  }
  let deltaText = '';
  for (const ev of events.slice(4, n - 4)) {
    assert.equal(typeof ev.json.delta, 'string', `delta event without string delta: ${ev.raw} ${ctx}`);
    deltaText += ev.json.delta;
  }
  const doneEv = events[n - 4].json;
  assert.equal(typeof doneEv.text, 'string', `output_text.done has no text: ${events[n - 4].raw} ${ctx}`);
  const created = events[0].json.response;
  const final = events[n - 1].json.response;
  assert.ok(created && typeof created.id === 'string', `response.created carries no response: ${events[0].raw} ${ctx}`);
  assert.ok(final && typeof final === 'object', `final event carries no response: ${events[n - 1].raw} ${ctx}`);
  assert.equal(final.id, created.id, `final response id must equal created id ${ctx}`);
  assert.equal(final.status, finalType === 'response.completed' ? 'completed' : 'incomplete',
    `final response status must match the final event type ${ctx}`);
  return { deltaText, doneText: doneEv.text, final, finalType, created };
}

/** Validate a /v1/chat/completions SSE stream; returns {content, finish_reason, usage, chunks}. */
export function checkChatStream(events, { includeUsage = false, model = MODEL } = {}, ctx = '') {
  assert.ok(Array.isArray(events) && events.length >= 2, `too few SSE events ${ctx}`);
  const last = events[events.length - 1];
  assert.equal(last.data, '[DONE]', `stream must end with data: [DONE], got ${last.raw} ${ctx}`);
  const chunks = events.slice(0, -1).map((ev, i) => {
    assert.ok(ev.json && typeof ev.json === 'object', `chunk #${i} is not JSON: ${ev.raw} ${ctx}`);
    return ev.json;
  });
  let content = '';
  let finish = null;
  let finishIdx = -1;
  let usage = null;
  const id = chunks[0].id;
  assert.ok(typeof id === 'string' && id.startsWith('chatcmpl-'), `chunk id must start with chatcmpl-: ${JSON.stringify(chunks[0])} ${ctx}`);
  chunks.forEach((c, i) => {
    assert.equal(c.object, 'chat.completion.chunk', `chunk #${i} object: ${JSON.stringify(c)} ${ctx}`);
    assert.equal(c.id, id, `all chunks must share the id: ${JSON.stringify(c)} ${ctx}`);
    assert.equal(c.model, model, `chunk #${i} model: ${JSON.stringify(c)} ${ctx}`);
    assert.equal(typeof c.created, 'number', `chunk #${i} created: ${JSON.stringify(c)} ${ctx}`);
    assert.ok(Array.isArray(c.choices), `chunk #${i} choices must be an array: ${JSON.stringify(c)} ${ctx}`);
    if (c.choices.length === 0) {
      assert.ok(includeUsage, `a chunk with empty choices only with include_usage: ${JSON.stringify(c)} ${ctx}`);
      assert.ok(c.usage && typeof c.usage === 'object', `empty-choices chunk must carry usage: ${JSON.stringify(c)} ${ctx}`);
      assert.equal(i, chunks.length - 1, `usage chunk must be the last chunk before [DONE] ${ctx}`);
      usage = c.usage;
      return;
    }
    assert.equal(c.choices.length, 1, `one choice per chunk: ${JSON.stringify(c)} ${ctx}`);
    const ch = c.choices[0];
    assert.equal(ch.index, 0, `choice index: ${JSON.stringify(c)} ${ctx}`);
    assert.ok(finish === null, `no chunk with choices may follow the finish_reason chunk: ${JSON.stringify(c)} ${ctx}`);
    if (i === 0) {
      assert.equal(ch.delta?.role, 'assistant', `first delta must carry role assistant: ${JSON.stringify(c)} ${ctx}`);
    }
    if (ch.delta && typeof ch.delta.content === 'string') content += ch.delta.content;
    if (ch.finish_reason !== null && ch.finish_reason !== undefined) {
      finish = ch.finish_reason;
      finishIdx = i;
    }
  });
  assert.ok(finish !== null, `no chunk carried a finish_reason ${ctx}`);
  if (includeUsage) {
    assert.ok(usage, `include_usage: a final chunk with choices:[] and usage is required ${ctx}`);
    assert.equal(finishIdx, chunks.length - 2, `finish_reason chunk must directly precede the usage chunk ${ctx}`);
  } else {
    assert.equal(finishIdx, chunks.length - 1, `finish_reason chunk must be the last chunk ${ctx}`);
  }
  return { content, finish_reason: finish, usage, chunks };
}

export function assertChatUsage(u, ctx = '') {
  assert.ok(u && typeof u === 'object', `usage missing ${ctx}`);
  for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens']) {
    assert.ok(Number.isInteger(u[k]) && u[k] >= 0, `usage.${k} must be a non-negative integer: ${JSON.stringify(u)} ${ctx}`);
  }
  assert.ok(u.prompt_tokens > 0, `usage.prompt_tokens must be > 0: ${JSON.stringify(u)} ${ctx}`);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens, `usage.total_tokens = prompt + completion: ${JSON.stringify(u)} ${ctx}`);
}

export function assertResponseUsage(u, ctx = '') {
  assert.ok(u && typeof u === 'object', `usage missing ${ctx}`);
  for (const k of ['input_tokens', 'output_tokens', 'total_tokens']) {
    assert.ok(Number.isInteger(u[k]) && u[k] >= 0, `usage.${k} must be a non-negative integer: ${JSON.stringify(u)} ${ctx}`);
  }
  assert.ok(u.input_tokens > 0, `usage.input_tokens must be > 0: ${JSON.stringify(u)} ${ctx}`);
  assert.equal(u.total_tokens, u.input_tokens + u.output_tokens, `usage.total_tokens = input + output: ${JSON.stringify(u)} ${ctx}`);
}

/** Deterministic pseudo-random words (for long prompts). */
export function pseudoWords(nChars, seed = 12345) {
  let x = seed >>> 0;
  const rnd = () => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return x / 2 ** 32; };
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let s = '';
  while (s.length < nChars) {
    const len = 2 + Math.floor(rnd() * 8);
    for (let i = 0; i < len; i++) s += letters[Math.floor(rnd() * letters.length)];
    s += rnd() < 0.1 ? '. ' : ' ';
  }
  return s.slice(0, nChars);
}

// Two characters of `text` past its first, neither standing for invalid bytes (U+FFFD): a stop
// string that cuts the text.
export function cuttingStop(text) {
  const chars = [...text];
  for (let i = 1; i + 1 < chars.length; ++i) {
    if (chars[i] !== '\uFFFD' && chars[i + 1] !== '\uFFFD') return chars[i] + chars[i + 1];
  }
  assert.fail(`no stop string to cut ${JSON.stringify(text)}`);
}
