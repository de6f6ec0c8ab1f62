// End-to-end tests with the official OpenAI Node SDK against a real allm process.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import {
  useServer, responseText, MODEL, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from './helpers.mjs';

const T = { timeout: TEST_TIMEOUT_MS };

describe('OpenAI SDK', { timeout: HOOK_TIMEOUT_MS + 20 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer();
  let client;
  const sdk = () => {
    client ??= new OpenAI({ baseURL: srv.baseURL + '/v1', apiKey: 'test', maxRetries: 0, timeout: 55_000 });
    return client;
  };

  it('models.list includes the fixture', T, async () => {
    const ids = [];
    for await (const m of sdk().models.list()) ids.push(m.id);
    assert.ok(ids.includes(MODEL), `models: ${ids}`);
    const m = await sdk().models.retrieve(MODEL).catch((e) => e);
    // retrieve is optional in the contract; if implemented it must return the model
    if (!(m instanceof OpenAI.NotFoundError)) {
      assert.ok(!(m instanceof Error), `models.retrieve failed: ${m}`);
      assert.equal(m.id, MODEL);
    }
  });

  it('responses.create with string input', T, async () => {
    const r = await sdk().responses.create({ model: MODEL, input: 'Hello from the SDK', max_output_tokens: 16, temperature: 0 });
    assert.ok(r.id.startsWith('resp_'), r.id);
    assert.equal(r.object, 'response');
    assert.ok(['completed', 'incomplete'].includes(r.status), r.status);
    assert.equal(typeof r.output_text, 'string');
    assert.equal(r.output_text, responseText(r), 'SDK output_text must equal the concatenated output_text parts');
    assert.ok(r.usage.output_tokens <= 16);
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
  });

  it('responses.create with a message array', T, async () => {
    const r = await sdk().responses.create({
      model: MODEL,
      instructions: 'Answer in one word.',
      input: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello.' },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'How are you?' }] },
      ],
      max_output_tokens: 10,
      temperature: 0,
    });
    assert.equal(r.output_text, responseText(r));
    assert.equal(r.instructions, 'Answer in one word.');
  });

  it('responses.create stream:true: events in order, deltas == final output_text == non-stream', T, async () => {
    const req = { model: MODEL, input: 'Stream via SDK', max_output_tokens: 20, temperature: 0 };
    const ns = await sdk().responses.create(req);
    const stream = await sdk().responses.create({ ...req, stream: true });
    let text = '';
    let seq = 0;
    let final = null;
    const types = [];
    for await (const ev of stream) {
      types.push(ev.type);
      assert.equal(ev.sequence_number, seq++, `sequence_number of ${ev.type}`);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      if (ev.type === 'response.output_text.done') assert.equal(ev.text, text, 'output_text.done text == concatenated deltas');
      if (ev.type === 'response.completed' || ev.type === 'response.incomplete') final = ev.response;
    }
    assert.equal(types[0], 'response.created', types.join(','));
    assert.ok(final, `no final event: ${types.join(',')}`);
    assert.equal(responseText(final), text);
    assert.equal(text, ns.output_text, 'streamed text must equal non-stream output_text');
  });

  it('responses.stream helper and finalResponse()', T, async () => {
    const req = { model: MODEL, input: 'Helper stream', max_output_tokens: 20, temperature: 0 };
    const ns = await sdk().responses.create(req);
    const stream = sdk().responses.stream(req);
    let deltas = '';
    stream.on('response.output_text.delta', (ev) => { deltas += ev.delta; });
    const final = await stream.finalResponse();
    assert.equal(final.output_text, deltas, 'finalResponse().output_text must equal the concatenated deltas');
    assert.equal(final.output_text, ns.output_text, 'must equal the non-stream output_text');
    assert.ok(final.id.startsWith('resp_'));
    assert.ok(['completed', 'incomplete'].includes(final.status));
  });

  it('responses.retrieve and responses.delete', T, async () => {
    const r = await sdk().responses.create({ model: MODEL, input: 'Retrieve me', max_output_tokens: 8, temperature: 0 });
    const got = await sdk().responses.retrieve(r.id);
    assert.equal(got.id, r.id);
    assert.equal(got.output_text, r.output_text);
    assert.deepEqual(got.usage, r.usage);
    await sdk().responses.delete(r.id);
    await assert.rejects(sdk().responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError && e.status === 404,
      'retrieve after delete must be a 404 NotFoundError');
  });

  it('responses with previous_response_id', T, async () => {
    const a = await sdk().responses.create({ model: MODEL, input: 'Remember 42.', max_output_tokens: 6, temperature: 0 });
    const b = await sdk().responses.create({ model: MODEL, input: 'What number?', max_output_tokens: 6, temperature: 0, previous_response_id: a.id });
    assert.equal(b.previous_response_id, a.id);
    assert.ok(b.usage.input_tokens > a.usage.input_tokens);
  });

  it('chat.completions.create non-stream and stream agree', T, async () => {
    const req = { model: MODEL, messages: [{ role: 'system', content: 'Be kind.' }, { role: 'user', content: 'Chat via SDK' }], max_tokens: 20, temperature: 0 };
    const c = await sdk().chat.completions.create(req);
    assert.ok(c.id.startsWith('chatcmpl-'));
    assert.equal(c.object, 'chat.completion');
    assert.equal(c.choices[0].message.role, 'assistant');
    assert.equal(typeof c.choices[0].message.content, 'string');
    assert.ok(['stop', 'length'].includes(c.choices[0].finish_reason));
    assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);

    const stream = await sdk().chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.choices.length > 0) {
        text += chunk.choices[0].delta?.content ?? '';
        if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, c.choices[0].message.content, 'streamed content == non-stream content');
    assert.equal(finish, c.choices[0].finish_reason);
    // cached_tokens depends on what earlier requests left in the cache (prefix reuse).
    const uncached = (u) => ({ ...u, prompt_tokens_details: { ...u.prompt_tokens_details, cached_tokens: 0 } });
    assert.deepEqual(uncached(usage), uncached(c.usage));
  });

  it('chat.completions.stream helper and finalChatCompletion()', T, async () => {
    const req = { model: MODEL, messages: [{ role: 'user', content: 'Helper chat stream' }], max_tokens: 20, temperature: 0 };
    const c = await sdk().chat.completions.create(req);
    const stream = sdk().chat.completions.stream(req);
    let deltas = '';
    stream.on('content', (delta) => { deltas += delta; });
    const final = await stream.finalChatCompletion();
    assert.equal(final.choices[0].message.content, deltas);
    assert.equal(final.choices[0].message.content, c.choices[0].message.content);
    assert.equal(final.choices[0].finish_reason, c.choices[0].finish_reason);
  });

  it('chat.completions with logprobs through the SDK', T, async () => {
    const c = await sdk().chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'lp' }], max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 2 });
    const lp = c.choices[0].logprobs?.content;
    assert.ok(Array.isArray(lp) && lp.length > 0);
    for (const e of lp) assert.equal(e.top_logprobs.length, 2);
  });

  it('errors surface as typed SDK errors', T, async () => {
    await assert.rejects(
      sdk().responses.create({ model: 'no-such-model', input: 'x' }),
      (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found',
    );
    await assert.rejects(
      sdk().chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: 21 }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'top_logprobs' && e.type === 'invalid_request_error',
    );
    await assert.rejects(
      sdk().chat.completions.create({ model: MODEL, messages: [] }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400,
    );
  });
});
