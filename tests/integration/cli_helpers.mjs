// Helpers for the `allm ps` / `allm run` tests: running the CLI with its own environment, a
// pseudo-terminal session (tests/integration/pty_bridge.py), and a stand-in chat server that
// records what the CLI sends and can stream an answer until the client goes away.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALLM_BIN, sleep } from '../e2e/helpers.mjs';

const PTY_BRIDGE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pty_bridge.py');

// The CLI's environment: none of the ALLM_* settings of whoever runs the tests.
export function cliEnv(env) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ALLM_')));
  return { ...clean, ...env };
}

/**
 * Runs `allm ARGS` to completion; resolves {code, signal, stdout, stderr}. `stdin`: text written
 * to it (else it is /dev/null); `stdoutFile`: stdout goes to that file instead of a pipe.
 */
export function runAllm(args, { env = {}, stdin, stdoutFile, timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const out = stdoutFile ? fs.openSync(stdoutFile, 'w') : 'pipe';
    const child = spawn(ALLM_BIN, args, {
      stdio: [stdin === undefined ? 'ignore' : 'pipe', out, 'pipe'],
      env: cliEnv(env),
    });
    if (stdoutFile) fs.closeSync(out);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    if (stdin !== undefined) child.stdin.end(stdin);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** `allm ARGS` in a pseudo-terminal: type() into it, waitFor() what it shows. */
export class PtySession {
  constructor(args, { env = {} } = {}) {
    this.output = '';
    this.child = spawn('python3', [PTY_BRIDGE, ALLM_BIN, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: cliEnv(env),
    });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (d) => { this.output += d; });
    this.child.stderr.on('data', (d) => { this.output += d; });
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  type(text) {
    this.child.stdin.write(text);
  }

  /** Waits until the output after `from` matches `pattern`; resolves the index after the match. */
  async waitFor(pattern, { from = 0, timeoutMs = 20_000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    const re = typeof pattern === 'string' ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : pattern;
    for (;;) {
      const m = re.exec(this.output.slice(from));
      if (m) return from + m.index + m[0].length;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${re} in the terminal output:\n${this.output}`);
      }
      await sleep(20);
    }
  }

  /** The exit status, killing the session after `timeoutMs`. */
  async exitCode(timeoutMs = 20_000) {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/**
 * A stand-in for the server's /health and streamed /v1/chat/completions: records each request's
 * body in `requests`; answers "answer N" (N: the request's number), or, when the last message
 * says "forever", one "tick " every 50 ms until the client closes the connection (then
 * `closedStreams` counts it).
 */
export async function startChatStub() {
  const stub = { requests: [], closedStreams: 0 };
  const server = http.createServer((req, res) => {
    if (req.url === '/health') {
      res.end('{"status":"ok"}');
      return;
    }
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const parsed = JSON.parse(body);
      stub.requests.push(parsed);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (content) => `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }] })}\n\n`;
      const last = parsed.messages.at(-1).content;
      if (!last.includes('forever')) {
        res.end(chunk(`answer ${stub.requests.length}`) + 'data: [DONE]\n\n');
        return;
      }
      const timer = setInterval(() => res.write(chunk('tick ')), 50);
      res.on('close', () => {
        clearInterval(timer);
        stub.closedStreams += 1;
      });
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  stub.port = server.address().port;
  stub.close = () => new Promise((r) => { server.closeAllConnections(); server.close(r); });
  return stub;
}
