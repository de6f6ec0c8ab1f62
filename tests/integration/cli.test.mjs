// The command line: allm's commands and exit statuses, `allm ps` (GET /v1/admin/models) and
// `allm run` — one answer to a file, the prompt on stdin, a server started in process, and the
// interactive chat in a pseudo-terminal (multi-line input, history, /clear, Ctrl-C, /bye).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  useServer, postJSON, getJSON, show, freePort, makeTempDir, sleep, ALLM_BIN, MODEL, TEST_TIMEOUT_MS,
  HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';
import { cliEnv, runAllm, PtySession, startChatStub } from './cli_helpers.mjs';

const T = { timeout: TEST_TIMEOUT_MS };
const SAMPLING = ['--temperature', '0', '--seed', '7', '--max-tokens', '12'];
const PROMPT = 'Say something.';

// What the server answers PROMPT with SAMPLING, not streamed: `allm run` must print exactly this.
async function expectedAnswer(baseURL) {
  const r = await postJSON(baseURL, '/v1/chat/completions', {
    model: MODEL, messages: [{ role: 'user', content: PROMPT }], temperature: 0, seed: 7, max_tokens: 12,
  });
  assert.equal(r.status, 200, show('chat', r));
  return r.json.choices[0].message.content;
}

describe('allm commands and exit statuses', () => {
  it('--help lists the commands; each has --help; unknown commands and options are usage errors (2)', T, async () => {
    const help = await runAllm(['--help']);
    assert.equal(help.code, 0);
    for (const command of ['serve', 'run', 'ps']) assert.match(help.stdout, new RegExp(`^  ${command} `, 'm'));
    for (const command of ['serve', 'run', 'ps']) {
      const r = await runAllm([command, '--help']);
      assert.equal(r.code, 0, `allm ${command} --help: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: allm ${command} `));
    }
    const unknown = await runAllm(['bogus']);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stdout, '');
    assert.match(unknown.stderr, /unknown command 'bogus'/);
    assert.match(unknown.stderr, /usage: allm <command>/);
    const none = await runAllm([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /usage: allm <command>/);
    for (const args of [['ps', '--bogus'], ['ps', 'extra'], ['run'], ['run', MODEL, 'a', 'b'], ['run', MODEL, '--seed', 'x']]) {
      const r = await runAllm(args);
      assert.equal(r.code, 2, `allm ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^allm (ps|run): /);
    }
  });

  it('allm ps with no server: status 3 and a message naming the address', T, async () => {
    const port = await freePort();
    const r = await runAllm(['ps'], { env: { ALLM_PORT: String(port) } });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`no server answers at http://127\\.0\\.0\\.1:${port}`));
    assert.equal(r.stdout, '');
  });
});

describe('allm ps', { timeout: HOOK_TIMEOUT_MS + 3 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({ extraArgs: ['--preload', MODEL, '--keep-alive', '300'] });

  it('GET /v1/admin/models lists the loaded model with its memory, requests and keep-alive', T, async () => {
    const r = await getJSON(srv.baseURL, '/v1/admin/models');
    assert.equal(r.status, 200, show('admin models', r));
    assert.equal(r.json.object, 'list');
    assert.equal(r.json.keep_alive_seconds, 300);
    assert.equal(r.json.data.length, 1);
    const m = r.json.data[0];
    assert.equal(m.id, MODEL);
    assert.equal(m.modality, 'text');
    assert.ok(m.memory_bytes > 0);
    assert.equal(m.memory_bytes, m.ram_bytes + m.vram_bytes);
    assert.deepEqual([m.requests, m.running, m.queued], [0, 0, 0]);
    assert.ok(m.idle_seconds >= 0);
    assert.ok(m.unloads_in_seconds > 0 && m.unloads_in_seconds <= 300);
  });

  it('prints a table, and the route\'s JSON with --json', T, async () => {
    const env = { ALLM_PORT: String(srv.server.port) };
    const table = await runAllm(['ps'], { env });
    assert.equal(table.code, 0, table.stderr);
    const [header, row, ...rest] = table.stdout.trimEnd().split('\n');
    assert.match(header, /^ID\s+MODALITY\s+RAM\s+VRAM\s+DEVICES\s+REQUESTS\s+IDLE\s+UNLOADS$/);
    assert.match(row, /^tiny\s+text\s+[\d.]+ MiB\s+-\s+CPU:3\s+-\s+\d+s\s+in [45]m \d\ds$/);
    assert.deepEqual(rest, []);
    const asJson = await runAllm(['ps', '--json', '--port', String(srv.server.port)]);
    assert.equal(asJson.code, 0, asJson.stderr);
    const listed = JSON.parse(asJson.stdout);
    assert.equal(listed.data[0].id, MODEL);
    assert.equal(typeof listed.data[0].memory_bytes, 'number');
  });
});

describe('allm ps with an API key', { timeout: HOOK_TIMEOUT_MS + 2 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({ extraArgs: ['--api-key', 'sk-ps', '--preload', MODEL] });

  it('the route needs the key (401); allm ps says so (status 1) and works with --api-key or ALLM_API_KEY', T, async () => {
    const r = await getJSON(srv.baseURL, '/v1/admin/models');
    assert.equal(r.status, 401, show('admin models without a key', r));
    const port = String(srv.server.port);
    const without = await runAllm(['ps', '--port', port]);
    assert.equal(without.code, 1);
    assert.match(without.stderr, /refused the API key: it needs one, pass --api-key KEY or set ALLM_API_KEY/);
    const wrong = await runAllm(['ps', '--port', port, '--api-key', 'sk-wrong']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /refused the API key/);
    for (const [args, env] of [[['--api-key', 'sk-ps'], {}], [[], { ALLM_API_KEY: 'sk-ps,sk-other' }]]) {
      const ok = await runAllm(['ps', '--port', port, ...args], { env });
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /^tiny\s+text/m);
    }
  });
});

describe('allm run, one answer', { timeout: HOOK_TIMEOUT_MS + 5 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer();

  it('streams the answer to stdout (a file) and exits 0; the prompt may come on stdin', T, async () => {
    const expected = await expectedAnswer(srv.baseURL);
    const env = { ALLM_PORT: String(srv.server.port) };
    const file = path.join(await makeTempDir(), 'answer.txt');
    const r = await runAllm(['run', MODEL, PROMPT, ...SAMPLING], { env, stdoutFile: file });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(file, 'utf8'), expected + '\n');
    const piped = await runAllm(['run', MODEL, ...SAMPLING], { env, stdin: PROMPT + '\n' });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, expected + '\n');
    const empty = await runAllm(['run', MODEL, ...SAMPLING], { env, stdin: '' });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /no prompt/);
  });

  it('an unknown model: status 1 with the server\'s message', T, async () => {
    const r = await runAllm(['run', 'no-such-model', 'hi'], { env: { ALLM_PORT: String(srv.server.port) } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^allm run: the server answered HTTP 404: The model 'no-such-model' does not exist/);
  });

  it('the interactive chat on a server in process: the second request holds the first turn', T, async () => {
    const env = {
      ALLM_PORT: String(await freePort()),
      ALLM_MODELS_DIR: srv.server.modelsDir,
      ALLM_DATA_DIR: path.join(await makeTempDir(), 'data'),
    };
    const chat = new PtySession(['run', MODEL, ...SAMPLING, '--verbose'], { env });
    let at = await chat.waitFor('>>> ');
    chat.type('"""\nfirst\nturn"""\n');
    at = await chat.waitFor(/status=200 model=tiny[^\n]*\n[^]*>>> /, { from: at });
    chat.type('second turn\n');
    at = await chat.waitFor(/status=200 model=tiny[^\n]*\n[^]*>>> /, { from: at });
    chat.type('/bye\n');
    assert.equal(await chat.exitCode(), 0, chat.output);
    // Each request on a line of its own, after whatever prompt the terminal showed.
    const requests = [...chat.output.matchAll(/POST \/v1\/chat\/completions (\{.*\})\r?\n/g)]
      .map((m) => JSON.parse(m[1]));
    assert.equal(requests.length, 2, chat.output);
    assert.deepEqual(requests[0].messages, [{ role: 'user', content: 'first\nturn' }]);
    const second = requests[1].messages;
    assert.equal(second.length, 3);
    assert.deepEqual(second[0], requests[0].messages[0]);
    assert.equal(second[1].role, 'assistant');
    assert.deepEqual(second[2], { role: 'user', content: 'second turn' });
  });

  it('starts a server in process when none answers (an id from the models dir, or NAME=PATH)', T, async () => {
    const expected = await expectedAnswer(srv.baseURL);
    const env = {
      ALLM_PORT: String(await freePort()),
      ALLM_MODELS_DIR: srv.server.modelsDir,
      ALLM_DATA_DIR: path.join(await makeTempDir(), 'data'),
    };
    const byId = await runAllm(['run', MODEL, PROMPT, ...SAMPLING, '--verbose'], { env });
    assert.equal(byId.code, 0, byId.stderr);
    assert.equal(byId.stdout, expected + '\n');
    assert.match(byId.stderr, /no server answers at .*; serving 'tiny' in this process/);
    assert.match(byId.stderr, /access id=req_\w+ method=POST path=\/v1\/chat\/completions status=200 model=tiny/);
    const spec = `other=${path.join(srv.server.modelsDir, 'tiny.gguf')}`;
    const bySpec = await runAllm(['run', spec, PROMPT, ...SAMPLING], { env: { ...env, ALLM_MODELS_DIR: await makeTempDir() } });
    assert.equal(bySpec.code, 0, bySpec.stderr);
    assert.equal(bySpec.stdout, expected + '\n');
    assert.equal(bySpec.stderr, '', 'without --verbose the in-process server logs nothing');
    const missing = await runAllm(['run', 'no-such-model', 'hi'], { env });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, new RegExp(`^allm run: no server answers at http://127\\.0\\.0\\.1:${env.ALLM_PORT}, and there is no model 'no-such-model' in ${srv.server.modelsDir} `));
    const broken = path.join(await makeTempDir(), 'broken.gguf');
    fs.writeFileSync(broken, 'not a gguf file');
    const unloadable = await runAllm(['run', `broken=${broken}`, 'hi'], { env });
    assert.equal(unloadable.code, 1);
    assert.match(unloadable.stderr, /cannot serve 'broken=.*' in this process \(see the message above/);
  });
});

describe('allm run against a stand-in server: the terminal chat, Ctrl-C', { timeout: HOOK_TIMEOUT_MS + 4 * TEST_TIMEOUT_MS }, () => {
  let stub;
  before(async () => { stub = await startChatStub(); });
  after(async () => { await stub.close(); });

  it('multi-line messages, the conversation sent each turn, /clear, /bye exits 0', T, async () => {
    stub.requests.length = 0;
    const chat = new PtySession(['run', 'stub-model', '--system', 'Be brief.', '--seed', '3'], { env: { ALLM_PORT: String(stub.port) } });
    let at = await chat.waitFor('>>> ');
    chat.type('first question\n');
    at = await chat.waitFor(/answer 1\r?\n>>> /, { from: at });
    chat.type('"""\n');
    at = await chat.waitFor('... ', { from: at });
    chat.type('line one\n');
    chat.type('line two"""\n');
    at = await chat.waitFor(/answer 2\r?\n>>> /, { from: at });
    chat.type('/clear\n');
    at = await chat.waitFor('(conversation cleared)', { from: at });
    chat.type('after clear\n');
    at = await chat.waitFor(/answer 3\r?\n>>> /, { from: at });
    chat.type('/bye\n');
    assert.equal(await chat.exitCode(), 0, chat.output);
    const system = { role: 'system', content: 'Be brief.' };
    assert.deepEqual(stub.requests.map((r) => r.messages), [
      [system, { role: 'user', content: 'first question' }],
      [system, { role: 'user', content: 'first question' }, { role: 'assistant', content: 'answer 1' },
        { role: 'user', content: 'line one\nline two' }],
      [system, { role: 'user', content: 'after clear' }],
    ]);
    for (const r of stub.requests) {
      assert.equal(r.model, 'stub-model');
      assert.equal(r.stream, true);
      assert.equal(r.seed, 3);
    }
  });

  it('Ctrl-C stops the answer (the connection closes) and the prompt returns; twice at the prompt exits 0', T, async () => {
    stub.requests.length = 0;
    stub.closedStreams = 0;
    const chat = new PtySession(['run', 'stub-model'], { env: { ALLM_PORT: String(stub.port) } });
    let at = await chat.waitFor('>>> ');
    chat.type('talk forever\n');
    at = await chat.waitFor('tick tick ', { from: at });
    chat.type('\x03');
    at = await chat.waitFor('>>> ', { from: at });
    const deadline = Date.now() + 5000;
    while (stub.closedStreams === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(stub.closedStreams, 1, 'the stopped answer\'s connection was closed');
    chat.type('and now?\n');
    at = await chat.waitFor(/answer 2\r?\n>>> /, { from: at });
    const history = stub.requests[1].messages;
    assert.equal(history.length, 3);
    assert.equal(history[0].content, 'talk forever');
    assert.match(history[1].content, /^(tick )+$/, 'the stopped answer, as far as it was shown');
    chat.type('\x03');
    at = await chat.waitFor('Ctrl-C again', { from: at });
    chat.type('\x03');
    assert.equal(await chat.exitCode(), 0, chat.output);
  });

  it('Ctrl-C stops a one-prompt answer: what was written stays on stdout, status 130', T, async () => {
    stub.closedStreams = 0;
    const child = spawn(ALLM_BIN, ['run', 'stub-model', 'talk forever'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: cliEnv({ ALLM_PORT: String(stub.port) }),
    });
    let stdout = '';
    child.stdout.on('data', (d) => { stdout += d; });
    const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
    while (!stdout.includes('tick tick ')) await sleep(20);
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    assert.match(stdout, /^(tick )+\n$/);
    while (stub.closedStreams === 0) await sleep(20);
  });

  it('Ctrl-D ends the chat with status 0', T, async () => {
    const chat = new PtySession(['run', 'stub-model'], { env: { ALLM_PORT: String(stub.port) } });
    await chat.waitFor('>>> ');
    chat.type('\x04');
    assert.equal(await chat.exitCode(), 0, chat.output);
  });
});
