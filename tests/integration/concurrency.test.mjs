// Parallel requests (continuous batching) and client disconnects.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  useServer, postJSON, postSSE, show, responseText, checkResponseStream, checkChatStream, sleep,
  MODEL, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';

const T = { timeout: TEST_TIMEOUT_MS };

// Each job returns {text, tokens} for a greedy request of up to 40 tokens.
function jobs(base) {
  return [
    {
      name: 'responses stream A',
      run: async () => {
        const r = await postSSE(base, '/v1/responses', { model: MODEL, input: 'First parallel prompt about mountains', max_output_tokens: 40, temperature: 0, stream: true });
        assert.equal(r.status, 200, show('responses stream A', r));
        const s = checkResponseStream(r.events, '(responses stream A)');
        assert.equal(s.deltaText, s.doneText);
        assert.equal(responseText(s.final), s.doneText);
        return { text: s.doneText, tokens: s.final.usage.output_tokens };
      },
    },
    {
      name: 'responses stream B',
      run: async () => {
        const r = await postSSE(base, '/v1/responses', { model: MODEL, input: [{ role: 'system', content: 'Be poetic.' }, { role: 'user', content: 'Second parallel prompt, on rivers' }], max_output_tokens: 40, temperature: 0, stream: true });
        assert.equal(r.status, 200, show('responses stream B', r));
        const s = checkResponseStream(r.events, '(responses stream B)');
        assert.equal(s.deltaText, s.doneText);
        return { text: s.doneText, tokens: s.final.usage.output_tokens };
      },
    },
    {
      name: 'chat non-stream C',
      run: async () => {
        const r = await postJSON(base, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'Third: a short one' }], max_tokens: 40, temperature: 0 });
        assert.equal(r.status, 200, show('chat C', r));
        return { text: r.json.choices[0].message.content, tokens: r.json.usage.completion_tokens };
      },
    },
    {
      name: 'chat stream D',
      run: async () => {
        const r = await postSSE(base, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'Fourth prompt, which is a rather longer one than the others so that the prompts have different lengths in the batch' }], max_tokens: 40, temperature: 0, stream: true, stream_options: { include_usage: true } });
        assert.equal(r.status, 200, show('chat D', r));
        const s = checkChatStream(r.events, { includeUsage: true }, '(chat stream D)');
        return { text: s.content, tokens: s.usage.completion_tokens };
      },
    },
  ];
}

describe('concurrency and disconnects', { timeout: HOOK_TIMEOUT_MS + 6 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer();

  it('4 simultaneous requests each equal the same request run alone', T, async () => {
    const js = jobs(srv.baseURL);
    const alone = [];
    for (const j of js) alone.push(await j.run());
    for (let round = 0; round < 2; round++) {
      const together = await Promise.all(js.map((j) => j.run()));
      together.forEach((res, i) => {
        assert.equal(res.text, alone[i].text, `round ${round}: "${js[i].name}" run in parallel differs from run alone`);
        assert.equal(res.tokens, alone[i].tokens, `round ${round}: "${js[i].name}" token count differs`);
      });
    }
  });

  it('8 simultaneous requests (more than --parallel 4) all complete', T, async () => {
    const js = jobs(srv.baseURL);
    const alone = [];
    for (const j of js) alone.push(await j.run());
    const together = await Promise.all([...js, ...js].map((j) => j.run()));
    together.forEach((res, i) => {
      assert.equal(res.text, alone[i % 4].text, `"${js[i % 4].name}" (copy ${Math.floor(i / 4)}) differs from run alone`);
    });
  });

  it('aborting a streaming response mid-way does not disturb later requests', T, async () => {
    const ac = new AbortController();
    let deltas = 0;
    let aborted = false;
    try {
      await postSSE(srv.baseURL, '/v1/responses',
        { model: MODEL, input: 'Go on for a long time', max_output_tokens: 400, temperature: 0, stream: true },
        {
          signal: ac.signal,
          onEvent: (ev) => {
            if (ev.json?.type === 'response.output_text.delta' && ++deltas >= 3) {
              ac.abort();
              return false;
            }
            return true;
          },
        });
    } catch (e) {
      aborted = true;
      assert.equal(e.name, 'AbortError', `unexpected error while aborting: ${e}`);
    }
    assert.ok(deltas >= 3 || aborted, `did not get 3 delta events before the stream ended (got ${deltas})`);

    const req = { model: MODEL, input: 'After the abort', max_output_tokens: 10, temperature: 0 };
    const r = await postJSON(srv.baseURL, '/v1/responses', req);
    assert.equal(r.status, 200, show('POST /v1/responses after abort', r));
    assert.ok(['completed', 'incomplete'].includes(r.json.status));
    const sr = await postSSE(srv.baseURL, '/v1/responses', { ...req, stream: true });
    assert.equal(sr.status, 200, show('stream after abort', sr));
    const s = checkResponseStream(sr.events);
    assert.equal(s.doneText, responseText(r.json));

    // the server notices the disconnect and cancels the generation (it logs it)
    const deadline = Date.now() + 10_000;
    while (!/cancel/i.test(srv.server.log) && Date.now() < deadline) await sleep(100);
    assert.match(srv.server.log, /cancel/i, 'the server log should mention the cancelled request');
  });

  it('aborting streaming chat completions (all slots) does not disturb later requests', T, async () => {
    const aborts = [];
    for (let i = 0; i < 4; i++) {
      const ac = new AbortController();
      let n = 0;
      aborts.push(postSSE(srv.baseURL, '/v1/chat/completions',
        { model: MODEL, messages: [{ role: 'user', content: `Long chat ${i}` }], max_tokens: 400, temperature: 0, stream: true },
        {
          signal: ac.signal,
          onEvent: () => { if (++n >= 3) { ac.abort(); return false; } return true; },
        }).catch((e) => { if (e.name !== 'AbortError') throw e; }));
    }
    await Promise.all(aborts);
    const t0 = Date.now();
    const r = await postJSON(srv.baseURL, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'still there?' }], max_tokens: 8, temperature: 0 });
    assert.equal(r.status, 200, show('chat after aborting 4 streams', r));
    assert.ok(Date.now() - t0 < 30_000, 'request after aborts took too long');
  });
});
