// Hugging Face folders served with no conversion: every safetensors.cpp architecture answers both
// text APIs, and gives the same greedy text as llama.cpp on the GGUF of the same weights.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  useServer, postJSON, postSSE, show, responseText, checkResponseStream, checkChatStream,
  runCommand, request, ALLM_BIN, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';
import { checkPrefixCopiedFromRunningSequence } from './prefix_copy.mjs';
import { makeHfFixture } from './hf_fixture.mjs';
import { checkPenaltyStopsRepetition, checkPenaltyShiftsLogprobs } from './penalties.mjs';

const T = { timeout: TEST_TIMEOUT_MS };
// F16 weights are left out: their logprobs differ from llama.cpp's by ~1e-2 (tests/parity:
// ggml picks other F16 matmul kernels for the two graphs), and mistral-f16's chat reply met a
// near tie under that (top-2 margin 2.9e-3) once both sides ran flash attention. The parity
// tests cover F16 weights with that bound.
const MODELS = [
  ['llama', 'f32'], ['llama3', 'bf16'], ['mistral', 'bf16'], ['qwen2', 'bf16'], ['qwen3', 'f32'],
  ['gemma', 'bf16'], ['gemma2', 'f32'], ['nemotron', 'f32'],
  ['phi', 'bf16'], ['phi3', 'f32'],
  ['gpt-oss', 'bf16'],
];

describe('safetensors models', { timeout: HOOK_TIMEOUT_MS + 14 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({
    fixture: false,
    setup: async ({ modelsDir }) => {
      for (const [arch, dtype] of MODELS) await makeHfFixture(arch, dtype, modelsDir);
    },
  });

  for (const [arch, dtype] of MODELS) {
    const name = `${arch}-${dtype}`;
    it(`${name}: both APIs, stream and not, same greedy text as the GGUF`, T, async () => {
      const input = 'Tell me about the model of the world';
      const req = { input, max_output_tokens: 16, temperature: 0 };
      const hf = await postJSON(srv.baseURL, '/v1/responses', { model: `${name}-hf`, ...req });
      assert.equal(hf.status, 200, show(`responses ${name}-hf`, hf));
      const gguf = await postJSON(srv.baseURL, '/v1/responses', { model: `${name}-gguf`, ...req });
      assert.equal(gguf.status, 200, show(`responses ${name}-gguf`, gguf));
      assert.equal(responseText(hf.json), responseText(gguf.json), 'greedy text differs between safetensors.cpp and llama.cpp');
      assert.equal(hf.json.usage.input_tokens, gguf.json.usage.input_tokens, 'prompt token counts differ');
      assert.equal(hf.json.usage.output_tokens, gguf.json.usage.output_tokens);

      const stream = await postSSE(srv.baseURL, '/v1/responses', { model: `${name}-hf`, ...req, stream: true });
      assert.equal(stream.status, 200);
      const s = checkResponseStream(stream.events, `(${name} stream)`);
      assert.equal(s.doneText, responseText(hf.json));

      const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: input }];
      const chat = await postJSON(srv.baseURL, '/v1/chat/completions', { model: `${name}-hf`, messages, max_tokens: 12, temperature: 0 });
      assert.equal(chat.status, 200, show(`chat ${name}-hf`, chat));
      const chatGguf = await postJSON(srv.baseURL, '/v1/chat/completions', { model: `${name}-gguf`, messages, max_tokens: 12, temperature: 0 });
      assert.equal(chat.json.choices[0].message.content, chatGguf.json.choices[0].message.content);
      const chatStream = await postSSE(srv.baseURL, '/v1/chat/completions', { model: `${name}-hf`, messages, max_tokens: 12, temperature: 0, stream: true });
      const cs = checkChatStream(chatStream.events, { model: `${name}-hf` }, `(${name} chat stream)`);
      assert.equal(cs.content, chat.json.choices[0].message.content);
    });
  }

  it('a new conversation copies the system prompt that a running one holds', T, async () => {
    await checkPrefixCopiedFromRunningSequence(srv.baseURL, 'qwen3-f32-hf');
  });

  it('presence and frequency penalties act on safetensors models too', T, async () => {
    await checkPenaltyStopsRepetition(srv.baseURL, 'llama-f32-hf');
    await checkPenaltyShiftsLogprobs(srv.baseURL, 'llama-f32-hf');
  });

  it('concurrent requests to one safetensors model all match their solo runs', T, async () => {
    const model = 'qwen3-f32-hf';
    const prompts = ['one', 'two two', 'three three three', 'four four four four'];
    const run = (p) => postJSON(srv.baseURL, '/v1/chat/completions', {
      model, messages: [{ role: 'user', content: p }], max_tokens: 20, temperature: 0,
    });
    const solo = [];
    for (const p of prompts) solo.push((await run(p)).json.choices[0].message.content);
    const together = await Promise.all(prompts.map(run));
    together.forEach((r, i) => {
      assert.equal(r.status, 200, show(`concurrent ${i}`, r));
      assert.equal(r.json.choices[0].message.content, solo[i], `prompt ${i} differs when batched`);
    });
  });
});

// Quantize on load: the registration suffix, the server-wide --quantize for the rest, what
// /v1/models reports, and a quantized model answering.
describe('safetensors models quantized on load', { timeout: HOOK_TIMEOUT_MS + 3 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({
    fixture: false,
    setup: async ({ modelsDir }) => {
      await makeHfFixture('llama', 'bf16', modelsDir);  // llama-bf16-hf: --quantize applies
      const folder = path.join(modelsDir, 'llama-bf16-hf');
      return ['--quantize', 'q4_0', '--model', `q8=${folder}:safetensors:q8_0`,
        '--model', `stored=${folder}:safetensors:none`];
    },
  });

  it('/v1/models reports each model\'s quantization and its size in memory', T, async () => {
    const r = await request(srv.baseURL, 'GET', '/v1/models');
    assert.equal(r.status, 200, show('models', r));
    const byId = Object.fromEntries(r.json.data.map((m) => [m.id, m]));
    assert.equal(byId.q8.quantization, 'q8_0');
    assert.equal(byId.stored.quantization, 'none');
    assert.equal(byId['llama-bf16-hf'].quantization, 'q4_0', 'the server-wide --quantize');
    assert.equal(byId['llama-bf16-gguf'].quantization, undefined, 'GGUF files are not quantized on load');
    assert.ok(byId.q8.weights_bytes < byId.stored.weights_bytes, show('sizes', r));
    assert.ok(byId['llama-bf16-hf'].weights_bytes < byId.q8.weights_bytes, show('sizes', r));
  });

  it('a model quantized on load answers, and the log says what was quantized', T, async () => {
    const messages = [{ role: 'user', content: 'Tell me about the model of the world' }];
    for (const model of ['q8', 'llama-bf16-hf']) {
      const chat = await postJSON(srv.baseURL, '/v1/chat/completions', { model, messages, max_tokens: 8, temperature: 0 });
      assert.equal(chat.status, 200, show(`chat ${model}`, chat));
      assert.equal(chat.json.usage.completion_tokens, 8);
    }
    assert.match(srv.server.log, /quantized \d+ matrices to q8_0/);
    assert.match(srv.server.log, /quantized \d+ matrices to q4_0/);
  });

  it('an unknown quantization is a start-up error', T, async () => {
    for (const args of [['--quantize', 'q5_1'], ['--model', 'm=/x:safetensors:int8']]) {
      const r = await runCommand(ALLM_BIN, ['serve', ...args]);
      assert.notEqual(r.code, 0, `allm serve ${args.join(' ')} started`);
      assert.match(r.stderr + r.stdout, /q5_1|unknown quantization 'int8'/);
    }
  });
});
