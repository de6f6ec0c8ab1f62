// What the benchmarks against llama-server share: starting and stopping a server, posting to
// it, and the statistics of the results.
import { spawn } from 'node:child_process';
import net from 'node:net';

// The command-line options both drivers take (node:util parseArgs form).
export const SERVER_OPTIONS = {
  allm: { type: 'string' },
  'llama-server': { type: 'string' },
  model: { type: 'string' },
  threads: { type: 'string' },
  pairs: { type: 'string', default: '3' },
};

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function freePort() {
  const srv = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

// Starts `kind` with the [binary, arguments] that command(port) gives and waits until healthy.
export async function startServer(kind, command) {
  const port = await freePort();
  const [bin, args] = command(port);
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log = (log + d).slice(-4000); });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${kind} exited:\n${log}`);
    try {
      const r = await fetch(`${base}/health`);
      if (r.status === 200) return { kind, child, base, log: () => log };
    } catch { /* not listening yet */ }
    await sleep(250);
  }
  child.kill('SIGKILL');
  throw new Error(`${kind} did not become healthy:\n${log}`);
}

export async function stopServer({ child }) {
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
  clearTimeout(timer);
}

// A server may close a kept-alive connection just as the client reuses it (llama-server's idle
// timeout while the other server is measured); the request never reached it, so it is sent again.
export async function post(url, body) {
  const send = () => fetch(url, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  try {
    return await send();
  } catch (e) {
    if (e.cause?.code !== 'UND_ERR_SOCKET') throw e;
    return send();
  }
}

export function quantile(values, q) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

// Says which server failed and how it ended, not only what the client saw.
export async function blame(server, work) {
  try {
    return await work();
  } catch (e) {
    await sleep(500);
    const ended = server.child.exitCode ?? server.child.signalCode ?? 'still running';
    throw new Error(`${server.kind} (${ended}) failed: ${e.message} (${e.cause?.message ?? ''})\n${server.log()}`);
  }
}
