// POST /v1/completions (OpenAI's legacy completions) with the official OpenAI SDK against a real
// allm process, on both backends: the tiny GGUF demo fixture (llama.cpp) and a random-weight
// Hugging Face folder (safetensors.cpp) with the GGUF of the same weights beside it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import {
  useServer, postJSON, assertError, checkValidationCases, show, cuttingStop, MODEL, TEST_TIMEOUT_MS,
  HOOK_TIMEOUT_MS,
} from './helpers.mjs';
import { makeHfFixture, makeQwen3Fixture } from '../integration/hf_fixture.mjs';

const T = { timeout: TEST_TIMEOUT_MS };
const HF = 'llama-f32-hf';
const HF_GGUF = 'llama-f32-gguf';
const QWEN3 = 'qwen3-real';  // Qwen3's real tokenizer, with its fill-in-the-middle tokens
const BACKENDS = [MODEL, HF];
const PROMPT = 'Once upon a time';

const codePoints = (s) => [...s].length;


describe('POST /v1/completions', { timeout: HOOK_TIMEOUT_MS + 12 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({
    setup: async ({ modelsDir }) => {
      await makeHfFixture('llama', 'f32', modelsDir);
      await makeQwen3Fixture(modelsDir, QWEN3);
    },
  });
  const sdk = () => new OpenAI({ baseURL: srv.baseURL + '/v1', apiKey: 'test', maxRetries: 0, timeout: 55_000 });
  const greedy = (model, prompt, more = {}) =>
    sdk().completions.create({ model, prompt, max_tokens: 12, temperature: 0, ...more });

  for (const model of BACKENDS) {
    it(`${model}: completions.create answers the raw prompt, streamed the same`, T, async () => {
      const plain = await greedy(model, PROMPT);
      assert.ok(plain.id.startsWith('cmpl-'), plain.id);
      assert.equal(plain.object, 'text_completion');
      assert.equal(plain.model, model);
      assert.equal(plain.choices.length, 1);
      const [choice] = plain.choices;
      assert.equal(choice.index, 0);
      assert.equal(choice.logprobs, null);
      assert.ok(['stop', 'length'].includes(choice.finish_reason), choice.finish_reason);
      assert.ok(plain.usage.completion_tokens >= 1 && plain.usage.completion_tokens <= 12);
      assert.equal(plain.usage.total_tokens, plain.usage.prompt_tokens + plain.usage.completion_tokens);
      // No chat template: the prompt is a handful of tokens, fewer than a chat turn of it.
      const chat = await sdk().chat.completions.create({
        model, messages: [{ role: 'user', content: PROMPT }], max_tokens: 1, temperature: 0,
      });
      assert.ok(plain.usage.prompt_tokens < chat.usage.prompt_tokens,
        `raw prompt ${plain.usage.prompt_tokens} tokens vs chat ${chat.usage.prompt_tokens}`);

      const stream = await greedy(model, PROMPT, { stream: true, stream_options: { include_usage: true } });
      let text = '';
      let finish = null;
      let usage = null;
      for await (const chunk of stream) {
        assert.equal(chunk.object, 'text_completion');
        assert.equal(chunk.id.startsWith('cmpl-'), true);
        if (chunk.usage) usage = chunk.usage;
        for (const c of chunk.choices) {
          assert.equal(c.index, 0);
          text += c.text;
          finish = c.finish_reason ?? finish;
        }
      }
      assert.equal(text, choice.text, 'streamed text differs from the plain answer');
      assert.equal(finish, choice.finish_reason);
      assert.deepEqual(usage, plain.usage);
    });
  }

  it('max_tokens defaults to 16, as OpenAI documents', T, async () => {
    const r = await sdk().completions.create({ model: MODEL, prompt: PROMPT, temperature: 0 });
    assert.ok(r.usage.completion_tokens <= 16, JSON.stringify(r.usage));
    if (r.choices[0].finish_reason === 'length') assert.equal(r.usage.completion_tokens, 16);
  });

  it('the same weights give the same greedy completion and logprobs on llama.cpp and safetensors.cpp', T, async () => {
    const hf = await greedy(HF, PROMPT, { logprobs: 2 });
    const gguf = await greedy(HF_GGUF, PROMPT, { logprobs: 2 });
    assert.equal(hf.choices[0].text, gguf.choices[0].text);
    assert.equal(hf.usage.prompt_tokens, gguf.usage.prompt_tokens);
    const a = hf.choices[0].logprobs;
    const b = gguf.choices[0].logprobs;
    assert.deepEqual(a.tokens, b.tokens);
    a.token_logprobs.forEach((lp, i) => assert.ok(Math.abs(lp - b.token_logprobs[i]) < 1e-3, `token ${i}: ${lp} vs ${b.token_logprobs[i]}`));
  });

  for (const model of BACKENDS) {
    it(`${model}: logprobs in the legacy shape (tokens, token_logprobs, top_logprobs, text_offset)`, T, async () => {
      const r = await greedy(model, PROMPT, { logprobs: 3 });
      const { text } = r.choices[0];
      const lp = r.choices[0].logprobs;
      assert.equal(lp.tokens.length, r.usage.completion_tokens);
      for (const key of ['token_logprobs', 'top_logprobs', 'text_offset']) assert.equal(lp[key].length, lp.tokens.length, key);
      const chars = [...text];
      lp.tokens.forEach((token, i) => {
        const top = Object.values(lp.top_logprobs[i]);
        assert.ok(top.length >= 1 && top.length <= 3, `top_logprobs[${i}] has ${top.length} entries`);
        assert.ok(lp.token_logprobs[i] <= 0);
        // Greedy: the chosen token is the likeliest.
        assert.ok(Math.abs(lp.token_logprobs[i] - Math.max(...top)) < 1e-5, `token ${i} is not the likeliest`);
        // Each whole token's text is in the choice's text at its offset (a token that is part
        // of a character shows as U+FFFD).
        if (i > 0) assert.ok(lp.text_offset[i] >= lp.text_offset[i - 1], `text_offset[${i}] goes back`);
        if (!token.includes('\uFFFD')) {
          const at = lp.text_offset[i];
          assert.equal(chars.slice(at, at + codePoints(token)).join(''), token, `text_offset[${i}] = ${at}`);
        }
      });
      assert.equal(lp.text_offset[0], 0);
      if (!text.includes('\uFFFD')) assert.equal(lp.tokens.join(''), text);
    });
  }

  it('stop ends the text before the first stop string', T, async () => {
    const full = (await greedy(MODEL, PROMPT, { max_tokens: 16 })).choices[0].text;
    const stop = cuttingStop(full);
    const r = await greedy(MODEL, PROMPT, { max_tokens: 16, stop: [stop, 'never-there'] });
    assert.equal(r.choices[0].text, full.slice(0, full.indexOf(stop)));
    assert.equal(r.choices[0].finish_reason, 'stop');
  });

  it('echo returns the prompt before the completion (string and token-id prompts)', T, async () => {
    const plain = await greedy(MODEL, PROMPT);
    const echoed = await greedy(MODEL, PROMPT, { echo: true });
    assert.equal(echoed.choices[0].text, PROMPT + plain.choices[0].text);
    const streamed = await greedy(MODEL, PROMPT, { echo: true, stream: true });
    let text = '';
    for await (const chunk of streamed) text += chunk.choices.map((c) => c.text).join('');
    assert.equal(text, echoed.choices[0].text);
    // Token ids: echo gives their text; that prompt's tokens are exactly the ids given (no bos).
    const ids = await greedy(MODEL, [5, 6, 7, 8], { echo: true, max_tokens: 2 });
    assert.equal(ids.usage.prompt_tokens, 4);
    assert.ok(ids.choices[0].text.length > 0);
  });

  for (const model of BACKENDS) {
    it(`${model}: echo with logprobs scores the prompt: each token's alternatives are those a completion of what comes before it has`, T, async () => {
      const ids = [5, 6, 7, 8, 9];
      const echoed = await greedy(model, ids, { echo: true, logprobs: 3, max_tokens: 2 });
      const lp = echoed.choices[0].logprobs;
      assert.equal(lp.tokens.length, ids.length + echoed.usage.completion_tokens);
      // Token ids: the first prompt token is the prompt's own, with nothing before it.
      assert.equal(lp.token_logprobs[0], null);
      assert.equal(lp.top_logprobs[0], null);
      for (let k = 1; k < ids.length; ++k) {
        const prefix = await greedy(model, ids.slice(0, k), { logprobs: 3, max_tokens: 1 });
        const want = prefix.choices[0].logprobs.top_logprobs[0];
        const got = lp.top_logprobs[k];
        assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `prompt token ${k}`);
        for (const [token, value] of Object.entries(want)) {
          assert.ok(Math.abs(got[token] - value) < 1e-3, `prompt token ${k}, ${JSON.stringify(token)}: ${got[token]} vs ${value}`);
        }
        if (lp.tokens[k] in want) assert.ok(Math.abs(lp.token_logprobs[k] - want[lp.tokens[k]]) < 1e-3);
      }
      // The completion's tokens are scored as without echo, their offsets past the prompt.
      const plain = await greedy(model, ids, { logprobs: 3, max_tokens: 2 });
      const promptChars = [...echoed.choices[0].text].length - [...plain.choices[0].text].length;
      assert.equal(echoed.choices[0].text.slice(-plain.choices[0].text.length || undefined), plain.choices[0].text);
      plain.choices[0].logprobs.token_logprobs.forEach((value, i) =>
        assert.ok(Math.abs(lp.token_logprobs[ids.length + i] - value) < 1e-4, `completion token ${i}`));
      assert.deepEqual(lp.text_offset.slice(ids.length), plain.choices[0].logprobs.text_offset.map((o) => o + promptChars));

      const stream = await greedy(model, ids, { echo: true, logprobs: 3, max_tokens: 2, stream: true });
      const streamed = { tokens: [], token_logprobs: [], text_offset: [] };
      for await (const chunk of stream) {
        for (const c of chunk.choices) {
          for (const key of Object.keys(streamed)) streamed[key].push(...(c.logprobs?.[key] ?? []));
        }
      }
      for (const key of Object.keys(streamed)) assert.deepEqual(streamed[key], lp[key], key);
    });
  }

  it('suffix: the prompt in the model\'s fill-in-the-middle format (Qwen3\'s <|fim_*|> tokens)', T, async () => {
    const prefix = 'def add(a, b):\n    ';
    const suffix = '\n\nprint(add(1, 2))\n';
    const alone = async (prompt) => (await greedy(QWEN3, prompt, { max_tokens: 1 })).usage.prompt_tokens;
    const r = await greedy(QWEN3, prefix, { suffix, max_tokens: 4 });
    assert.ok(r.usage.completion_tokens >= 1);
    // <|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|>: three single tokens around them.
    assert.equal(r.usage.prompt_tokens, (await alone(prefix)) + (await alone(suffix)) + 3);
    const fim = await greedy(QWEN3, `<|fim_prefix|>${prefix}<|fim_suffix|>${suffix}<|fim_middle|>`, { max_tokens: 4 });
    assert.equal(r.choices[0].text, fim.choices[0].text);
  });

  it('array prompts × n: one choice per prompt and n, in order, usage summed', T, async () => {
    const prompts = [PROMPT, 'The weather today'];
    const singles = await Promise.all(prompts.map((p) => greedy(MODEL, p)));
    const r = await greedy(MODEL, prompts, { n: 2 });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2, 3]);
    r.choices.forEach((c, i) => assert.equal(c.text, singles[Math.floor(i / 2)].choices[0].text, `choice ${i}`));
    assert.equal(r.usage.prompt_tokens, singles[0].usage.prompt_tokens + singles[1].usage.prompt_tokens);
    assert.equal(r.usage.completion_tokens, 2 * (singles[0].usage.completion_tokens + singles[1].usage.completion_tokens));

    const stream = await greedy(MODEL, prompts, { n: 2, stream: true });
    const texts = ['', '', '', ''];
    const finishes = [];
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        texts[c.index] += c.text;
        if (c.finish_reason) finishes[c.index] = c.finish_reason;
      }
    }
    assert.deepEqual(texts, r.choices.map((c) => c.text));
    assert.deepEqual(finishes, r.choices.map((c) => c.finish_reason));
  });

  it('n > 1 with sampling gives choices of their own, the same again for the same seed', T, async () => {
    const req = { model: MODEL, prompt: PROMPT, n: 3, max_tokens: 12, temperature: 1, seed: 7 };
    const a = await sdk().completions.create(req);
    const b = await sdk().completions.create(req);
    assert.deepEqual(a.choices.map((c) => c.text), b.choices.map((c) => c.text));
    assert.ok(new Set(a.choices.map((c) => c.text)).size > 1, 'all choices are the same');
  });

  it('best_of returns the n of best_of generations with the highest log probability per token', T, async () => {
    const req = { model: MODEL, prompt: PROMPT, max_tokens: 8, temperature: 1.5, seed: 11 };
    // Generation j of a prompt uses seed + j, so n: 4 shows all four candidates best_of: 4 has.
    const all = await sdk().completions.create({ ...req, n: 4, logprobs: 0 });
    const mean = (c) => c.logprobs.token_logprobs.reduce((a, b) => a + b, 0) / c.logprobs.token_logprobs.length;
    const ranked = [...all.choices].sort((a, b) => mean(b) - mean(a));
    const best = await sdk().completions.create({ ...req, n: 2, best_of: 4 });
    assert.deepEqual(best.choices.map((c) => c.text), ranked.slice(0, 2).map((c) => c.text));
    assert.deepEqual(best.choices.map((c) => c.index), [0, 1]);
    assert.equal(best.choices[0].logprobs, null, 'logprobs were not asked for');
    assert.equal(best.usage.completion_tokens, all.usage.completion_tokens, 'every generation counts');
  });

  it('bad requests are 400s naming the field', T, async () => {
    const p = '/v1/completions';
    await checkValidationCases(srv.baseURL, p, [
      [{ model: MODEL }, 'prompt'],
      [{ model: MODEL, prompt: [] }, 'prompt'],
      [{ model: MODEL, prompt: [1, 'a'] }, 'prompt'],
      [{ model: MODEL, prompt: 'x', suffix: 'y' }, 'suffix'],  // the fixture has no FIM tokens
      [{ model: QWEN3, prompt: [1, 2], suffix: 'y' }, 'suffix'],
      [{ model: QWEN3, prompt: 'x', suffix: 'y', echo: true }, 'echo'],
      [{ model: MODEL, prompt: 'x', n: 2, best_of: 1 }, 'best_of'],
      [{ model: MODEL, prompt: 'x', best_of: 3, stream: true }, 'best_of'],
      [{ model: MODEL, prompt: Array(43).fill('x'), best_of: 3 }, 'best_of'],
      [{ model: MODEL, prompt: 'x', logprobs: 6 }, 'logprobs'],
      [{ model: MODEL, prompt: 'x', n: 0 }, 'n'],
      [{ model: MODEL, prompt: 'x', max_tokens: 0 }, 'max_tokens'],
      [{ model: MODEL, prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ model: MODEL, prompt: 'x', logit_bias: { 5: 10 } }, 'logit_bias'],
      [{ model: MODEL, prompt: 'x', stream_options: { bogus: true } }, 'stream_options.bogus'],
      [{ model: MODEL, prompt: 'x', messages: [] }, 'messages'],
      [{ model: MODEL, prompt: [[1, 2], [99999999]] }, 'prompt'],
      [{ model: MODEL, prompt: Array(65).fill('x'), n: 2 }, 'n'],
    ]);
    const unknown = await sdk().completions.create({ model: 'nope', prompt: 'x' }).catch((e) => e);
    assert.ok(unknown instanceof OpenAI.NotFoundError, String(unknown));
    const r = await postJSON(srv.baseURL, p, { model: MODEL, prompt: 'x', frobnicate: 1 });
    assertError(r, { status: 400, param: 'frobnicate', code: 'unknown_parameter', what: show('unknown field', r) });
  });
});
