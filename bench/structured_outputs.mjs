// Decode speed under a json_schema grammar against unconstrained decoding, through `allm serve`,
// on one model served both as a Hugging Face folder (safetensors.cpp) and as GGUF (llama.cpp).
// Streams one request at a time; a request's decode rate is (completion tokens - 1) over the time
// from its first to its last content chunk. Runs alternate (unconstrained, grammar, then the
// other order) and the grammar/unconstrained ratio of each pair is printed as min / median / max.
// Then the time to the first token of a request with 20 function tools against one without (the
// tools' description in the prompt, their grammar), alternating likewise.
//   node bench/structured_outputs.mjs --hf DIR --gguf FILE [--pairs 3] [--tokens 128] [--threads N]
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AllmServer, makeTempDir, postJSON, postSSE } from '../tests/e2e/helpers.mjs';

const { values: opts } = parseArgs({
  options: {
    hf: { type: 'string' }, gguf: { type: 'string' }, pairs: { type: 'string', default: '3' },
    tokens: { type: 'string', default: '128' }, threads: { type: 'string' },
  },
});
const PAIRS = Number(opts.pairs);
const TOKENS = Number(opts.tokens);

// A schema whose answers are long whatever the weights: 40 records of fixed shape.
const SCHEMA = {
  type: 'object',
  properties: {
    records: {
      type: 'array', minItems: 40, maxItems: 40,
      items: {
        type: 'object',
        properties: {
          id: { type: 'integer', minimum: 0, maximum: 99999 },
          name: { type: 'string', minLength: 12, maxLength: 12 },
          tags: { type: 'array', items: { enum: ['alpha', 'beta', 'gamma'] }, minItems: 2, maxItems: 2 },
          active: { type: 'boolean' },
        },
        required: ['id', 'name', 'tags', 'active'],
        additionalProperties: false,
      },
    },
  },
  required: ['records'],
  additionalProperties: false,
};

async function decodeRate(base, model, constrained, seed) {
  const body = {
    model, seed, temperature: 1, max_tokens: TOKENS, stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'List the records as JSON.' }],
    ...(constrained ? { response_format: { type: 'json_schema', json_schema: { name: 'records', schema: SCHEMA } } } : {}),
  };
  let first = null, last = null, tokens = 0;
  const r = await postSSE(base, '/v1/chat/completions', body, {
    onEvent: (e) => {
      if (e.json?.choices?.[0]?.delta?.content) {
        last = performance.now();
        first ??= last;
      }
      if (e.json?.usage) tokens = e.json.usage.completion_tokens;
    },
  });
  if (r.status !== 200 || first === null || tokens < 2) throw new Error(`${model}: ${r.status} ${r.text}`);
  return (tokens - 1) / ((last - first) / 1000);
}

// 20 function tools of a typical agent: a few parameters each, one an enum.
const TOOLS = Array.from({ length: 20 }, (_, i) => ({
  type: 'function',
  function: {
    name: `tool_${i}`,
    description: `Tool number ${i}: looks something up and returns it as text.`,
    parameters: {
      type: 'object',
      properties: {
        query: { type: 'string', description: 'what to look up' },
        limit: { type: 'integer', minimum: 1, maximum: 50 },
        mode: { enum: ['fast', 'exact'] },
      },
      required: ['query'],
      additionalProperties: false,
    },
  },
}));

// Seconds to the first token: a one-token request whose prompt starts anew each time (no cached
// prefix to reuse, with or without tools: the whole prompt is read).
async function firstTokenSeconds(base, model, withTools, n) {
  const started = performance.now();
  const r = await postJSON(base, '/v1/chat/completions', {
    model, seed: n, max_tokens: 1,
    messages: [{ role: 'system', content: `Session ${n}.` }, { role: 'user', content: 'What now?' }],
    ...(withTools ? { tools: TOOLS } : {}),
  });
  if (r.status !== 200) throw new Error(`${model}: ${r.status} ${r.text}`);
  return (performance.now() - started) / 1000;
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const fmt = (x) => x.toFixed(3);

const tmp = await makeTempDir('allm-bench-grammar-');
const server = new AllmServer({
  tmp, parallel: 1, ctxSize: TOKENS + 8192,  // the fixtures' small vocabulary makes the 20 tools ~6.5k tokens
  extraArgs: opts.threads ? ['--threads', opts.threads] : [],
});
fs.mkdirSync(server.modelsDir, { recursive: true });
fs.symlinkSync(path.resolve(opts.hf), path.join(server.modelsDir, 'bench-hf'));
fs.symlinkSync(path.resolve(opts.gguf), path.join(server.modelsDir, 'bench-gguf.gguf'));
await server.start();
try {
  for (const model of ['bench-hf', 'bench-gguf']) {
    await decodeRate(server.baseURL, model, false, 0);  // loads the model, warms the cache
    const free = [], grammar = [], ratios = [];
    for (let pair = 0; pair < PAIRS; ++pair) {
      const order = pair % 2 === 0 ? [false, true] : [true, false];
      const rates = {};
      for (const constrained of order) rates[constrained] = await decodeRate(server.baseURL, model, constrained, pair + 1);
      free.push(rates[false]);
      grammar.push(rates[true]);
      ratios.push(rates[true] / rates[false]);
      console.log(`${model} pair ${pair + 1}: unconstrained ${rates[false].toFixed(1)} tok/s, json_schema ${rates[true].toFixed(1)} tok/s`);
    }
    console.log(`${model}: decode tok/s median unconstrained ${median(free).toFixed(1)}, json_schema ${median(grammar).toFixed(1)}; ` +
      `json_schema/unconstrained min ${fmt(Math.min(...ratios))} median ${fmt(median(ratios))} max ${fmt(Math.max(...ratios))}`);
  }
  for (const model of ['bench-hf', 'bench-gguf']) {
    await firstTokenSeconds(server.baseURL, model, true, 0);
    const ratios = [];
    for (let pair = 0; pair < PAIRS; ++pair) {
      const order = pair % 2 === 0 ? [false, true] : [true, false];
      const seconds = {};
      for (const withTools of order) seconds[withTools] = await firstTokenSeconds(server.baseURL, model, withTools, 2 * pair + withTools + 1);
      ratios.push(seconds[true] / seconds[false]);
      console.log(`${model} pair ${pair + 1}: first token ${(seconds[false] * 1000).toFixed(0)} ms without tools, ${(seconds[true] * 1000).toFixed(0)} ms with 20`);
    }
    console.log(`${model}: first token with 20 tools / without: min ${fmt(Math.min(...ratios))} median ${fmt(median(ratios))} max ${fmt(Math.max(...ratios))}`);
  }
} finally {
  await server.cleanup();
}
