// The response store when its file fails: a full disk (a file-size limit on the server), a
// read-only file, a file that is not a database or is damaged inside; and its retention
// (--store-max-age, --store-max-bytes).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  startServer, AllmServer, getJSON, postJSON, postSSE, deleteJSON, assertError, show, runCommand,
  makeTempDir, copyFixture, freePort, sleep, ALLM_BIN, MODEL, TEST_TIMEOUT_MS,
} from '../e2e/helpers.mjs';
import { scrape, metricValue } from './metrics_helpers.mjs';

const T = { timeout: 2 * TEST_TIMEOUT_MS };
const STORE_ERROR_HEADER = 'x-allm-store-error';
// 16 pairs of 500 characters: about 8 KB per stored response.
const BIG_METADATA = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, String(i % 10).repeat(500)]));

async function create(baseURL, extra = {}) {
  const body = { model: MODEL, input: 'Store me', max_output_tokens: 2, temperature: 0, ...extra };
  const r = await postJSON(baseURL, '/v1/responses', body);
  assert.equal(r.status, 200, show('POST /v1/responses', r));
  return r;
}

async function storeErrors(baseURL, op) {
  return metricValue(await scrape(baseURL), 'allm_store_errors_total', { op });
}

// A response that could not be stored: `store: false` in what the client gets (with the reason
// in a header for plain responses), and nothing to GET.
async function checkNotStored(baseURL, r) {
  assert.equal(r.json.store, false, show('a response the store failed to keep must say store: false', r));
  assert.match(r.headers.get(STORE_ERROR_HEADER) ?? '', /could not store the response/, `${STORE_ERROR_HEADER} header`);
  assertError(await getJSON(baseURL, `/v1/responses/${r.json.id}`), { status: 404, what: 'GET of a response not stored' });
  const stream = await postSSE(baseURL, '/v1/responses', { model: MODEL, input: 'Stream me', max_output_tokens: 2, temperature: 0, stream: true });
  const done = stream.events.find((e) => e.event === 'response.completed' || e.event === 'response.incomplete');
  assert.ok(done, show('stream end', stream));
  assert.equal(done.json.response.store, false, 'the streamed final response must say store: false');
}

async function checkStillServing(srv) {
  const stateless = await create(srv.baseURL, { store: false });
  assert.equal(stateless.headers.get(STORE_ERROR_HEADER), null, 'store: false requests do not touch the store');
  assert.equal((await getJSON(srv.baseURL, '/health')).status, 200);
  assert.ok(srv.child && srv.child.exitCode === null && srv.child.signalCode === null, 'the server process is still running');
}

async function withServer(options, body) {
  const srv = await startServer(options);
  try {
    await body(srv);
  } finally {
    await srv.cleanup();
  }
}

describe('response store failures and retention', { timeout: 8 * 2 * TEST_TIMEOUT_MS }, () => {
  it('a full disk (file-size limit): responses that cannot be stored say so, reads and stateless requests go on', T, async () => {
    // The server ignores SIGXFSZ, so passing the limit fails the write rather than the process.
    await withServer({ launcher: ['prlimit', `--fsize=${256 * 1024}`, '--'] }, async (srv) => {
      let stored = null;
      let refused = null;
      for (let i = 0; i < 200 && !refused; i++) {
        const r = await create(srv.baseURL, { input: `Fill the disk ${i}`, metadata: BIG_METADATA });
        if (r.json.store) {
          assert.equal(r.headers.get(STORE_ERROR_HEADER), null, show('stored response with a store error header', r));
          stored ??= r.json;
        } else {
          refused = r;
        }
      }
      assert.ok(stored, 'nothing was stored before the limit');
      assert.ok(refused, 'the file-size limit was never reached');
      await checkNotStored(srv.baseURL, refused);
      const again = await getJSON(srv.baseURL, `/v1/responses/${stored.id}`);
      assert.equal(again.status, 200, show('GET of a response stored before the disk filled', again));
      assert.deepEqual(again.json.metadata, BIG_METADATA);
      assert.ok(await storeErrors(srv.baseURL, 'put') >= 2, 'allm_store_errors_total{op="put"} counts both failures');
      await checkStillServing(srv);
      assert.match(srv.log, /not stored \(answered with store: false\)/, 'the failure is logged');
    });
  });

  it('a read-only database file: stored responses are read, new ones say store: false, DELETE is 500', T, async () => {
    await withServer({}, async (srv) => {
      const kept = (await create(srv.baseURL, { metadata: { tag: 'kept' } })).json;
      await srv.stop();
      const db = path.join(srv.dataDir, 'responses.db');
      assert.ok(!fs.existsSync(`${db}-wal`), 'a clean stop leaves no WAL');
      if (process.getuid() === 0) {
        // root may write any file: the server runs as nobody, to whom root's file is read-only.
        const nobody = 65534;
        await fsp.chmod(srv.tmp, 0o755);
        await fsp.chmod(srv.modelsDir, 0o755);
        await fsp.chmod(path.join(srv.modelsDir, 'tiny.gguf'), 0o644);
        await fsp.chown(srv.dataDir, nobody, nobody);  // room for the WAL and shared-memory files
        await fsp.chmod(db, 0o644);
        srv.launcher = ['setpriv', `--reuid=${nobody}`, `--regid=${nobody}`, '--clear-groups', '--'];
      } else {
        await fsp.chmod(db, 0o444);
      }
      await srv.start();
      assert.match(srv.log, /response store .* is read-only/, 'the start-up log says the store is read-only');

      const read = await getJSON(srv.baseURL, `/v1/responses/${kept.id}`);
      assert.equal(read.status, 200, show('GET from a read-only store', read));
      assert.deepEqual(read.json.metadata, { tag: 'kept' });
      const continued = await create(srv.baseURL, { input: 'And then?', previous_response_id: kept.id });
      assert.equal(continued.json.previous_response_id, kept.id);
      await checkNotStored(srv.baseURL, continued);

      const del = await deleteJSON(srv.baseURL, `/v1/responses/${kept.id}`);
      assertError(del, { status: 500, type: 'server_error', code: 'INTERNAL', what: 'DELETE in a read-only store' });
      assert.equal((await getJSON(srv.baseURL, `/v1/responses/${kept.id}`)).status, 200, 'the failed DELETE deleted nothing');
      assert.ok(await storeErrors(srv.baseURL, 'put') >= 2);
      assert.ok(await storeErrors(srv.baseURL, 'delete') >= 1);
      await checkStillServing(srv);
    });
  });

  it('a database file that is not a database: the server refuses to start and says how to recover', T, async () => {
    const tmp = await makeTempDir();
    const srv = new AllmServer({ tmp });
    await copyFixture(path.join(srv.modelsDir, 'tiny.gguf'));
    await fsp.mkdir(srv.dataDir, { recursive: true });
    const db = path.join(srv.dataDir, 'responses.db');
    await fsp.writeFile(db, 'this is no database\n'.repeat(500));
    srv.port = await freePort();
    const r = await runCommand(ALLM_BIN, srv.args(), { timeoutMs: 30_000 });
    assert.equal(r.code, 1, `allm serve must exit 1 (code ${r.code}, signal ${r.signal})\n${r.stderr}`);
    assert.match(r.stderr, /file is not a database/);
    const advice = `mv ${db} ${db}.broken`;
    assert.ok(r.stderr.includes(advice), `the message must say: ${advice}\n${r.stderr}`);
    // Following the advice, it starts with an empty store.
    await fsp.rename(db, `${db}.broken`);
    try {
      await srv.start();
      const stored = await create(srv.baseURL);
      assert.equal(stored.json.store, true);
    } finally {
      await srv.cleanup();
    }
  });

  it('damage inside the database: reading or deleting a damaged response is 500 INTERNAL, counted', T, async () => {
    await withServer({}, async (srv) => {
      const ids = [];
      for (let i = 0; i < 4; i++) ids.push((await create(srv.baseURL, { metadata: BIG_METADATA })).json.id);
      await srv.stop();
      const db = path.join(srv.dataDir, 'responses.db');
      assert.ok(!fs.existsSync(`${db}-wal`), 'a clean stop leaves no WAL');
      // Page 1 (header and schema) stays; the table's pages after it become garbage.
      const file = await fsp.open(db, 'r+');
      const { size } = await file.stat();
      await file.write(Buffer.alloc(size - 4096, 0xa5), 0, size - 4096, 4096);
      await file.close();
      await srv.start();
      for (const [method, call] of [['GET', getJSON], ['DELETE', deleteJSON]]) {
        const r = await call(srv.baseURL, `/v1/responses/${ids[0]}`);
        assertError(r, { status: 500, type: 'server_error', code: 'INTERNAL', what: `${method} of a damaged response` });
      }
      assert.ok(await storeErrors(srv.baseURL, 'get') >= 1);
      assert.ok(await storeErrors(srv.baseURL, 'delete') >= 1);
      await checkStillServing(srv);
    });
  });

  it('--store-max-age: responses older than that are deleted in the background', T, async () => {
    await withServer({ extraArgs: ['--store-max-age', '2'] }, async (srv) => {
      const { id } = (await create(srv.baseURL)).json;
      assert.equal((await getJSON(srv.baseURL, `/v1/responses/${id}`)).status, 200, 'kept while young');
      const deadline = Date.now() + 15_000;
      while ((await getJSON(srv.baseURL, `/v1/responses/${id}`)).status === 200 && Date.now() < deadline) await sleep(250);
      assertError(await getJSON(srv.baseURL, `/v1/responses/${id}`), { status: 404, what: 'GET after --store-max-age' });
      assert.ok(metricValue(await scrape(srv.baseURL), 'allm_store_pruned_total') >= 1);
    });
  });

  it('--store-max-bytes: past the size the oldest responses go and the newest stay', T, async () => {
    await withServer({ extraArgs: ['--store-max-bytes', '64K'] }, async (srv) => {
      const ids = [];
      for (let i = 0; i < 24; i++) ids.push((await create(srv.baseURL, { input: `Number ${i}`, metadata: BIG_METADATA })).json.id);
      const status = async (id) => (await getJSON(srv.baseURL, `/v1/responses/${id}`)).status;
      const deadline = Date.now() + 10_000;
      while (await status(ids[0]) === 200 && Date.now() < deadline) await sleep(100);
      assert.equal(await status(ids[0]), 404, 'the oldest response is deleted: 24 × 8 KB do not fit 64 KiB');
      assert.equal(await status(ids.at(-1)), 200, 'the newest response stays');
      const kept = [];
      for (const id of ids) kept.push(await status(id) === 200);
      assert.ok(kept.indexOf(true) > 0 && kept.slice(kept.indexOf(true)).every(Boolean), `only the oldest are deleted: ${kept}`);
      assert.ok(metricValue(await scrape(srv.baseURL), 'allm_store_pruned_total') >= 1);
    });
  });
});
