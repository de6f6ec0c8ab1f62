// Two replicas sharing one PostgreSQL response store (--store postgres://…): what one stores the
// other serves; concurrent writers; the database stopped and started under load.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  AllmServer, makeTempDir, copyFixture, getJSON, postJSON, deleteJSON, assertError, show, sleep, pseudoWords,
  MODEL, HOOK_TIMEOUT_MS, TEST_TIMEOUT_MS,
} from '../e2e/helpers.mjs';
import { PostgresCluster } from './postgres_cluster.mjs';

async function startReplica(store, more = []) {
  const srv = new AllmServer({ tmp: await makeTempDir(), extraArgs: ['--store', store, ...more], ctxSize: 4096 });
  await copyFixture(path.join(srv.modelsDir, 'tiny.gguf'));
  await srv.start();
  return srv;
}

async function create(baseURL, body) {
  const r = await postJSON(baseURL, '/v1/responses', { model: MODEL, max_output_tokens: 4, temperature: 0, ...body });
  assert.equal(r.status, 200, show(`POST /v1/responses ${JSON.stringify(body)}`, r));
  return r.json;
}

// Polls /health until its store field is `state`.
async function untilStore(srv, state, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await getJSON(srv.baseURL, '/health');
    assert.equal(last.status, 200, show('GET /health (liveness stays 200)', last));
    if (last.json.store === state) return;
    await sleep(100);
  }
  assert.fail(`/health never reported store "${state}"; last: ${show('GET /health', last)}`);
}

function assertUnavailable(r, what) {
  assertError(r, { status: 503, type: 'server_error', code: 'store_unavailable', what });
  assert.ok(Number(r.headers.get('retry-after')) >= 1, `${what}: 503 without Retry-After`);
}

describe('PostgreSQL response store shared by two replicas', { timeout: 3 * HOOK_TIMEOUT_MS + 4 * TEST_TIMEOUT_MS }, () => {
  const pg = new PostgresCluster();
  const replicas = [];
  const [a, b] = [() => replicas[0], () => replicas[1]];

  before(async () => {
    await pg.init();
    // Started together: both migrate the empty database, one after the other under the lock.
    replicas.push(...await Promise.all([startReplica(pg.uri), startReplica(pg.uri)]));
  }, { timeout: HOOK_TIMEOUT_MS });

  after(async () => {
    for (const srv of replicas) await srv.cleanup();
    await pg.destroy();
  }, { timeout: HOOK_TIMEOUT_MS });

  afterEach((t) => {
    if (t.passed === false) {
      replicas.forEach((srv, i) => console.error(`----- replica ${i} log -----\n${srv.logTail(8000)}`));
    }
  });

  it('creates the schema once, versioned', async () => {
    assert.equal(await pg.psql('SELECT string_agg(version::text, \',\') FROM allm_schema_version'), '1,2');
    for (const srv of replicas) await untilStore(srv, 'ok');
  });

  it('a response stored by one replica is read, listed, continued and deleted through the other', { timeout: TEST_TIMEOUT_MS }, async () => {
    const first = await create(a().baseURL, { input: 'Remember the word harbour', instructions: 'Be brief.' });
    const read = await getJSON(b().baseURL, `/v1/responses/${first.id}`);
    assert.equal(read.status, 200, show('GET on the other replica', read));
    assert.deepEqual(read.json, first);

    const items = await getJSON(b().baseURL, `/v1/responses/${first.id}/input_items?order=asc`);
    assert.equal(items.status, 200, show('input_items on the other replica', items));
    assert.equal(items.json.data.length, 1);
    assert.equal(items.json.data[0].content[0].text, 'Remember the word harbour');

    const next = await create(b().baseURL, { input: 'Which word?', previous_response_id: first.id });
    assert.equal(next.previous_response_id, first.id);
    assert.ok(next.usage.input_tokens > first.usage.input_tokens, 'the continuation includes the conversation stored by the other replica');
    const nextItems = await getJSON(a().baseURL, `/v1/responses/${next.id}/input_items?order=asc`);
    assert.equal(nextItems.status, 200, show('input_items of the continuation', nextItems));
    assert.deepEqual(nextItems.json.data.map((i) => i.role), ['user', 'assistant', 'user']);

    const del = await deleteJSON(b().baseURL, `/v1/responses/${first.id}`);
    assert.equal(del.status, 200, show('DELETE on the other replica', del));
    assertError(await getJSON(a().baseURL, `/v1/responses/${first.id}`), { status: 404, what: 'GET deleted' });
    assertError(await deleteJSON(a().baseURL, `/v1/responses/${first.id}`), { status: 404, what: 'DELETE again' });
  });

  it('concurrent writers on both replicas: every response is retrievable from the other', { timeout: TEST_TIMEOUT_MS }, async () => {
    const made = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      create(replicas[i % 2].baseURL, { input: `Concurrent writer ${i}` }).then((r) => ({ r, i }))));
    assert.equal(new Set(made.map(({ r }) => r.id)).size, 20);
    for (const { r, i } of made) {
      const read = await getJSON(replicas[(i + 1) % 2].baseURL, `/v1/responses/${r.id}`);
      assert.equal(read.status, 200, show(`GET writer ${i} on the other replica`, read));
      assert.deepEqual(read.json, r);
    }
    // Pooled: at most 8 connections per replica, named after the server.
    const connections = Number(await pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'allm'"));
    assert.ok(connections >= 2 && connections <= 16, `${connections} connections from two replicas`);
  });

  it('background responses across replicas: polled and cancelled through the other; an abandoned one fails once its lease expires', { timeout: TEST_TIMEOUT_MS }, async () => {
    const endless = { input: 'Go on forever', max_output_tokens: 12000, background: true };
    const started = await create(a().baseURL, endless);
    await sleep(1500);  // past a lease renewal
    const polled = await getJSON(b().baseURL, `/v1/responses/${started.id}`);
    assert.equal(polled.status, 200, show('GET on the other replica', polled));
    assert.equal(polled.json.status, 'in_progress', 'the other replica must not take it for abandoned');
    const t0 = Date.now();
    const cancelled = await postJSON(b().baseURL, `/v1/responses/${started.id}/cancel`);
    assert.equal(cancelled.status, 200, show('cancel through the other replica', cancelled));
    assert.equal(cancelled.json.status, 'cancelled', show('cancel through the other replica', cancelled));
    assert.ok(Date.now() - t0 < 5000, 'the owner obeys within seconds');
    const onOwner = await getJSON(a().baseURL, `/v1/responses/${started.id}`);
    assert.deepEqual(onOwner.json, cancelled.json);
    assert.equal(await pg.psql(`SELECT count(*) FROM allm_background_leases WHERE id = '${started.id}'`), '0');

    // Its replica killed: in progress while the lease is fresh, failed once it expired.
    const doomed = await startReplica(pg.uri);
    replicas.push(doomed);
    const orphan = await create(doomed.baseURL, endless);
    await sleep(1200);
    await doomed.kill('SIGKILL');
    const killedAt = Date.now();
    let r;
    do {
      r = await getJSON(b().baseURL, `/v1/responses/${orphan.id}`);
      assert.equal(r.status, 200, show('GET the orphan', r));
      if (r.json.status !== 'in_progress') break;
      await sleep(250);
    } while (Date.now() - killedAt < 20_000);
    assert.equal(r.json.status, 'failed', show('the orphan after its lease expired', r));
    assert.equal(r.json.error.code, 'CANCELLED');
    assert.ok(Date.now() - killedAt > 7000, `marked failed ${Date.now() - killedAt} ms after its replica died, before the lease expired`);
    replicas.splice(replicas.indexOf(doomed), 1);
    await doomed.cleanup();
  });

  it('database stopped under load: 503 for stateful requests, stateless ones served, recovery without restarts', { timeout: 2 * TEST_TIMEOUT_MS }, async () => {
    const before = await create(a().baseURL, { input: 'Stored before the outage' });

    // Load on both replicas while the database stops: every answer is a 200 or a documented 503;
    // each replica's client goes on until it met the outage.
    const outcomes = [];
    const deadline = Date.now() + 30_000;
    const load = Promise.all(replicas.map(async (srv, n) => {
      for (let i = 0, met = false; !met && Date.now() < deadline; ++i) {
        const r = await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, input: `load ${n}.${i}`, max_output_tokens: 2 });
        outcomes.push(r);
        met = r.status === 503;
      }
    }));
    await sleep(300);
    await pg.stop();
    for (const srv of replicas) await untilStore(srv, 'unavailable');
    await load;
    for (const r of outcomes) {
      if (r.status === 200) continue;
      assertUnavailable(r, 'store:true during the outage');
    }
    assert.equal(outcomes.filter((r) => r.status === 503).length, replicas.length, 'each replica\'s client met the outage');
    const storedDuringLoad = outcomes.filter((r) => r.status === 200 && r.json.store === true).map((r) => r.json.id);

    // Stateful: 503 with Retry-After; stateless: served.
    assertUnavailable(await postJSON(a().baseURL, '/v1/responses', { model: MODEL, input: 'x', max_output_tokens: 2 }), 'POST store:true');
    assertUnavailable(await getJSON(b().baseURL, `/v1/responses/${before.id}`), 'GET');
    assertUnavailable(await getJSON(b().baseURL, `/v1/responses/${before.id}/input_items`), 'input_items');
    assertUnavailable(await deleteJSON(a().baseURL, `/v1/responses/${before.id}`), 'DELETE');
    assertUnavailable(await postJSON(a().baseURL, '/v1/responses', { model: MODEL, input: 'x', store: false, previous_response_id: before.id }), 'previous_response_id');
    assertUnavailable(await postJSON(a().baseURL, '/v1/responses', { model: MODEL, input: 'x', background: true }), 'background');
    const stateless = await postJSON(b().baseURL, '/v1/responses', { model: MODEL, input: 'not stored', store: false, max_output_tokens: 2 });
    assert.equal(stateless.status, 200, show('store:false during the outage', stateless));
    const chat = await postJSON(a().baseURL, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    assert.equal(chat.status, 200, show('chat completion during the outage', chat));

    // A replica started while the database is down starts, says so, and never logs the password.
    const late = await startReplica(pg.uri.replace('allm@', 'allm:s3cret-pw@'));
    replicas.push(late);
    await untilStore(late, 'unavailable');

    await pg.start();
    for (const srv of replicas) await untilStore(srv, 'ok');
    for (const srv of replicas) {
      const read = await getJSON(srv.baseURL, `/v1/responses/${before.id}`);
      assert.equal(read.status, 200, show('GET after recovery', read));
      assert.deepEqual(read.json, before);
      await create(srv.baseURL, { input: 'Stored after the outage', previous_response_id: before.id });
    }
    // Whatever was answered as stored during the outage is there in full.
    for (const id of storedDuringLoad) {
      const read = await getJSON(b().baseURL, `/v1/responses/${id}`);
      assert.equal(read.status, 200, show(`GET ${id} answered as stored during the outage`, read));
    }
    const serverLog = late.log.split('\n').filter((line) => !line.startsWith('===== [test]')).join('\n');
    assert.ok(!serverLog.includes('s3cret-pw'), 'the password appears in the log');
    assert.match(late.log, /allm:\*\*\*@127\.0\.0\.1/);
  });

  it('retention applies to the shared store: by size (summed row sizes) and by age', { timeout: TEST_TIMEOUT_MS }, async () => {
    await pg.psql('CREATE DATABASE allm_size', 'postgres');
    await pg.psql('CREATE DATABASE allm_age', 'postgres');
    const sized = await startReplica(pg.uri.replace(/allm$/, 'allm_size'), ['--store-max-bytes', '64K']);
    const aged = await startReplica(pg.uri.replace(/allm$/, 'allm_age'), ['--store-max-age', '2']);
    replicas.push(sized, aged);

    // About 8 KB of metadata each (not compressible much): 30 of them are far past 64 KiB.
    const ids = [];
    for (let i = 0; i < 30; ++i) {
      const metadata = Object.fromEntries(Array.from({ length: 16 }, (_, k) => [`k${k}`, pseudoWords(500, i * 100 + k + 1)]));
      ids.push((await create(sized.baseURL, { input: `sized ${i}`, metadata })).id);
    }
    const bytes = async () => Number(await pg.psql('SELECT coalesce(sum(pg_column_size(r.*)), 0) FROM allm_responses r', 'allm_size'));
    const deadline = Date.now() + 10_000;
    while (await bytes() > 65536 && Date.now() < deadline) await sleep(200);
    assert.ok(await bytes() <= 65536, `the rows still take ${await bytes()} bytes`);
    const kept = Number(await pg.psql('SELECT count(*) FROM allm_responses', 'allm_size'));
    assert.ok(kept > 0 && kept < 30, `kept ${kept} of 30`);
    const newest = await getJSON(sized.baseURL, `/v1/responses/${ids[29]}`);
    assert.equal(newest.status, 200, show('GET the newest', newest));
    assertError(await getJSON(sized.baseURL, `/v1/responses/${ids[0]}`), { status: 404, what: 'GET the oldest, pruned' });

    const old = await create(aged.baseURL, { input: 'Forget me in two seconds' });
    const gone = Date.now() + 8_000;
    let r;
    do {
      await sleep(250);
      r = await getJSON(aged.baseURL, `/v1/responses/${old.id}`);
    } while (r.status === 200 && Date.now() < gone);
    assertError(r, { status: 404, what: 'GET a response past --store-max-age' });
    assert.equal(await pg.psql('SELECT count(*) FROM allm_responses', 'allm_age'), '0');
  });

  it('a database migrated by a newer allm is refused: the store stays unavailable, the log says why', { timeout: TEST_TIMEOUT_MS }, async () => {
    await pg.psql('CREATE DATABASE allm_newer', 'postgres');
    await pg.psql('CREATE TABLE allm_schema_version (version integer PRIMARY KEY); INSERT INTO allm_schema_version VALUES (99)', 'allm_newer');
    const srv = await startReplica(pg.uri.replace(/allm$/, 'allm_newer'));
    replicas.push(srv);
    await untilStore(srv, 'unavailable');
    assert.match(srv.log, /schema is version 99, newer than this server knows/);
    assert.equal(await pg.psql("SELECT to_regclass('allm_responses') IS NULL", 'allm_newer'), 't', 'nothing was migrated');
    assertUnavailable(await getJSON(srv.baseURL, '/v1/responses/resp_x'), 'GET on a refused schema');
  });
});
