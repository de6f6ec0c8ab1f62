// Stored responses survive a restart (same --data-dir, new process).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  useServer, getJSON, postJSON, deleteJSON, assertError, show, responseText,
  MODEL, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';

describe('response store persistence', { timeout: 2 * HOOK_TIMEOUT_MS + 2 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer();

  it('stored responses, deletions and continuations survive a restart', { timeout: HOOK_TIMEOUT_MS }, async () => {
    const mk = async (body) => {
      const r = await postJSON(srv.baseURL, '/v1/responses', { model: MODEL, max_output_tokens: 8, temperature: 0, ...body });
      assert.equal(r.status, 200, show(`POST /v1/responses ${JSON.stringify(body)}`, r));
      return r.json;
    };
    const kept = await mk({ input: 'Keep me across restarts', instructions: 'Be brief.' });
    const gone = await mk({ input: 'Delete me before the restart' });
    const unstored = await mk({ input: 'Never stored', store: false });
    const d = await deleteJSON(srv.baseURL, `/v1/responses/${gone.id}`);
    assert.equal(d.status, 200, show('DELETE', d));
    const before = await getJSON(srv.baseURL, `/v1/responses/${kept.id}`);
    assert.equal(before.status, 200, show('GET before restart', before));

    const exit = await srv.server.restart();
    assert.equal(exit.forced, false, 'server had to be SIGKILLed');
    assert.notEqual(srv.server.child, null);

    const after = await getJSON(srv.baseURL, `/v1/responses/${kept.id}`);
    assert.equal(after.status, 200, show(`GET /v1/responses/${kept.id} after restart`, after));
    assert.equal(after.json.id, kept.id);
    assert.equal(after.json.status, kept.status);
    assert.equal(after.json.model, MODEL);
    assert.equal(after.json.instructions, 'Be brief.');
    assert.equal(after.json.created_at, kept.created_at);
    assert.deepEqual(after.json.output, kept.output);
    assert.deepEqual(after.json.usage, kept.usage);
    assert.deepEqual(after.json, before.json, 'the stored object must be identical before and after the restart');

    assertError(await getJSON(srv.baseURL, `/v1/responses/${gone.id}`), { status: 404, what: 'GET deleted response after restart' });
    assertError(await getJSON(srv.baseURL, `/v1/responses/${unstored.id}`), { status: 404, what: 'GET store:false response after restart' });

    // continue the stored conversation in the new process
    const cont = await mk({ input: 'And now?', previous_response_id: kept.id });
    assert.equal(cont.previous_response_id, kept.id);
    assert.ok(cont.usage.input_tokens > kept.usage.input_tokens, 'continuation after restart includes the stored conversation');
    assert.equal(typeof responseText(cont), 'string');
  });
});
